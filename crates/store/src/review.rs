//! What people decide and look back on: the history of each contact, the review queue of users
//! a sync would not link alone, and contacts brought in from elsewhere (an import).

use serde::Serialize;

use domain::ContactRecord;
use domain::import::{ImportDecision, ImportedContact, KnownContact};

use crate::backend::{Columns, on_pool, on_tx};
use crate::contact_batch::write_history;
use crate::error::{Context, Executed, Result, StoreError};
use crate::{Store, now_millis};

/// One change a run (or a person) made to a contact.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    pub run_id: Option<i64>,
    /// Graph's name of the field; `contact` for its creation, `link` for its tie to a user,
    /// `archived` for archiving and restoring.
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// Why: the rule that linked, the reason for archiving.
    pub note: Option<String>,
    pub changed_at: i64,
}

/// A contact that a held user could be.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub contact_id: i64,
    pub display_name: String,
    pub email: Option<String>,
    pub user_principal_name: Option<String>,
}

/// A user the sync held back because more than one contact could be theirs.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    pub id: i64,
    pub tenant_id: String,
    pub object_id: String,
    pub user_principal_name: String,
    pub display_name: String,
    /// The rule under which the candidates matched (`user_principal_name`, `mail`).
    pub rule: String,
    /// `open`, or how it was settled: `linked`, `created`.
    pub state: String,
    pub candidates: Vec<Candidate>,
    pub created_at: i64,
}

/// How a person settles a review item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The user is this contact.
    Link(i64),
    /// The user is none of them: a contact of their own.
    Create,
}

/// What an import did with one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Created(i64),
    /// A contact of the organisation already has this mail or user principal name.
    AlreadyThere(i64),
}

impl Store {
    /// Everything recorded about a contact, oldest first.
    pub async fn contact_history(&self, contact_id: i64) -> Result<Vec<ChangeRow>> {
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT run_id, field, old_value, new_value, note, changed_at FROM contact_changes WHERE contact_id = $1 ORDER BY id",
            )
            .bind(contact_id)
            .fetch_all(p)
            .await
            .doing("reading a contact's history")?;
            rows.iter()
                .map(|r| {
                    Ok(ChangeRow {
                        run_id: r.int("run_id")?,
                        field: r.text_req("field")?,
                        old: r.text("old_value")?,
                        new: r.text("new_value")?,
                        note: r.text("note")?,
                        changed_at: r.int_req("changed_at")?,
                    })
                })
                .collect()
        })
    }

    /// The review queue: open items only unless `all`.
    pub async fn review_items(&self, all: bool) -> Result<Vec<ReviewItem>> {
        self.review_items_within(all, 0, i64::MAX).await
    }

    /// One page of the review queue (open items only unless `all`), oldest first, and how many
    /// items there are in all.
    pub async fn review_items_page(
        &self,
        all: bool,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ReviewItem>, i64)> {
        let items = self.review_items_within(all, offset, limit).await?;
        let total: i64 = on_pool!(&self.pool, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM review_items WHERE ($1 OR state = 'open')")
                .bind(all)
                .fetch_one(p)
                .await
                .doing("counting the review queue")
        })?;
        Ok((items, total))
    }

    async fn review_items_within(
        &self,
        all: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ReviewItem>> {
        let rows: Vec<(ReviewItem, Vec<i64>)> = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT id, tenant_id, object_id, user_principal_name, display_name, rule, state, candidates, created_at FROM review_items WHERE ($1 OR state = 'open') ORDER BY id LIMIT $2 OFFSET $3",
            )
            .bind(all)
            .bind(limit.max(0))
            .bind(offset.max(0))
            .fetch_all(p)
            .await
            .doing("reading the review queue")?;
            rows.iter()
                .map(|r| {
                    let candidates: Vec<i64> = serde_json::from_str(&r.text_req("candidates")?)
                        .map_err(|e| StoreError::Corrupt(format!("review candidates: {e}")))?;
                    Ok((
                        ReviewItem {
                            id: r.int_req("id")?,
                            tenant_id: r.text_req("tenant_id")?,
                            object_id: r.text_req("object_id")?,
                            user_principal_name: r.text_req("user_principal_name")?,
                            display_name: r.text_req("display_name")?,
                            rule: r.text_req("rule")?,
                            state: r.text_req("state")?,
                            candidates: Vec::new(),
                            created_at: r.int_req("created_at")?,
                        },
                        candidates,
                    ))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let mut items = Vec::with_capacity(rows.len());
        for (mut item, ids) in rows {
            for id in ids {
                if let Some(candidate) = self.candidate(id).await? {
                    item.candidates.push(candidate);
                }
            }
            items.push(item);
        }
        Ok(items)
    }

    async fn candidate(&self, contact_id: i64) -> Result<Option<Candidate>> {
        on_pool!(&self.pool, |p| {
            let row = sqlx::query(
                "SELECT id, display_name, email, user_principal_name FROM contacts WHERE id = $1",
            )
            .bind(contact_id)
            .fetch_optional(p)
            .await
            .doing("reading a candidate contact")?;
            row.map(|r| {
                Ok(Candidate {
                    contact_id: r.int_req("id")?,
                    display_name: r.text_req("display_name")?,
                    email: r.text("email")?,
                    user_principal_name: r.text("user_principal_name")?,
                })
            })
            .transpose()
        })
    }

    /// An open review item: the organisation it was held under and the user as it was held.
    /// A missing or settled item is refused with what to do.
    pub async fn open_review_item(&self, item_id: i64) -> Result<(i64, ContactRecord)> {
        let found: Option<(i64, String, String)> = on_pool!(&self.pool, |p| {
            sqlx::query_as("SELECT organization_id, record, state FROM review_items WHERE id = $1")
                .bind(item_id)
                .fetch_optional(p)
                .await
                .doing("reading a review item")
        })?;
        let Some((organization_id, document, state)) = found else {
            return Err(StoreError::NotFound(format!(
                "there is no review item {item_id}; `m365sync review` lists them"
            )));
        };
        if state != "open" {
            return Err(StoreError::Conflict(format!(
                "review item {item_id} was settled already ({state})"
            )));
        }
        let record: ContactRecord = serde_json::from_str(&document)
            .map_err(|e| StoreError::Corrupt(format!("a held user: {e}")))?;
        Ok((organization_id, record))
    }

    /// Undoes a contact's link to its user: the contact stays as a contact kept by hand, and the
    /// user is never put back on it unasked (the next sync gives them a contact of their own,
    /// or links another that fits).
    pub async fn unlink_contact(&self, contact_id: i64) -> Result<String> {
        let now = now_millis();
        let mut tx = self.begin().await?;
        let found: Option<(Option<String>, Option<String>)> = on_tx!(&mut tx, |c| {
            sqlx::query_as("SELECT tenant_id, object_id FROM contacts WHERE id = $1")
                .bind(contact_id)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a contact")
        })?;
        let (tenant, object_id) = match found {
            None => {
                return Err(StoreError::NotFound(format!(
                    "there is no contact {contact_id}"
                )));
            }
            Some((Some(tenant), Some(object_id))) => (tenant, object_id),
            Some(_) => {
                return Err(StoreError::Conflict(format!(
                    "contact {contact_id} is not linked to a user"
                )));
            }
        };
        tx.lock_tenant(&tenant).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "INSERT INTO contact_unlinks (contact_id, tenant_id, object_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        )
        .bind(contact_id)
        .bind(&tenant)
        .bind(&object_id)
        .bind(now)
        .execute(&mut *c)
        .await
        .done("remembering an undone link")
        })?;
        // The user must be weighed again without that contact: the next users round is a
        // whole listing (a delta round would not mention an unchanged user).
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM delta_links WHERE tenant_id = $1 AND resource = 'users'"
        )
        .bind(&tenant)
        .execute(&mut *c)
        .await
        .done("starting the users over"))?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "UPDATE contacts SET object_id = NULL, fingerprint = NULL, updated_at = $1 WHERE id = $2"
        )
        .bind(now)
        .bind(contact_id)
        .execute(&mut *c)
        .await
        .done("undoing a link")
        })?;
        let change = (
            contact_id,
            "link".into(),
            Some(object_id.clone()),
            None,
            Some("unlinked by hand".to_string()),
        );
        write_history(&mut tx, &[change], None, now).await?;
        tx.commit().await?;
        Ok(object_id)
    }

    /// Opens an import into one organisation: its contacts' keys are read and the new ones
    /// written in one transaction, so that two imports at once cannot both create a contact.
    pub async fn import_batch(&self, organization_id: i64) -> Result<ImportBatch> {
        Ok(ImportBatch {
            tx: self.begin().await?,
            organization_id,
        })
    }
}

/// An import into one organisation in progress: read `known`, plan with
/// `domain::import::plan_import`, then `apply` the plan.
pub struct ImportBatch {
    tx: crate::backend::Tx,
    organization_id: i64,
}

impl ImportBatch {
    /// The organisation's active contacts by their keys, oldest first.
    pub async fn known(&mut self) -> Result<Vec<KnownContact>> {
        let organization_id = self.organization_id;
        on_tx!(&mut self.tx, |c| {
            let rows = sqlx::query(
                "SELECT id, email_key, upn_key FROM contacts WHERE organization_id = $1 AND archived = FALSE ORDER BY id",
            )
            .bind(organization_id)
            .fetch_all(&mut *c)
            .await
            .doing("reading the organisation's contacts")?;
            rows.iter()
                .map(|r| {
                    Ok(KnownContact {
                        id: r.int_req("id")?,
                        email_key: r.text("email_key")?,
                        upn_key: r.text("upn_key")?,
                    })
                })
                .collect()
        })
    }

    /// Creates the rows the plan says to create, each with its history row, and commits. The
    /// outcome of each row, in order: the contact made, or the one it already was.
    pub async fn apply(
        mut self,
        rows: &[ImportedContact],
        plan: &[ImportDecision],
    ) -> Result<Vec<ImportOutcome>> {
        let now = now_millis();
        let organization_id = self.organization_id;
        let mut outcomes: Vec<ImportOutcome> = Vec::with_capacity(rows.len());
        let mut history = Vec::new();
        for (row, decision) in rows.iter().zip(plan) {
            let outcome = match *decision {
                ImportDecision::AlreadyThere(id) => ImportOutcome::AlreadyThere(id),
                ImportDecision::SameAsRow(earlier) => match outcomes.get(earlier) {
                    Some(ImportOutcome::Created(id) | ImportOutcome::AlreadyThere(id)) => {
                        ImportOutcome::AlreadyThere(*id)
                    }
                    None => {
                        return Err(StoreError::Corrupt(format!(
                            "an import plan names row {earlier} before it was applied"
                        )));
                    }
                },
                ImportDecision::Create => {
                    let (email_key, upn_key) = row.keys();
                    let id: i64 = on_tx!(&mut self.tx, |c| {
                        sqlx::query_scalar(
                            "INSERT INTO contacts (organization_id, display_name, email, email_key, user_principal_name, upn_key, job_title, mobile_phone, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
                        )
                        .bind(organization_id)
                        .bind(&row.display_name)
                        .bind(row.email.as_deref())
                        .bind(email_key.as_deref())
                        .bind(row.user_principal_name.as_deref())
                        .bind(upn_key.as_deref())
                        .bind(row.job_title.as_deref())
                        .bind(row.mobile_phone.as_deref())
                        .bind(now)
                        .fetch_one(&mut *c)
                        .await
                        .doing("importing a contact")
                    })?;
                    history.push((
                        id,
                        "contact".into(),
                        None,
                        Some("created".to_string()),
                        Some("import".to_string()),
                    ));
                    ImportOutcome::Created(id)
                }
            };
            outcomes.push(outcome);
        }
        write_history(&mut self.tx, &history, None, now).await?;
        self.tx.commit().await?;
        Ok(outcomes)
    }
}
