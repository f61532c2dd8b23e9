//! The `usage` and `sign_in_activity` tables: what the usage reports say of each user (one row
//! per user per report) and when each user last signed in (one row per user, by object id), and
//! how a page of contacts finds theirs.

use std::collections::HashMap;

use domain::rows::Keyed;
use domain::usage::{SignInRecord, UsageRecord, UsageReport};
use serde_json::{Map, Value};

use crate::backend::{Pool, on_pool};
use crate::contacts::ContactRow;
use crate::error::{Context, Result, StoreError};
use crate::typed::{Cell, Cells, Kind, TypedTable, stored_row};

/// The columns each report fills, beside `report` and `user_principal_name`.
fn report_columns(report: UsageReport) -> &'static [&'static str] {
    match report {
        UsageReport::Activity => &[
            "is_deleted",
            "exchange_last_activity",
            "onedrive_last_activity",
            "sharepoint_last_activity",
            "teams_last_activity",
            "yammer_last_activity",
            "skype_last_activity",
            "has_exchange_license",
            "has_onedrive_license",
            "has_sharepoint_license",
            "has_teams_license",
            "assigned_products",
        ],
        UsageReport::Apps => &[
            "last_activation",
            "last_activity",
            "windows",
            "mac",
            "mobile",
            "web",
            "outlook",
            "word",
            "excel",
            "powerpoint",
            "onenote",
            "teams",
        ],
        UsageReport::Email => &[
            "is_deleted",
            "last_activity",
            "send_count",
            "receive_count",
            "read_count",
            "meeting_created_count",
            "meeting_interacted_count",
        ],
    }
}

impl TypedTable for UsageRecord {
    const TABLE: &'static str = "usage";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("report", Kind::Text),
        ("user_principal_name", Kind::Text),
        ("is_deleted", Kind::Flag),
        ("last_activity", Kind::Text),
        ("exchange_last_activity", Kind::Text),
        ("onedrive_last_activity", Kind::Text),
        ("sharepoint_last_activity", Kind::Text),
        ("teams_last_activity", Kind::Text),
        ("yammer_last_activity", Kind::Text),
        ("skype_last_activity", Kind::Text),
        ("has_exchange_license", Kind::Flag),
        ("has_onedrive_license", Kind::Flag),
        ("has_sharepoint_license", Kind::Flag),
        ("has_teams_license", Kind::Flag),
        ("assigned_products", Kind::Text),
        ("last_activation", Kind::Text),
        ("windows", Kind::Flag),
        ("mac", Kind::Flag),
        ("mobile", Kind::Flag),
        ("web", Kind::Flag),
        ("outlook", Kind::Flag),
        ("word", Kind::Flag),
        ("excel", Kind::Flag),
        ("powerpoint", Kind::Flag),
        ("onenote", Kind::Flag),
        ("teams", Kind::Flag),
        ("send_count", Kind::Int),
        ("receive_count", Kind::Int),
        ("read_count", Kind::Int),
        ("meeting_created_count", Kind::Int),
        ("meeting_interacted_count", Kind::Int),
    ];

    fn cells(&self) -> Vec<Cell> {
        let text = |v: &Option<String>| Cell::Text(v.clone());
        vec![
            Cell::Text(Some(self.report().as_str().to_string())),
            Cell::Text(Some(self.user_principal_name().to_string())),
            Cell::Flag(self.is_deleted),
            text(&self.last_activity),
            text(&self.exchange_last_activity),
            text(&self.onedrive_last_activity),
            text(&self.sharepoint_last_activity),
            text(&self.teams_last_activity),
            text(&self.yammer_last_activity),
            text(&self.skype_last_activity),
            Cell::Flag(self.has_exchange_license),
            Cell::Flag(self.has_onedrive_license),
            Cell::Flag(self.has_sharepoint_license),
            Cell::Flag(self.has_teams_license),
            text(&self.assigned_products),
            text(&self.last_activation),
            Cell::Flag(self.windows),
            Cell::Flag(self.mac),
            Cell::Flag(self.mobile),
            Cell::Flag(self.web),
            Cell::Flag(self.outlook),
            Cell::Flag(self.word),
            Cell::Flag(self.excel),
            Cell::Flag(self.powerpoint),
            Cell::Flag(self.onenote),
            Cell::Flag(self.teams),
            Cell::Int(self.send_count),
            Cell::Int(self.receive_count),
            Cell::Int(self.read_count),
            Cell::Int(self.meeting_created_count),
            Cell::Int(self.meeting_interacted_count),
        ]
    }

    fn from_cells(key: String, cells: &mut Cells) -> Result<Self> {
        let report = cells.text()?.unwrap_or_default();
        let report = UsageReport::parse(&report)
            .ok_or_else(|| StoreError::Corrupt(format!("usage row {key}: report '{report}'")))?;
        let upn = cells.text()?.unwrap_or_default();
        let mut row = UsageRecord::new(report, &upn);
        if row.key() != key {
            return Err(StoreError::Corrupt(format!(
                "usage row {key} holds {}",
                row.key()
            )));
        }
        row.is_deleted = cells.flag()?;
        row.last_activity = cells.text()?;
        row.exchange_last_activity = cells.text()?;
        row.onedrive_last_activity = cells.text()?;
        row.sharepoint_last_activity = cells.text()?;
        row.teams_last_activity = cells.text()?;
        row.yammer_last_activity = cells.text()?;
        row.skype_last_activity = cells.text()?;
        row.has_exchange_license = cells.flag()?;
        row.has_onedrive_license = cells.flag()?;
        row.has_sharepoint_license = cells.flag()?;
        row.has_teams_license = cells.flag()?;
        row.assigned_products = cells.text()?;
        row.last_activation = cells.text()?;
        row.windows = cells.flag()?;
        row.mac = cells.flag()?;
        row.mobile = cells.flag()?;
        row.web = cells.flag()?;
        row.outlook = cells.flag()?;
        row.word = cells.flag()?;
        row.excel = cells.flag()?;
        row.powerpoint = cells.flag()?;
        row.onenote = cells.flag()?;
        row.teams = cells.flag()?;
        row.send_count = cells.int()?;
        row.receive_count = cells.int()?;
        row.read_count = cells.int()?;
        row.meeting_created_count = cells.int()?;
        row.meeting_interacted_count = cells.int()?;
        Ok(row)
    }
}

impl TypedTable for SignInRecord {
    const TABLE: &'static str = "sign_in_activity";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("user_principal_name", Kind::Text),
        ("last_sign_in", Kind::Text),
        ("last_non_interactive_sign_in", Kind::Text),
        ("last_successful_sign_in", Kind::Text),
    ];

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::Text(self.user_principal_name.clone()),
            Cell::Text(self.last_sign_in.clone()),
            Cell::Text(self.last_non_interactive_sign_in.clone()),
            Cell::Text(self.last_successful_sign_in.clone()),
        ]
    }

    fn from_cells(key: String, cells: &mut Cells) -> Result<Self> {
        Ok(SignInRecord {
            object_id: key,
            user_principal_name: cells.text()?,
            last_sign_in: cells.text()?,
            last_non_interactive_sign_in: cells.text()?,
            last_successful_sign_in: cells.text()?,
        })
    }
}

/// A row's columns by name, those `keep` admits, as JSON.
fn fields<R: TypedTable>(record: &R, keep: impl Fn(&str) -> bool) -> Map<String, Value> {
    R::COLUMNS
        .iter()
        .zip(record.cells())
        .filter(|((name, _), _)| keep(name))
        .map(|((name, _), cell)| {
            let value = serde_json::to_value(&cell).unwrap_or(Value::Null);
            (name.to_string(), value)
        })
        .collect()
}

/// What a contact shows of a usage row: its own report's columns, not the others' empty ones.
pub(crate) fn usage_fields(row: &UsageRecord) -> Map<String, Value> {
    let own = report_columns(row.report());
    fields(row, |name| {
        matches!(name, "report" | "user_principal_name") || own.contains(&name)
    })
}

pub(crate) fn sign_in_fields(row: &SignInRecord) -> Map<String, Value> {
    let mut map = fields(row, |_| true);
    map.insert("object_id".into(), Value::String(row.object_id.clone()));
    map
}

/// For each contact of a page (by id), its active usage rows by report (`activity`, `apps`,
/// `email`) and its sign-in activity (`sign_in`). Usage is found by UPN, as the reports name
/// people; sign-in activity by object id.
pub(crate) async fn of_contacts(
    pool: &Pool,
    contacts: &[ContactRow],
) -> Result<HashMap<i64, Map<String, Value>>> {
    let mut by_upn: HashMap<(&str, String), Vec<i64>> = HashMap::new();
    let mut by_object: HashMap<(&str, String), Vec<i64>> = HashMap::new();
    let mut upns: HashMap<&str, Vec<String>> = HashMap::new();
    let mut objects: HashMap<&str, Vec<String>> = HashMap::new();
    for contact in contacts {
        let Some(tenant) = contact.tenant_id.as_deref() else {
            continue;
        };
        if let Some(upn) = &contact.user_principal_name {
            let upn = upn.to_lowercase();
            upns.entry(tenant).or_default().push(upn.clone());
            by_upn.entry((tenant, upn)).or_default().push(contact.id);
        }
        if let Some(object_id) = &contact.object_id {
            let object_id = object_id.to_lowercase();
            objects.entry(tenant).or_default().push(object_id.clone());
            by_object
                .entry((tenant, object_id))
                .or_default()
                .push(contact.id);
        }
    }
    let mut found: HashMap<i64, Map<String, Value>> = HashMap::new();
    for (tenant, upns) in upns {
        let rows: Vec<UsageRecord> =
            active_rows_where(pool, tenant, "user_principal_name", &upns).await?;
        for row in rows {
            let key = (tenant, row.user_principal_name().to_string());
            for id in by_upn.get(&key).into_iter().flatten() {
                found.entry(*id).or_default().insert(
                    row.report().as_str().to_string(),
                    Value::Object(usage_fields(&row)),
                );
            }
        }
    }
    for (tenant, object_ids) in objects {
        let rows: Vec<SignInRecord> =
            active_rows_where(pool, tenant, "item_key", &object_ids).await?;
        for row in rows {
            let key = (tenant, row.object_id.clone());
            for id in by_object.get(&key).into_iter().flatten() {
                found
                    .entry(*id)
                    .or_default()
                    .insert("sign_in".into(), Value::Object(sign_in_fields(&row)));
            }
        }
    }
    Ok(found)
}

/// A tenant's active rows whose `column` (one of the table's indexed ones) holds one of
/// `values`.
async fn active_rows_where<R: TypedTable>(
    pool: &Pool,
    tenant: &str,
    column: &'static str,
    values: &[String],
) -> Result<Vec<R>> {
    let select = format!(
        "SELECT item_key, archived, {} FROM {} WHERE archived = FALSE AND tenant_id = ",
        R::COLUMNS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", "),
        R::TABLE
    );
    let mut found = Vec::new();
    for chunk in values.chunks(500) {
        let rows = on_pool!(pool, |p| {
            let mut query = sqlx::QueryBuilder::new(select.as_str());
            query
                .push_bind(tenant.to_string())
                .push(format!(" AND {column} IN ("));
            let mut list = query.separated(", ");
            for value in chunk {
                list.push_bind(value.clone());
            }
            query.push(")");
            let rows = query
                .build()
                .persistent(false)
                .fetch_all(p)
                .await
                .doing("reading contacts' usage and sign-in activity")?;
            rows.iter()
                .map(|r| stored_row::<R>(r).map(|(_, row)| row.record))
                .collect::<Result<Vec<_>>>()
        })?;
        found.extend(rows);
    }
    Ok(found)
}
