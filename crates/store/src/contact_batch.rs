//! One page of users, read and written in one transaction: the store reads what the plan
//! needs (`stored`), the caller plans with `domain::plan`, and the store applies that plan with
//! its change rows and the checkpoint it covers (`apply`), deciding nothing itself. A batch that
//! logs for a run's step (`logging`) also keeps the outcome of every user it changed, left out
//! or could not write (`crate::run_records`), written with the plan when it commits.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use domain::filter::{SkipReason, UserFacts, UserFilter};
use domain::plan::{
    ArchiveReason, ContactAction, ContactPlan, CustomChange, FieldChange, Fields, PlanTally,
    Removal, StoredContact, StoredContacts, link_keys, plan_contacts, plan_not_listed,
};
use domain::{ContactRecord, ObjectId, TenantId};
use futures_util::TryStreamExt;

use crate::backend::{Columns, Tx, fetch_in, on_pool, on_tx};
use crate::contacts::{
    Checkpoint, INSERT_CHUNK, assignments, insert_contacts, save_checkpoint, save_licences,
};
use crate::error::{Context, Executed, Result, StoreError};
use crate::run_records::{RecordOutcome, RecordStep, RunRecord, write_records};
use crate::statistics::GrowingTable;
use crate::{Store, now_millis};

const CONTACT_COLUMNS: &str = "SELECT id, organization_id, object_id, archived, fingerprint, user_principal_name, upn_key, email, email_key, display_name, given_name, surname, job_title, department, office_location, mobile_phone, business_phones, aliases, account_enabled, user_type, restorable_until FROM contacts";

/// What a complete listing (of users, or a mailbox report) has stored since it began: the
/// newest row id before it, and how many rows it has created itself. A row it created is one it
/// listed, so it need not be read back to find what the listing lacked; that spares reading a
/// whole tenant after a first sync. Another writer may have created rows of the tenant
/// meanwhile (a review settled, another connection to the same tenant): when the tenant's newer
/// rows are more than the listing created, every row is read, as without this.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredSince {
    newest_before: i64,
    inserted: u64,
}

impl StoredSince {
    pub(crate) fn newest_before(&self) -> i64 {
        self.newest_before
    }

    /// Counts rows the listing created itself.
    pub fn created(&mut self, rows: u64) {
        self.inserted += rows;
    }

    /// The newest row to read back, given how many of the tenant's rows are newer than where
    /// the listing began.
    pub(crate) fn read_up_to(&self, newer: i64) -> Option<i64> {
        (u64::try_from(newer).ok() == Some(self.inserted)).then_some(self.newest_before)
    }
}

/// A page of users being written: a transaction holding the tenant's lock.
pub struct ContactBatch {
    tx: Tx,
    organization_id: i64,
    tenant: String,
    /// The step whose records this batch keeps, and those it has to write on commit.
    log: Option<(RecordStep, Vec<RunRecord>)>,
    /// Contacts this batch created, counted into the table's growth once committed.
    created: u64,
    pool: crate::backend::Pool,
    growth: crate::statistics::TableGrowth,
}

/// A user a connection's filters leave out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FilteredUser {
    pub tenant_id: String,
    pub object_id: String,
    pub user_principal_name: String,
    pub display_name: String,
    /// The rule's code (`disabled`, `guest`, `domain_excluded`, …).
    pub reason: String,
    /// The domain or mailbox kind the rule looked at, where it did.
    pub detail: Option<String>,
    pub updated_at: i64,
}

/// What applying a plan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub counts: crate::StepCounts,
    /// Users held for review instead of written.
    pub held: u64,
}

impl Store {
    /// The users the filters leave out, of one tenant or all.
    pub async fn filtered_users(&self, tenant_id: Option<&TenantId>) -> Result<Vec<FilteredUser>> {
        let tenant = tenant_id.map(ToString::to_string);
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT tenant_id, object_id, user_principal_name, display_name, reason, detail, updated_at FROM filtered_users \
                 WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY tenant_id, user_principal_name",
            )
            .bind(tenant.as_deref())
            .fetch_all(p)
            .await
            .doing("listing users left out")?;
            rows.iter()
                .map(|r| {
                    Ok(FilteredUser {
                        tenant_id: r.text_req("tenant_id")?,
                        object_id: r.text_req("object_id")?,
                        user_principal_name: r.text_req("user_principal_name")?,
                        display_name: r.text_req("display_name")?,
                        reason: r.text_req("reason")?,
                        detail: r.text("detail")?,
                        updated_at: r.int_req("updated_at")?,
                    })
                })
                .collect()
        })
    }

    /// What the connection's filters need to know of the tenant's users beyond the users
    /// themselves: part numbers of its SKUs, which mailboxes the last mailbox report named shared,
    /// room or equipment, and the members of the chosen groups (as the last groups sync saw them).
    pub async fn user_facts(&self, tenant_id: &TenantId, filter: &UserFilter) -> Result<UserFacts> {
        let mut facts = UserFacts::default();
        if filter.is_empty() {
            return Ok(facts);
        }
        facts.sku_part_numbers = self
            .licenses(Some(tenant_id), true)
            .await?
            .into_iter()
            .map(|l| (l.sku_id.to_lowercase(), l.sku_part_number))
            .collect();
        if filter.exclude_resource_mailboxes {
            let rows: Vec<(String, String)> = on_pool!(&self.pool, |p| {
                sqlx::query_as(
                    "SELECT upn_key, recipient_type FROM mailboxes WHERE tenant_id = $1 AND archived = FALSE AND recipient_type IN ('shared', 'room', 'equipment')",
                )
                .bind(tenant_id.to_string())
                .fetch_all(p)
                .await
                .doing("reading the kinds of mailboxes")
            })?;
            facts.resource_mailboxes = rows.into_iter().collect();
        }
        if !filter.groups.is_empty() {
            facts.group_members = self.members_of_groups(tenant_id, &filter.groups).await?;
        }
        Ok(facts)
    }

    /// Archives the tenant's contacts that a complete listing did not return, as
    /// `domain::plan::plan_not_listed` plans it, saving the listing's checkpoint with it.
    pub async fn archive_contacts_not_in(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
        listed: &HashSet<ObjectId>,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<u64> {
        let mut batch = self.contact_batch(organization_id, tenant_id).await?;
        let active = batch
            .active_linked_where(None, |c| !listed.contains(&c.object_id))
            .await?;
        let plan = plan_not_listed(&active, listed);
        let applied = batch.apply(&plan, None, checkpoint).await?;
        batch.commit().await?;
        Ok(applied.counts.archived)
    }

    /// Where the contacts a listing beginning now will create start (see [`StoredSince`]).
    pub async fn contacts_stored_since(&self) -> Result<StoredSince> {
        self.stored_since("SELECT COALESCE(MAX(id), 0) FROM contacts")
            .await
    }

    /// Where the mailboxes a report beginning now will create start (see [`StoredSince`]).
    pub async fn mailboxes_stored_since(&self) -> Result<StoredSince> {
        self.stored_since("SELECT COALESCE(MAX(id), 0) FROM mailboxes")
            .await
    }

    async fn stored_since(&self, newest: &'static str) -> Result<StoredSince> {
        let newest_before = on_pool!(&self.pool, |p| {
            sqlx::query_scalar::<_, i64>(newest)
                .fetch_one(p)
                .await
                .doing("reading the newest row's id")
        })?;
        Ok(StoredSince {
            newest_before,
            inserted: 0,
        })
    }

    /// Starts writing a page of the tenant's users into the organisation.
    pub async fn contact_batch(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
    ) -> Result<ContactBatch> {
        let tenant = tenant_id.to_string();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        tx.plan_key_lookups().await?;
        Ok(ContactBatch {
            tx,
            organization_id,
            tenant,
            log: None,
            created: 0,
            pool: self.pool.clone(),
            growth: self.growth.clone(),
        })
    }

    /// One page of a delta round or listing (its removals taken as for good), planned by
    /// `domain::plan::plan_contacts` and applied with the round's checkpoint, in one transaction
    /// (invariant 5).
    pub async fn apply_contact_changes(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
        records: &[ContactRecord],
        removed: &[ObjectId],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<crate::StepCounts> {
        let removed: Vec<Removal> = removed
            .iter()
            .map(|id| Removal::from_reason(*id, Some("deleted")))
            .collect();
        let mut batch = self.contact_batch(organization_id, tenant_id).await?;
        let mapping = domain::FieldMapping::default();
        let stored = batch.stored(records, &removed, &mapping).await?;
        let plan = plan_contacts(records, &removed, &stored, &mapping, now_millis());
        let applied = batch.apply(&plan, None, checkpoint).await?;
        batch.commit().await?;
        Ok(applied.counts)
    }

    /// One contact as a plan compares it with its user (`ContactRecord::fields`), licences
    /// included, and the tenant it was synced from; `None` when there is no such contact. Reads
    /// only: nothing is locked or written.
    pub async fn contact_as_planned(&self, contact_id: i64) -> Result<Option<PlannedContact>> {
        let found = on_pool!(&self.pool, |p| {
            let row = sqlx::query("SELECT * FROM contacts WHERE id = $1")
                .bind(contact_id)
                .fetch_optional(p)
                .await
                .doing("reading a contact")?;
            row.map(|r| Ok((r.text("tenant_id")?, stored_from(&r)?)))
                .transpose()
        })?;
        let Some((tenant, mut contact)) = found else {
            return Ok(None);
        };
        let tenant_id = tenant
            .map(|t| {
                TenantId::parse(&t)
                    .map_err(|_| StoreError::Corrupt(format!("contact tenant id {t}")))
            })
            .transpose()?;
        let rows: Vec<(i64, String, String)> = on_pool!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT contact_id, sku_id, disabled_plans FROM contact_licenses WHERE contact_id = $1",
            )
            .bind(contact_id)
            .fetch_all(p)
            .await
            .doing("reading a contact's licences")
        })?;
        if let Some(held) = held_licences(rows)?.get(&contact_id) {
            with_licences(&mut contact, held);
        }
        Ok(Some(PlannedContact { tenant_id, contact }))
    }
}

/// A contact as a plan sees it, with its tenant (`None` for a contact kept by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedContact {
    pub tenant_id: Option<TenantId>,
    pub contact: StoredContact,
}

impl ContactBatch {
    /// Keeps the outcome of every record this batch changes, leaves out or cannot write, as
    /// records of `step`; unchanged records are not kept.
    pub fn logging(mut self, step: Option<RecordStep>) -> Self {
        self.log = step.map(|step| (step, Vec::new()));
        self
    }

    /// Adds outcomes that the page implies beyond its plan (users that could not be stored),
    /// written with it; nothing when the batch does not log.
    pub fn also_record(&mut self, records: impl IntoIterator<Item = RunRecord>) {
        if let Some((_, kept)) = &mut self.log {
            kept.extend(records);
        }
    }

    fn logs(&self) -> bool {
        self.log.is_some()
    }

    /// Keeps, for each user the filters left out, the rule that did, and forgets it for users
    /// they keep: "why is this person missing?" always has an answer.
    pub async fn record_filtered(
        &mut self,
        left_out: &[(ContactRecord, SkipReason)],
        kept: &[ObjectId],
    ) -> Result<()> {
        let tenant = self.tenant.clone();
        let now = now_millis();
        for chunk in kept.chunks(INSERT_CHUNK) {
            on_tx!(&mut self.tx, |c| {
                let mut query =
                    sqlx::QueryBuilder::new("DELETE FROM filtered_users WHERE tenant_id = ");
                query.push_bind(&tenant).push(" AND object_id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.to_string());
                }
                query.push(")");
                query
                    .build()
                    .persistent(false)
                    .execute(&mut *c)
                    .await
                    .done("forgetting users the filters keep")
            })?;
        }
        for (record, reason) in left_out {
            let detail = detail_value(reason);
            let changed = on_tx!(&mut self.tx, |c| {
                sqlx::query(
                "INSERT INTO filtered_users (tenant_id, object_id, user_principal_name, display_name, reason, detail, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, object_id) DO UPDATE SET user_principal_name = excluded.user_principal_name, display_name = excluded.display_name, \
                 reason = excluded.reason, detail = excluded.detail, updated_at = excluded.updated_at \
                 WHERE filtered_users.reason <> excluded.reason OR filtered_users.user_principal_name <> excluded.user_principal_name \
                 OR filtered_users.display_name <> excluded.display_name OR COALESCE(filtered_users.detail, '') <> COALESCE(excluded.detail, '')"
            )
            .bind(&tenant)
            .bind(record.object_id.to_string())
            .bind(record.user_principal_name.as_str())
            .bind(&record.display_name)
            .bind(reason.code())
            .bind(detail)
            .bind(now)
            .execute(&mut *c)
            .await
            .done("keeping why a user is left out")
            })?;
            // Left out as before, for the same rule: unchanged, so counted, not logged again.
            if changed > 0 && self.logs() {
                let mut detail =
                    serde_json::json!({"reason": reason.code(), "why": reason.to_string()});
                if let Some(detail_of_rule) = detail_value(reason) {
                    detail["detail"] = serde_json::Value::String(detail_of_rule.to_string());
                }
                self.also_record([RunRecord {
                    outcome: RecordOutcome::Skipped,
                    key: record.object_id.to_string(),
                    label: Some(record.user_principal_name.as_str().to_string()),
                    detail,
                    contact_id: None,
                }]);
            }
        }
        Ok(())
    }

    /// The tenant's contacts marked deleted and not archived yet, with the end of their restore
    /// window.
    pub async fn marked_deleted(&mut self) -> Result<Vec<(i64, i64)>> {
        let tenant = self.tenant.clone();
        on_tx!(&mut self.tx, |c| {
            sqlx::query_as(
                "SELECT id, restorable_until FROM contacts WHERE tenant_id = $1 AND archived = FALSE AND restorable_until IS NOT NULL",
            )
            .bind(&tenant)
            .fetch_all(&mut *c)
            .await
            .doing("listing contacts deleted in the tenant")
        })
    }

    /// The tenant's contacts that are linked to a user and not archived.
    pub async fn active_linked(&mut self) -> Result<Vec<domain::plan::ActiveContact>> {
        self.active_linked_where(None, |_| true).await
    }

    /// How many of the tenant's contacts are linked to a user and not archived.
    pub async fn active_linked_count(&mut self) -> Result<usize> {
        let tenant = self.tenant.clone();
        let count: i64 = on_tx!(&mut self.tx, |c| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM contacts WHERE tenant_id = $1 AND archived = FALSE AND object_id IS NOT NULL",
            )
            .bind(&tenant)
            .fetch_one(&mut *c)
            .await
            .doing("counting the tenant's contacts")
        })?;
        Ok(usize::try_from(count).unwrap_or_default())
    }

    /// Those of the tenant's active linked contacts that `wanted` picks. With `since`, those a
    /// listing created itself are not read (see [`StoredSince`]). The contacts are read one row
    /// at a time: after a full listing of a large tenant only the few it lacked are kept, never
    /// a million at once.
    pub async fn active_linked_where(
        &mut self,
        since: Option<&StoredSince>,
        mut wanted: impl FnMut(&domain::plan::ActiveContact) -> bool + Send,
    ) -> Result<Vec<domain::plan::ActiveContact>> {
        let tenant = self.tenant.clone();
        let stored_up_to = match since {
            Some(since) => {
                let newer: i64 = on_tx!(&mut self.tx, |c| {
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM contacts WHERE tenant_id = $1 AND id > $2",
                    )
                    .bind(&tenant)
                    .bind(since.newest_before())
                    .fetch_one(&mut *c)
                    .await
                    .doing("counting the tenant's newer contacts")
                })?;
                since.read_up_to(newer)
            }
            None => None,
        };
        on_tx!(&mut self.tx, |c| {
            let mut rows = sqlx::query_as::<_, (i64, String, Option<i64>)>(
                "SELECT id, object_id, restorable_until FROM contacts WHERE tenant_id = $1 AND archived = FALSE AND object_id IS NOT NULL AND id <= $2",
            )
            .bind(&tenant)
            .bind(stored_up_to.unwrap_or(i64::MAX))
            .fetch(&mut *c);
            let mut picked = Vec::new();
            while let Some((id, object, restorable_until)) = rows
                .try_next()
                .await
                .doing("listing the tenant's contacts")?
            {
                let object_id = ObjectId::parse(&object)
                    .map_err(|_| StoreError::Corrupt(format!("contact object id {object}")))?;
                let contact = domain::plan::ActiveContact {
                    contact_id: id,
                    object_id,
                    restorable_until,
                };
                if wanted(&contact) {
                    picked.push(contact);
                }
            }
            Ok(picked)
        })
    }

    /// What the store holds that bears on these users and removals: the contacts linked to them,
    /// and the organisation's unlinked contacts that share a user principal name or mail.
    pub async fn stored(
        &mut self,
        records: &[ContactRecord],
        removed: &[Removal],
        mapping: &domain::FieldMapping,
    ) -> Result<StoredContacts> {
        let ids: Vec<ObjectId> = records
            .iter()
            .map(|r| r.object_id)
            .chain(removed.iter().map(|r| r.object_id))
            .collect();
        let tenant = self.tenant.clone();
        // First what tells an unchanged user (most of them, on a resync) from one to compare;
        // the fields, licences and custom fields are read only for the latter.
        let brief: Vec<BriefRow> = on_tx!(&mut self.tx, |c| {
            let rows = fetch_in!(
                &mut *c,
                "SELECT id, object_id, archived, fingerprint, restorable_until FROM contacts",
                "object_id",
                tenant,
                &ids
            )
            .doing("reading the page's contacts")?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.int_req("id")?,
                        r.text_req("object_id")?,
                        r.flag("archived")?.unwrap_or(false),
                        r.text("fingerprint")?,
                        r.int("restorable_until")?,
                    ))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let prints: HashMap<ObjectId, String> = records
            .iter()
            .map(|r| (r.object_id, mapping.fingerprint(r)))
            .collect();
        let mut linked: HashMap<ObjectId, StoredContact> = HashMap::new();
        let mut need_fields = Vec::new();
        for (id, object, archived, fingerprint, restorable_until) in brief {
            let Ok(object_id) = ObjectId::parse(&object) else {
                return Err(StoreError::Corrupt(format!("contact object id {object}")));
            };
            // Compared field by field: a changed fingerprint, or a contact coming back
            // (archived, or marked deleted).
            if archived
                || restorable_until.is_some()
                || prints.get(&object_id).map(String::as_str) != fingerprint.as_deref()
            {
                need_fields.push(id);
            }
            linked.insert(
                object_id,
                StoredContact {
                    id,
                    object_id: Some(object_id),
                    archived,
                    restorable_until,
                    fingerprint,
                    fields: Fields::new(),
                    custom: Default::default(),
                    upn_key: None,
                    email_key: None,
                },
            );
        }
        for chunk in need_fields.chunks(INSERT_CHUNK * 4) {
            let full = on_tx!(&mut self.tx, |c| {
                let mut query = sqlx::QueryBuilder::new(CONTACT_COLUMNS);
                query.push(" WHERE id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                let rows = query
                    .build()
                    .persistent(false)
                    .fetch_all(&mut *c)
                    .await
                    .doing("reading contacts to compare")?;
                rows.iter().map(stored_from).collect::<Result<Vec<_>>>()
            })?;
            for contact in full {
                if let Some(object_id) = contact.object_id {
                    linked.insert(object_id, contact);
                }
            }
        }
        let mut need_licences = need_fields;
        let unlinked = self.unlinked_candidates(records).await?;
        need_licences.extend(unlinked.iter().map(|c| c.id));
        let licences = self.licences_of(&need_licences).await?;
        let refused = self.refused_links(&ids).await?;
        let mut stored = StoredContacts {
            linked,
            unlinked,
            refused,
        };
        let mut custom = custom_fields_of(&mut self.tx, &need_licences).await?;
        for contact in stored.linked.values_mut().chain(stored.unlinked.iter_mut()) {
            if let Some(held) = licences.get(&contact.id) {
                with_licences(contact, held);
            }
            contact.custom = custom.remove(&contact.id).unwrap_or_default();
        }
        Ok(stored)
    }

    /// One contact as the planner sees it (fields, licences, custom fields), with its
    /// organisation; `None` when there is no such contact.
    pub async fn stored_by_id(&mut self, contact_id: i64) -> Result<Option<(StoredContact, i64)>> {
        let found = on_tx!(&mut self.tx, |c| {
            let mut query = sqlx::QueryBuilder::new(CONTACT_COLUMNS);
            query.push(" WHERE id = ").push_bind(contact_id);
            let row = query
                .build()
                .persistent(false)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a contact")?;
            row.map(|r| Ok::<_, StoreError>((stored_from(&r)?, r.int_req("organization_id")?)))
                .transpose()
        })?;
        let Some((mut contact, organization)) = found else {
            return Ok(None);
        };
        if let Some(held) = self.licences_of(&[contact.id]).await?.get(&contact.id) {
            with_licences(&mut contact, held);
        }
        contact.custom = custom_fields_of(&mut self.tx, &[contact.id])
            .await?
            .remove(&contact.id)
            .unwrap_or_default();
        Ok(Some((contact, organization)))
    }

    /// The contact a user is linked to in the batch's tenant, if any.
    pub async fn contact_of(&mut self, object_id: &ObjectId) -> Result<Option<i64>> {
        let tenant = self.tenant.clone();
        on_tx!(&mut self.tx, |c| sqlx::query_scalar(
            "SELECT id FROM contacts WHERE tenant_id = $1 AND object_id = $2"
        )
        .bind(&tenant)
        .bind(object_id.to_string())
        .fetch_optional(&mut *c)
        .await
        .doing("looking for the user's contact"))
    }

    /// Sets how a review item was settled (`linked`, `created`, `settled_by_sync`).
    pub async fn settle_review_item(&mut self, item_id: i64, state: &str) -> Result<()> {
        let now = now_millis();
        on_tx!(&mut self.tx, |c| sqlx::query(
            "UPDATE review_items SET state = $1, updated_at = $2 WHERE id = $3"
        )
        .bind(state)
        .bind(now)
        .bind(item_id)
        .execute(&mut *c)
        .await
        .done("settling a review item"))?;
        Ok(())
    }

    /// The contacts people unlinked from these users.
    async fn refused_links(&mut self, ids: &[ObjectId]) -> Result<HashSet<(i64, ObjectId)>> {
        let tenant = self.tenant.clone();
        let rows = on_tx!(&mut self.tx, |c| {
            let rows = fetch_in!(
                &mut *c,
                "SELECT contact_id, object_id FROM contact_unlinks",
                "object_id",
                tenant,
                ids
            )
            .doing("reading undone links")?;
            rows.iter()
                .map(|r| Ok((r.int_req("contact_id")?, r.text_req("object_id")?)))
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(contact, object)| ObjectId::parse(&object).ok().map(|id| (contact, id)))
            .collect())
    }

    async fn unlinked_candidates(
        &mut self,
        records: &[ContactRecord],
    ) -> Result<Vec<StoredContact>> {
        let keys = link_keys(records);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let organization_id = self.organization_id;
        let any: i64 = on_tx!(&mut self.tx, |c| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM contacts WHERE organization_id = $1 AND object_id IS NULL AND archived = FALSE",
            )
            .bind(organization_id)
            .fetch_one(&mut *c)
            .await
            .doing("counting unlinked contacts")
        })?;
        if any == 0 {
            return Ok(Vec::new());
        }
        on_tx!(&mut self.tx, |c| {
            let mut query = sqlx::QueryBuilder::new(CONTACT_COLUMNS);
            query
                .push(" WHERE organization_id = ")
                .push_bind(organization_id)
                .push(" AND object_id IS NULL AND archived = FALSE AND (upn_key IN (");
            let mut list = query.separated(", ");
            for key in &keys {
                list.push_bind(key.clone());
            }
            query.push(") OR email_key IN (");
            let mut list = query.separated(", ");
            for key in &keys {
                list.push_bind(key.clone());
            }
            query.push(")) ORDER BY id");
            let rows = query
                .build()
                .persistent(false)
                .fetch_all(&mut *c)
                .await
                .doing("looking for contacts to link")?;
            rows.iter().map(stored_from).collect()
        })
    }

    /// Sorted SKU ids and `sku:plan` switched off, per contact.
    async fn licences_of(&mut self, contact_ids: &[i64]) -> Result<HashMap<i64, Licences>> {
        let rows = pairs_by_contact(
            &mut self.tx,
            "SELECT contact_id, sku_id, disabled_plans FROM contact_licenses WHERE contact_id IN (",
            contact_ids,
            "reading contacts' licences",
        )
        .await?;
        held_licences(rows)
    }

    /// Writes what the plan says, with a change row for everything it changes; `run_id` names
    /// the run in the history. The checkpoint is saved in the same transaction.
    pub async fn apply(
        &mut self,
        plan: &ContactPlan,
        run_id: Option<i64>,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Applied> {
        let now = now_millis();
        let organization_id = self.organization_id;
        let mut history: Vec<HistoryRow> = Vec::new();
        let mut licences: Vec<(i64, &str, String)> = Vec::new();
        let mut creates: Vec<(&ContactRecord, String)> = Vec::new();
        let mut created_custom: HashMap<String, &[(String, String)]> = HashMap::new();
        let logging = self.logs();
        let mut outcomes: Vec<RunRecord> = Vec::new();
        // Archived or marked deleted: named by their user once the loop is done.
        let mut by_contact: Vec<(i64, RecordOutcome, serde_json::Value)> = Vec::new();
        for action in &plan.actions {
            match action {
                ContactAction::Create {
                    record,
                    custom,
                    fingerprint,
                } => {
                    creates.push((record, fingerprint.clone()));
                    if !custom.is_empty() {
                        created_custom.insert(record.object_id.to_string(), custom);
                    }
                }
                ContactAction::Unchanged { .. } => {}
                ContactAction::Update {
                    contact_id,
                    record,
                    changes,
                    custom,
                    fingerprint,
                    linked_by,
                    restored,
                } => {
                    // The identity fields always; of the others only those the plan changes:
                    // a field the technician owns is never in the plan, so never written.
                    let columns: Vec<(&str, Value)> = changes
                        .iter()
                        .filter_map(|change| own_column(record, change.field))
                        .collect();
                    on_tx!(&mut self.tx, |c| {
                        let mut query =
                            sqlx::QueryBuilder::new("UPDATE contacts SET organization_id = ");
                        query
                            .push_bind(organization_id)
                            .push(", tenant_id = ")
                            .push_bind(record.tenant_id.to_string())
                            .push(", object_id = ")
                            .push_bind(record.object_id.to_string())
                            .push(", user_principal_name = ")
                            .push_bind(record.user_principal_name.as_str().to_string())
                            .push(", upn_key = ")
                            .push_bind(record.user_principal_name.key().to_string())
                            .push(", email = ")
                            .push_bind(record.email.clone())
                            .push(", email_key = ")
                            .push_bind(record.email.as_deref().map(str::to_lowercase))
                            .push(", aliases = ")
                            .push_bind(
                                serde_json::to_string(&record.aliases)
                                    .unwrap_or_else(|_| "[]".into()),
                            )
                            .push(", account_enabled = ")
                            .push_bind(record.account_enabled)
                            .push(", user_type = ")
                            .push_bind(record.user_type.clone())
                            .push(", fingerprint = ")
                            .push_bind(fingerprint.clone())
                            .push(", updated_at = ")
                            .push_bind(now)
                            .push(", archived = FALSE, archived_at = NULL, deleted_at = NULL, restorable_until = NULL");
                        for (column, value) in &columns {
                            query.push(format_args!(", {column} = "));
                            match value {
                                Value::Text(text) => query.push_bind(text.clone()),
                                Value::Required(text) => query.push_bind(text.clone()),
                            };
                        }
                        query.push(" WHERE id = ").push_bind(*contact_id);
                        query
                            .build()
                            .persistent(false)
                            .execute(&mut *c)
                            .await
                            .done("updating a contact")
                    })?;
                    write_custom(&mut self.tx, *contact_id, custom).await?;
                    history.extend(custom.iter().map(|CustomChange { name, old, new }| {
                        (
                            *contact_id,
                            Cow::Owned(format!("custom:{name}")),
                            old.clone(),
                            new.clone(),
                            None,
                        )
                    }));
                    let licences_changed = linked_by.is_some()
                        || changes
                            .iter()
                            .any(|c| matches!(c.field, "assignedLicenses" | "disabledPlans"));
                    if licences_changed {
                        on_tx!(&mut self.tx, |c| sqlx::query(
                            "DELETE FROM contact_licenses WHERE contact_id = $1"
                        )
                        .bind(*contact_id)
                        .execute(&mut *c)
                        .await
                        .done("updating a contact's licences"))?;
                        licences.extend(assignments(*contact_id, record));
                    }
                    if let Some(rule) = linked_by {
                        history.push((
                            *contact_id,
                            "link".into(),
                            None,
                            Some(record.object_id.to_string()),
                            Some(rule.as_str().to_string()),
                        ));
                    }
                    if *restored {
                        history.push((
                            *contact_id,
                            "restored".into(),
                            None,
                            Some("true".into()),
                            Some("back_in_tenant".into()),
                        ));
                    }
                    history.extend(changes.iter().map(|FieldChange { field, old, new }| {
                        (*contact_id, (*field).into(), old.clone(), new.clone(), None)
                    }));
                    if logging {
                        outcomes.push(RunRecord {
                            outcome: RecordOutcome::Updated,
                            key: record.object_id.to_string(),
                            label: Some(record.user_principal_name.as_str().to_string()),
                            detail: serde_json::json!({
                                "fields": changes,
                                "custom": custom,
                                "linked_by": linked_by.map(|rule| rule.as_str()),
                                "restored": restored,
                            }),
                            contact_id: Some(*contact_id),
                        });
                    }
                }
                ContactAction::Archive { contact_id, reason } => {
                    on_tx!(&mut self.tx, |c| {
                        sqlx::query(
                        "UPDATE contacts SET archived = TRUE, archived_at = $1, updated_at = $1 WHERE id = $2 AND archived = FALSE"
                    )
                    .bind(now)
                    .bind(*contact_id)
                    .execute(&mut *c)
                    .await
                    .done("archiving a contact")
                    })?;
                    history.push((
                        *contact_id,
                        "archived".into(),
                        Some("false".into()),
                        Some("true".into()),
                        Some(reason.note()),
                    ));
                    if logging {
                        by_contact.push((
                            *contact_id,
                            RecordOutcome::Archived,
                            serde_json::json!({"reason": reason.note(), "why": archive_why(reason)}),
                        ));
                    }
                }
                ContactAction::MarkDeleted {
                    contact_id,
                    restorable_until,
                } => {
                    on_tx!(&mut self.tx, |c| {
                        sqlx::query(
                        "UPDATE contacts SET deleted_at = $1, restorable_until = $2, updated_at = $1 WHERE id = $3 AND archived = FALSE"
                    )
                    .bind(now)
                    .bind(*restorable_until)
                    .bind(*contact_id)
                    .execute(&mut *c)
                    .await
                    .done("marking a contact deleted")
                    })?;
                    history.push((
                        *contact_id,
                        "deleted".into(),
                        None,
                        Some(restorable_until.to_string()),
                        Some("in_recycle_bin".into()),
                    ));
                    if logging {
                        by_contact.push((
                            *contact_id,
                            RecordOutcome::Deleted,
                            serde_json::json!({
                                "reason": "in_recycle_bin",
                                "restorable_until": restorable_until,
                                "why": "the user is in Microsoft 365's recycle bin; archived if not restored within 30 days",
                            }),
                        ));
                    }
                }
                ContactAction::Hold {
                    record,
                    candidates,
                    rule,
                } => {
                    self.hold(record, candidates, rule.as_str(), now).await?;
                    if logging {
                        outcomes.push(RunRecord {
                            outcome: RecordOutcome::Held,
                            key: record.object_id.to_string(),
                            label: Some(record.user_principal_name.as_str().to_string()),
                            detail: serde_json::json!({
                                "rule": rule.as_str(),
                                "candidates": candidates,
                                "why": format!(
                                    "{} contacts could be this user (by {}); decide with `m365sync review`",
                                    candidates.len(),
                                    rule.as_str()
                                ),
                            }),
                            contact_id: None,
                        });
                    }
                }
            }
        }
        for chunk in creates.chunks(INSERT_CHUNK) {
            let ids = insert_contacts(&mut self.tx, organization_id, chunk, now).await?;
            self.created += ids.len() as u64;
            for (record, _) in chunk {
                if let Some(id) = ids.get(&record.object_id.to_string()) {
                    licences.extend(assignments(*id, record));
                    history.push((*id, "contact".into(), None, Some("created".into()), None));
                    if logging {
                        outcomes.push(RunRecord {
                            outcome: RecordOutcome::Created,
                            key: record.object_id.to_string(),
                            label: Some(record.user_principal_name.as_str().to_string()),
                            detail: serde_json::json!({"display_name": record.display_name}),
                            contact_id: Some(*id),
                        });
                    }
                    if let Some(custom) = created_custom.get(&record.object_id.to_string()) {
                        let changes: Vec<CustomChange> = custom
                            .iter()
                            .map(|(name, value)| CustomChange {
                                name: name.clone(),
                                old: None,
                                new: Some(value.clone()),
                            })
                            .collect();
                        write_custom(&mut self.tx, *id, &changes).await?;
                    }
                }
            }
        }
        save_licences(&mut self.tx, &licences).await?;
        write_history(&mut self.tx, &history, run_id, now).await?;
        if !by_contact.is_empty() {
            let ids: Vec<i64> = by_contact.iter().map(|(id, _, _)| *id).collect();
            let mut identities = self.identities_of(&ids).await?;
            for (contact_id, outcome, detail) in by_contact {
                let (object, upn) = identities.remove(&contact_id).unwrap_or_default();
                outcomes.push(RunRecord {
                    outcome,
                    key: object.unwrap_or_else(|| format!("contact {contact_id}")),
                    label: upn,
                    detail,
                    contact_id: Some(contact_id),
                });
            }
        }
        self.also_record(outcomes);
        // A held user the plan now links or gives a contact is settled: its review item closes.
        let settled: Vec<String> = plan
            .actions
            .iter()
            .filter_map(|action| match action {
                ContactAction::Create { record, .. }
                | ContactAction::Update {
                    record,
                    linked_by: Some(_),
                    ..
                } => Some(record.object_id.to_string()),
                _ => None,
            })
            .collect();
        let tenant = self.tenant.clone();
        let open: i64 = if settled.is_empty() {
            0
        } else {
            on_tx!(&mut self.tx, |c| sqlx::query_scalar(
                "SELECT COUNT(*) FROM review_items WHERE state = 'open' AND tenant_id = $1"
            )
            .bind(&tenant)
            .fetch_one(&mut *c)
            .await
            .doing("counting open review items"))?
        };
        for chunk in settled.chunks(INSERT_CHUNK).filter(|_| open > 0) {
            on_tx!(&mut self.tx, |c| {
                let mut query = sqlx::QueryBuilder::new(
                    "UPDATE review_items SET state = 'settled_by_sync', updated_at = ",
                );
                query
                    .push_bind(now)
                    .push(" WHERE state = 'open' AND tenant_id = ")
                    .push_bind(&tenant)
                    .push(" AND object_id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                query.push(")");
                query
                    .build()
                    .persistent(false)
                    .execute(&mut *c)
                    .await
                    .done("closing settled review items")
            })?;
        }
        if let Some(checkpoint) = checkpoint {
            save_checkpoint(&mut self.tx, &self.tenant, checkpoint, now).await?;
        }
        let PlanTally {
            created,
            updated,
            unchanged,
            archived,
            deleted,
            held,
        } = plan.tally();
        Ok(Applied {
            counts: crate::StepCounts {
                created,
                updated,
                unchanged,
                archived,
                deleted,
            },
            held,
        })
    }

    /// Puts a user in the review queue (or refreshes the entry already there).
    async fn hold(
        &mut self,
        record: &ContactRecord,
        candidates: &[i64],
        rule: &str,
        now: i64,
    ) -> Result<()> {
        let document =
            serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let candidates =
            serde_json::to_string(candidates).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let organization_id = self.organization_id;
        let tenant = self.tenant.clone();
        on_tx!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO review_items (organization_id, tenant_id, object_id, user_principal_name, display_name, record, candidates, rule, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $9) \
             ON CONFLICT (tenant_id, object_id) DO UPDATE SET user_principal_name = excluded.user_principal_name, display_name = excluded.display_name, \
             record = excluded.record, candidates = excluded.candidates, rule = excluded.rule, updated_at = excluded.updated_at"
        )
        .bind(organization_id)
        .bind(&tenant)
        .bind(record.object_id.to_string())
        .bind(record.user_principal_name.as_str())
        .bind(&record.display_name)
        .bind(&document)
        .bind(&candidates)
        .bind(rule)
        .bind(now)
        .execute(&mut *c)
        .await
        .done("holding a user for review")
        })?;
        Ok(())
    }

    /// Writes the records the batch logged, then commits: they stand or fall with the plan.
    /// Returns how many contacts the batch created.
    pub async fn commit(mut self) -> Result<u64> {
        if let Some((step, records)) = &self.log
            && !records.is_empty()
        {
            write_records(&mut self.tx, step, records).await?;
        }
        self.tx.commit().await?;
        self.growth
            .added(&self.pool, GrowingTable::Contacts, self.created)
            .await;
        Ok(self.created)
    }

    /// The tenant's object id and user principal name of these contacts, by contact.
    async fn identities_of(
        &mut self,
        contact_ids: &[i64],
    ) -> Result<HashMap<i64, (Option<String>, Option<String>)>> {
        let mut found = HashMap::new();
        for chunk in contact_ids.chunks(1_000) {
            let rows: Vec<(i64, Option<String>, Option<String>)> = on_tx!(&mut self.tx, |c| {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT id, object_id, user_principal_name FROM contacts WHERE id IN (",
                );
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                query
                    .build_query_as()
                    .persistent(false)
                    .fetch_all(&mut *c)
                    .await
                    .doing("reading whom contacts belong to")
            })?;
            found.extend(
                rows.into_iter()
                    .map(|(id, object, upn)| (id, (object, upn))),
            );
        }
        Ok(found)
    }
}

/// The domain or mailbox kind a filter rule looked at, where it did.
fn detail_value(reason: &SkipReason) -> Option<&str> {
    match reason {
        SkipReason::ResourceMailbox(d)
        | SkipReason::DomainNotIncluded(d)
        | SkipReason::DomainExcluded(d) => Some(d.as_str()),
        _ => None,
    }
}

/// Why a contact is archived, in words.
fn archive_why(reason: &ArchiveReason) -> String {
    match reason {
        ArchiveReason::RemovedInTenant => "the user was deleted in Microsoft 365".into(),
        ArchiveReason::RestoreWindowPassed => {
            "the user was deleted in Microsoft 365 and not restored within 30 days".into()
        }
        ArchiveReason::NotListed => "a complete listing no longer had the user".into(),
        ArchiveReason::OutOfScope(rule) => {
            format!("the connection's filters leave the user out: {rule}")
        }
    }
}

/// A contact as read first: id, object id, archived, fingerprint, end of its restore window.
type BriefRow = (i64, String, bool, Option<String>, Option<i64>);

pub(crate) type HistoryRow = (
    i64,
    Cow<'static, str>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub(crate) async fn write_history(
    tx: &mut Tx,
    rows: &[HistoryRow],
    run_id: Option<i64>,
    now: i64,
) -> Result<()> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        on_tx!(tx, |c| {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO contact_changes (contact_id, run_id, field, old_value, new_value, note, changed_at) ",
            );
            query.push_values(chunk, |mut row, (id, field, old, new, note)| {
                row.push_bind(*id)
                    .push_bind(run_id)
                    .push_bind(field.to_string())
                    .push_bind(old.clone())
                    .push_bind(new.clone())
                    .push_bind(note.clone())
                    .push_bind(now);
            });
            query
                .build()
                .persistent(false)
                .execute(&mut *c)
                .await
                .done("keeping the contacts' history")
        })?;
    }
    Ok(())
}

/// A contact's sorted SKU ids, and its `sku:plan` switched off.
type Licences = (Vec<String>, Vec<String>);

/// Folds (contact, SKU, switched-off plans as JSON) rows into each contact's licences.
fn held_licences(rows: Vec<(i64, String, String)>) -> Result<HashMap<i64, Licences>> {
    let mut held: HashMap<i64, Licences> = HashMap::new();
    for (id, sku, disabled) in rows {
        let entry = held.entry(id).or_default();
        let plans: Vec<String> = serde_json::from_str(&disabled)
            .map_err(|e| StoreError::Corrupt(format!("a licence's plans: {e}")))?;
        entry
            .1
            .extend(plans.into_iter().map(|plan| format!("{sku}:{plan}")));
        entry.0.push(sku);
    }
    for (skus, disabled) in held.values_mut() {
        skus.sort();
        skus.dedup();
        disabled.sort();
        disabled.dedup();
    }
    Ok(held)
}

/// Puts a contact's licences into its fields, as a plan compares them.
fn with_licences(contact: &mut StoredContact, (skus, disabled): &Licences) {
    contact.fields.insert("assignedLicenses", list(skus));
    contact.fields.insert("disabledPlans", list(disabled));
}

fn list(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| serde_json::to_string(items).unwrap_or_default())
}

/// A contact row as the planner sees it.
fn stored_from(row: &impl Columns) -> Result<StoredContact> {
    let object_id = row
        .text("object_id")?
        .map(|id| {
            ObjectId::parse(&id).map_err(|_| StoreError::Corrupt(format!("contact object id {id}")))
        })
        .transpose()?;
    let phones = row.json_list("business_phones")?;
    let fields: Fields = BTreeMap::from([
        ("userPrincipalName", row.text("user_principal_name")?),
        ("displayName", row.text("display_name")?),
        ("givenName", row.text("given_name")?),
        ("surname", row.text("surname")?),
        ("mail", row.text("email")?),
        ("proxyAddresses", list(&row.json_list("aliases")?)),
        ("jobTitle", row.text("job_title")?),
        ("department", row.text("department")?),
        ("officeLocation", row.text("office_location")?),
        ("mobilePhone", row.text("mobile_phone")?),
        ("businessPhones", list(&phones)),
        (
            "accountEnabled",
            row.flag("account_enabled")?.map(|b| b.to_string()),
        ),
        ("userType", row.text("user_type")?),
        ("assignedLicenses", None),
        ("disabledPlans", None),
    ]);
    Ok(StoredContact {
        id: row.int_req("id")?,
        object_id,
        archived: row.flag("archived")?.unwrap_or(false),
        restorable_until: row.int("restorable_until")?,
        fingerprint: row.text("fingerprint")?,
        fields,
        custom: BTreeMap::new(),
        upn_key: row.text("upn_key")?,
        email_key: row.text("email_key")?,
    })
}

/// A value for one of a contact's own columns.
enum Value {
    Text(Option<String>),
    Required(String),
}

/// The contact column a mappable field is kept in, with the record's value for it; `None` for
/// an identity field (always written) or one of the licences (kept apart).
fn own_column(record: &ContactRecord, field: &str) -> Option<(&'static str, Value)> {
    Some(match field {
        "displayName" => ("display_name", Value::Required(record.display_name.clone())),
        "givenName" => ("given_name", Value::Text(record.given_name.clone())),
        "surname" => ("surname", Value::Text(record.surname.clone())),
        "jobTitle" => ("job_title", Value::Text(record.job_title.clone())),
        "department" => ("department", Value::Text(record.department.clone())),
        "officeLocation" => (
            "office_location",
            Value::Text(record.office_location.clone()),
        ),
        "mobilePhone" => ("mobile_phone", Value::Text(record.mobile_phone.clone())),
        "businessPhones" => (
            "business_phones",
            Value::Required(
                serde_json::to_string(&record.business_phones).unwrap_or_else(|_| "[]".into()),
            ),
        ),
        _ => return None,
    })
}

/// Writes a contact's changed custom fields: a value is set, an empty one removed.
pub(crate) async fn write_custom(
    tx: &mut Tx,
    contact_id: i64,
    changes: &[CustomChange],
) -> Result<()> {
    for change in changes {
        match &change.new {
            Some(value) => on_tx!(tx, |c| {
                sqlx::query(
                "INSERT INTO contact_custom_fields (contact_id, name, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value"
            )
            .bind(contact_id)
            .bind(&change.name)
            .bind(value)
            .execute(&mut *c)
            .await
            .done("saving a custom field")
            })?,
            None => on_tx!(tx, |c| sqlx::query(
                "DELETE FROM contact_custom_fields WHERE contact_id = $1 AND name = $2"
            )
            .bind(contact_id)
            .bind(&change.name)
            .execute(&mut *c)
            .await
            .done("removing a custom field"))?,
        };
    }
    Ok(())
}

/// The custom fields of these contacts, by contact.
async fn custom_fields_of(
    tx: &mut Tx,
    contact_ids: &[i64],
) -> Result<HashMap<i64, BTreeMap<String, String>>> {
    let mut found: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
    let rows = pairs_by_contact(
        tx,
        "SELECT contact_id, name, value FROM contact_custom_fields WHERE contact_id IN (",
        contact_ids,
        "reading contacts' custom fields",
    )
    .await?;
    for (id, name, value) in rows {
        found.entry(id).or_default().insert(name, value);
    }
    Ok(found)
}

/// Rows of (contact id, text, text) for these contacts, a thousand ids per query. `select`
/// names the three columns and ends with `contact_id IN (`.
async fn pairs_by_contact(
    tx: &mut Tx,
    select: &'static str,
    contact_ids: &[i64],
    action: &'static str,
) -> Result<Vec<(i64, String, String)>> {
    let mut found = Vec::new();
    for chunk in contact_ids.chunks(1_000) {
        let rows: Vec<(i64, String, String)> = on_tx!(tx, |c| {
            let mut query = sqlx::QueryBuilder::new(select);
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(")");
            query
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *c)
                .await
                .doing(action)
        })?;
        found.extend(rows);
    }
    Ok(found)
}
