//! `export`: the store's records as JSON or CSV on standard output, read a page at a time.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::json;
use store::{ContactFilter, ContactRow};

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
    Domains,
    ServiceHealth,
    ServiceMessages,
    Applications,
    TermsOfUse,
    Usage,
    Groups,
    DirectoryRoles,
    ManagedDevices,
    DetectedApps,
    Devices,
    SignInActivity,
    Audit,
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
            Self::Usage => Some(Dataset::Usage),
            Self::Groups => Some(Dataset::Groups),
            Self::DirectoryRoles => Some(Dataset::DirectoryRoles),
            Self::ManagedDevices => Some(Dataset::ManagedDevices),
            Self::DetectedApps => Some(Dataset::DetectedApps),
            Self::Devices => Some(Dataset::Devices),
            Self::SignInActivity => Some(Dataset::SignInActivity),
            Self::Audit => Some(Dataset::Audit),
            Self::Contacts
            | Self::Organizations
            | Self::Licenses
            | Self::Mailboxes
            | Self::DeletedMailboxes => None,
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
    what: What,
    /// Only what this connection's tenant holds.
    #[arg(long)]
    connection: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Include archived records (gone from the tenant).
    #[arg(long)]
    include_archived: bool,
}

fn contact_json(c: &ContactRow) -> serde_json::Value {
    json!({
        "object_id": c.object_id,
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
        "archived": c.archived,
    })
}

const CONTACT_COLUMNS: [&str; 23] = [
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
    "archived",
];

fn contact_csv(c: &ContactRow) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let mailbox = c.mailbox.as_ref();
    vec![
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
        c.archived.to_string(),
    ]
}

pub async fn run(db: &str, args: ExportArgs) -> anyhow::Result<ExitCode> {
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
    if let Some(dataset) = args.what.inventory() {
        let rows = store
            .inventory(tenant_id.as_ref(), dataset, args.include_archived)
            .await?;
        if args.format == Format::Csv {
            // The document's fields differ per dataset: CSV carries the shared columns and the
            // whole document as JSON, which spreadsheet tools can split further.
            let mut csv = csv::Writer::from_writer(&mut out);
            csv.write_record([
                "organization",
                "tenant_id",
                "key",
                "name",
                "archived",
                "document",
            ])?;
            for row in &rows {
                csv.write_record([
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
    if let Some(kind) = match args.what {
        What::Mailboxes => Some(store::MailboxKind::Live),
        What::DeletedMailboxes => Some(store::MailboxKind::Deleted),
        _ => None,
    } {
        let rows = store
            .mailboxes(tenant_id.as_ref(), kind, args.include_archived)
            .await?;
        if args.format == Format::Csv {
            let mut csv = csv::Writer::from_writer(&mut out);
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
        What::Mailboxes | What::DeletedMailboxes => {}
        What::Domains
        | What::ServiceHealth
        | What::ServiceMessages
        | What::Applications
        | What::TermsOfUse
        | What::Usage
        | What::Groups
        | What::DirectoryRoles
        | What::ManagedDevices
        | What::DetectedApps
        | What::Devices
        | What::SignInActivity
        | What::Audit => {}
        What::Contacts => {
            let filter = ContactFilter {
                tenant_id,
                include_archived: args.include_archived,
                ..ContactFilter::default()
            };
            if args.format == Format::Csv {
                let mut csv = csv::Writer::from_writer(&mut out);
                csv.write_record(CONTACT_COLUMNS)?;
                let mut failed: Option<csv::Error> = None;
                store
                    .each_contact(&filter, |c| {
                        if failed.is_none() {
                            failed = csv.write_record(contact_csv(&c)).err();
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
                        let text = contact_json(&c).to_string();
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
                orgs.retain(|o| o.tenant_id.as_deref() == Some(t.to_string().as_str()));
            }
            if !args.include_archived {
                orgs.retain(|o| !o.archived);
            }
            if args.format == Format::Csv {
                let mut csv = csv::Writer::from_writer(&mut out);
                csv.write_record([
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
                    csv.write_record([
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
                let mut csv = csv::Writer::from_writer(&mut out);
                csv.write_record([
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
                    csv.write_record([
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
