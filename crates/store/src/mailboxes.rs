//! Mailboxes from the usage report. A live mailbox belongs to the tenant's live contact of the
//! same user principal name (case-insensitively): the two are joined by that key when read, never
//! tied by a stored link, so the users and mailbox steps each write only their own rows, in
//! whichever order they finish, and a renamed user's mailbox follows the name at once.

use std::collections::HashMap;

use domain::keys::Listed;
use domain::records::fingerprint;
use domain::{MailboxRecord, TenantId};
use futures_util::TryStreamExt;

use crate::backend::{Columns, Tx, fetch_in, on_pool, on_tx};
use crate::error::{Context, Executed, Result, StoreError};
use crate::statistics::GrowingTable;
use crate::{StepCounts, Store, now_millis};

/// Whether contact `c` is the one that mailbox `m` belongs to: a mailbox not deleted in Exchange
/// belongs to the tenant's contact of the same user principal name that is neither archived nor
/// in the recycle bin (whose name a new user may take), and of two such (a user renamed to the
/// name another gives up, between two pages of one sync) to the newer. Every reader asks in these
/// words, so a mailbox shows on one contact at most.
macro_rules! owns_mailbox {
    () => {
        "c.tenant_id = m.tenant_id AND c.upn_key = m.upn_key AND m.is_deleted = FALSE \
         AND c.archived = FALSE AND c.deleted_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM contacts newer WHERE newer.tenant_id = c.tenant_id AND newer.upn_key = c.upn_key \
         AND newer.archived = FALSE AND newer.deleted_at IS NULL AND newer.id > c.id)"
    };
}
pub(crate) use owns_mailbox;

/// Rows per multi-row upsert (20 values each).
const UPSERT_CHUNK: usize = 250;

/// A stored mailbox, for lists and exports: live ones with the contact they belong to, deleted
/// ones on their own.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MailboxRow {
    pub tenant_id: String,
    pub organization: Option<String>,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub recipient_type: Option<String>,
    pub is_deleted: bool,
    pub deleted_date: Option<String>,
    /// The contact's object id, for a live mailbox that belongs to a synced user.
    pub contact_object_id: Option<String>,
    pub storage_used_bytes: Option<i64>,
    pub item_count: Option<i64>,
    pub issue_warning_quota_bytes: Option<i64>,
    pub prohibit_send_quota_bytes: Option<i64>,
    pub prohibit_send_receive_quota_bytes: Option<i64>,
    pub deleted_item_count: Option<i64>,
    pub deleted_item_size_bytes: Option<i64>,
    pub has_archive: Option<bool>,
    pub created_date: Option<String>,
    pub last_activity_date: Option<String>,
    pub archived: bool,
}

/// Which mailboxes a listing wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxKind {
    Live,
    Deleted,
}

struct Existing {
    fingerprint: String,
    archived: bool,
}

impl Store {
    /// Writes one batch of report rows; a row whose figures are as stored is left alone.
    pub async fn apply_mailboxes(
        &self,
        tenant_id: &TenantId,
        records: &[MailboxRecord],
    ) -> Result<StepCounts> {
        let mut counts = StepCounts::default();
        if records.is_empty() {
            return Ok(counts);
        }
        let tenant = tenant_id.to_string();
        let now = now_millis();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&lock_key(&tenant)).await?;
        tx.plan_key_lookups().await?;
        let keys: Vec<String> = records
            .iter()
            .map(|r| r.user_principal_name.key().to_string())
            .collect();
        let existing = existing_mailboxes(&mut tx, &tenant, &keys).await?;
        // One row per mailbox key: where a report lists a UPN twice (a deleted mailbox whose name
        // was reused), the live mailbox wins.
        let mut latest: HashMap<&str, &MailboxRecord> = HashMap::new();
        for (record, key) in records.iter().zip(&keys) {
            match latest.get(key.as_str()) {
                Some(kept) if !kept.is_deleted && record.is_deleted => {}
                _ => {
                    latest.insert(key.as_str(), record);
                }
            }
        }
        let mut changed: Vec<(&str, &MailboxRecord, String)> = Vec::new();
        for key in &keys {
            let Some(record) = latest.remove(key.as_str()) else {
                continue;
            };
            let print = fingerprint(record);
            match existing.get(key) {
                Some(found) if !found.archived && found.fingerprint == print => {
                    counts.unchanged += 1
                }
                Some(_) => {
                    counts.updated += 1;
                    changed.push((key, record, print));
                }
                None => {
                    counts.created += 1;
                    changed.push((key, record, print));
                }
            }
        }
        for chunk in changed.chunks(UPSERT_CHUNK) {
            on_tx!(&mut tx, |c| {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO mailboxes (tenant_id, upn_key, user_principal_name, display_name, is_deleted, storage_used_bytes, item_count, \
                     issue_warning_quota_bytes, prohibit_send_quota_bytes, prohibit_send_receive_quota_bytes, deleted_item_count, deleted_item_size_bytes, \
                     has_archive, created_date, last_activity_date, recipient_type, deleted_date, fingerprint, created_at, updated_at) ",
                );
                query.push_values(chunk, |mut row, (key, record, print)| {
                    row.push_bind(tenant.clone())
                        .push_bind(key.to_string())
                        .push_bind(record.user_principal_name.as_str().to_string())
                        .push_bind(record.display_name.clone())
                        .push_bind(record.is_deleted)
                        .push_bind(record.storage_used_bytes)
                        .push_bind(record.item_count)
                        .push_bind(record.issue_warning_quota_bytes)
                        .push_bind(record.prohibit_send_quota_bytes)
                        .push_bind(record.prohibit_send_receive_quota_bytes)
                        .push_bind(record.deleted_item_count)
                        .push_bind(record.deleted_item_size_bytes)
                        .push_bind(record.has_archive)
                        .push_bind(record.created_date.clone())
                        .push_bind(record.last_activity_date.clone())
                        .push_bind(record.recipient_type.clone())
                        .push_bind(record.deleted_date.clone())
                        .push_bind(print.clone())
                        .push_bind(now)
                        .push_bind(now);
                });
                query.push(
                    " ON CONFLICT (tenant_id, upn_key) DO UPDATE SET user_principal_name = excluded.user_principal_name, \
                     display_name = excluded.display_name, is_deleted = excluded.is_deleted, storage_used_bytes = excluded.storage_used_bytes, \
                     item_count = excluded.item_count, issue_warning_quota_bytes = excluded.issue_warning_quota_bytes, \
                     prohibit_send_quota_bytes = excluded.prohibit_send_quota_bytes, prohibit_send_receive_quota_bytes = excluded.prohibit_send_receive_quota_bytes, \
                     deleted_item_count = excluded.deleted_item_count, deleted_item_size_bytes = excluded.deleted_item_size_bytes, \
                     has_archive = excluded.has_archive, created_date = excluded.created_date, last_activity_date = excluded.last_activity_date, \
                     recipient_type = excluded.recipient_type, deleted_date = excluded.deleted_date, \
                     fingerprint = excluded.fingerprint, archived = FALSE, updated_at = excluded.updated_at",
                );
                query
                    .build()
                    .persistent(false)
                    .execute(c)
                    .await
                    .done("saving mailboxes")
            })?;
        }
        tx.commit().await?;
        self.growth
            .added(&self.pool, GrowingTable::Mailboxes, counts.created)
            .await;
        Ok(counts)
    }

    /// The live or the deleted mailboxes, of one tenant when given, by tenant and UPN.
    pub async fn mailboxes(
        &self,
        tenant_id: Option<&TenantId>,
        kind: MailboxKind,
        include_archived: bool,
    ) -> Result<Vec<MailboxRow>> {
        let tenant = tenant_id.map(ToString::to_string);
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(concat!(
                "SELECT m.*, o.name AS organization, (SELECT c.object_id FROM contacts c WHERE ",
                owns_mailbox!(),
                ") AS contact_object_id \
                 FROM mailboxes m LEFT JOIN tenants t ON t.tenant_id = m.tenant_id LEFT JOIN organizations o ON o.id = t.organization_id \
                 WHERE m.is_deleted = $1 AND ($2 IS NULL OR m.tenant_id = $2) AND ($3 OR m.archived = FALSE) \
                 ORDER BY m.tenant_id, m.upn_key",
            ))
            .bind(kind == MailboxKind::Deleted)
            .bind(tenant.as_deref())
            .bind(include_archived)
            .fetch_all(p)
            .await
            .doing("listing mailboxes")?;
            rows.iter()
                .map(|r| {
                    Ok(MailboxRow {
                        tenant_id: r.text_req("tenant_id")?,
                        organization: r.text("organization")?,
                        user_principal_name: r.text_req("user_principal_name")?,
                        display_name: r.text("display_name")?,
                        recipient_type: r.text("recipient_type")?,
                        is_deleted: r.flag("is_deleted")?.unwrap_or(false),
                        deleted_date: r.text("deleted_date")?,
                        contact_object_id: r.text("contact_object_id")?,
                        storage_used_bytes: r.int("storage_used_bytes")?,
                        item_count: r.int("item_count")?,
                        issue_warning_quota_bytes: r.int("issue_warning_quota_bytes")?,
                        prohibit_send_quota_bytes: r.int("prohibit_send_quota_bytes")?,
                        prohibit_send_receive_quota_bytes: r
                            .int("prohibit_send_receive_quota_bytes")?,
                        deleted_item_count: r.int("deleted_item_count")?,
                        deleted_item_size_bytes: r.int("deleted_item_size_bytes")?,
                        has_archive: r.flag("has_archive")?,
                        created_date: r.text("created_date")?,
                        last_activity_date: r.text("last_activity_date")?,
                        archived: r.flag("archived")?.unwrap_or(false),
                    })
                })
                .collect()
        })
    }

    /// Archives the tenant's mailboxes a complete report did not list. With `since`, those the
    /// report created itself are not read (see [`crate::StoredSince`]). The active mailboxes
    /// are read one row at a time and only those to archive are kept: a large tenant has a
    /// million.
    pub async fn archive_mailboxes_not_in(
        &self,
        tenant_id: &TenantId,
        seen_upn_keys: &impl Listed,
        since: Option<&crate::StoredSince>,
    ) -> Result<u64> {
        let stored_up_to = match since {
            Some(since) => {
                let newer: i64 = on_pool!(&self.pool, |p| {
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM mailboxes WHERE tenant_id = $1 AND id > $2",
                    )
                    .bind(tenant_id.to_string())
                    .bind(since.newest_before())
                    .fetch_one(p)
                    .await
                    .doing("counting the tenant's newer mailboxes")
                })?;
                since.read_up_to(newer)
            }
            None => None,
        };
        let gone: Vec<i64> = on_pool!(&self.pool, |p| {
            let mut rows = sqlx::query(
                "SELECT id, upn_key FROM mailboxes WHERE tenant_id = $1 AND archived = FALSE AND id <= $2",
            )
            .bind(tenant_id.to_string())
            .bind(stored_up_to.unwrap_or(i64::MAX))
            .fetch(p);
            let mut gone = Vec::new();
            while let Some(row) = rows
                .try_next()
                .await
                .doing("listing mailboxes to archive")?
            {
                if !seen_upn_keys.names(&row.text_req("upn_key")?) {
                    gone.push(row.int_req("id")?);
                }
            }
            Ok::<_, StoreError>(gone)
        })?;
        self.archive_rows("mailboxes", tenant_id, &gone).await
    }

    /// How many mailboxes of a tenant are attached to a contact (for tests and the run summary).
    pub async fn attached_mailbox_count(&self, tenant_id: &TenantId) -> Result<i64> {
        on_pool!(&self.pool, |p| {
            sqlx::query_scalar(concat!(
                "SELECT COUNT(*) FROM mailboxes m WHERE m.tenant_id = $1 AND m.archived = FALSE \
                 AND EXISTS (SELECT 1 FROM contacts c WHERE ",
                owns_mailbox!(),
                ")"
            ))
            .bind(tenant_id.to_string())
            .fetch_one(p)
            .await
            .doing("counting mailboxes")
        })
    }
}

async fn existing_mailboxes(
    tx: &mut Tx,
    tenant: &str,
    keys: &[String],
) -> Result<HashMap<String, Existing>> {
    on_tx!(tx, |c| {
        let rows = fetch_in!(
            c,
            "SELECT upn_key, fingerprint, archived FROM mailboxes",
            "upn_key",
            tenant,
            keys
        )
        .doing("reading existing mailboxes")?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.text_req("upn_key")?,
                    Existing {
                        fingerprint: r.text_req("fingerprint")?,
                        archived: r.flag("archived")?.unwrap_or(false),
                    },
                ))
            })
            .collect()
    })
}

/// The lock a tenant's mailbox writers share. Mailboxes are written apart from everything else
/// of the tenant (they are joined to contacts only when read), so they do not wait for the
/// tenant's contact pages, nor those for them.
pub(crate) fn lock_key(tenant: &str) -> String {
    format!("{tenant}/mailboxes")
}
