//! What an organisation's inventory tells, as pages: its software consolidated into products
//! (versions and devices), its licence waste, its trends drawn as charts, and the report
//! `m365sync report` writes, to download. The rules and the report are `domain`'s and `sync`'s;
//! this only lays them out.

use super::PagePath as Path;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use domain::software::across_tenants;
use domain::waste::{PriceList, format_cents};
use store::{OrganizationRow, TenantRow};

use super::format::{Cell, Table, TablePage};
use super::{UiState, Viewer, charts, error_page, store_failure};

/// The tenants filed under an organisation.
async fn tenants_of(ui: &UiState, org: &OrganizationRow) -> store::Result<Vec<TenantRow>> {
    Ok(ui
        .store
        .tenants(None)
        .await?
        .into_iter()
        .filter(|t| t.organization_id == Some(org.id))
        .collect())
}

fn tenant_ids(tenants: &[TenantRow]) -> Vec<domain::TenantId> {
    tenants
        .iter()
        .filter_map(|t| domain::TenantId::parse(&t.tenant_id).ok())
        .collect()
}

/// Versions shown in a product's line; the rest are counted.
const VERSIONS_SHOWN: usize = 6;

/// Detected software consolidated into products: devices, users and versions of each, and
/// what no rule names.
pub(crate) async fn software(
    ui: &UiState,
    org: &OrganizationRow,
    body: &mut TablePage,
) -> store::Result<()> {
    let mut stored = Vec::new();
    for id in tenant_ids(&tenants_of(ui, org).await?) {
        stored.extend(ui.store.software_products(Some(&id)).await?);
    }
    let products = across_tenants(stored);
    let mut table = Table::new(
        "software-products",
        &[
            "Product",
            "Publisher",
            "#Devices",
            "#Users",
            "Versions (devices)",
            "Latest",
            "Oldest",
        ],
        "No software consolidated yet: sync with the detected_apps dataset (or run `m365sync consolidate`).",
    )
    .caption("Products");
    for p in products.iter().filter(|p| p.matched) {
        let mut versions: Vec<String> = p
            .versions
            .iter()
            .take(VERSIONS_SHOWN)
            .map(|v| format!("{} ({})", v.version, v.devices))
            .collect();
        if p.versions.len() > VERSIONS_SHOWN {
            versions.push(format!("and {} more", p.versions.len() - VERSIONS_SHOWN));
        }
        let mut versions = Cell::text(versions.join(", "));
        if p.versions.len() > 1 {
            versions = versions.badge(format!("{} versions", p.versions.len()), "warn");
        }
        table.row(vec![
            Cell::text(&p.product),
            Cell::text(p.publisher.clone().unwrap_or_default()),
            Cell::num(p.devices),
            Cell::num(p.users),
            versions,
            Cell::text(p.latest_version.clone().unwrap_or_default()),
            Cell::text(p.oldest_version.clone().unwrap_or_default()),
        ]);
    }
    let mut residue = Table::new(
        "software-unmatched",
        &["Detected as", "#Devices"],
        "Every detected app is named by a rule.",
    )
    .caption("Not named by any rule (add a rule with `m365sync consolidate --rules FILE`)");
    for p in products.iter().filter(|p| !p.matched) {
        residue.row(vec![
            Cell::text(p.raw_names.join(" | ")),
            Cell::num(p.devices),
        ]);
    }
    body.intro = Some(format!(
        "{} products on this organisation's devices, {} detected names not matched.",
        products.iter().filter(|p| p.matched).count(),
        products.iter().filter(|p| !p.matched).count()
    ));
    body.tables.push(table);
    body.tables.push(residue);
    Ok(())
}

fn money(cents: Option<i64>, currency: Option<&str>) -> String {
    cents.map_or_else(
        || "—".to_string(),
        |c| {
            format!("{} {}", format_cents(c), currency.unwrap_or_default())
                .trim()
                .to_string()
        },
    )
}

/// Licences paid for and not used, as `m365sync licenses waste` finds them.
pub(crate) async fn waste(
    ui: &UiState,
    org: &OrganizationRow,
    body: &mut TablePage,
) -> Result<(), sync::report::ReportError> {
    let tenants = tenants_of(ui, org).await?;
    // Pages have no price list: costs are what `licenses waste --prices` adds.
    let report =
        sync::report::waste_of(&ui.store, &tenants, &PriceList::default(), Utc::now()).await?;
    let mut seats = Table::new(
        "waste-seats",
        &["Licence", "SKU", "#Bought", "#Assigned", "#Free"],
        "No licence synced yet: sync with the licenses and users datasets.",
    )
    .caption("Seats");
    for s in &report.seats {
        let mut free = Cell::num(s.free);
        if s.free > 0 {
            free = free.badge("unused", "warn");
        }
        seats.row(vec![
            Cell::text(&s.name),
            Cell::text(&s.sku_part_number),
            Cell::num(s.bought),
            Cell::num(s.assigned),
            free,
        ]);
    }
    let mut findings = Table::new(
        "waste-findings",
        &[
            "Finding",
            "Who or what",
            "Licences",
            "Evidence",
            "Cost a month",
        ],
        "No waste found.",
    )
    .caption("Findings");
    for f in &report.findings {
        findings.row(vec![
            Cell::text(f.kind.label()),
            Cell::text(&f.subject),
            Cell::text(f.skus.join(", ")),
            Cell::text(&f.evidence),
            Cell::text(money(f.monthly_cost_cents, f.currency.as_deref())),
        ]);
    }
    let mut notes = report.notes.clone();
    notes.push(
        "Costs are shown by `m365sync licenses waste --prices FILE` and in the report it writes."
            .into(),
    );
    body.intro = Some(format!(
        "{} finding(s). {}",
        report.findings.len(),
        notes.join(" ")
    ));
    body.tables.push(seats);
    body.tables.push(findings);
    Ok(())
}

/// Each tenant's figures over its snapshots: charts, and the first and last value of each.
pub(crate) async fn trends(
    ui: &UiState,
    org: &OrganizationRow,
    body: &mut TablePage,
) -> store::Result<()> {
    let tenants = tenants_of(ui, org).await?;
    let mut drawn = Vec::new();
    for tenant in &tenants {
        let Ok(id) = domain::TenantId::parse(&tenant.tenant_id) else {
            continue;
        };
        let snapshots = ui.store.snapshots(&id).await?;
        let trends = domain::trends::trends(&snapshots, None);
        drawn.extend(charts::trends(&trends));
        let mut table = Table::new(
            &format!("trends-{}", tenant.tenant_id),
            &["Figure", "#First", "#Last", "#Change"],
            "No snapshot yet: one is kept after each successful sync.",
        )
        .caption(format!(
            "{} ({} snapshot(s))",
            tenant.label(),
            snapshots.len()
        ));
        let show = |v: Option<i64>| v.map_or("—".to_string(), |v| v.to_string());
        for t in &trends {
            table.row(vec![
                Cell::text(&t.label),
                Cell::num(show(t.first)),
                Cell::num(show(t.last)),
                Cell::num(format!("{:+}", t.change)),
            ]);
        }
        body.tables.push(table);
    }
    if !drawn.is_empty() {
        body.chart = Some(drawn.join("\n"));
    }
    body.intro = Some(
        "How the tenant changed from one sync to the next. The report (the last tab) has the same charts in a file to keep or send."
            .into(),
    );
    Ok(())
}

/// `GET /organizations/{id}/report.html`: the report `m365sync report ORG` writes, as a file.
pub(crate) async fn report(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return super::not_found(&viewer, "organisation");
    };
    let org = match ui.store.organization(id).await {
        Ok(Some(org)) => org,
        Ok(None) => return super::not_found(&viewer, "organisation"),
        Err(e) => return store_failure(&viewer, e),
    };
    let tenants = match tenants_of(&ui, &org).await {
        Ok(t) => t,
        Err(e) => return store_failure(&viewer, e),
    };
    if tenants.is_empty() {
        return error_page(
            Some(&viewer),
            StatusCode::CONFLICT,
            super::or_on_the_server(
                &format!(
                    "{} is not linked to a tenant, so there is nothing to report. Link one to it under Tenants first",
                    org.name
                ),
                &format!("m365sync match TENANT --organization {}", org.id),
            ),
        );
    }
    let now = Utc::now();
    let built = sync::report::build(
        &ui.store,
        &org.name,
        &tenants,
        None,
        &PriceList::default(),
        now,
    )
    .await;
    let html = match built.and_then(|r| sync::report::html(&r)) {
        Ok(html) => html,
        Err(e) => {
            tracing::error!("making the report of organisation {}: {e}", org.id);
            return error_page(
                Some(&viewer),
                StatusCode::INTERNAL_SERVER_ERROR,
                super::or_on_the_server(
                    "The report could not be made; the server's log says why",
                    &format!("m365sync report {}", super::shell_word(&org.name)),
                ),
            );
        }
    };
    let part = file_name_part(&org.name);
    let day = now.format("%Y-%m-%d");
    // Browsers that read `filename*` keep the name's own letters ("göteborg"); the plain
    // `filename` is for the others, spelt in ASCII ("goteborg").
    let disposition = format!(
        "attachment; filename=\"report-{}-{day}.html\"; filename*=UTF-8''{}",
        ascii_file_name_part(&part),
        percent_encoded(&format!("report-{part}-{day}.html"))
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        html,
    )
        .into_response()
}

/// The most characters of an organisation's name a report's file name keeps: enough to know
/// it by, and a header far below what servers and browsers take (a name stored before names
/// were limited may be of any length).
const FILE_NAME_PART_CHARS: usize = 60;

/// An organisation's name as a part of a file name: letters (of any script), digits and
/// dashes only, so that it holds no quote, slash or dot to escape the name with, and at most
/// [`FILE_NAME_PART_CHARS`] of them.
fn file_name_part(name: &str) -> String {
    let mut part = String::new();
    for c in name.chars() {
        if part.chars().count() >= FILE_NAME_PART_CHARS {
            break;
        }
        if c.is_alphanumeric() {
            part.extend(c.to_lowercase());
        } else if !part.ends_with('-') {
            part.push('-');
        }
    }
    let part = part.trim_matches('-').to_string();
    if part.is_empty() {
        "organization".into()
    } else {
        part
    }
}

/// A file name part in ASCII: Latin letters lose their accents (ö → o, ß → ss); a letter with
/// no ASCII spelling becomes a dash.
fn ascii_file_name_part(part: &str) -> String {
    const LATIN: &[(&str, &str)] = &[
        ("àáâãäåāăą", "a"),
        ("æ", "ae"),
        ("çćĉċč", "c"),
        ("ďđð", "d"),
        ("èéêëēĕėęě", "e"),
        ("ĝğġģ", "g"),
        ("ĥħ", "h"),
        ("ìíîïĩīĭįı", "i"),
        ("ĵ", "j"),
        ("ķ", "k"),
        ("ĺļľŀł", "l"),
        ("ñńņňŉ", "n"),
        ("òóôõöøōŏő", "o"),
        ("œ", "oe"),
        ("ŕŗř", "r"),
        ("śŝşšș", "s"),
        ("ß", "ss"),
        ("ţťŧț", "t"),
        ("þ", "th"),
        ("ùúûüũūŭůűų", "u"),
        ("ŵ", "w"),
        ("ýÿŷ", "y"),
        ("źżž", "z"),
    ];
    let mut ascii = String::new();
    for c in part.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else if let Some((_, latin)) = LATIN.iter().find(|(from, _)| from.contains(c)) {
            ascii.push_str(latin);
        } else if !ascii.ends_with('-') {
            ascii.push('-');
        }
    }
    let ascii = ascii.trim_matches('-').to_string();
    if ascii.is_empty() {
        "organization".into()
    } else {
        ascii
    }
}

/// A file name as RFC 5987 writes it in `filename*`: ASCII letters, digits, `-` and `.` as
/// they are, every other byte as %XX.
fn percent_encoded(name: &str) -> String {
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.' {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::{ascii_file_name_part, file_name_part, percent_encoded};

    #[test]
    fn a_report_file_name_holds_no_quote_or_path() {
        assert_eq!(file_name_part("Contoso Ltd."), "contoso-ltd");
        assert_eq!(file_name_part("\"../évil\";x"), "évil-x");
        assert_eq!(file_name_part("\"/.;"), "organization");
    }

    #[test]
    fn a_report_file_name_keeps_or_spells_out_the_names_letters() {
        assert_eq!(file_name_part("Göteborg Ärende AB"), "göteborg-ärende-ab");
        assert_eq!(
            ascii_file_name_part("göteborg-ärende-ab"),
            "goteborg-arende-ab"
        );
        assert_eq!(ascii_file_name_part("straße"), "strasse");
        assert_eq!(ascii_file_name_part("東京"), "organization");
        assert_eq!(percent_encoded("report-ö.html"), "report-%C3%B6.html");
    }
}
