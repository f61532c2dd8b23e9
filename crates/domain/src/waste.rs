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

use crate::catalog;

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
    /// Whether a subscription behind it is a trial, as the tenant's subscriptions say; none
    /// where they could not be read.
    pub trial: Option<bool>,
    /// When its subscription next changes state: a trial's end, a renewal.
    pub next_lifecycle: Option<DateTime<Utc>>,
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

/// A monthly price per SKU, from the admin's CSV, in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceList {
    /// The file the list came from, to name it in errors found after parsing.
    file: String,
    /// Keyed by upper-case part number or SKU id, as the row wrote it.
    prices: HashMap<String, PriceRow>,
    /// The one currency every row names ("" where none names one): a sum of prices in two
    /// currencies means nothing, so a list holds one.
    currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PriceRow {
    cents: i64,
    /// The 1-based line of the file, to name it in errors.
    row: u64,
    /// The SKU as the row wrote it.
    written: String,
}

/// A price list that cannot be read or used, naming the file, the row and the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}, row {row}{}: {problem}. {fix}", column.as_deref().map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct PriceError {
    pub file: String,
    /// The 1-based line of the file (the header is row 1).
    pub row: u64,
    /// The column at fault, where one is.
    pub column: Option<String>,
    pub problem: String,
    pub fix: String,
}

const PRICE_FIX: &str = "Write a header `sku,monthly_price,currency` and one row per SKU: its part number (ENTERPRISEPACK) or SKU id, the price per seat and month such as 23.10, and an optional currency code";

/// No licence costs 100,000.00 a seat and month: a price above it is a typing error (a missing
/// decimal point, a yearly total), and keeping prices under it keeps every sum of them far
/// from overflowing.
const MAX_SEAT_PRICE_CENTS: i64 = 10_000_000;

impl PriceList {
    /// Reads `sku,monthly_price[,currency]`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, PriceError> {
        let error = |row: u64, column: Option<&str>, problem: String, fix: &str| PriceError {
            file: file.to_string(),
            row,
            column: column.map(str::to_string),
            problem,
            fix: fix.to_string(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| {
                error(
                    1,
                    None,
                    format!("the header cannot be read: {e}"),
                    PRICE_FIX,
                )
            })?
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let (Some(sku_at), Some(price_at)) = (column("sku"), column("monthly_price")) else {
            return Err(error(
                1,
                None,
                format!("the header is '{}'", headers.join(",")),
                PRICE_FIX,
            ));
        };
        let currency_at = column("currency");
        let mut prices: HashMap<String, PriceRow> = HashMap::new();
        // The first row's currency, which every other row must share.
        let mut first_currency: Option<(String, u64, String)> = None;
        let records: Vec<Result<csv::StringRecord, csv::Error>> = reader.records().collect();
        // Where each record starts in the text, to read its quoting as written: the reader
        // takes a quote never closed as running to the end of the file.
        let starts: Vec<Option<usize>> = records
            .iter()
            .map(|r| {
                r.as_ref()
                    .ok()
                    .and_then(|r| r.position())
                    .map(|p| (p.byte() as usize).min(text.len()))
            })
            .collect();
        for (index, record) in records.into_iter().enumerate() {
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
                record.map_err(|e| error(row, None, format!("cannot be read: {e}"), PRICE_FIX))?;
            let raw = starts[index].map(|start| {
                let end = starts[index + 1..]
                    .iter()
                    .flatten()
                    .next()
                    .copied()
                    .unwrap_or(text.len());
                &text[start..end.max(start)]
            });
            // Quotes pair up in a row written right; an odd count is a quote never closed (it
            // swallows the rows after it), or a stray one inside a value.
            if raw.is_some_and(|raw| raw.matches('"').count() % 2 == 1)
                || record.iter().any(|field| field.contains(['\n', '\r']))
            {
                return Err(error(
                    row,
                    None,
                    "its quoting is broken: a quote opened in it is never closed, or a value holds a stray quote".into(),
                    "Close every quote the row opens (\"23.10\"), or write the row without quotes",
                ));
            }
            // Trimmed here rather than by the reader, which would drop the record's position.
            record.trim();
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() > headers.len() {
                return Err(error(
                    row,
                    None,
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
                return Err(error(
                    row,
                    Some("sku"),
                    "the SKU is empty".into(),
                    PRICE_FIX,
                ));
            }
            let raw = record.get(price_at).unwrap_or_default();
            let cents = match parse_cents(raw) {
                Cents::Price(cents) if cents <= MAX_SEAT_PRICE_CENTS => cents,
                Cents::Price(_) | Cents::TooLarge => {
                    return Err(error(
                        row,
                        Some("monthly_price"),
                        format!(
                            "'{raw}' for {sku} is more than {} a seat and month",
                            format_cents(MAX_SEAT_PRICE_CENTS)
                        ),
                        "Write the price of one seat for one month, with a decimal point (23.10), not a yearly or tenant total",
                    ));
                }
                Cents::NotAPrice => {
                    return Err(error(
                        row,
                        Some("monthly_price"),
                        format!("'{raw}' for {sku} is not a price"),
                        "Write the monthly price per seat as a number with at most two decimals, such as 23.10, without a currency sign",
                    ));
                }
            };
            let currency = currency_at
                .and_then(|at| record.get(at))
                .unwrap_or("")
                .to_ascii_uppercase();
            if !currency.is_empty() && !ISO_4217.contains(&currency.as_str()) {
                return Err(error(
                    row,
                    Some("currency"),
                    format!("'{currency}' for {sku} is not an ISO 4217 currency code"),
                    "Write a three-letter ISO 4217 code such as EUR, USD or GBP, or leave the column empty in every row",
                ));
            }
            match &first_currency {
                None => first_currency = Some((currency.clone(), row, sku.to_string())),
                Some((first, first_row, first_sku)) if *first != currency => {
                    let named = |c: &str| {
                        if c.is_empty() {
                            "names no currency".to_string()
                        } else {
                            format!("is in {c}")
                        }
                    };
                    return Err(error(
                        row,
                        Some("currency"),
                        format!(
                            "{sku} {} while {first_sku} on row {first_row} {}: prices in two currencies cannot be added up",
                            named(&currency),
                            named(first)
                        ),
                        "Give every row the same currency: convert the prices, or keep one list per currency",
                    ));
                }
                Some(_) => {}
            }
            let key = price_key(sku);
            let entry = PriceRow {
                cents,
                row,
                written: sku.to_string(),
            };
            if let Some(earlier) = prices.insert(key, entry) {
                return Err(error(
                    row,
                    Some("sku"),
                    format!("{sku} is priced twice, on rows {} and {row}", earlier.row),
                    "Keep one row per SKU",
                ));
            }
        }
        let list = Self {
            file: file.to_string(),
            prices,
            currency: first_currency.map(|(c, _, _)| c).unwrap_or_default(),
        };
        // A SKU named by its id in one row and by its part number in another is priced twice
        // with no telling which row is meant; the catalogue knows which ids go with which part
        // numbers, and `price` catches the others once a tenant's SKU pairs them.
        for (key, by_id) in &list.prices {
            if let Some(part) = catalog::part_number(key)
                && let Some(by_part) = list.prices.get(&price_key(part))
            {
                return Err(list.named_twice(by_id, by_part, part, key));
            }
        }
        Ok(list)
    }

    fn named_twice(&self, a: &PriceRow, b: &PriceRow, part: &str, id: &str) -> PriceError {
        let (first, second) = if a.row < b.row { (a, b) } else { (b, a) };
        PriceError {
            file: self.file.clone(),
            row: second.row,
            column: Some("sku".into()),
            problem: format!(
                "rows {} ({}) and {} ({}) both price one SKU, {part} (id {})",
                first.row,
                first.written,
                second.row,
                second.written,
                id.to_ascii_lowercase()
            ),
            fix: "Keep one row per SKU: by its part number or by its id, not both".into(),
        }
    }

    /// The monthly price of one seat, in cents; an error when two rows price the SKU, one by
    /// its id and one by its part number.
    pub fn price(&self, sku: &Sku) -> Result<Option<i64>, PriceError> {
        let by_id = self.prices.get(&price_key(&sku.sku_id));
        let by_part = self.prices.get(&price_key(&sku.sku_part_number));
        match (by_id, by_part) {
            (Some(a), Some(b)) if a.row != b.row => {
                Err(self.named_twice(a, b, &sku.sku_part_number, &sku.sku_id))
            }
            (Some(p), _) | (None, Some(p)) => Ok(Some(p.cents)),
            (None, None) => Ok(None),
        }
    }

    /// The currency of every price ("" where the list names none).
    pub fn currency(&self) -> &str {
        &self.currency
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

/// The currency codes of ISO 4217 in use, funds and units of account included; not the codes
/// for metals, testing or "no currency", which no licence is priced in.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR",
    "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW",
    "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA",
    "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
    "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE",
    "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP",
    "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
    "ZWL",
];

fn price_key(sku: &str) -> String {
    sku.trim().to_ascii_uppercase()
}

/// What a price cell holds.
#[derive(Debug, PartialEq, Eq)]
enum Cents {
    Price(i64),
    /// Digits, but more than an i64 of cents holds.
    TooLarge,
    NotAPrice,
}

/// "23.10" → 2310; negative, or more than two decimals: not a price.
fn parse_cents(raw: &str) -> Cents {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 2
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Cents::NotAPrice;
    }
    let fraction: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
    whole
        .parse::<i64>()
        .ok()
        .and_then(|w| w.checked_mul(100)?.checked_add(fraction))
        .map_or(Cents::TooLarge, Cents::Price)
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
    OverAssigned,
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
            Self::OverAssigned => "more seats assigned than bought",
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
    /// What the priced seats it names cost a month, in cents; none where no seat it names
    /// has a price (or, for trials and warnings, where it costs nothing yet).
    pub monthly_cost_cents: Option<i64>,
    pub currency: Option<String>,
    /// The SKUs it names that the price list does not price: the cost leaves them out.
    pub unpriced_skus: Vec<String>,
    /// What it adds to the total: the cost of its seats that no finding before it counts.
    /// Summed over every finding, it is `WasteReport::monthly_waste_cents`.
    pub counted_cost_cents: Option<i64>,
    /// The findings before it ("kind: subject") that already count some of its seats: a
    /// disabled guest is one seat, whether one finding or two names it.
    pub counted_in: Vec<String>,
    /// The seats the cost counts, so that the total counts a seat that two findings name once.
    #[serde(skip)]
    seats: Vec<WastedSeat>,
}

/// Seats of one SKU that a finding says are wasted: a user's, or the SKU's unassigned ones.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WastedSeat {
    tenant_id: String,
    /// The user's UPN, or "" for the seats nobody holds.
    holder: String,
    sku_id: String,
    cents: i64,
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
    /// A SKU Microsoft gives away, or that the price list prices at 0: its free seats cost
    /// nothing.
    pub no_charge: bool,
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
    /// per user and SKU even when two findings name the same seat. A price list holds one
    /// currency, so this has one entry at most.
    pub monthly_waste_cents: BTreeMap<String, i64>,
    /// The SKUs named by findings that have no price: the total leaves them out.
    pub unpriced_skus: Vec<String>,
}

/// Why the waste cannot be reckoned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WasteError {
    #[error(transparent)]
    Price(#[from] PriceError),
    #[error(
        "the cost of {what} is too large to count: a seat count that large cannot be right. Sync the tenant's licenses again, and check the price list"
    )]
    Overflow { what: String },
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
/// are one finding, those inactive for 30 to 90 another. Refused when the price list prices a
/// SKU twice (by its id and its part number), or a seat count is too large to reckon with.
pub fn findings(
    skus: &[Sku],
    users: &[LicensedUser],
    prices: &PriceList,
    now: DateTime<Utc>,
) -> Result<WasteReport, WasteError> {
    // Each SKU's price, looked up once, so that a SKU two rows price is refused before
    // anything is counted.
    let mut price_of: HashMap<(&str, String), Option<i64>> = HashMap::new();
    for sku in skus {
        price_of.insert(
            (sku.tenant_id.as_str(), sku.sku_id.to_ascii_lowercase()),
            prices.price(sku)?,
        );
    }
    let price = |sku: &Sku| {
        price_of
            .get(&(sku.tenant_id.as_str(), sku.sku_id.to_ascii_lowercase()))
            .copied()
            .flatten()
    };
    let no_charge = |sku: &Sku| catalog::is_free(&sku.sku_part_number) || price(sku) == Some(0);
    // A trial is not bought: whoever holds its seats, they cost nothing until it is. Only the
    // subscription can say so; a part number naming a trial is a hint the trial finding gives.
    let is_trial = |sku: &Sku| sku.trial == Some(true);
    let costing = Costing {
        priced: !prices.is_empty(),
        currency: prices.currency(),
    };
    let by_id: HashMap<(&str, String), &Sku> = skus
        .iter()
        .map(|s| ((s.tenant_id.as_str(), s.sku_id.to_ascii_lowercase()), s))
        .collect();
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    if !prices.file.is_empty() && prices.is_empty() {
        notes.push(format!(
            "{}: no SKU is priced (the file has a header and no rows), so no finding has a cost; add a row per SKU under `sku,monthly_price,currency`",
            prices.file
        ));
    }
    // A row naming a SKU no tenant here holds and the catalogue does not know is most likely
    // misspelt (SPE_E3X): its price is used nowhere, and the SKU it meant stays unpriced.
    let mut unknown: Vec<&PriceRow> = prices
        .prices
        .iter()
        .filter(|(key, _)| {
            !skus
                .iter()
                .any(|s| price_key(&s.sku_id) == **key || price_key(&s.sku_part_number) == **key)
                && catalog::part_number(key).is_none()
                && catalog::product_name("", key).is_none()
                && !catalog::is_free(key)
        })
        .map(|(_, row)| row)
        .collect();
    unknown.sort_by_key(|row| row.row);
    for row in unknown {
        notes.push(format!(
            "{}, row {}: {} is held by no tenant here and is not a SKU this program knows; check its spelling against the part numbers in the seats list",
            prices.file, row.row, row.written
        ));
    }
    let mut seats = Vec::new();
    for sku in skus {
        let unit_price = price(sku);
        let free_of_charge = no_charge(sku);
        let unassigned = sku
            .enabled_units
            .checked_sub(sku.consumed_units)
            .ok_or_else(|| WasteError::Overflow {
                what: format!(
                    "{} bought and {} assigned seats of {}",
                    sku.enabled_units, sku.consumed_units, sku.sku_part_number
                ),
            })?;
        // More seats assigned than bought leaves none free; the finding below tells by how
        // many, rather than a negative count of free seats.
        let free = unassigned.max(0);
        seats.push(SeatCount {
            organization: sku.organization.clone(),
            tenant_id: sku.tenant_id.clone(),
            sku_part_number: sku.sku_part_number.clone(),
            name: sku.name.clone(),
            bought: sku.enabled_units,
            assigned: sku.consumed_units,
            free,
            no_charge: free_of_charge,
            monthly_price_cents: unit_price,
            currency: unit_price.map(|_| prices.currency().to_string()),
        });
        let sku_finding = |kind, evidence: String, cost: Option<Costed>| {
            Finding::new(
                kind,
                (&sku.organization, &sku.tenant_id, &sku.sku_part_number),
                vec![sku.sku_part_number.clone()],
                evidence,
                cost,
                &costing,
            )
        };
        // Seats of a SKU Microsoft gives away (10,000 free Power Automate seats), or of a
        // trial (the trial finding says so), are not bought, so not wasted.
        if free > 0
            && !sku.capability_status.eq_ignore_ascii_case("suspended")
            && !free_of_charge
            && sku.trial != Some(true)
        {
            let cost = costing.of("", &[(sku, unit_price, free)])?;
            findings.push(sku_finding(
                FindingKind::UnassignedSeats,
                format!(
                    "{} of {} seats of {} are not assigned",
                    free, sku.enabled_units, sku.name
                ),
                Some(cost),
            ));
        }
        // The subscription says whether it is a trial. Only where the subscriptions could not
        // be read is the part number a hint, and the evidence says so.
        let trial = match sku.trial {
            Some(trial) => trial.then(|| match sku.next_lifecycle {
                Some(ends) if ends >= now => {
                    format!("it ends on {} unless bought", ends.format("%Y-%m-%d"))
                }
                Some(ended) => format!(
                    "it ended on {}; its users lose access unless it is bought",
                    ended.format("%Y-%m-%d")
                ),
                None => "it ends unless bought".to_string(),
            }),
            None => sku
                .sku_part_number
                .to_ascii_uppercase()
                .contains("TRIAL")
                .then(|| "its part number names a trial; the tenant's subscriptions were not read, grant LicenseAssignment.Read.All to be sure".to_string()),
        };
        if let Some(when) = trial {
            findings.push(sku_finding(
                FindingKind::TrialSubscription,
                format!(
                    "{} is a trial ({} seats, {} assigned): {when}",
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
        if unassigned < 0 {
            findings.push(sku_finding(
                FindingKind::OverAssigned,
                format!(
                    "{} has {} seats assigned and {} bought: {} more assigned than bought; buy them, or take them from users before Microsoft does",
                    sku.name,
                    sku.consumed_units,
                    sku.enabled_units,
                    unassigned.unsigned_abs()
                ),
                None,
            ));
        }
        let suspended = sku.capability_status.eq_ignore_ascii_case("suspended")
            || sku.capability_status.eq_ignore_ascii_case("lockedout");
        if sku.suspended_units > 0 || suspended {
            findings.push(sku_finding(
                FindingKind::SuspendedSeats,
                if sku.suspended_units > 0 {
                    format!(
                        "{} has {} suspended seats ({}), whose users lose access",
                        sku.name, sku.suspended_units, sku.capability_status
                    )
                } else {
                    format!(
                        "{} is {}: its users have lost access, or lose it soon",
                        sku.name, sku.capability_status
                    )
                },
                None,
            ));
        }
    }
    let mut unknown_activity: BTreeSet<&str> = BTreeSet::new();
    for user in users {
        // A licence Microsoft gives away wastes nothing, whoever holds it.
        let held: Vec<&Sku> = user
            .sku_ids
            .iter()
            .filter_map(|id| {
                by_id
                    .get(&(user.tenant_id.as_str(), id.to_ascii_lowercase()))
                    .copied()
            })
            .filter(|s| !no_charge(s))
            .collect();
        if held.is_empty() {
            continue;
        }
        let part_numbers: Vec<String> = held.iter().map(|s| s.sku_part_number.clone()).collect();
        let every_seat: Vec<(&Sku, Option<i64>, i64)> = held
            .iter()
            .filter(|s| !is_trial(s))
            .map(|s| (*s, price(s), 1))
            .collect();
        let cost = costing.of(&user.user_principal_name, &every_seat)?;
        let user_finding = |kind, evidence: String, skus: Vec<String>, cost: Option<Costed>| {
            Finding::new(
                kind,
                (
                    &user.organization,
                    &user.tenant_id,
                    &user.user_principal_name,
                ),
                skus,
                evidence,
                cost,
                &costing,
            )
        };
        let names = part_numbers.join(", ");
        if user.account_enabled == Some(false) {
            findings.push(user_finding(
                FindingKind::DisabledAccount,
                format!("{} is disabled and holds {names}", user.display_name),
                part_numbers.clone(),
                Some(cost.clone()),
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
                Some(cost.clone()),
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
                Some(cost.clone()),
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
                        Some(cost.clone()),
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
                // The cheaper of the two is what could go; with one of them unpriced, which
                // is cheaper cannot be told, and the finding says which price is missing.
                let cost = match (price(first), price(second)) {
                    // Dropping the trial saves nothing, and keeping it costs nothing yet.
                    _ if is_trial(first) || is_trial(second) => costing.of("", &[])?,
                    (Some(a), Some(b)) => {
                        let cheaper = if b < a { second } else { first };
                        costing.of(&user.user_principal_name, &[(cheaper, Some(a.min(b)), 1)])?
                    }
                    _ => {
                        let unpriced: Vec<(&Sku, Option<i64>, i64)> = [*first, *second]
                            .into_iter()
                            .filter(|s| price(s).is_none())
                            .map(|s| (s, None, 1))
                            .collect();
                        costing.of(&user.user_principal_name, &unpriced)?
                    }
                };
                findings.push(user_finding(
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
                    Some(cost),
                ));
            }
        }
    }
    for organization in unknown_activity {
        notes.push(format!(
            "{organization}: inactive users cannot be told: neither sign-in activity nor usage is synced; add the sign_in_activity or usage dataset to the connection"
        ));
    }
    findings.sort_by(|a, b| {
        (&a.organization, a.kind, &a.subject).cmp(&(&b.organization, b.kind, &b.subject))
    });
    let unpriced_skus: Vec<String> = findings
        .iter()
        .flat_map(|f| f.unpriced_skus.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unpriced_skus.is_empty() {
        notes.push(format!(
            "no price for {}: the findings naming them count only their priced seats, and the total leaves them out",
            unpriced_skus.join(", ")
        ));
    }
    Ok(WasteReport {
        monthly_waste_cents: total_waste(&mut findings, prices.currency())?,
        seats,
        findings,
        notes,
        unpriced_skus,
    })
}

/// How findings are priced: whether there is a price list, and its currency.
struct Costing<'a> {
    priced: bool,
    currency: &'a str,
}

/// What a finding's seats cost: the priced part, and the SKUs with no price.
#[derive(Debug, Clone)]
struct Costed {
    cents: Option<i64>,
    unpriced: Vec<String>,
    seats: Vec<WastedSeat>,
}

impl Costing<'_> {
    /// The cost of `count` seats of each SKU that `holder` ("" for nobody) holds, each with
    /// its price where it has one.
    fn of(&self, holder: &str, held: &[(&Sku, Option<i64>, i64)]) -> Result<Costed, WasteError> {
        let mut costed = Costed {
            cents: None,
            unpriced: Vec::new(),
            seats: Vec::new(),
        };
        if !self.priced {
            return Ok(costed);
        }
        for (sku, price, count) in held {
            let Some(price) = price else {
                costed.unpriced.push(sku.sku_part_number.clone());
                continue;
            };
            let overflow = || WasteError::Overflow {
                what: format!(
                    "{count} seats of {} at {} a month",
                    sku.sku_part_number,
                    format_cents(*price)
                ),
            };
            let cents = price.checked_mul(*count).ok_or_else(overflow)?;
            costed.cents = Some(
                costed
                    .cents
                    .unwrap_or(0)
                    .checked_add(cents)
                    .ok_or_else(overflow)?,
            );
            costed.seats.push(WastedSeat {
                tenant_id: sku.tenant_id.clone(),
                holder: holder.to_string(),
                sku_id: sku.sku_id.to_ascii_lowercase(),
                cents,
            });
        }
        Ok(costed)
    }
}

impl Finding {
    fn new(
        kind: FindingKind,
        (organization, tenant_id, subject): (&str, &str, &str),
        skus: Vec<String>,
        evidence: String,
        cost: Option<Costed>,
        costing: &Costing,
    ) -> Self {
        let cost = cost.unwrap_or(Costed {
            cents: None,
            unpriced: Vec::new(),
            seats: Vec::new(),
        });
        Self {
            kind,
            organization: organization.to_string(),
            tenant_id: tenant_id.to_string(),
            subject: subject.to_string(),
            skus,
            evidence,
            monthly_cost_cents: cost.cents,
            currency: cost.cents.map(|_| costing.currency.to_string()),
            unpriced_skus: cost.unpriced,
            counted_cost_cents: cost.cents,
            counted_in: Vec::new(),
            seats: cost.seats,
        }
    }
}

/// The monthly cost of the findings, each seat (a user's seat of a SKU, or a SKU's unassigned
/// seats) counted once: a disabled guest holding two SKUs that overlap wastes each seat once,
/// whichever findings name it. The first finding (in their order) naming a seat counts it;
/// each later one says which finding did, so that its part of the total adds up.
fn total_waste(
    findings: &mut [Finding],
    currency: &str,
) -> Result<BTreeMap<String, i64>, WasteError> {
    let overflow = || WasteError::Overflow {
        what: "every finding together".into(),
    };
    // Each seat, and the finding ("kind: subject") that counted it.
    let mut counted: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut total: Option<i64> = None;
    for finding in findings.iter_mut() {
        let name = format!("{}: {}", finding.kind.label(), finding.subject);
        let mut adds: Option<i64> = None;
        let mut counted_in: BTreeSet<String> = BTreeSet::new();
        for seat in &finding.seats {
            let key = (
                seat.tenant_id.clone(),
                seat.holder.clone(),
                seat.sku_id.clone(),
            );
            match counted.get(&key) {
                Some(earlier) => {
                    counted_in.insert(earlier.clone());
                    adds.get_or_insert(0);
                }
                None => {
                    counted.insert(key, name.clone());
                    adds = Some(
                        adds.unwrap_or(0)
                            .checked_add(seat.cents)
                            .ok_or_else(overflow)?,
                    );
                    total = Some(
                        total
                            .unwrap_or(0)
                            .checked_add(seat.cents)
                            .ok_or_else(overflow)?,
                    );
                }
            }
        }
        finding.counted_cost_cents = adds;
        finding.counted_in = counted_in.into_iter().collect();
    }
    Ok(total
        .map(|cents| BTreeMap::from([(currency.to_string(), cents)]))
        .unwrap_or_default())
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
            trial: Some(false),
            next_lifecycle: None,
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
                trial: Some(true),
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
        let report = findings(&skus, &users, &prices(), now()).unwrap();

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
        // Its four unassigned seats were never bought, so they cost nothing to price.
        assert!(!trial.contains(&FindingKind::UnassignedSeats));
        assert!(
            report.unpriced_skus.is_empty(),
            "{:?}",
            report.unpriced_skus
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
        let report = findings(&skus, &[odd, unknown], &prices(), now()).unwrap();
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
        )
        .unwrap();
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
                e.to_string().starts_with(
                    "prices.csv, row 3, column monthly_price: '€36' for SPE_E3 is not a price"
                )
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
        assert_eq!(parse_cents("22.5"), Cents::Price(2250));
        assert_eq!(parse_cents("-1"), Cents::NotAPrice);
        assert_eq!(parse_cents("1.234"), Cents::NotAPrice);
        assert_eq!(format_cents(30_400), "304.00");
    }

    #[test]
    fn a_price_list_with_an_unknown_sku_no_rows_a_made_up_currency_or_an_open_quote_is_told() {
        // A misspelt SKU no tenant holds and the catalogue does not know: a note names it.
        let list = PriceList::parse(
            "prices.csv",
            "sku,monthly_price,currency\nSPE_E3,36,EUR\nSPE_E3X,36,EUR\nENTERPRISEPACK,23,EUR\n",
        )
        .unwrap();
        let skus = vec![sku("SPE_E3", "e3", 5, 5, &[])];
        let report = findings(&skus, &[], &list, now()).unwrap();
        let named: Vec<&String> = report
            .notes
            .iter()
            .filter(|n| n.contains("check its spelling"))
            .collect();
        assert_eq!(named.len(), 1, "{:?}", report.notes);
        assert!(
            named[0].starts_with("prices.csv, row 3: SPE_E3X "),
            "{named:?}"
        );
        // A header and nothing else: a note, not silence.
        let empty = PriceList::parse("prices.csv", "sku,monthly_price,currency\n").unwrap();
        let report = findings(&skus, &[], &empty, now()).unwrap();
        assert!(
            report.notes.iter().any(|n| n.contains("no SKU is priced")),
            "{:?}",
            report.notes
        );
        // No list at all is no note.
        let report = findings(&skus, &[], &PriceList::default(), now()).unwrap();
        assert!(report.notes.is_empty(), "{:?}", report.notes);
        // Three letters are not enough to be a currency.
        let e = PriceList::parse(
            "prices.csv",
            "sku,monthly_price,currency\nSPE_E3,36,EUR\nSPB,22,XYZ\n",
        )
        .unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (3, Some("currency")), "{e}");
        assert!(e.problem.contains("'XYZ'"), "{e}");
        // A quote opened and never closed, in the middle of the file or on its last row.
        for (text, row) in [
            ("sku,monthly_price\nSPB,\"22\nSPE_E3,36\nEMS,9\n", 2),
            ("sku,monthly_price\nSPB,22\nSPE_E3,\"36\n", 3),
            ("sku,monthly_price\nSPB,22\nSPE_E3,\"36", 3),
        ] {
            let e = PriceList::parse("prices.csv", text).unwrap_err();
            assert_eq!(e.row, row, "{text:?}: {e}");
            assert!(e.problem.contains("quoting is broken"), "{e}");
        }
        // Quotes that pair up are fine.
        let quoted =
            PriceList::parse("prices.csv", "sku,monthly_price\n\"SPB\",\"22.00\"\n").unwrap();
        assert_eq!(quoted.prices.len(), 1);
    }

    #[test]
    fn prices_are_found_by_part_number_or_sku_id_in_any_case() {
        let list = PriceList::parse(
            "p.csv",
            "SKU,Monthly_Price\nspb,22\n05e9a617-0261-4cee-bb44-138d3ef5d965,36\n",
        )
        .unwrap();
        assert_eq!(list.price(&sku("SPB", "x", 1, 1, &[])), Ok(Some(2200)));
        assert_eq!(
            list.price(&sku(
                "SPE_E3",
                "05E9A617-0261-4CEE-BB44-138D3EF5D965",
                1,
                1,
                &[]
            )),
            Ok(Some(3600))
        );
    }

    fn e3_and_bp() -> Vec<Sku> {
        vec![
            sku("SPE_E3", "e3", 5, 5, &["EXCHANGE_S_ENTERPRISE", "INTUNE_A"]),
            sku("SPB", "bp", 5, 5, &["EXCHANGE_S_STANDARD", "INTUNE_A"]),
        ]
    }

    #[test]
    fn a_disabled_user_with_overlapping_skus_wastes_each_seat_once() {
        let mut gone = user("gone@contoso.com", &["e3", "bp"]);
        gone.account_enabled = Some(false);
        let report = findings(&e3_and_bp(), &[gone], &prices(), now()).unwrap();
        assert_eq!(
            kinds(&report, "gone@contoso.com"),
            vec![FindingKind::DisabledAccount, FindingKind::DuplicateServices]
        );
        // The disabled account wastes its E3 (36) and its Business Premium (22); the
        // duplicate names the Business Premium seat again, which is not a third seat.
        assert_eq!(report.monthly_waste_cents.get("EUR"), Some(&5_800));
    }

    #[test]
    fn each_findings_part_of_the_total_adds_up_to_it_and_names_where_the_rest_is_counted() {
        let mut gone = user("gone@contoso.com", &["e3", "bp"]);
        gone.account_enabled = Some(false);
        gone.user_type = Some("Guest".into());
        let report = findings(&e3_and_bp(), &[gone], &prices(), now()).unwrap();
        // Each finding's kind, cost, part of the total, and where the rest is counted.
        type Part<'a> = (FindingKind, Option<i64>, Option<i64>, &'a [String]);
        let parts: Vec<Part> = report
            .findings
            .iter()
            .map(|f| {
                (
                    f.kind,
                    f.monthly_cost_cents,
                    f.counted_cost_cents,
                    f.counted_in.as_slice(),
                )
            })
            .collect();
        let disabled = "licensed account is disabled: gone@contoso.com".to_string();
        assert_eq!(
            parts,
            vec![
                (
                    FindingKind::DisabledAccount,
                    Some(5_800),
                    Some(5_800),
                    &[][..]
                ),
                (
                    FindingKind::LicensedGuest,
                    Some(5_800),
                    Some(0),
                    &[disabled.clone()][..]
                ),
                (
                    FindingKind::DuplicateServices,
                    Some(2_200),
                    Some(0),
                    &[disabled][..]
                ),
            ]
        );
        let summed: i64 = report
            .findings
            .iter()
            .filter_map(|f| f.counted_cost_cents)
            .sum();
        assert_eq!(report.monthly_waste_cents.get("EUR"), Some(&summed));
    }

    #[test]
    fn a_price_list_in_two_currencies_is_refused_naming_both_rows() {
        let e = PriceList::parse(
            "prices.csv",
            "sku,monthly_price,currency\nSPE_E3,36.00,EUR\nSPB,22.00,USD\n",
        )
        .unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (3, Some("currency")), "{e}");
        assert!(
            e.problem
                .contains("SPB is in USD while SPE_E3 on row 2 is in EUR"),
            "{e}"
        );
        let e = PriceList::parse(
            "prices.csv",
            "sku,monthly_price,currency\nSPE_E3,36.00,EUR\nSPB,22.00,\n",
        )
        .unwrap_err();
        assert!(e.problem.contains("SPB names no currency"), "{e}");
        let e = PriceList::parse("prices.csv", "sku,monthly_price,currency\nSPB,22,Euro\n")
            .unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (2, Some("currency")), "{e}");
        let list = PriceList::parse(
            "prices.csv",
            "sku,monthly_price,currency\nSPE_E3,36.00,usd\nSPB,22.00,USD\n",
        )
        .unwrap();
        assert_eq!(list.currency(), "USD");
    }

    #[test]
    fn an_unpriced_sku_leaves_the_priced_part_of_a_cost_and_is_named() {
        let mut skus = e3_and_bp();
        skus.push(sku("VISIOCLIENT", "visio", 1, 1, &[]));
        let mut gone = user("gone@contoso.com", &["e3", "visio"]);
        gone.account_enabled = Some(false);
        let report = findings(&skus, &[gone], &prices(), now()).unwrap();
        let disabled = &report.findings[0];
        assert_eq!(disabled.kind, FindingKind::DisabledAccount);
        assert_eq!(disabled.monthly_cost_cents, Some(3_600));
        assert_eq!(disabled.currency.as_deref(), Some("EUR"));
        assert_eq!(disabled.unpriced_skus, vec!["VISIOCLIENT".to_string()]);
        assert_eq!(report.unpriced_skus, vec!["VISIOCLIENT".to_string()]);
        assert_eq!(report.monthly_waste_cents.get("EUR"), Some(&3_600));
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("no price for VISIOCLIENT")),
            "{:?}",
            report.notes
        );
        // Which of two overlapping SKUs is cheaper cannot be told when one has no price.
        let mut skus = e3_and_bp();
        skus[1].sku_part_number = "O365_BUSINESS_PREMIUM".into();
        let both = user("both@contoso.com", &["e3", "bp"]);
        let report = findings(&skus, &[both], &prices(), now()).unwrap();
        let duplicate = &report.findings[0];
        assert_eq!(duplicate.kind, FindingKind::DuplicateServices);
        assert_eq!(duplicate.monthly_cost_cents, None);
        assert_eq!(duplicate.unpriced_skus, vec!["O365_BUSINESS_PREMIUM"]);
    }

    #[test]
    fn absurd_prices_and_seat_counts_are_errors_not_panics() {
        let e = PriceList::parse("prices.csv", "sku,monthly_price\nSPB,22\nSPE_E3,3600000\n")
            .unwrap_err();
        assert_eq!(
            (e.row, e.column.as_deref()),
            (3, Some("monthly_price")),
            "{e}"
        );
        assert!(e.to_string().contains("more than 100000.00"), "{e}");
        let e = PriceList::parse(
            "prices.csv",
            "sku,monthly_price\nSPB,99999999999999999999999\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.row, e.column.as_deref()),
            (2, Some("monthly_price")),
            "{e}"
        );
        let list = PriceList::parse("prices.csv", "sku,monthly_price\nSPB,100000\n").unwrap();
        let huge = vec![sku("SPB", "bp", i64::MAX / 2, 0, &[])];
        let e = findings(&huge, &[], &list, now()).unwrap_err();
        assert!(
            matches!(&e, WasteError::Overflow { what } if what.contains("SPB")),
            "{e}"
        );
        let negative = vec![sku("SPB", "bp", i64::MIN, 1, &[])];
        assert!(findings(&negative, &[], &list, now()).is_err());
        // Large but real: two SKUs of a billion free seats each add up without a fault.
        let big = vec![
            sku("SPB", "bp", 1_000_000_000, 0, &[]),
            sku("SPE_E3", "e3", 1_000_000_000, 0, &[]),
        ];
        let report = findings(&big, &[], &prices(), now()).unwrap();
        assert_eq!(
            report.monthly_waste_cents.get("EUR"),
            Some(&(1_000_000_000 * 5_800))
        );
    }

    #[test]
    fn a_sku_priced_by_part_number_and_by_id_is_refused_naming_both_rows() {
        // The catalogue knows that this id is SPE_E3's.
        let e = PriceList::parse(
            "prices.csv",
            "sku,monthly_price\nSPE_E3,36\nSPB,22\n05e9a617-0261-4cee-bb44-138d3ef5d965,30\n",
        )
        .unwrap_err();
        assert_eq!(e.row, 4, "{e}");
        assert!(
            e.problem
                .contains("rows 2 (SPE_E3) and 4 (05e9a617-0261-4cee-bb44-138d3ef5d965)"),
            "{e}"
        );
        // A SKU the catalogue does not know is caught once a tenant's SKU pairs the two.
        let list = PriceList::parse(
            "prices.csv",
            "sku,monthly_price\nCONTOSO_ADDON,3\n11111111-2222-3333-4444-555555555555,4\n",
        )
        .unwrap();
        let addon = vec![sku(
            "CONTOSO_ADDON",
            "11111111-2222-3333-4444-555555555555",
            3,
            1,
            &[],
        )];
        let e = findings(&addon, &[], &list, now()).unwrap_err();
        assert!(
            e.to_string().contains("rows 2 (CONTOSO_ADDON) and 3"),
            "{e}"
        );
    }

    #[test]
    fn skus_given_away_or_priced_at_nothing_are_not_waste() {
        let skus = vec![
            sku("FLOW_FREE", "flow", 10_000, 12, &["FLOW_P2_VIRAL"]),
            sku("POWER_BI_STANDARD", "pbi", 1_000_000, 40, &[]),
            sku("TEAMS_EXPLORATORY", "teams", 10_000, 3, &["TEAMS1"]),
            sku("EXCHANGESTANDARD", "ex", 10, 2, &["EXCHANGE_S_STANDARD"]),
            sku("SPB", "bp", 10, 9, &[]),
        ];
        let list = PriceList::parse(
            "prices.csv",
            "sku,monthly_price,currency\nEXCHANGESTANDARD,0,EUR\nSPB,22,EUR\n",
        )
        .unwrap();
        let mut gone = user("gone@contoso.com", &["flow", "teams"]);
        gone.account_enabled = Some(false);
        let report = findings(&skus, &[gone], &list, now()).unwrap();
        let subjects: Vec<(&str, FindingKind)> = report
            .findings
            .iter()
            .map(|f| (f.subject.as_str(), f.kind))
            .collect();
        assert_eq!(subjects, vec![("SPB", FindingKind::UnassignedSeats)]);
        assert_eq!(report.monthly_waste_cents.get("EUR"), Some(&2_200));
        assert!(
            report.unpriced_skus.is_empty(),
            "{:?}",
            report.unpriced_skus
        );
        let no_charge: Vec<&str> = report
            .seats
            .iter()
            .filter(|s| s.no_charge)
            .map(|s| s.sku_part_number.as_str())
            .collect();
        assert_eq!(
            no_charge,
            vec![
                "FLOW_FREE",
                "POWER_BI_STANDARD",
                "TEAMS_EXPLORATORY",
                "EXCHANGESTANDARD"
            ]
        );
    }

    #[test]
    fn a_disabled_users_trial_seat_is_listed_but_costs_nothing() {
        let skus = vec![
            Sku {
                trial: Some(true),
                ..sku("Microsoft_Teams_Premium", "tp", 25, 2, &["TEAMS1"])
            },
            sku("SPE_E3", "e3", 2, 2, &["EXCHANGE_S_ENTERPRISE"]),
        ];
        let list = PriceList::parse(
            "prices.csv",
            "sku,monthly_price,currency\nMicrosoft_Teams_Premium,7.00,EUR\nSPE_E3,36.00,EUR\n",
        )
        .unwrap();
        let mut both = user("both@contoso.com", &["tp", "e3"]);
        both.account_enabled = Some(false);
        let mut trial_only = user("trial@contoso.com", &["tp"]);
        trial_only.account_enabled = Some(false);
        let report = findings(&skus, &[both, trial_only], &list, now()).unwrap();
        let disabled: Vec<(&str, &[String], Option<i64>)> = report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::DisabledAccount)
            .map(|f| (f.subject.as_str(), f.skus.as_slice(), f.monthly_cost_cents))
            .collect();
        assert_eq!(disabled.len(), 2, "{disabled:?}");
        assert_eq!(disabled[0].0, "both@contoso.com");
        assert_eq!(disabled[0].1, ["Microsoft_Teams_Premium", "SPE_E3"]);
        assert_eq!(disabled[0].2, Some(3_600));
        assert_eq!(disabled[1].0, "trial@contoso.com");
        assert_eq!(disabled[1].2, None);
        assert_eq!(report.monthly_waste_cents.get("EUR"), Some(&3_600));
    }

    #[test]
    fn more_seats_assigned_than_bought_leaves_none_free_and_is_a_finding() {
        let skus = vec![sku("SPE_E3", "e3", 10, 13, &[])];
        let report = findings(&skus, &[], &prices(), now()).unwrap();
        assert_eq!(report.seats[0].free, 0);
        assert_eq!(report.seats[0].assigned, 13);
        let found: Vec<&Finding> = report.findings.iter().collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, FindingKind::OverAssigned);
        assert_eq!(found[0].subject, "SPE_E3");
        assert_eq!(found[0].kind.label(), "more seats assigned than bought");
        assert!(
            found[0]
                .evidence
                .contains("13 seats assigned and 10 bought: 3 more"),
            "{}",
            found[0].evidence
        );
        assert_eq!(found[0].monthly_cost_cents, None);
        assert!(report.monthly_waste_cents.is_empty());
    }

    #[test]
    fn trials_are_told_by_the_subscription_not_the_part_number() {
        let ends = now() + chrono::Duration::days(20);
        let skus = vec![
            // A trial whose part number does not say so.
            Sku {
                trial: Some(true),
                next_lifecycle: Some(ends),
                ..sku("Microsoft_Teams_Premium", "tp", 25, 3, &[])
            },
            // A bought SKU whose part number says "trial".
            sku("POWER_BI_PRO_TRIAL", "bought", 5, 5, &[]),
            // Subscriptions unread: the part number is the only hint, and the evidence says so.
            Sku {
                trial: None,
                ..sku("PROJECT_TRIAL", "unknown", 5, 5, &[])
            },
            // A lapsed subscription with no suspended units counted yet.
            Sku {
                capability_status: "Suspended".into(),
                ..sku("VISIOCLIENT", "visio", 2, 2, &[])
            },
        ];
        let report = findings(&skus, &[], &PriceList::default(), now()).unwrap();
        let trials: Vec<(&str, &str)> = report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::TrialSubscription)
            .map(|f| (f.subject.as_str(), f.evidence.as_str()))
            .collect();
        assert_eq!(trials.len(), 2, "{trials:?}");
        assert_eq!(trials[0].0, "Microsoft_Teams_Premium");
        assert!(trials[0].1.contains("ends on 2026-12-20"), "{trials:?}");
        assert_eq!(trials[1].0, "PROJECT_TRIAL");
        // A trial's 22 unassigned seats are not bought seats.
        assert_eq!(
            kinds(&report, "Microsoft_Teams_Premium"),
            vec![FindingKind::TrialSubscription]
        );
        assert!(
            trials[1].1.contains("LicenseAssignment.Read.All"),
            "{trials:?}"
        );
        assert_eq!(
            kinds(&report, "VISIOCLIENT"),
            vec![FindingKind::SuspendedSeats]
        );
    }
}
