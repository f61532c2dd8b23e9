//! Charts drawn on the server as SVG: no script, nothing for the CSP to allow. Every text put in
//! a chart is escaped here, since the templates include the SVG as it is.

use std::fmt::Write as _;

use store::{LicenseRow, RunRow};

use super::format;

pub(crate) fn escape(text: &str) -> String {
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

/// The latest runs (up to 40, oldest left) as bars as tall as they took, coloured by outcome.
pub(crate) fn runs_over_time(runs: &[RunRow]) -> String {
    let shown: Vec<&RunRow> = runs.iter().take(40).collect();
    let longest = shown
        .iter()
        .filter_map(|r| r.duration_ms)
        .max()
        .unwrap_or(1)
        .max(1);
    let (width, height, bar) = (800.0, 160.0, 18.0);
    let mut svg = format!(
        r#"<svg class="chart" data-testid="runs-chart" viewBox="0 0 {width} {h}" role="img" aria-label="Duration of the latest runs, coloured by outcome"><title>Latest runs: height is duration (longest {}), colour is outcome</title>"#,
        format::duration(longest),
        h = height + 30.0
    );
    for (i, run) in shown.iter().rev().enumerate() {
        let took = run.duration_ms.unwrap_or(0) as f64;
        let h = (took / longest as f64 * height).max(2.0);
        let x = 10.0 + i as f64 * (bar + 2.0);
        let class = match run.status {
            domain::RunStatus::Succeeded => "run-succeeded",
            domain::RunStatus::Partial => "run-partial",
            domain::RunStatus::Failed => "run-failed",
            domain::RunStatus::Cancelled => "run-cancelled",
            _ => "run-other",
        };
        let _ = write!(
            svg,
            r#"<a href="/runs/{id}"><rect class="{class}" x="{x}" y="{y}" width="{bar}" height="{h}"><title>Run {id} ({name}): {status}, {took}</title></rect></a>"#,
            id = run.id,
            y = height - h + 5.0,
            name = escape(&run.connection_name),
            status = run.status,
            took = format::duration(took as i64),
        );
    }
    let _ = write!(
        svg,
        r#"<text x="10" y="{y}">oldest</text><text x="{right}" y="{y}" text-anchor="end">latest · longest {}</text></svg>"#,
        format::duration(longest),
        y = height + 22.0,
        right = width - 10.0
    );
    svg
}

/// Each licence as a bar: assigned against bought, over-assigned in red.
pub(crate) fn license_use(licenses: &[LicenseRow]) -> String {
    let rows: Vec<&LicenseRow> = licenses.iter().filter(|l| !l.archived).collect();
    let (label_width, bar_width, row_height) = (300.0, 420.0, 24.0);
    let height = rows.len() as f64 * row_height + 10.0;
    let mut svg = format!(
        r#"<svg class="chart" data-testid="license-chart" viewBox="0 0 {w} {height}" role="img" aria-label="Licences assigned against bought"><title>Licences: assigned against bought</title>"#,
        w = label_width + bar_width + 120.0
    );
    for (i, license) in rows.iter().enumerate() {
        let y = 5.0 + i as f64 * row_height;
        let bought = license.enabled_units.max(0) as f64;
        let used = license.consumed_units.max(0) as f64;
        let scale = bought.max(used).max(1.0);
        let used_width = used / scale * bar_width;
        let class = if used > bought {
            "bar-over"
        } else {
            "bar-used"
        };
        let _ = write!(
            svg,
            r#"<text x="0" y="{ty}">{name}</text><rect class="bar-free" x="{label_width}" y="{y}" width="{bw}" height="16"/><rect class="{class}" x="{label_width}" y="{y}" width="{used_width}" height="16"><title>{name}: {used} of {bought} assigned</title></rect><text x="{tx}" y="{ty}">{used} / {bought}</text>"#,
            ty = y + 12.0,
            name = escape(&truncate(&license.name, 44)),
            bw = bought / scale * bar_width,
            tx = label_width + bar_width + 8.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A tenant's trends as line charts: the ones the organisation report draws, so that the page
/// and the file show the same.
pub(crate) fn trends(trends: &[domain::trends::Trend]) -> Vec<String> {
    sync::report::trend_charts(trends)
}

/// A mailbox's use against its quota (the send-blocking one, else the warning one).
pub(crate) fn mailbox_quota(used: i64, quota: Option<i64>) -> String {
    // Narrow, so that its text stays readable in a card a quarter of the page wide.
    let width = 300.0;
    let limit = quota.filter(|q| *q > 0);
    let share = limit.map(|q| used as f64 / q as f64).unwrap_or(0.0);
    let class = if share >= 0.9 { "bar-over" } else { "bar-used" };
    let used_width = (share.min(1.0) * width).max(2.0);
    let caption = match limit {
        Some(q) => format!(
            "{} of {} ({:.0} %)",
            format::bytes(used),
            format::bytes(q),
            share * 100.0
        ),
        None => format!("{} (no quota reported)", format::bytes(used)),
    };
    format!(
        r#"<svg class="chart" data-testid="mailbox-chart" viewBox="0 0 {w} 44" role="img" aria-label="Mailbox use against quota"><title>Mailbox: {caption}</title><rect class="bar-free" x="0" y="0" width="{width}" height="18"/><rect class="{class}" x="0" y="0" width="{used_width}" height="18"/><text x="0" y="36">{caption}</text></svg>"#,
        w = width,
        caption = escape(&caption),
    )
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max - 1).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_text_is_escaped() {
        assert_eq!(
            escape("<b>O'Brien & co</b>"),
            "&lt;b&gt;O&#39;Brien &amp; co&lt;/b&gt;"
        );
        let svg = mailbox_quota(45 * 1024 * 1024 * 1024, Some(50 * 1024 * 1024 * 1024));
        assert!(svg.contains("45.0 GB of 50.0 GB (90 %)"), "{svg}");
        assert!(svg.contains("bar-over"));
        assert!(mailbox_quota(10, None).contains("no quota reported"));
    }
}
