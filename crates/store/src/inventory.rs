//! Inventories: tenant-wide items of many kinds, each kept as a normalised JSON document.

use std::collections::{HashMap, HashSet};

use domain::records::fingerprint;
use domain::{Dataset, InventoryItem, TenantId};
use serde::Serialize;

use crate::backend::{Columns, fetch_in, on_pool, on_tx};
use crate::error::{Context, Executed, Result, StoreError};
use crate::{Checkpoint, StepCounts, Store, now_millis};

#[derive(Debug, Clone, Serialize)]
pub struct InventoryRow {
    pub organization: String,
    pub tenant_id: String,
    pub dataset: String,
    pub key: String,
    pub name: String,
    pub document: serde_json::Value,
    pub archived: bool,
}

impl Store {
    /// Writes one page of a dataset's items: new ones created, changed ones updated.
    pub async fn apply_inventory(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
        dataset: Dataset,
        items: &[InventoryItem],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<StepCounts> {
        let mut counts = StepCounts::default();
        if items.is_empty() && checkpoint.is_none() {
            return Ok(counts);
        }
        let tenant = tenant_id.to_string();
        let now = now_millis();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        let existing: HashMap<String, (String, bool)> = on_tx!(&mut tx, |c| {
            // Only this batch's keys: a large inventory (usage of every user) is written in many
            // batches, and each must cost what it holds, not what the dataset holds.
            let rows = fetch_in!(
                c,
                "SELECT dataset, item_key, fingerprint, archived FROM inventory",
                "item_key",
                tenant,
                items.iter().map(|i| &i.key),
                "dataset" = dataset.name()
            )
            .doing("reading an inventory")?;
            rows.iter()
                .filter(|r| r.text("dataset").ok().flatten().as_deref() == Some(dataset.name()))
                .map(|r| {
                    Ok((
                        r.text_req("item_key")?,
                        (
                            r.text_req("fingerprint")?,
                            r.flag("archived")?.unwrap_or(false),
                        ),
                    ))
                })
                .collect::<Result<HashMap<_, _>>>()
        })?;
        // One row per key (the last one wins), so that a multi-row upsert never meets its own key.
        let mut latest: HashMap<&str, &InventoryItem> = HashMap::new();
        for item in items {
            latest.insert(item.key.as_str(), item);
        }
        let mut changed: Vec<(&InventoryItem, String, String)> = Vec::new();
        for item in items {
            if !latest
                .get(item.key.as_str())
                .is_some_and(|kept| std::ptr::eq(*kept, item))
            {
                continue;
            }
            let print = fingerprint(&item);
            match existing.get(&item.key) {
                Some((stored, false)) if *stored == print => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.updated += 1,
                None => counts.created += 1,
            }
            let document = serde_json::to_string(&item.document)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            changed.push((item, document, print));
        }
        // Multi-row upserts: one statement per 250 items rather than one per item.
        for chunk in changed.chunks(250) {
            on_tx!(&mut tx, |c| {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO inventory (organization_id, tenant_id, dataset, item_key, name, document, fingerprint, created_at, updated_at) ",
                );
                query.push_values(chunk, |mut row, (item, document, print)| {
                    row.push_bind(organization_id)
                        .push_bind(tenant.clone())
                        .push_bind(dataset.name())
                        .push_bind(item.key.clone())
                        .push_bind(item.name.clone())
                        .push_bind(document.clone())
                        .push_bind(print.clone())
                        .push_bind(now)
                        .push_bind(now);
                });
                query.push(
                    " ON CONFLICT (tenant_id, dataset, item_key) DO UPDATE SET organization_id = excluded.organization_id, name = excluded.name, \
                     document = excluded.document, fingerprint = excluded.fingerprint, archived = FALSE, updated_at = excluded.updated_at",
                );
                query
                    .build()
                    .persistent(false)
                    .execute(c)
                    .await
                    .done("saving inventory items")
            })?;
        }
        if let Some(checkpoint) = checkpoint {
            crate::contacts::save_checkpoint(&mut tx, &tenant, checkpoint, now).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Archives the dataset's items a complete listing did not return.
    pub async fn archive_inventory_not_in(
        &self,
        tenant_id: &TenantId,
        dataset: Dataset,
        seen: &HashSet<String>,
    ) -> Result<u64> {
        let tenant = tenant_id.to_string();
        let active: Vec<(i64, String)> = on_pool!(&self.pool, |p| {
            let rows = sqlx::query("SELECT id, item_key FROM inventory WHERE tenant_id = $1 AND dataset = $2 AND archived = FALSE")
                .bind(&tenant)
                .bind(dataset.name())
                .fetch_all(p)
                .await
                .doing("listing inventory to archive")?;
            rows.iter()
                .map(|r| Ok((r.int_req("id")?, r.text_req("item_key")?)))
                .collect::<Result<Vec<_>>>()
        })?;
        let gone: Vec<i64> = active
            .into_iter()
            .filter(|(_, key)| !seen.contains(key))
            .map(|(id, _)| id)
            .collect();
        self.archive_rows("inventory", tenant_id, &gone).await
    }

    /// A dataset's items, of one tenant when given, ordered by organisation and name.
    pub async fn inventory(
        &self,
        tenant_id: Option<&TenantId>,
        dataset: Dataset,
        include_archived: bool,
    ) -> Result<Vec<InventoryRow>> {
        self.inventory_as_stored(tenant_id, dataset, include_archived)
            .await
    }

    /// A dataset's items as stored, nothing added (what a delta round updates).
    pub async fn inventory_as_stored(
        &self,
        tenant_id: Option<&TenantId>,
        dataset: Dataset,
        include_archived: bool,
    ) -> Result<Vec<InventoryRow>> {
        let tenant = tenant_id.map(ToString::to_string);
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT i.tenant_id, i.dataset, i.item_key, i.name, i.document, i.archived, o.name AS organization \
                 FROM inventory i JOIN organizations o ON o.id = i.organization_id \
                 WHERE i.dataset = $1 AND ($2 IS NULL OR i.tenant_id = $2) AND ($3 OR i.archived = FALSE) ORDER BY o.name, i.name, i.item_key",
            )
            .bind(dataset.name())
            .bind(tenant.as_deref())
            .bind(include_archived)
            .fetch_all(p)
            .await
            .doing("listing an inventory")?;
            rows.iter()
                .map(|r| {
                    Ok(InventoryRow {
                        organization: r.text_req("organization")?,
                        tenant_id: r.text_req("tenant_id")?,
                        dataset: r.text_req("dataset")?,
                        key: r.text_req("item_key")?,
                        name: r.text_req("name")?,
                        document: serde_json::from_str(&r.text_req("document")?)
                            .map_err(|e| StoreError::Corrupt(format!("inventory document: {e}")))?,
                        archived: r.flag("archived")?.unwrap_or(false),
                    })
                })
                .collect()
        })
    }
}
