//! `software`, `consolidate`, `licenses waste`, `trends` and `report`: what the inventory tells.
//! The rules are `domain`'s (software, waste, trends), the facts the store's; this reads
//! arguments and the admin's files (rule file, price list), and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use domain::TenantId;
use domain::software::{Product, across_tenants};
use domain::waste::{PriceList, WasteReport, format_cents};
use store::{Store, TenantRow};

use crate::UsageError;
use crate::commands::open_store;

pub mod export;

/// The environment variable naming the admin's price list (a CSV of SKU and monthly price).
pub const PRICES_ENV: &str = "M365SYNC_PRICES";

#[derive(Args)]
pub struct SoftwareArgs {
    /// Only this organisation's tenants (its name, or a tenant's id or name).
    #[arg(long, value_name = "ORG")]
    organization: Option<String>,
    /// One product in detail: its versions, tenants and the raw names it was detected under
    /// (its name, any case; an unmatched name as listed).
    #[arg(long, value_name = "NAME")]
    product: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ConsolidateArgs {
    /// Only this organisation's tenants (its name, or a tenant's id or name).
    #[arg(long, value_name = "ORG")]
    organization: Option<String>,
    /// Your own software rule file, read before the bundled rules so that its rules win.
    #[arg(long, value_name = "FILE", env = "M365SYNC_SOFTWARE_RULES")]
    rules: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum LicensesCommand {
    /// Licences paid for and not used: free seats, disabled and guest accounts, shared, room
    /// and equipment mailboxes, inactive users, SKUs that overlap, trials and warnings.
    Waste(WasteArgs),
}

#[derive(Args)]
pub struct WasteArgs {
    /// Only this organisation's tenants (its name, or a tenant's id or name).
    #[arg(long, value_name = "ORG")]
    organization: Option<String>,
    /// A CSV of monthly prices per seat: `sku,monthly_price,currency`, the SKU by part number
    /// or id; each finding then says what it costs.
    #[arg(long, value_name = "FILE", env = PRICES_ENV)]
    prices: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TrendsArgs {
    /// The organisation (its name, or a tenant's id or name).
    organization: String,
    /// From this day on (2026-09-01); the tenant as it stood then is the starting point.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Json,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The organisation (its name, or a tenant's id or name).
    organization: String,
    /// HTML (a page readable offline, with its charts) or JSON (the same facts).
    #[arg(long, value_enum, default_value = "html")]
    format: ReportFormat,
    /// The period the report covers starts on this day (2026-09-01); all snapshots otherwise.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Prices for the licence findings, as for `licenses waste`.
    #[arg(long, value_name = "FILE", env = PRICES_ENV)]
    prices: Option<PathBuf>,
    /// Write the report to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The tenants an `ORG` argument names: an organisation's name (any case), or one tenant's
/// id or display name. Nothing matching is a usage error that says what is there.
pub(crate) async fn tenants_of(store: &Store, wanted: &str) -> anyhow::Result<Vec<TenantRow>> {
    let wanted = wanted.trim();
    let all = store.tenants(None).await?;
    let by_org: Vec<TenantRow> = all
        .iter()
        .filter(|t| {
            t.organization
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(wanted))
        })
        .cloned()
        .collect();
    if !by_org.is_empty() {
        return Ok(by_org);
    }
    let by_tenant: Vec<TenantRow> = all
        .iter()
        .filter(|t| {
            t.tenant_id.eq_ignore_ascii_case(wanted)
                || t.display_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        })
        .cloned()
        .collect();
    if by_tenant.is_empty() {
        let known: Vec<String> = all
            .iter()
            .filter_map(|t| t.organization.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        return Err(UsageError(format!(
            "no organisation or tenant is named '{wanted}'; {}",
            if known.is_empty() {
                "none is synced yet: run `m365sync sync CONNECTION` first".to_string()
            } else {
                format!("the organisations are: {}", known.join(", "))
            }
        ))
        .into());
    }
    Ok(by_tenant)
}

fn tenant_id(row: &TenantRow) -> anyhow::Result<TenantId> {
    TenantId::parse(&row.tenant_id)
        .map_err(|e| anyhow::anyhow!("the store holds a bad tenant id: {e}"))
}

/// A `--since` day, as the start of that day in UTC.
pub(crate) fn since_day(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, UsageError> {
    raw.map(|raw| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .ok_or_else(|| {
                UsageError(format!(
                    "--since '{raw}' is not a day; give one such as 2026-09-01"
                ))
            })
    })
    .transpose()
}

/// The admin's price list, or none.
pub(crate) fn price_list(path: Option<&Path>) -> anyhow::Result<PriceList> {
    let Some(path) = path else {
        return Ok(PriceList::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "the price list {} cannot be read: {e}; give a CSV file of `sku,monthly_price,currency` (--prices FILE or {PRICES_ENV})",
            path.display()
        ))
    })?;
    Ok(PriceList::parse(&path.display().to_string(), &text)
        .map_err(|e| UsageError(e.to_string()))?)
}

pub async fn software(db: &str, args: SoftwareArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let mut stored = Vec::new();
    match &args.organization {
        Some(org) => {
            for tenant in tenants_of(&store, org).await? {
                stored.extend(store.software_products(Some(&tenant_id(&tenant)?)).await?);
            }
        }
        None => stored = store.software_products(None).await?,
    }
    let products = across_tenants(stored);
    if let Some(wanted) = &args.product {
        let found: Vec<&Product> = products
            .iter()
            .filter(|p| p.product.eq_ignore_ascii_case(wanted.trim()))
            .collect();
        if found.is_empty() {
            return Err(UsageError(format!(
                "no product is named '{wanted}'; `m365sync software` lists them"
            ))
            .into());
        }
        if args.json {
            out!("{}", serde_json::to_string_pretty(&found)?)?;
        } else {
            for p in found {
                print_product(p)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        out!("{}", serde_json::to_string_pretty(&products)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if products.is_empty() {
        out!(
            "No software consolidated yet: sync a connection with the detected_apps dataset, or run `m365sync consolidate`."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<40} {:<28} {:>7} {:>6} {:>8}  {:<18} {:<18}",
        "PRODUCT",
        "PUBLISHER",
        "DEVICES",
        "USERS",
        "VERSIONS",
        "LATEST",
        "OLDEST"
    )?;
    for p in products.iter().filter(|p| p.matched) {
        out!(
            "{:<40} {:<28} {:>7} {:>6} {:>8}  {:<18} {:<18}",
            p.product,
            p.publisher.as_deref().unwrap_or("-"),
            p.devices,
            p.users,
            p.versions.len(),
            p.latest_version.as_deref().unwrap_or("-"),
            p.oldest_version.as_deref().unwrap_or("-")
        )?;
    }
    let residue: Vec<&Product> = products.iter().filter(|p| !p.matched).collect();
    if !residue.is_empty() {
        out!("")?;
        out!(
            "Unmatched: no rule names these ({}); add rules for them with `consolidate --rules FILE`:",
            residue.len()
        )?;
        for p in residue {
            let from = match &p.reason {
                Some(reason) => reason.clone(),
                None => format!("from {}", p.raw_names.join(" | ")),
            };
            out!("  {:<38} {:>5} devices  {from}", p.product, p.devices)?;
        }
    }
    for c in store.consolidations().await? {
        note!(
            "{} ({}): {} detected apps, consolidated {} by {}",
            c.organization,
            c.tenant_id,
            c.detected_apps,
            sync::day_of(c.consolidated_at / 1000),
            c.rules_revision
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_product(p: &Product) -> std::io::Result<()> {
    out!(
        "{} ({}){}",
        p.product,
        p.publisher.as_deref().unwrap_or("publisher unknown"),
        if p.matched { "" } else { ", unmatched" }
    )?;
    out!("  {} devices, {} users", p.devices, p.users)?;
    out!("  versions, newest first:")?;
    for v in &p.versions {
        out!(
            "    {:<24} {:>6} devices {:>6} users {:>3} tenants",
            v.version,
            v.devices,
            v.users,
            v.tenants
        )?;
    }
    out!("  tenants:")?;
    for t in &p.tenants {
        out!(
            "    {:<30} {:>6} devices {:>6} users  {} .. {}",
            t.organization,
            t.devices,
            t.users,
            t.oldest_version.as_deref().unwrap_or("-"),
            t.latest_version.as_deref().unwrap_or("-")
        )?;
    }
    out!("  detected as:")?;
    for name in &p.raw_names {
        out!("    {name}")?;
    }
    Ok(())
}

pub async fn consolidate(db: &str, args: ConsolidateArgs) -> anyhow::Result<ExitCode> {
    let rules = sync::insight::software_rules(args.rules.as_deref())
        .map_err(|e| UsageError(e.to_string()))?;
    let store = open_store(db).await?;
    let tenants: Vec<TenantRow> = match &args.organization {
        Some(org) => tenants_of(&store, org).await?,
        None => store.tenants(None).await?,
    };
    let mut done = 0;
    for tenant in tenants {
        let Some(organization_id) = tenant.organization_id else {
            continue;
        };
        let id = tenant_id(&tenant)?;
        let began = Instant::now();
        let c = sync::insight::consolidate_tenant(&store, organization_id, &id, &rules).await?;
        done += 1;
        out!(
            "{}: {} detected apps into {} products, {} unmatched, in {} ms ({} ms for the rules)",
            tenant.organization.as_deref().unwrap_or(tenant.label()),
            c.consolidation.detected_apps,
            c.consolidation.matched().count(),
            c.consolidation.residue().count(),
            began.elapsed().as_millis(),
            c.rules_took.as_millis()
        )?;
    }
    if done == 0 {
        out!("No tenant filed under an organisation to consolidate.")?;
    } else {
        out!("Rules: {}", rules.revision())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn licenses(db: &str, command: LicensesCommand) -> anyhow::Result<ExitCode> {
    let LicensesCommand::Waste(args) = command;
    let prices = price_list(args.prices.as_deref())?;
    let store = open_store(db).await?;
    let report = waste_report(&store, args.organization.as_deref(), &prices).await?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_waste(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// The waste report of one organisation's tenants, or of all.
pub(crate) async fn waste_report(
    store: &Store,
    organization: Option<&str>,
    prices: &PriceList,
) -> anyhow::Result<WasteReport> {
    match organization {
        Some(org) => {
            let tenants = tenants_of(store, org).await?;
            sync::report::waste_of(store, &tenants, prices, Utc::now())
                .await
                .map_err(|e| match e {
                    sync::report::ReportError::Waste(e) => waste_error(e),
                    other => anyhow::Error::new(other),
                })
        }
        None => {
            let (skus, users) = store.license_facts(None).await?;
            waste_findings(&skus, &users, prices)
        }
    }
}

/// The findings over these facts; a price list that prices one SKU twice is the admin's
/// input to fix (a usage error), a seat count too large to reckon with is not.
pub(crate) fn waste_findings(
    skus: &[domain::waste::Sku],
    users: &[domain::waste::LicensedUser],
    prices: &PriceList,
) -> anyhow::Result<WasteReport> {
    domain::waste::findings(skus, users, prices, Utc::now()).map_err(waste_error)
}

/// A price list that prices one SKU twice, or mixes currencies, is the admin's input to fix (a
/// usage error); a seat count too large to reckon with is not.
fn waste_error(error: domain::waste::WasteError) -> anyhow::Error {
    match error {
        domain::waste::WasteError::Price(e) => UsageError(e.to_string()).into(),
        other => anyhow::Error::new(other),
    }
}

fn money(cents: Option<i64>, currency: Option<&str>) -> String {
    match cents {
        Some(c) => format!("{} {}", format_cents(c), currency.unwrap_or_default())
            .trim()
            .to_string(),
        None => "-".into(),
    }
}

fn print_waste(report: &WasteReport) -> std::io::Result<()> {
    if report.seats.is_empty() {
        out!("No licences synced yet: sync a connection with the licenses and users datasets.")?;
        return Ok(());
    }
    out!(
        "{:<28} {:<34} {:>7} {:>8} {:>6} {:>12}",
        "ORGANIZATION",
        "SKU",
        "BOUGHT",
        "ASSIGNED",
        "FREE",
        "PRICE/MONTH"
    )?;
    for s in &report.seats {
        out!(
            "{:<28} {:<34} {:>7} {:>8} {:>6} {:>12}",
            s.organization,
            s.name,
            s.bought,
            s.assigned,
            s.free,
            money(s.monthly_price_cents, s.currency.as_deref())
        )?;
    }
    out!("")?;
    if report.findings.is_empty() {
        out!("No waste found.")?;
    }
    let mut kind = None;
    for f in &report.findings {
        if kind != Some(f.kind) {
            kind = Some(f.kind);
            out!("{}:", f.kind)?;
        }
        let unpriced = if f.unpriced_skus.is_empty() {
            String::new()
        } else {
            format!(" (no price for {})", f.unpriced_skus.join(", "))
        };
        out!(
            "  {:<24} {:<38} {:>12}  {}{unpriced}",
            f.organization,
            f.subject,
            money(f.monthly_cost_cents, f.currency.as_deref()),
            f.evidence
        )?;
    }
    for (currency, cents) in &report.monthly_waste_cents {
        out!("")?;
        let left_out = if report.unpriced_skus.is_empty() {
            String::new()
        } else {
            format!(
                ", leaving out {}, which have no price",
                report.unpriced_skus.join(", ")
            )
        };
        out!(
            "Wasted each month: {}{left_out}",
            money(Some(*cents), Some(currency))
        )?;
    }
    for n in &report.notes {
        note!("note: {n}");
    }
    Ok(())
}

pub async fn trends(db: &str, args: TrendsArgs) -> anyhow::Result<ExitCode> {
    let since = since_day(args.since.as_deref())?;
    let store = open_store(db).await?;
    let mut all = Vec::new();
    for tenant in tenants_of(&store, &args.organization).await? {
        let snapshots = store.snapshots(&tenant_id(&tenant)?).await?;
        all.push((
            tenant,
            snapshots.len(),
            domain::trends::trends(&snapshots, since),
            domain::trends::nothing_to_show(&snapshots, since, Utc::now()),
        ));
    }
    if args.json {
        let json: Vec<serde_json::Value> = all
            .iter()
            .map(|(t, count, trends, note)| {
                serde_json::json!({
                    "organization": t.organization, "tenant_id": t.tenant_id, "tenant_name": t.display_name,
                    "snapshots": count, "trends": trends, "note": note,
                })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (tenant, count, trends, note) in all {
        out!(
            "{} ({}), {} snapshots",
            tenant.label(),
            tenant.tenant_id,
            count
        )?;
        if let Some(note) = note {
            out!("  {note}")?;
            continue;
        }
        let start = trends
            .iter()
            .filter_map(|t| t.points.first())
            .map(|p| p.0)
            .min();
        let end = trends
            .iter()
            .filter_map(|t| t.points.last())
            .map(|p| p.0)
            .max();
        if let (Some(start), Some(end)) = (start, end) {
            out!(
                "  from {} to {}",
                start.format("%Y-%m-%d %H:%M"),
                end.format("%Y-%m-%d %H:%M")
            )?;
        }
        out!(
            "  {:<44} {:>14} {:>14} {:>12}",
            "FIGURE",
            "FIRST",
            "LAST",
            "CHANGE"
        )?;
        for t in trends {
            let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
            out!(
                "  {:<44} {:>14} {:>14} {:>+12}",
                t.label,
                show(t.first),
                show(t.last),
                t.change
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn report(db: &str, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let since = since_day(args.since.as_deref())?;
    let prices = price_list(args.prices.as_deref())?;
    let store = open_store(db).await?;
    let tenants = tenants_of(&store, &args.organization).await?;
    let built = sync::report::build(
        &store,
        &args.organization,
        &tenants,
        since,
        &prices,
        Utc::now(),
    )
    .await?;
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&built)? + "\n",
        ReportFormat::Html => sync::report::html(&built)?,
    };
    match &args.output {
        Some(path) => {
            // Never over an existing file: a mistyped name could be the store or its key.
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .and_then(|mut file| {
                    use std::io::Write as _;
                    file.write_all(text.as_bytes())
                });
            match written {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(UsageError(format!(
                        "{} already exists; a report is never written over a file (it could be the store or its key): choose a new name, or remove the old report first",
                        path.display()
                    ))
                    .into());
                }
                Err(e) => {
                    anyhow::bail!("the report cannot be written to {}: {e}", path.display())
                }
            }
            out!(
                "Wrote the report of {} to {}",
                built.organization,
                path.display()
            )?;
        }
        None => {
            use std::io::Write as _;
            crate::output::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What consolidating one tenant's software costs, for `bench`.
#[derive(serde::Serialize)]
pub struct ConsolidationCost {
    pub seconds: f64,
    /// The rules alone, without reading and writing the store.
    pub rules_seconds: f64,
    pub detected_apps: u64,
    pub devices: usize,
    pub products: usize,
    pub unmatched: usize,
}

impl std::fmt::Display for ConsolidationCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} s   ({:.3} s for the rules; {} detected apps on {} devices into {} products, {} unmatched)",
            self.seconds,
            self.rules_seconds,
            self.detected_apps,
            self.devices,
            self.products,
            self.unmatched
        )
    }
}

/// How long reading an admin's rule file takes as it grows: one figure per size, so that the
/// bench shows whether loading stays linear in the number of rules.
#[derive(serde::Serialize)]
pub struct RuleLoadingCost {
    pub rules: usize,
    pub seconds: f64,
    pub microseconds_per_rule: f64,
}

/// Reads generated rule files of `sizes` products (two patterns and a publisher each, as an
/// admin's file of in-house apps would have), timing each.
pub fn rule_loading_cost(sizes: &[usize]) -> anyhow::Result<Vec<RuleLoadingCost>> {
    use std::fmt::Write as _;
    let mut costs = Vec::new();
    for &rules in sizes {
        let mut text = String::from("format = 1\nrevision = \"bench\"\n");
        for i in 0..rules {
            writeln!(
                text,
                "\n[[product]]\nname = \"In-house tool {i}\"\npublisher = \"Contoso Apps {i}\"\nmatch = [\"in-house tool {i}\", \"contoso tool {i} *\"]"
            )?;
        }
        let started = std::time::Instant::now();
        domain::software::RuleSet::parse("bench rules", &text)?;
        let seconds = started.elapsed().as_secs_f64();
        costs.push(RuleLoadingCost {
            rules,
            seconds,
            microseconds_per_rule: seconds * 1e6 / rules.max(1) as f64,
        });
    }
    Ok(costs)
}

/// Consolidates a synced tenant's software again with the bundled rules, timing it.
pub async fn consolidation_cost(store: &Store, tenant: &str) -> anyhow::Result<ConsolidationCost> {
    let id = TenantId::parse(tenant)?;
    let organization_id = store
        .tenant(tenant)
        .await?
        .and_then(|t| t.organization_id)
        .ok_or_else(|| anyhow::anyhow!("the bench tenant is filed under no organisation"))?;
    let devices = store.device_users(&id).await?.len();
    let c = sync::insight::consolidate_tenant(
        store,
        organization_id,
        &id,
        &domain::software::RuleSet::bundled(),
    )
    .await?;
    Ok(ConsolidationCost {
        seconds: c.took.as_secs_f64(),
        rules_seconds: c.rules_took.as_secs_f64(),
        detected_apps: c.consolidation.detected_apps,
        devices,
        products: c.consolidation.matched().count(),
        unmatched: c.consolidation.residue().count(),
    })
}
