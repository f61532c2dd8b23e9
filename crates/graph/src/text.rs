//! The one place where text from Microsoft is made storable: every JSON body and every report
//! field passes through here before anything is parsed into a record.
//!
//! PostgreSQL cannot hold NUL in text at all, and no name, address or title needs the other
//! control characters; a single user whose display name carries one must not block a tenant.
//! Tab, line feed and carriage return stay: descriptions and message bodies use them. A lone
//! UTF-16 surrogate in a JSON escape (which serde_json refuses, failing the whole page) becomes
//! U+FFFD, as any lenient reader would show it.

use std::borrow::Cow;

/// Whether a character is dropped from text: C0 controls other than tab, line feed and carriage
/// return; DEL; and the C1 controls.
pub fn is_unstorable(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Text with the unstorable characters removed; borrowed when there were none.
pub fn clean_str(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_unstorable) {
        Cow::Owned(text.chars().filter(|c| !is_unstorable(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// Parses a JSON body from Microsoft after cleaning its text.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(&clean_json(body))
}

/// A JSON document with every unstorable character removed from its strings, whether sent raw
/// or as an escape (`\u0000`, `\b`), and lone surrogate escapes replaced by `\ufffd`. Only the
/// text inside strings changes: outside them JSON has no backslash and no control character
/// but whitespace. Borrowed when nothing needed cleaning, which is nearly always.
pub fn clean_json(body: &[u8]) -> Cow<'_, [u8]> {
    let mut position = 0;
    let mut out: Option<Vec<u8>> = None;
    while position < body.len() {
        let byte = body[position];
        let drop = match byte {
            b'\\' => match escape_at(body, position) {
                Escape::Keep(length) => {
                    if let Some(out) = out.as_mut() {
                        out.extend_from_slice(&body[position..position + length]);
                    }
                    position += length;
                    continue;
                }
                Escape::Drop(length) => length,
                Escape::Replace(length) => {
                    out.get_or_insert_with(|| body[..position].to_vec())
                        .extend_from_slice(br"\ufffd");
                    position += length;
                    continue;
                }
            },
            // Raw control bytes, but not the whitespace JSON allows between tokens.
            0x00..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x7f => 1,
            // C1 controls are U+0080..U+009F, two bytes in UTF-8.
            0xc2 if matches!(body.get(position + 1), Some(0x80..=0x9f)) => 2,
            _ => 0,
        };
        if drop > 0 {
            out.get_or_insert_with(|| body[..position].to_vec());
            position += drop;
        } else {
            if let Some(out) = out.as_mut() {
                out.push(byte);
            }
            position += 1;
        }
    }
    match out {
        Some(cleaned) => Cow::Owned(cleaned),
        None => Cow::Borrowed(body),
    }
}

enum Escape {
    /// Copy this many bytes as they are.
    Keep(usize),
    /// Leave this many bytes out.
    Drop(usize),
    /// Write `\ufffd` in place of this many bytes.
    Replace(usize),
}

/// What to do with the escape that starts at `at` (a backslash).
fn escape_at(body: &[u8], at: usize) -> Escape {
    match body.get(at + 1) {
        // `\b` and `\f` are control characters no text needs.
        Some(b'b' | b'f') => Escape::Drop(2),
        Some(b'u') => match hex4(body, at + 2) {
            Some(unit) if unit <= 0xffff && is_unstorable_unit(unit) => Escape::Drop(6),
            Some(0xd800..=0xdbff) => {
                // A high surrogate must be followed by a low one to mean a character.
                let low = (body.get(at + 6) == Some(&b'\\') && body.get(at + 7) == Some(&b'u'))
                    .then(|| hex4(body, at + 8))
                    .flatten();
                match low {
                    Some(0xdc00..=0xdfff) => Escape::Keep(12),
                    _ => Escape::Replace(6),
                }
            }
            Some(0xdc00..=0xdfff) => Escape::Replace(6),
            Some(_) => Escape::Keep(6),
            // Not an escape serde_json will accept either; leave it for the parser to name.
            None => Escape::Keep(2.min(body.len() - at)),
        },
        Some(_) => Escape::Keep(2),
        None => Escape::Keep(1),
    }
}

fn is_unstorable_unit(unit: u32) -> bool {
    char::from_u32(unit).is_some_and(is_unstorable)
}

fn hex4(body: &[u8], at: usize) -> Option<u32> {
    let digits = body.get(at..at.checked_add(4)?)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(json: &str) -> String {
        String::from_utf8(clean_json(json.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn escaped_and_raw_controls_leave_strings() {
        assert_eq!(cleaned(r#"{"a":"x\u0000y\u001Fz"}"#), r#"{"a":"xyz"}"#);
        assert_eq!(cleaned(r#"{"a":"\b\f\u007f\u0085!"}"#), r#"{"a":"!"}"#);
        assert_eq!(
            cleaned("{\"a\":\"x\u{1b}[31my\u{85}\"}"),
            r#"{"a":"x[31my"}"#
        );
        let value: serde_json::Value = from_json(br#"{"a":"Ann\u0000 Lee"}"#).unwrap();
        assert_eq!(value["a"], "Ann Lee");
    }

    #[test]
    fn whitespace_escapes_and_other_text_stay() {
        let kept = r#"{"a":"line\nnext\ttab\r\"quoted\" \\u0000 \u00e9 \ud83d\ude00"}"#;
        assert!(matches!(clean_json(kept.as_bytes()), Cow::Borrowed(_)));
        assert_eq!(cleaned("{\n\t\"a\": 1\r\n}"), "{\n\t\"a\": 1\r\n}");
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let value: serde_json::Value = from_json(br#"{"a":"x\ud800y","b":"\udc00"}"#).unwrap();
        assert_eq!(value["a"], "x\u{fffd}y");
        assert_eq!(value["b"], "\u{fffd}");
        let value: serde_json::Value = from_json(br#"{"a":"\ud83d\ude00"}"#).unwrap();
        assert_eq!(value["a"], "\u{1f600}");
    }

    #[test]
    fn truncated_escapes_do_not_panic() {
        for body in [&br"\"[..], br"\u", br"\u00", br#""\ud800\u"#, br"\ud800\"] {
            let _ = clean_json(body);
        }
    }

    #[test]
    fn report_fields_lose_the_same_characters() {
        assert_eq!(clean_str("a\u{0}b\u{1b}c\u{9f}"), "abc");
        assert!(matches!(clean_str("tab\tok\n"), Cow::Borrowed(_)));
    }
}
