//! Typed tables of tenant-wide datasets: one SQL table per dataset with real columns, keyed by
//! (tenant, key), applied from a `domain::rows` plan. A dataset describes its table once
//! (`TypedTable`); reading the rows a page needs, applying a plan with its checkpoint, listing
//! what a complete listing may archive, and exporting are written here once for all of them.

use std::collections::{HashMap, HashSet};

use domain::TenantId;
use domain::rows::{Keyed, RowPlan, StoredRow};
use futures_util::TryStreamExt;

use crate::backend::{Columns, Tx, on_pool, on_tx};
use crate::contacts::save_checkpoint;
use crate::error::{Context, Executed, Result, StoreError};
use crate::{Checkpoint, StepCounts, Store, now_millis};

/// The type of a column, as the table declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Flag,
}

/// One column's value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Flag(Option<bool>),
}

impl Cell {
    /// The value as text (empty when null), for CSV.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Text(v) => v.clone().unwrap_or_default(),
            Cell::Int(v) => v.map(|n| n.to_string()).unwrap_or_default(),
            Cell::Flag(v) => v.map(|b| b.to_string()).unwrap_or_default(),
        }
    }
}

/// Takes the cells of a stored row in column order, each as the type its column declares.
pub struct Cells(pub(crate) std::vec::IntoIter<Cell>);

impl Cells {
    fn next(&mut self) -> Result<Cell> {
        self.0.next().ok_or_else(|| {
            StoreError::Corrupt("a typed row has fewer columns than its table".into())
        })
    }
    pub fn text(&mut self) -> Result<Option<String>> {
        match self.next()? {
            Cell::Text(v) => Ok(v),
            other => Err(StoreError::Corrupt(format!(
                "expected text, found {other:?}"
            ))),
        }
    }
    pub fn int(&mut self) -> Result<Option<i64>> {
        match self.next()? {
            Cell::Int(v) => Ok(v),
            other => Err(StoreError::Corrupt(format!(
                "expected a number, found {other:?}"
            ))),
        }
    }
    pub fn flag(&mut self) -> Result<Option<bool>> {
        match self.next()? {
            Cell::Flag(v) => Ok(v),
            other => Err(StoreError::Corrupt(format!(
                "expected a flag, found {other:?}"
            ))),
        }
    }
}

/// A dataset kept in a table of its own. Besides `COLUMNS` every such table has `id`,
/// `organization_id`, `tenant_id`, `item_key` (unique with `tenant_id`), `archived`, `created_at`
/// and `updated_at`.
pub trait TypedTable: Keyed + PartialEq + Sized + Send + Sync {
    const TABLE: &'static str;
    /// The dataset's own columns, in the order of `cells` and `from_cells`.
    const COLUMNS: &'static [(&'static str, Kind)];
    fn cells(&self) -> Vec<Cell>;
    fn from_cells(key: String, cells: &mut Cells) -> Result<Self>;
}

/// A typed row as listed for display or export.
#[derive(Debug, Clone)]
pub struct ListedRow<R> {
    pub organization: String,
    pub tenant_id: String,
    pub row: StoredRow<R>,
}

/// One page of a typed dataset being written: a transaction holding the tenant's lock, so that
/// what was read for the plan is still what the plan is applied to.
pub struct RowBatch<R> {
    tx: Tx,
    organization_id: i64,
    tenant: String,
    _rows: std::marker::PhantomData<R>,
}

/// Rows written per statement.
const CHUNK: usize = 200;

pub(crate) fn select_list<R: TypedTable>() -> String {
    let mut list = String::from("item_key, archived");
    for (name, _) in R::COLUMNS {
        list.push_str(", ");
        list.push_str(name);
    }
    list
}

pub(crate) fn stored_row<R: TypedTable>(row: &impl Columns) -> Result<(String, StoredRow<R>)> {
    let key = row.text_req("item_key")?;
    let mut cells = Vec::with_capacity(R::COLUMNS.len());
    for (name, kind) in R::COLUMNS {
        cells.push(match kind {
            Kind::Text => Cell::Text(row.text(name)?),
            Kind::Int => Cell::Int(row.int(name)?),
            Kind::Flag => Cell::Flag(row.flag(name)?),
        });
    }
    let record = R::from_cells(key.clone(), &mut Cells(cells.into_iter()))?;
    let archived = row.flag("archived")?.unwrap_or(false);
    Ok((key, StoredRow { record, archived }))
}

impl<R: TypedTable> RowBatch<R> {
    /// The stored rows of these keys (archived ones included: seen again, they come back).
    pub async fn stored<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<HashMap<String, StoredRow<R>>> {
        let keys: Vec<&str> = keys.into_iter().collect();
        let mut stored = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let sql = format!(
                "SELECT {} FROM {} WHERE tenant_id = ",
                select_list::<R>(),
                R::TABLE
            );
            let tenant = self.tenant.clone();
            let rows = on_tx!(&mut self.tx, |c| {
                let mut query = sqlx::QueryBuilder::new(sql);
                query.push_bind(tenant).push(" AND item_key IN (");
                let mut list = query.separated(", ");
                for key in chunk {
                    list.push_bind(key.to_string());
                }
                query.push(")");
                let rows = query
                    .build()
                    .persistent(false)
                    .fetch_all(c)
                    .await
                    .doing("reading stored rows")?;
                rows.iter().map(stored_row::<R>).collect::<Result<Vec<_>>>()
            })?;
            stored.extend(rows);
        }
        Ok(stored)
    }

    /// The keys of the tenant's active rows (what a complete listing may archive).
    pub async fn active_keys(&mut self) -> Result<HashSet<String>> {
        let sql = format!(
            "SELECT item_key FROM {} WHERE tenant_id = $1 AND archived = FALSE",
            R::TABLE
        );
        let tenant = self.tenant.clone();
        on_tx!(&mut self.tx, |c| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant)
                .fetch_all(c)
                .await
                .doing("listing active rows")?;
            rows.iter().map(|r| r.text_req("item_key")).collect()
        })
    }

    /// The keys of the tenant's active rows that `wanted` picks, read one row at a time: after
    /// a large listing, the few it lacked are kept, never every active key at once.
    pub async fn active_keys_where(
        &mut self,
        mut wanted: impl FnMut(&str) -> bool + Send,
    ) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT item_key FROM {} WHERE tenant_id = $1 AND archived = FALSE",
            R::TABLE
        );
        let tenant = self.tenant.clone();
        on_tx!(&mut self.tx, |c| {
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant)
                .fetch(c);
            let mut picked = Vec::new();
            while let Some(row) = rows.try_next().await.doing("listing active rows")? {
                let key = row.text_req("item_key")?;
                if wanted(&key) {
                    picked.push(key);
                }
            }
            Ok(picked)
        })
    }

    /// Writes what the plan says, and the checkpoint it covers, in this batch's transaction.
    pub async fn apply(
        &mut self,
        plan: &RowPlan<R>,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<StepCounts> {
        let now = now_millis();
        let mut columns =
            String::from("organization_id, tenant_id, item_key, archived, created_at, updated_at");
        let mut updates = String::from(
            "organization_id = excluded.organization_id, archived = FALSE, updated_at = excluded.updated_at",
        );
        for (name, _) in R::COLUMNS {
            columns.push_str(", ");
            columns.push_str(name);
            updates.push_str(&format!(", {name} = excluded.{name}"));
        }
        let insert = format!("INSERT INTO {} ({columns}) ", R::TABLE);
        let conflict = format!(" ON CONFLICT (tenant_id, item_key) DO UPDATE SET {updates}");
        let (organization_id, tenant) = (self.organization_id, self.tenant.clone());
        for chunk in plan.write.chunks(CHUNK) {
            on_tx!(&mut self.tx, |c| {
                let mut query = sqlx::QueryBuilder::new(insert.as_str());
                query.push_values(chunk, |mut row, record| {
                    row.push_bind(organization_id)
                        .push_bind(tenant.clone())
                        .push_bind(record.key().to_string())
                        .push_bind(false)
                        .push_bind(now)
                        .push_bind(now);
                    for cell in record.cells() {
                        match cell {
                            Cell::Text(v) => row.push_bind(v),
                            Cell::Int(v) => row.push_bind(v),
                            Cell::Flag(v) => row.push_bind(v),
                        };
                    }
                });
                query.push(conflict.as_str());
                query
                    .build()
                    .persistent(false)
                    .execute(c)
                    .await
                    .done("saving typed rows")
            })?;
        }
        for chunk in plan.archive.chunks(CHUNK) {
            let sql = format!("UPDATE {} SET archived = TRUE, updated_at = ", R::TABLE);
            let tenant = tenant.clone();
            on_tx!(&mut self.tx, |c| {
                let mut query = sqlx::QueryBuilder::new(sql);
                query
                    .push_bind(now)
                    .push(" WHERE tenant_id = ")
                    .push_bind(tenant)
                    .push(" AND item_key IN (");
                let mut list = query.separated(", ");
                for key in chunk {
                    list.push_bind(key.clone());
                }
                query.push(")");
                query
                    .build()
                    .persistent(false)
                    .execute(c)
                    .await
                    .done("archiving typed rows")
            })?;
        }
        if let Some(checkpoint) = checkpoint {
            save_checkpoint(&mut self.tx, &self.tenant, checkpoint, now).await?;
        }
        Ok(StepCounts {
            created: plan.created,
            updated: plan.updated,
            unchanged: plan.unchanged,
            archived: plan.archive.len() as u64,
            ..StepCounts::default()
        })
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }

    /// The batch's transaction, for a table that belongs with these rows (a join table) to be
    /// written in it too.
    pub(crate) fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    pub(crate) fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Store {
    /// Opens a batch of a typed dataset's rows for one tenant, under the tenant's lock.
    pub async fn row_batch<R: TypedTable>(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
    ) -> Result<RowBatch<R>> {
        let tenant = tenant_id.to_string();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        Ok(RowBatch {
            tx,
            organization_id,
            tenant,
            _rows: std::marker::PhantomData,
        })
    }

    /// A typed dataset's rows, of one tenant when given, by organisation and key.
    pub async fn typed_rows<R: TypedTable>(
        &self,
        tenant_id: Option<&TenantId>,
        include_archived: bool,
    ) -> Result<Vec<ListedRow<R>>> {
        let tenant = tenant_id.map(ToString::to_string);
        let columns: String = select_list::<R>()
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, t.tenant_id, o.name AS organization FROM {} t JOIN organizations o ON o.id = t.organization_id \
             WHERE ($1 IS NULL OR t.tenant_id = $1) AND ($2 OR t.archived = FALSE) ORDER BY o.name, t.tenant_id, t.item_key",
            R::TABLE
        );
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.as_deref())
                .bind(include_archived)
                .fetch_all(p)
                .await
                .doing("listing typed rows")?;
            rows.iter()
                .map(|r| {
                    let (_, row) = stored_row::<R>(r)?;
                    Ok(ListedRow {
                        organization: r.text_req("organization")?,
                        tenant_id: r.text_req("tenant_id")?,
                        row,
                    })
                })
                .collect()
        })
    }
}
