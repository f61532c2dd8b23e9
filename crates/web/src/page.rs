//! The page frame and HTML escaping.

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The pages' only stylesheet, served at [`STYLESHEET_PATH`]: a file of its own rather than an
/// inline `<style>`, so that the Content-Security-Policy can allow styles from the server alone.
pub const STYLESHEET: &str = "\
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1b1b1b; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.error { color: #a00; }
";

pub const STYLESHEET_PATH: &str = "/assets/m365sync.css";

pub fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · m365sync</title>
<link rel="stylesheet" href="{STYLESHEET_PATH}">
</head>
<body>
<nav><a href="/">Organisations</a><a href="/runs">Sync runs</a></nav>
{body}
</body>
</html>
"#,
        title = escape(title)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            super::escape("<b>O'Brien & co</b>"),
            "&lt;b&gt;O&#39;Brien &amp; co&lt;/b&gt;"
        );
    }
}
