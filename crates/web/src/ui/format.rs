//! How numbers, times and lists read on a page, and the plain table most pages are made of.

use askama::Template;

use super::Frame;

pub(crate) fn url_encode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)])
        .map(|s| s.trim_start_matches("v=").to_string())
        .unwrap_or_default()
}

/// A time as people read it, in UTC (the server cannot know the reader's zone).
pub(crate) fn time(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

pub(crate) fn time_or(millis: Option<i64>, none: &str) -> String {
    millis.map(time).unwrap_or_else(|| none.to_string())
}

pub(crate) fn day(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "—".into())
}

pub(crate) fn duration(millis: i64) -> String {
    let seconds = millis / 1000;
    match seconds {
        s if s < 1 => format!("{millis} ms"),
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

pub(crate) fn bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub(crate) fn opt(text: &Option<String>) -> String {
    text.clone().unwrap_or_default()
}

#[derive(Clone)]
pub(crate) struct Badge {
    pub(crate) text: String,
    pub(crate) class: &'static str,
}

impl Badge {
    pub(crate) fn new(text: impl Into<String>, class: &'static str) -> Self {
        Self {
            text: text.into(),
            class,
        }
    }
}

#[derive(Clone, Default)]
pub(crate) struct Cell {
    pub(crate) text: String,
    pub(crate) href: Option<String>,
    pub(crate) num: bool,
    pub(crate) badges: Vec<Badge>,
}

impl Cell {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub(crate) fn link(text: impl Into<String>, href: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            href: Some(href.into()),
            ..Self::default()
        }
    }

    pub(crate) fn num(value: impl ToString) -> Self {
        Self {
            text: value.to_string(),
            num: true,
            ..Self::default()
        }
    }

    pub(crate) fn badge(mut self, text: impl Into<String>, class: &'static str) -> Self {
        self.badges.push(Badge::new(text, class));
        self
    }
}

pub(crate) struct Header {
    pub(crate) label: String,
    pub(crate) num: bool,
}

pub(crate) struct Table {
    pub(crate) testid: String,
    pub(crate) caption: Option<String>,
    pub(crate) headers: Vec<Header>,
    pub(crate) rows: Vec<Vec<Cell>>,
    pub(crate) empty: String,
}

impl Table {
    /// A table with these column headings; a heading starting with `#` is a number column.
    pub(crate) fn new(testid: &str, headers: &[&str], empty: &str) -> Self {
        Self {
            testid: testid.to_string(),
            caption: None,
            headers: headers
                .iter()
                .map(|h| match h.strip_prefix('#') {
                    Some(label) => Header {
                        label: label.to_string(),
                        num: true,
                    },
                    None => Header {
                        label: h.to_string(),
                        num: false,
                    },
                })
                .collect(),
            rows: Vec::new(),
            empty: empty.to_string(),
        }
    }

    pub(crate) fn caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    pub(crate) fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }
}

pub(crate) struct Link {
    pub(crate) key: String,
    pub(crate) label: String,
    pub(crate) href: String,
    pub(crate) active: bool,
}

/// One link of a numbered pager; `href` is `None` for the gap between distant numbers.
pub(crate) struct PageLink {
    pub(crate) label: String,
    pub(crate) href: Option<String>,
    pub(crate) current: bool,
}

/// The page a `page` query asks for: 1 when missing or unreadable.
pub(crate) fn page_number(raw: Option<&str>) -> i64 {
    raw.and_then(|p| p.trim().parse::<i64>().ok())
        .unwrap_or(1)
        .max(1)
}

/// Where page `number` of `size` rows starts.
pub(crate) fn offset_of(number: i64, size: i64) -> i64 {
    number.saturating_sub(1).saturating_mul(size)
}

/// The last page of `total` rows in pages of `size` (1 when there are none).
pub(crate) fn last_page(total: i64, size: i64) -> i64 {
    if size <= 0 || total <= 0 {
        return 1;
    }
    total.div_euclid(size) + i64::from(total.rem_euclid(size) != 0)
}

/// Loads page `number` of `size` rows with `load(offset)`; a page past the end gives the last
/// page instead, so a stale link or a typed-in number shows real rows and never a contradiction
/// such as "showing 301–300" beside a count. Returns the rows, the total and the page shown.
pub(crate) async fn clamped_page<T, E, Fut>(
    number: i64,
    size: i64,
    load: impl Fn(i64) -> Fut,
) -> Result<(Vec<T>, i64, i64), E>
where
    Fut: std::future::Future<Output = Result<(Vec<T>, i64), E>>,
{
    let (rows, total) = load(offset_of(number, size)).await?;
    let last = last_page(total, size);
    if number > last {
        let (rows, total) = load(offset_of(last, size)).await?;
        return Ok((rows, total, last));
    }
    Ok((rows, total, number))
}

/// The numbered links for `total` rows in pages of `size`, page `current` shown; `href` makes
/// the link to a page. Nothing for a single page.
pub(crate) fn pager(
    current: i64,
    total: i64,
    size: i64,
    href: impl Fn(i64) -> String,
) -> Vec<PageLink> {
    let count = last_page(total, size);
    if count <= 1 {
        return Vec::new();
    }
    numbered_pages(current, count)
        .into_iter()
        .map(|n| match n {
            Some(n) => PageLink {
                label: n.to_string(),
                href: Some(href(n)),
                current: n == current,
            },
            None => PageLink {
                label: "…".into(),
                href: None,
                current: false,
            },
        })
        .collect()
}

/// Page numbers to offer: the first, the last, and two either side of the current one, with a
/// gap (`None`) where some are left out.
pub(crate) fn numbered_pages(current: i64, count: i64) -> Vec<Option<i64>> {
    let mut shown = Vec::new();
    let mut last = 0;
    for n in 1..=count {
        if n == 1 || n == count || (n - current).abs() <= 2 {
            if n - last > 1 {
                shown.push(None);
            }
            shown.push(Some(n));
            last = n;
        }
    }
    shown
}

/// A page that is tables (and perhaps a chart): most dataset pages.
#[derive(Template)]
#[template(path = "table.html")]
pub(crate) struct TablePage {
    pub(crate) frame: Frame,
    pub(crate) crumbs: Vec<Link>,
    pub(crate) tabs: Vec<Link>,
    pub(crate) intro: Option<String>,
    /// Server-made SVG; every text in it escaped by [`super::charts`].
    pub(crate) chart: Option<String>,
    pub(crate) search: Option<String>,
    pub(crate) tables: Vec<Table>,
    /// The numbered pages of the (last) table, when it has more than one.
    pub(crate) pages: Vec<PageLink>,
}

impl TablePage {
    pub(crate) fn new(frame: Frame, tables: Vec<Table>) -> Self {
        Self {
            frame,
            crumbs: Vec::new(),
            tabs: Vec::new(),
            intro: None,
            chart: None,
            search: None,
            tables,
            pages: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_times_and_durations_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1_572_864), "1.5 MB");
        assert_eq!(duration(450), "450 ms");
        assert_eq!(duration(75_000), "1 min 15 s");
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
        assert_eq!(url_encode("a b&c/d"), "a+b%26c%2Fd");
    }

    #[test]
    fn page_numbers_keep_the_ends_and_the_neighbourhood() {
        assert_eq!(numbered_pages(1, 1), vec![Some(1)]);
        assert_eq!(
            numbered_pages(10, 2000),
            vec![
                Some(1),
                None,
                Some(8),
                Some(9),
                Some(10),
                Some(11),
                Some(12),
                None,
                Some(2000)
            ]
        );
        assert_eq!(
            numbered_pages(2, 5),
            vec![Some(1), Some(2), Some(3), Some(4), Some(5)]
        );
    }

    #[test]
    fn a_pager_links_every_page_it_shows_and_none_for_one_page() {
        assert!(pager(1, 50, 50, |n| n.to_string()).is_empty());
        let links = pager(2, 101, 50, |n| format!("/x?page={n}"));
        let labels: Vec<&str> = links.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["1", "2", "3"]);
        assert_eq!(links[2].href.as_deref(), Some("/x?page=3"));
        assert!(links[1].current && !links[0].current);
        assert_eq!(page_number(Some("x")), 1);
        assert_eq!(page_number(Some("-4")), 1);
        assert_eq!(page_number(Some("7")), 7);
        assert_eq!(offset_of(3, 25), 50);
    }
}
