//! A dated tenant report of the kind MSPs attach to a quarterly review, as JSON or as one HTML
//! file that needs nothing else to be read offline (styles inline, charts as SVG drawn here, no
//! script, no link to fetch). `m365sync report` writes it and the organisation's insight page
//! offers it for download: one piece of code for both.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use askama::Template;
use chrono::{DateTime, Utc};
use domain::software::across_tenants;
use domain::trends::Trend;
use domain::waste::{PriceList, SeatCount, WasteReport, format_cents};
use serde::Serialize;
use store::{Store, StoreError, TenantRow};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store holds a bad tenant id '{0}'")]
    TenantId(String),
    #[error("the report could not be drawn: {0}")]
    Render(#[from] askama::Error),
    #[error(transparent)]
    Waste(#[from] domain::waste::WasteError),
}

fn tenant_id(row: &TenantRow) -> Result<domain::TenantId, ReportError> {
    domain::TenantId::parse(&row.tenant_id)
        .map_err(|_| ReportError::TenantId(row.tenant_id.clone()))
}

/// The licence waste of some tenants: seats bought and unused, and the findings, priced when
/// the admin's price list names the SKU.
pub async fn waste_of(
    store: &Store,
    tenants: &[TenantRow],
    prices: &PriceList,
    now: DateTime<Utc>,
) -> Result<WasteReport, ReportError> {
    let (mut skus, mut users) = (Vec::new(), Vec::new());
    for tenant in tenants {
        let (s, u) = store.license_facts(Some(&tenant_id(tenant)?)).await?;
        skus.extend(s);
        users.extend(u);
    }
    Ok(domain::waste::findings(&skus, &users, prices, now)?)
}

/// Everything the report says, as the JSON form writes it.
#[derive(Debug, Serialize)]
pub struct Report {
    pub organization: String,
    /// When it was made, in RFC 3339 (2026-11-30T18:53:00Z), for a program to read.
    #[serde(serialize_with = "rfc3339")]
    pub generated_at: DateTime<Utc>,
    /// The first day the trends cover, when asked for.
    pub since: Option<String>,
    pub tenants: Vec<TenantSection>,
    pub licenses: WasteReport,
    pub software: SoftwareSection,
}

#[derive(Debug, Serialize)]
pub struct TenantSection {
    pub tenant_id: String,
    pub name: String,
    pub snapshots: usize,
    /// The latest snapshot's figures (empty before the first).
    pub figures: BTreeMap<String, i64>,
    pub trends: Vec<Trend>,
    /// Why there are no trends to show, where there are none.
    pub nothing_to_show: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SoftwareSection {
    pub products: usize,
    pub unmatched: usize,
    /// The most installed products, most devices first.
    pub top: Vec<ProductLine>,
}

#[derive(Debug, Serialize)]
pub struct ProductLine {
    pub product: String,
    pub publisher: Option<String>,
    pub devices: u64,
    pub users: u64,
    pub versions: usize,
    pub latest_version: Option<String>,
    pub oldest_version: Option<String>,
}

const TOP_PRODUCTS: usize = 25;

/// The report of an organisation's tenants; `organization` names it when no tenant says.
pub async fn build(
    store: &Store,
    organization: &str,
    tenants: &[TenantRow],
    since: Option<DateTime<Utc>>,
    prices: &PriceList,
    now: DateTime<Utc>,
) -> Result<Report, ReportError> {
    let mut sections = Vec::new();
    let mut stored = Vec::new();
    for tenant in tenants {
        let id = tenant_id(tenant)?;
        let snapshots = store.snapshots(&id).await?;
        sections.push(TenantSection {
            tenant_id: tenant.tenant_id.clone(),
            name: tenant.label().to_string(),
            snapshots: snapshots.len(),
            figures: snapshots
                .last()
                .map(|s| s.figures.0.clone())
                .unwrap_or_default(),
            trends: domain::trends::trends(&snapshots, since),
            nothing_to_show: domain::trends::nothing_to_show(&snapshots, since, now),
        });
        stored.extend(store.software_products(Some(&id)).await?);
    }
    let products = across_tenants(stored);
    let name = tenants
        .iter()
        .find_map(|t| t.organization.clone())
        .unwrap_or_else(|| organization.to_string());
    Ok(Report {
        organization: name,
        generated_at: now,
        since: since.map(|s| s.format("%Y-%m-%d").to_string()),
        tenants: sections,
        licenses: waste_of(store, tenants, prices, now).await?,
        software: SoftwareSection {
            products: products.iter().filter(|p| p.matched).count(),
            unmatched: products.iter().filter(|p| !p.matched).count(),
            top: products
                .iter()
                .filter(|p| p.matched)
                .take(TOP_PRODUCTS)
                .map(|p| ProductLine {
                    product: p.product.clone(),
                    publisher: p.publisher.clone(),
                    devices: p.devices,
                    users: p.users,
                    versions: p.versions.len(),
                    latest_version: p.latest_version.clone(),
                    oldest_version: p.oldest_version.clone(),
                })
                .collect(),
        },
    })
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    report: &'a Report,
    /// When it was made, for a person to read.
    made: String,
    tenants: Vec<TenantView<'a>>,
    seats_chart: String,
    findings: Vec<FindingView>,
    waste: Vec<String>,
}

struct TenantView<'a> {
    section: &'a TenantSection,
    charts: Vec<String>,
    rows: Vec<(String, String, String, String)>,
}

struct FindingView {
    kind: String,
    subject: String,
    cost: String,
    evidence: String,
}

/// A tenant's trends as SVG line charts, one per group of figures (users, licences assigned,
/// devices, mailbox storage, secrets, software); none for a group without points. Every text
/// in them is escaped, and their colours are attributes, so that a page with a strict
/// Content-Security-Policy shows them too.
pub fn trend_charts(trends: &[Trend]) -> Vec<String> {
    let pick = |prefix: &str, suffix: &str| -> Vec<&Trend> {
        trends
            .iter()
            .filter(|t| t.name.starts_with(prefix) && t.name.ends_with(suffix))
            .collect()
    };
    [
        line_chart("Users", &pick("users.", ""), 1.0, ""),
        line_chart(
            "Licences assigned, by SKU",
            &pick("licenses.", ".assigned"),
            1.0,
            "",
        ),
        line_chart("Devices by compliance", &pick("devices.", ""), 1.0, ""),
        line_chart(
            "Mailbox storage",
            &pick("mailboxes.storage_bytes", ""),
            1e9,
            " GB",
        ),
        line_chart("Secrets and certificates", &pick("secrets.", ""), 1.0, ""),
        line_chart("Software products", &pick("software.", ""), 1.0, ""),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The HTML form: one self-contained page.
pub fn html(report: &Report) -> Result<String, ReportError> {
    let tenants = report
        .tenants
        .iter()
        .map(|section| {
            let charts = trend_charts(&section.trends);
            let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
            TenantView {
                section,
                charts,
                rows: section
                    .trends
                    .iter()
                    .map(|t| {
                        (
                            t.label.clone(),
                            show(t.first),
                            show(t.last),
                            format!("{:+}", t.change),
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let money = |cents: Option<i64>, currency: Option<&str>| {
        cents.map_or("-".to_string(), |c| {
            format!("{} {}", format_cents(c), currency.unwrap_or_default())
                .trim()
                .to_string()
        })
    };
    let page = ReportPage {
        report,
        made: report.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        tenants,
        seats_chart: seats_chart(&report.licenses),
        findings: report
            .licenses
            .findings
            .iter()
            .map(|f| FindingView {
                kind: f.kind.label().to_string(),
                subject: f.subject.clone(),
                cost: if f.unpriced_skus.is_empty() {
                    money(f.monthly_cost_cents, f.currency.as_deref())
                } else {
                    format!(
                        "{} (no price for {})",
                        money(f.monthly_cost_cents, f.currency.as_deref()),
                        f.unpriced_skus.join(", ")
                    )
                },
                evidence: f.evidence.clone(),
            })
            .collect(),
        waste: report
            .licenses
            .monthly_waste_cents
            .iter()
            .map(|(currency, cents)| money(Some(*cents), Some(currency)))
            .collect(),
    };
    Ok(page.render()?)
}

/// A time as RFC 3339 to the second, in UTC: what the JSON form promises.
fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Text made safe inside SVG or HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const COLOURS: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
];
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// The least room left of the plot for the y axis's labels; more when a label is wider.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// How wide a character of an 11-pixel label is drawn, at most (digits and capitals); used to
/// give labels room rather than let them run into each other or off the chart.
const CHAR_WIDTH: f64 = 7.0;
/// A legend entry's colour box and the gap after its label.
const LEGEND_MARK: f64 = 14.0;
const LEGEND_GAP: f64 = 16.0;
const LEGEND_ROW: f64 = 18.0;

fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_WIDTH
}

/// Where each legend entry goes, as (x, row): in as many equal columns as the widest entry
/// allows, so that no label runs into the next; a label wider than the chart is cut to fit.
fn legend_layout(labels: &[String], left: f64) -> (Vec<(f64, usize)>, Vec<String>) {
    let room = WIDTH - left - RIGHT;
    let fitted: Vec<String> = labels
        .iter()
        .map(|l| {
            let most = ((room - LEGEND_MARK) / CHAR_WIDTH).floor().max(2.0) as usize;
            cut(l, most)
        })
        .collect();
    let widest = fitted
        .iter()
        .map(|l| LEGEND_MARK + text_width(l) + LEGEND_GAP)
        .fold(0.0_f64, f64::max);
    let columns = ((room / widest.max(1.0)).floor() as usize).clamp(1, 4);
    let column_width = room / columns as f64;
    let places = (0..fitted.len())
        .map(|i| (left + (i % columns) as f64 * column_width, i / columns))
        .collect();
    (places, fitted)
}

/// `text` in at most `most` characters, cut with an ellipsis.
fn cut(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        return text.to_string();
    }
    let mut short: String = text.chars().take(most.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// A line chart of the given series over time, values divided by `scale` and shown with
/// `unit`; none when there is nothing to draw.
fn line_chart(title: &str, series: &[&Trend], scale: f64, unit: &str) -> Option<String> {
    let points: Vec<(i64, f64)> = series
        .iter()
        .flat_map(|t| {
            t.points
                .iter()
                .map(|(at, v)| (at.timestamp(), *v as f64 / scale))
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let (mut start, mut end) = points
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (t, _)| {
            (lo.min(*t), hi.max(*t))
        });
    if start == end {
        start -= 43_200;
        end += 43_200;
    }
    let top = points
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    let label = |v: f64| {
        if scale == 1.0 {
            format!("{}{unit}", v.round() as i64)
        } else {
            format!("{v:.1}{unit}")
        }
    };
    let axis_label = label(top / 1.1);
    // The y axis's largest label ends 4 pixels left of the axis: the axis moves right as far
    // as the label needs, so that "4592.8 GB" is not cut to "592.8 GB" at the chart's edge.
    let left = LEFT.max(text_width(&axis_label) + 8.0);
    let x = |t: i64| left + (t - start) as f64 / (end - start) as f64 * (WIDTH - left - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - v / top * (HEIGHT - TOP - BOTTOM);
    let day = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let legend_labels: Vec<String> = series
        .iter()
        .map(|trend| {
            let last = trend
                .last
                .map_or(String::new(), |v| format!(": {}", label(v as f64 / scale)));
            format!("{}{last}", trend.label)
        })
        .collect();
    let (places, legend_labels) = legend_layout(&legend_labels, left);
    let legend_rows = places.last().map_or(0, |(_, row)| row + 1);
    let full_height = HEIGHT + LEGEND_ROW * legend_rows as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure><figcaption>{}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {full_height}" width="{WIDTH}" height="{full_height}" role="img" aria-label="{}">"#,
        escape(title),
        escape(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#9ca3af"/><line x1="{left}" y1="{TOP}" x2="{left}" y2="{}" stroke="#9ca3af"/>"##,
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM
    );
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#374151">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#374151">0</text>"##,
        left - 4.0,
        TOP + 10.0,
        escape(&axis_label),
        left - 4.0,
        HEIGHT - BOTTOM
    );
    let _ = write!(
        svg,
        r##"<text x="{left}" y="{}" font-size="11" fill="#374151">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#374151">{}</text>"##,
        HEIGHT - BOTTOM + 16.0,
        day(start),
        WIDTH - RIGHT,
        HEIGHT - BOTTOM + 16.0,
        day(end)
    );
    for (i, trend) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = trend
            .points
            .iter()
            .map(|(at, v)| format!("{:.1},{:.1}", x(at.timestamp()), y(*v as f64 / scale)))
            .collect();
        if path.len() == 1 {
            let _ = write!(
                svg,
                r#"<circle cx="{}" r="3" cy="{}" fill="{colour}"/>"#,
                path[0].split(',').next().unwrap_or("0"),
                path[0].split(',').nth(1).unwrap_or("0")
            );
        } else {
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
        }
        let (at, row) = places[i];
        let _ = write!(
            svg,
            r##"<rect x="{at}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}" font-size="11" fill="#111827">{}</text>"##,
            HEIGHT + row as f64 * LEGEND_ROW,
            at + LEGEND_MARK,
            HEIGHT + row as f64 * LEGEND_ROW + 9.0,
            escape(&legend_labels[i]),
        );
    }
    svg.push_str("</svg></figure>");
    Some(svg)
}

/// Bought and assigned seats per SKU, as paired horizontal bars. SKUs Microsoft gives away
/// (or priced at nothing) are left out: their placeholder seat counts (1,000,000 free Power BI
/// seats) would shrink every bought SKU's bars to nothing; the table lists them.
fn seats_chart(report: &WasteReport) -> String {
    let paid: Vec<&SeatCount> = report.seats.iter().filter(|s| !s.no_charge).collect();
    if paid.is_empty() {
        return String::new();
    }
    let most = paid
        .iter()
        .map(|s| s.bought.max(s.assigned))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let row = 30.0;
    let label_width = 230.0;
    let bar_room = WIDTH - label_width - 60.0;
    let height = row * paid.len() as f64 + 24.0;
    let mut svg = format!(
        r#"<figure><figcaption>Seats bought and assigned (SKUs given away left out)</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="Seats bought and assigned">"#
    );
    for (i, s) in paid.iter().enumerate() {
        let top = i as f64 * row;
        let bought = s.bought.max(0) as f64 / most * bar_room;
        let assigned = s.assigned.max(0) as f64 / most * bar_room;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#111827">{}</text><rect x="{label_width}" y="{}" width="{bought:.1}" height="11" fill="#93c5fd"/><rect x="{label_width}" y="{}" width="{assigned:.1}" height="11" fill="#2563eb"/><text x="{}" y="{}" font-size="11" fill="#374151">{} / {}</text>"##,
            label_width - 6.0,
            top + 16.0,
            escape(&cut(&s.name, ((label_width - 6.0) / CHAR_WIDTH) as usize)),
            top + 2.0,
            top + 14.0,
            label_width + bought.max(assigned) + 6.0,
            top + 16.0,
            s.assigned,
            s.bought
        );
    }
    let legend = row * paid.len() as f64 + 8.0;
    let _ = write!(
        svg,
        r##"<rect x="{label_width}" y="{legend}" width="10" height="10" fill="#93c5fd"/><text x="{}" y="{}" font-size="11">bought</text><rect x="{}" y="{legend}" width="10" height="10" fill="#2563eb"/><text x="{}" y="{}" font-size="11">assigned</text></svg></figure>"##,
        label_width + 14.0,
        legend + 9.0,
        label_width + 80.0,
        label_width + 94.0,
        legend + 9.0
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_chart_escapes_its_labels_and_draws_each_series() {
        let at = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 0, 0, 0).unwrap();
        let trend = Trend {
            name: "licenses.<X>.assigned".into(),
            label: "<script>".into(),
            first: Some(1),
            last: Some(3),
            change: 2,
            points: vec![(at(1), 1), (at(5), 3)],
        };
        let svg = line_chart("Seats & more", &[&trend], 1.0, "").unwrap();
        assert!(
            svg.contains("&lt;script&gt;") && !svg.contains("<script>"),
            "{svg}"
        );
        assert!(svg.contains("Seats &amp; more"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("2026-11-01") && svg.contains("2026-11-05"));
        assert!(line_chart("empty", &[], 1.0, "").is_none());
    }

    /// The x of the `text-anchor="end"` label holding `text`.
    fn end_anchored_x(svg: &str, text: &str) -> f64 {
        let at = svg.find(&format!(">{text}</text>")).expect(text);
        let start = svg[..at].rfind("<text x=\"").unwrap() + "<text x=\"".len();
        let x = &svg[start..];
        x[..x.find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn the_json_form_dates_itself_in_rfc_3339() {
        let report = Report {
            organization: "Contoso".into(),
            generated_at: Utc.with_ymd_and_hms(2026, 11, 30, 18, 53, 7).unwrap(),
            since: None,
            tenants: Vec::new(),
            licenses: WasteReport {
                seats: Vec::new(),
                findings: Vec::new(),
                notes: Vec::new(),
                monthly_waste_cents: BTreeMap::new(),
                unpriced_skus: Vec::new(),
            },
            software: SoftwareSection {
                products: 0,
                unmatched: 0,
                top: Vec::new(),
            },
        };
        let json = serde_json::to_value(&report).unwrap();
        let at = json["generated_at"].as_str().unwrap();
        assert_eq!(at, "2026-11-30T18:53:07Z");
        assert!(DateTime::parse_from_rfc3339(at).is_ok());
        let page = html(&report).unwrap();
        assert!(page.contains("made 2026-11-30 18:53 UTC"), "{page}");
    }

    #[test]
    fn the_y_axis_gives_its_widest_label_room() {
        let at = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 0, 0, 0).unwrap();
        let bytes = 4_592_800_000_000_i64;
        let trend = Trend {
            name: "mailboxes.storage_bytes".into(),
            label: "mailbox storage".into(),
            first: Some(bytes),
            last: Some(bytes),
            change: 0,
            points: vec![(at(1), bytes), (at(5), bytes)],
        };
        let svg = line_chart("Mailbox storage", &[&trend], 1e9, " GB").unwrap();
        let x = end_anchored_x(&svg, "4592.8 GB");
        assert!(x >= text_width("4592.8 GB"), "{x}: {svg}");
    }

    #[test]
    fn legend_labels_never_run_into_each_other() {
        let labels: Vec<String> = [
            "Microsoft 365 E3 (no Teams) assigned: 1234",
            "Office 365 E1 assigned: 12",
            "Microsoft Teams Premium Introductory Pricing assigned: 5",
            "Exchange Online (Plan 1) assigned: 40",
            "x",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect();
        let (places, fitted) = legend_layout(&labels, LEFT);
        assert_eq!(places.len(), labels.len());
        for (i, (x, row)) in places.iter().enumerate() {
            let end = x + LEGEND_MARK + text_width(&fitted[i]);
            assert!(end <= WIDTH - RIGHT + 0.1, "{i} ends at {end}");
            for (later, (next_x, next_row)) in places.iter().enumerate().skip(i + 1) {
                if next_row == row && next_x > x {
                    assert!(end < *next_x, "{i} runs into {later}: {places:?}");
                }
            }
        }
        // A label too wide for the chart is cut, not drawn past its edge.
        let (_, fitted) = legend_layout(&["y".repeat(200)], LEFT);
        assert!(fitted[0].ends_with('…'));
    }

    #[test]
    fn the_seats_chart_leaves_out_skus_given_away() {
        let seats = |part: &str, bought: i64, assigned: i64, no_charge: bool| SeatCount {
            organization: "Contoso".into(),
            tenant_id: "t1".into(),
            sku_part_number: part.into(),
            name: part.into(),
            bought,
            assigned,
            free: bought - assigned,
            no_charge,
            monthly_price_cents: None,
            currency: None,
        };
        let report = WasteReport {
            seats: vec![
                seats("POWER_BI_STANDARD", 1_000_000, 40, true),
                seats("SPE_E3", 25, 20, false),
            ],
            findings: Vec::new(),
            notes: Vec::new(),
            monthly_waste_cents: BTreeMap::new(),
            unpriced_skus: Vec::new(),
        };
        let svg = seats_chart(&report);
        assert!(!svg.contains("POWER_BI_STANDARD"), "{svg}");
        // Scaled to the bought SKU: its 25 seats fill the bars' room.
        let room = WIDTH - 230.0 - 60.0;
        assert!(svg.contains(&format!(r#"width="{room:.1}""#)), "{svg}");
    }
}
