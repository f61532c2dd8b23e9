//! Licence hygiene: where a tenant pays for licences nobody uses. Seats bought and never
//! assigned, licences held by disabled accounts, guests, shared, room and equipment mailboxes,
//! users with no sign-in and no activity for 30 or 90 days, two SKUs giving one user the same
//! service, and subscriptions in trial or in a warning state. Each finding names the user or
//! SKU, the evidence, and what it costs a month when the admin gave a price list (a CSV of SKU
//! and monthly price, read here with errors that name the row).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A SKU of a tenant, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    pub organization: String,
    pub tenant_id: String,
    pub sku_id: String,
    pub sku_part_number: String,
    /// The product name, or the part number where the catalogue does not know it.
    pub name: String,
    /// `Enabled`, `Warning`, `Suspended`, `LockedOut`, …
    pub capability_status: String,
    pub enabled_units: i64,
    pub consumed_units: i64,
    pub warning_units: i64,
    pub suspended_units: i64,
    pub service_plans: Vec<String>,
}

/// A user holding at least one licence, with what is known of their activity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LicensedUser {
    pub organization: String,
    pub tenant_id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    /// The mailbox's recipient type (`user`, `shared`, `room`, `equipment`) where the mailbox
    /// report listed one.
    pub mailbox_kind: Option<String>,
    /// The latest sign-in of any kind, where sign-in activity was synced for the tenant.
    pub last_sign_in: Option<DateTime<Utc>>,
    /// The latest activity in any app, where the usage reports were synced for the tenant.
    pub last_activity: Option<DateTime<Utc>>,
    /// Whether the tenant's sign-in activity, and its usage, are in the store at all: without
    /// them "no sign-in" proves nothing.
    pub sign_ins_known: bool,
    pub usage_known: bool,
    /// The SKU ids assigned.
    pub sku_ids: Vec<String>,
}

/// A monthly price per SKU, from the admin's CSV.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceList {
    /// Keyed by upper-case part number and by lower-case SKU id: cents a month, and currency.
    prices: HashMap<String, (i64, String)>,
}

/// A price list that cannot be read, naming the file and the row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}, row {row}: {problem}. {fix}")]
pub struct PriceError {
    pub file: String,
    /// The 1-based line of the file (the header is row 1).
    pub row: u64,
    pub problem: String,
    pub fix: String,
}

const PRICE_FIX: &str = "Write a header `sku,monthly_price,currency` and one row per SKU: its part number (ENTERPRISEPACK) or SKU id, the price per seat and month such as 23.10, and an optional currency code";

impl PriceList {
    /// Reads `sku,monthly_price[,currency]`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, PriceError> {
        let error = |row: u64, problem: String, fix: &str| PriceError {
            file: file.to_string(),
            row,
            problem,
            fix: fix.to_string(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| error(1, format!("the header cannot be read: {e}"), PRICE_FIX))?
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let (Some(sku_at), Some(price_at)) = (column("sku"), column("monthly_price")) else {
            return Err(error(
                1,
                format!("the header is '{}'", headers.join(",")),
                PRICE_FIX,
            ));
        };
        let currency_at = column("currency");
        let mut prices = HashMap::new();
        for (index, record) in reader.records().enumerate() {
            let row =
                record
                    .as_ref()
                    .ok()
                    .and_then(|r| r.position())
                    .map_or(index as u64 + 2, |p| {
                        // csv counts a blank line before a record as neither a line nor the
                        // record's start: count from the record's first character instead.
                        let mut at = (p.byte() as usize).min(text.len());
                        at += text[at..].len() - text[at..].trim_start_matches(['\r', '\n']).len();
                        text[..at].matches('\n').count() as u64 + 1
                    });
            let mut record =
                record.map_err(|e| error(row, format!("cannot be read: {e}"), PRICE_FIX))?;
            // Trimmed here rather than by the reader, which would drop the record's position.
            record.trim();
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() > headers.len() {
                return Err(error(
                    row,
                    format!(
                        "{} fields where the header has {}",
                        record.len(),
                        headers.len()
                    ),
                    "Write prices with a decimal point (23.10), not a comma, or quote the field",
                ));
            }
            let sku = record.get(sku_at).unwrap_or_default();
            if sku.is_empty() {
                return Err(error(row, "the SKU is empty".into(), PRICE_FIX));
            }
            let raw = record.get(price_at).unwrap_or_default();
            let cents = parse_cents(raw).ok_or_else(|| {
                error(
                    row,
                    format!("'{raw}' for {sku} is not a price"),
                    "Write the monthly price per seat as a number with at most two decimals, such as 23.10, without a currency sign",
                )
            })?;
            let currency = currency_at
                .and_then(|at| record.get(at))
                .filter(|c| !c.is_empty())
                .unwrap_or("")
                .to_ascii_uppercase();
            let key = price_key(sku);
            if prices.insert(key, (cents, currency)).is_some() {
                return Err(error(
                    row,
                    format!("{sku} is priced twice"),
                    "Keep one row per SKU",
                ));
            }
        }
        Ok(Self { prices })
    }

    /// The monthly price of one seat, in cents, and its currency.
    pub fn price(&self, sku: &Sku) -> Option<(i64, &str)> {
        self.prices
            .get(&price_key(&sku.sku_id))
            .or_else(|| self.prices.get(&price_key(&sku.sku_part_number)))
            .map(|(cents, currency)| (*cents, currency.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

fn price_key(sku: &str) -> String {
    sku.trim().to_ascii_uppercase()
}

/// "23.10" → 2310; negative, or more than two decimals: not a price.
fn parse_cents(raw: &str) -> Option<i64> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 2
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction)
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    UnassignedSeats,
    DisabledAccount,
    LicensedGuest,
    SharedMailbox,
    RoomMailbox,
    EquipmentMailbox,
    Inactive90Days,
    Inactive30Days,
    DuplicateServices,
    TrialSubscription,
    WarningState,
    SuspendedSeats,
}

impl FindingKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::UnassignedSeats => "seats bought, not assigned",
            Self::DisabledAccount => "licensed account is disabled",
            Self::LicensedGuest => "licensed guest",
            Self::SharedMailbox => "shared mailbox holds a licence",
            Self::RoomMailbox => "room mailbox holds a licence",
            Self::EquipmentMailbox => "equipment mailbox holds a licence",
            Self::Inactive90Days => "no sign-in or activity for 90 days",
            Self::Inactive30Days => "no sign-in or activity for 30 days",
            Self::DuplicateServices => "two SKUs give the same services",
            Self::TrialSubscription => "trial subscription",
            Self::WarningState => "subscription in a warning state",
            Self::SuspendedSeats => "suspended seats",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One place where licences are wasted, or about to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub organization: String,
    pub tenant_id: String,
    /// The user's UPN, or the SKU's part number for a finding about a subscription.
    pub subject: String,
    /// The SKUs concerned, by part number.
    pub skus: Vec<String>,
    pub evidence: String,
    /// What it costs a month, in cents, where every SKU concerned has a price.
    pub monthly_cost_cents: Option<i64>,
    pub currency: Option<String>,
}

/// Seats of one SKU in one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatCount {
    pub organization: String,
    pub tenant_id: String,
    pub sku_part_number: String,
    pub name: String,
    pub bought: i64,
    pub assigned: i64,
    pub free: i64,
    pub monthly_price_cents: Option<i64>,
    pub currency: Option<String>,
}

/// Everything the waste report says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WasteReport {
    pub seats: Vec<SeatCount>,
    pub findings: Vec<Finding>,
    /// What could not be judged and why (no sign-in activity synced, SKUs without a price).
    pub notes: Vec<String>,
    /// Cost per currency ("" where the list named none) of every priced finding, counted once
    /// per user and SKU even when two findings name the same seat.
    pub monthly_waste_cents: BTreeMap<String, i64>,
}

/// Service plans that give a user a workload worth paying for once: two SKUs of one user that
/// share one of these pay twice for it. Foundation plans every SKU carries are not among them.
const WORKLOADS: &[(&str, &str)] = &[
    ("EXCHANGE_S_STANDARD", "Exchange mailbox"),
    ("EXCHANGE_S_ENTERPRISE", "Exchange mailbox"),
    ("EXCHANGE_S_DESKLESS", "Exchange mailbox"),
    ("SHAREPOINTSTANDARD", "SharePoint"),
    ("SHAREPOINTENTERPRISE", "SharePoint"),
    ("SHAREPOINTDESKLESS", "SharePoint"),
    ("OFFICESUBSCRIPTION", "Microsoft 365 Apps"),
    ("OFFICE_BUSINESS", "Microsoft 365 Apps"),
    ("INTUNE_A", "Intune"),
    ("AAD_PREMIUM", "Entra ID P1"),
    ("AAD_PREMIUM_P2", "Entra ID P2"),
];

fn workloads(sku: &Sku) -> BTreeSet<&'static str> {
    sku.service_plans
        .iter()
        .filter_map(|plan| {
            WORKLOADS
                .iter()
                .find(|(name, _)| plan.eq_ignore_ascii_case(name))
                .map(|(_, workload)| *workload)
        })
        .collect()
}

/// Looks for waste. `now` is the day the report is for; users inactive for more than 90 days
/// are one finding, those inactive for 30 to 90 another.
pub fn findings(
    skus: &[Sku],
    users: &[LicensedUser],
    prices: &PriceList,
    now: DateTime<Utc>,
) -> WasteReport {
    let by_id: HashMap<(&str, String), &Sku> = skus
        .iter()
        .map(|s| ((s.tenant_id.as_str(), s.sku_id.to_ascii_lowercase()), s))
        .collect();
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut seats = Vec::new();
    let money = |cents: Option<i64>, currency: Option<&str>| {
        (cents, cents.and(currency).map(str::to_string))
    };
    for sku in skus {
        let price = prices.price(sku);
        let free = sku.enabled_units - sku.consumed_units;
        seats.push(SeatCount {
            organization: sku.organization.clone(),
            tenant_id: sku.tenant_id.clone(),
            sku_part_number: sku.sku_part_number.clone(),
            name: sku.name.clone(),
            bought: sku.enabled_units,
            assigned: sku.consumed_units,
            free,
            monthly_price_cents: price.map(|p| p.0),
            currency: price.map(|p| p.1.to_string()),
        });
        let sku_finding = |kind, evidence: String, cents: Option<i64>| {
            let (monthly_cost_cents, currency) = money(cents, price.map(|p| p.1));
            Finding {
                kind,
                organization: sku.organization.clone(),
                tenant_id: sku.tenant_id.clone(),
                subject: sku.sku_part_number.clone(),
                skus: vec![sku.sku_part_number.clone()],
                evidence,
                monthly_cost_cents,
                currency,
            }
        };
        if free > 0 && !sku.capability_status.eq_ignore_ascii_case("suspended") {
            findings.push(sku_finding(
                FindingKind::UnassignedSeats,
                format!(
                    "{} of {} seats of {} are not assigned",
                    free, sku.enabled_units, sku.name
                ),
                price.map(|p| p.0 * free),
            ));
        }
        if sku.sku_part_number.to_ascii_uppercase().contains("TRIAL") {
            findings.push(sku_finding(
                FindingKind::TrialSubscription,
                format!(
                    "{} is a trial ({} seats, {} assigned): it ends unless bought",
                    sku.name, sku.enabled_units, sku.consumed_units
                ),
                None,
            ));
        }
        if sku.capability_status.eq_ignore_ascii_case("warning") || sku.warning_units > 0 {
            findings.push(sku_finding(
                FindingKind::WarningState,
                format!(
                    "{} is in a warning state ({}; {} seats in warning): it lapses unless renewed",
                    sku.name, sku.capability_status, sku.warning_units
                ),
                None,
            ));
        }
        if sku.suspended_units > 0 {
            findings.push(sku_finding(
                FindingKind::SuspendedSeats,
                format!(
                    "{} has {} suspended seats, whose users lose access",
                    sku.name, sku.suspended_units
                ),
                None,
            ));
        }
    }
    let mut unknown_activity: BTreeSet<&str> = BTreeSet::new();
    for user in users {
        let held: Vec<&Sku> = user
            .sku_ids
            .iter()
            .filter_map(|id| {
                by_id
                    .get(&(user.tenant_id.as_str(), id.to_ascii_lowercase()))
                    .copied()
            })
            .collect();
        if held.is_empty() {
            continue;
        }
        let part_numbers: Vec<String> = held.iter().map(|s| s.sku_part_number.clone()).collect();
        let all_priced: Option<Vec<(i64, &str)>> = held.iter().map(|s| prices.price(s)).collect();
        let cost = all_priced
            .as_ref()
            .map(|p| p.iter().map(|(c, _)| c).sum::<i64>());
        let currency = all_priced
            .as_ref()
            .and_then(|p| p.first().map(|(_, c)| c.to_string()));
        let user_finding = |kind, evidence: String, skus: Vec<String>, cost: Option<i64>| Finding {
            kind,
            organization: user.organization.clone(),
            tenant_id: user.tenant_id.clone(),
            subject: user.user_principal_name.clone(),
            skus,
            evidence,
            monthly_cost_cents: cost,
            currency: cost.and(currency.clone()),
        };
        let names = part_numbers.join(", ");
        if user.account_enabled == Some(false) {
            findings.push(user_finding(
                FindingKind::DisabledAccount,
                format!("{} is disabled and holds {names}", user.display_name),
                part_numbers.clone(),
                cost,
            ));
        }
        if user
            .user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
        {
            findings.push(user_finding(
                FindingKind::LicensedGuest,
                format!("{} is a guest and holds {names}", user.display_name),
                part_numbers.clone(),
                cost,
            ));
        }
        let mailbox = user.mailbox_kind.as_deref().map(str::to_ascii_lowercase);
        let mailbox_kind = match mailbox.as_deref() {
            Some("shared") => Some(FindingKind::SharedMailbox),
            Some("room") => Some(FindingKind::RoomMailbox),
            Some("equipment") => Some(FindingKind::EquipmentMailbox),
            _ => None,
        };
        if let Some(kind) = mailbox_kind {
            findings.push(user_finding(
                kind,
                format!(
                    "the {} mailbox {} holds {names}; a {} mailbox under 50 GB needs no licence",
                    mailbox.as_deref().unwrap_or_default(),
                    user.user_principal_name,
                    mailbox.as_deref().unwrap_or_default()
                ),
                part_numbers.clone(),
                cost,
            ));
        }
        let member_enabled = user.account_enabled != Some(false)
            && mailbox_kind.is_none()
            && !user
                .user_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("guest"));
        if member_enabled {
            if user.sign_ins_known || user.usage_known {
                let latest = user.last_sign_in.max(user.last_activity);
                let idle_days = latest.map(|t| (now - t).num_days());
                let kind = match idle_days {
                    None => Some(FindingKind::Inactive90Days),
                    Some(days) if days > 90 => Some(FindingKind::Inactive90Days),
                    Some(days) if days > 30 => Some(FindingKind::Inactive30Days),
                    _ => None,
                };
                if let Some(kind) = kind {
                    let seen = match latest {
                        Some(t) => format!("last seen {}", t.format("%Y-%m-%d")),
                        None => "never seen signing in or active".to_string(),
                    };
                    let from = match (user.sign_ins_known, user.usage_known) {
                        (true, true) => "sign-in activity and usage reports",
                        (true, false) => "sign-in activity",
                        _ => "usage reports",
                    };
                    findings.push(user_finding(
                        kind,
                        format!("{} holds {names}, {seen} (from {from})", user.display_name),
                        part_numbers.clone(),
                        cost,
                    ));
                }
            } else {
                unknown_activity.insert(user.organization.as_str());
            }
        }
        for (i, first) in held.iter().enumerate() {
            for second in &held[i + 1..] {
                let shared: Vec<&str> = workloads(first)
                    .intersection(&workloads(second))
                    .copied()
                    .collect();
                if shared.is_empty() {
                    continue;
                }
                // The cheaper of the two is what could go.
                let cheaper = [prices.price(first), prices.price(second)]
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .and_then(|p| p.into_iter().min_by_key(|(c, _)| *c));
                findings.push(Finding {
                    currency: cheaper.map(|(_, c)| c.to_string()),
                    ..user_finding(
                        FindingKind::DuplicateServices,
                        format!(
                            "{} holds {} and {}, which both give {}",
                            user.display_name,
                            first.sku_part_number,
                            second.sku_part_number,
                            shared.join(", ")
                        ),
                        vec![
                            first.sku_part_number.clone(),
                            second.sku_part_number.clone(),
                        ],
                        cheaper.map(|(c, _)| c),
                    )
                });
            }
        }
    }
    for organization in unknown_activity {
        notes.push(format!(
            "{organization}: inactive users cannot be told: neither sign-in activity nor usage is synced; add the sign_in_activity or usage dataset to the connection"
        ));
    }
    if !prices.is_empty() {
        let unpriced: BTreeSet<&str> = skus
            .iter()
            .filter(|s| prices.price(s).is_none())
            .map(|s| s.sku_part_number.as_str())
            .collect();
        if !unpriced.is_empty() {
            notes.push(format!(
                "no price for {}: their findings carry no cost",
                unpriced.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    findings.sort_by(|a, b| {
        (&a.organization, a.kind, &a.subject).cmp(&(&b.organization, b.kind, &b.subject))
    });
    WasteReport {
        monthly_waste_cents: total_waste(&findings),
        seats,
        findings,
        notes,
    }
}

/// The monthly cost of the findings, each seat (user and SKU, or a SKU's free seats) counted
/// once: a disabled guest is one wasted licence, not two.
fn total_waste(findings: &[Finding]) -> BTreeMap<String, i64> {
    let mut counted: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for f in findings {
        let (Some(cost), Some(currency)) = (f.monthly_cost_cents, &f.currency) else {
            continue;
        };
        // A user's findings other than the duplicate name all their SKUs; count the user once.
        let seat = match f.kind {
            FindingKind::DuplicateServices => f.skus.last().map_or("", String::as_str),
            _ => "*",
        };
        if counted.insert((f.tenant_id.as_str(), f.subject.as_str(), seat)) {
            *totals.entry(currency.clone()).or_default() += cost;
        }
    }
    totals
}

/// Cents as money: 2310 → "23.10".
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sku(part: &str, id: &str, bought: i64, assigned: i64, plans: &[&str]) -> Sku {
        Sku {
            organization: "Contoso".into(),
            tenant_id: "t1".into(),
            sku_id: id.into(),
            sku_part_number: part.into(),
            name: part.into(),
            capability_status: "Enabled".into(),
            enabled_units: bought,
            consumed_units: assigned,
            warning_units: 0,
            suspended_units: 0,
            service_plans: plans.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn user(upn: &str, skus: &[&str]) -> LicensedUser {
        LicensedUser {
            organization: "Contoso".into(),
            tenant_id: "t1".into(),
            user_principal_name: upn.into(),
            display_name: upn.split('@').next().unwrap().into(),
            account_enabled: Some(true),
            user_type: Some("Member".into()),
            sign_ins_known: true,
            usage_known: false,
            last_sign_in: Some(now() - chrono::Duration::days(2)),
            sku_ids: skus.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    fn prices() -> PriceList {
        PriceList::parse(
            "prices.csv",
            "sku,monthly_price,currency\nSPE_E3,36.00,EUR\nSPB,22.00,EUR\nEXCHANGESTANDARD,4,EUR\n",
        )
        .unwrap()
    }

    fn kinds(report: &WasteReport, subject: &str) -> Vec<FindingKind> {
        report
            .findings
            .iter()
            .filter(|f| f.subject == subject)
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn every_kind_of_waste_is_found_with_its_evidence_and_cost() {
        let skus = vec![
            sku(
                "SPE_E3",
                "e3",
                10,
                6,
                &[
                    "EXCHANGE_S_ENTERPRISE",
                    "SHAREPOINTENTERPRISE",
                    "OFFICESUBSCRIPTION",
                    "INTUNE_A",
                    "AAD_PREMIUM",
                    "TEAMS1",
                ],
            ),
            sku(
                "SPB",
                "bp",
                2,
                2,
                &[
                    "EXCHANGE_S_STANDARD",
                    "SHAREPOINTSTANDARD",
                    "OFFICE_BUSINESS",
                    "INTUNE_A",
                    "AAD_PREMIUM",
                    "TEAMS1",
                ],
            ),
            sku("EXCHANGESTANDARD", "ex", 3, 3, &["EXCHANGE_S_STANDARD"]),
            Sku {
                capability_status: "Warning".into(),
                warning_units: 5,
                ..sku("POWER_BI_PRO_TRIAL", "pbi", 5, 1, &["BI_AZURE_P2"])
            },
        ];
        let mut disabled = user("gone@contoso.com", &["e3"]);
        disabled.account_enabled = Some(false);
        let mut guest = user("partner@fabrikam.com", &["ex"]);
        guest.user_type = Some("Guest".into());
        let mut shared = user("info@contoso.com", &["ex"]);
        shared.mailbox_kind = Some("shared".into());
        let mut idle = user("idle@contoso.com", &["e3"]);
        idle.last_sign_in = Some(now() - chrono::Duration::days(120));
        let mut quiet = user("quiet@contoso.com", &["e3"]);
        quiet.last_sign_in = Some(now() - chrono::Duration::days(45));
        quiet.usage_known = true;
        quiet.last_activity = Some(now() - chrono::Duration::days(40));
        let mut never = user("never@contoso.com", &["bp"]);
        never.last_sign_in = None;
        let both = user("both@contoso.com", &["e3", "bp"]);
        let fine = user("fine@contoso.com", &["e3"]);
        let users = vec![disabled, guest, shared, idle, quiet, never, both, fine];
        let report = findings(&skus, &users, &prices(), now());

        assert_eq!(kinds(&report, "SPE_E3"), vec![FindingKind::UnassignedSeats]);
        let free = &report
            .findings
            .iter()
            .find(|f| f.subject == "SPE_E3")
            .unwrap();
        assert_eq!(free.monthly_cost_cents, Some(4 * 3600));
        assert!(free.evidence.contains("4 of 10"), "{}", free.evidence);
        assert_eq!(
            kinds(&report, "gone@contoso.com"),
            vec![FindingKind::DisabledAccount]
        );
        assert_eq!(
            kinds(&report, "partner@fabrikam.com"),
            vec![FindingKind::LicensedGuest]
        );
        assert_eq!(
            kinds(&report, "info@contoso.com"),
            vec![FindingKind::SharedMailbox]
        );
        assert_eq!(
            kinds(&report, "idle@contoso.com"),
            vec![FindingKind::Inactive90Days]
        );
        assert_eq!(
            kinds(&report, "quiet@contoso.com"),
            vec![FindingKind::Inactive30Days]
        );
        assert_eq!(
            kinds(&report, "never@contoso.com"),
            vec![FindingKind::Inactive90Days]
        );
        assert_eq!(kinds(&report, "fine@contoso.com"), vec![]);
        let duplicate = report
            .findings
            .iter()
            .find(|f| f.subject == "both@contoso.com")
            .unwrap();
        assert_eq!(duplicate.kind, FindingKind::DuplicateServices);
        assert!(
            duplicate.evidence.contains("Exchange mailbox"),
            "{}",
            duplicate.evidence
        );
        assert_eq!(duplicate.monthly_cost_cents, Some(2200));
        let trial = kinds(&report, "POWER_BI_PRO_TRIAL");
        assert!(trial.contains(&FindingKind::TrialSubscription));
        assert!(trial.contains(&FindingKind::WarningState));
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("POWER_BI_PRO_TRIAL")),
            "{:?}",
            report.notes
        );
        // 4 free E3 (144) + disabled E3 (36) + guest (4) + shared (4) + idle, quiet E3 (72)
        // + never BP (22) + the duplicate's cheaper SKU (22); the unpriced trial adds nothing.
        assert_eq!(report.monthly_waste_cents.get("EUR"), Some(&30_400));
        assert_eq!(report.seats.len(), 4);
        assert_eq!(report.seats[0].free, 4);
    }

    #[test]
    fn a_disabled_guest_is_one_wasted_seat_and_no_activity_data_is_a_note_not_a_finding() {
        let skus = vec![sku("SPB", "bp", 1, 1, &[])];
        let mut odd = user("odd@contoso.com", &["bp"]);
        odd.account_enabled = Some(false);
        odd.user_type = Some("Guest".into());
        let mut unknown = user("unknown@contoso.com", &["bp"]);
        unknown.sign_ins_known = false;
        unknown.last_sign_in = None;
        let report = findings(&skus, &[odd, unknown], &prices(), now());
        assert_eq!(report.findings.len(), 2);
        assert_eq!(report.monthly_waste_cents.get("EUR"), Some(&2200));
        assert_eq!(kinds(&report, "unknown@contoso.com"), vec![]);
        assert!(
            report.notes[0].contains("sign_in_activity"),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn without_a_price_list_findings_carry_no_cost() {
        let report = findings(
            &[sku("SPB", "bp", 3, 1, &[])],
            &[],
            &PriceList::default(),
            now(),
        );
        assert_eq!(report.findings[0].monthly_cost_cents, None);
        assert!(report.monthly_waste_cents.is_empty());
        assert!(report.notes.is_empty());
    }

    #[test]
    fn a_bad_price_list_names_its_row() {
        let e = PriceList::parse("prices.csv", "sku,monthly_price\nSPB,22\nSPE_E3,36,00\n")
            .unwrap_err();
        assert_eq!(e.row, 3, "{e}");
        let e =
            PriceList::parse("prices.csv", "sku,monthly_price\nSPB,22\nSPE_E3,€36\n").unwrap_err();
        assert_eq!(
            (
                e.row,
                e.to_string()
                    .starts_with("prices.csv, row 3: '€36' for SPE_E3 is not a price")
            ),
            (3, true),
            "{e}"
        );
        let e =
            PriceList::parse("prices.csv", "sku,monthly_price\nSPB,22\n\nSPB,23\n").unwrap_err();
        assert!(e.problem.contains("twice"), "{e}");
        assert_eq!(e.row, 4);
        let e = PriceList::parse("prices.csv", "part,price\nSPB,22\n").unwrap_err();
        assert_eq!(e.row, 1);
        let e = PriceList::parse("prices.csv", "sku,monthly_price\n,22\n").unwrap_err();
        assert!(e.problem.contains("empty"), "{e}");
        assert_eq!(parse_cents("22.5"), Some(2250));
        assert_eq!(parse_cents("-1"), None);
        assert_eq!(parse_cents("1.234"), None);
        assert_eq!(format_cents(30_400), "304.00");
    }

    #[test]
    fn prices_are_found_by_part_number_or_sku_id_in_any_case() {
        let list = PriceList::parse(
            "p.csv",
            "SKU,Monthly_Price\nspb,22\n05e9a617-0261-4cee-bb44-138d3ef5d965,36\n",
        )
        .unwrap();
        assert_eq!(list.price(&sku("SPB", "x", 1, 1, &[])), Some((2200, "")));
        assert_eq!(
            list.price(&sku(
                "SPE_E3",
                "05E9A617-0261-4CEE-BB44-138D3EF5D965",
                1,
                1,
                &[]
            )),
            Some((3600, ""))
        );
    }
}
