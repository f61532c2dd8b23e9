//! The audit trail: `audit_records`, a typed table that is only ever appended to. A record read
//! twice adds nothing and a kept record is never rewritten; the one way a record leaves is
//! [`Store::expire_audit_records`], the retention period of its connection, which is the only
//! place a sync deletes rows rather than archiving them.

use domain::rows::Keyed;
use domain::{AuditRecord, AuditRetention, TenantId};

use crate::backend::{Columns, on_pool, on_tx, write_on_pool};
use crate::contacts::save_checkpoint;
use crate::error::{Context, Executed, Result, StoreError};
use crate::typed::{Cell, Cells, Kind, ListedRow, TypedTable, select_list, stored_row};
use crate::{Checkpoint, StepCounts, Store, now_millis};

impl TypedTable for AuditRecord {
    const TABLE: &'static str = "audit_records";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("creation_time", Kind::Text),
        ("operation", Kind::Text),
        ("workload", Kind::Text),
        ("record_type", Kind::Int),
        ("user_id", Kind::Text),
        ("user_type", Kind::Int),
        ("client_ip", Kind::Text),
        ("result_status", Kind::Text),
        ("object_id", Kind::Text),
        ("content_type", Kind::Text),
        ("record", Kind::Text),
    ];

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::Text(self.creation_time.clone()),
            Cell::Text(self.operation.clone()),
            Cell::Text(self.workload.clone()),
            Cell::Int(self.record_type),
            Cell::Text(self.user_id.clone()),
            Cell::Int(self.user_type),
            Cell::Text(self.client_ip.clone()),
            Cell::Text(self.result_status.clone()),
            Cell::Text(self.object_id.clone()),
            Cell::Text(self.content_type.clone()),
            Cell::Text(Some(self.record.to_string())),
        ]
    }

    fn from_cells(key: String, cells: &mut Cells) -> Result<Self> {
        Ok(AuditRecord {
            id: key,
            creation_time: cells.text()?,
            operation: cells.text()?,
            workload: cells.text()?,
            record_type: cells.int()?,
            user_id: cells.text()?,
            user_type: cells.int()?,
            client_ip: cells.text()?,
            result_status: cells.text()?,
            object_id: cells.text()?,
            content_type: cells.text()?,
            record: match cells.text()? {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("an audit record's JSON: {e}")))?,
                None => serde_json::Value::Null,
            },
        })
    }
}

/// Which audit records to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub tenant_id: Option<TenantId>,
    /// Only records created at or after this UTC time, written as the common schema writes it
    /// (`2026-11-01T00:00:00`).
    pub since: Option<String>,
    /// Only the records of this user (`UserId`, any case).
    pub user: Option<String>,
}

/// Rows written per statement.
const CHUNK: usize = 200;

impl Store {
    /// Appends one window of audit records, and the resume point it covers, in one transaction.
    /// Records already kept are left as they are and counted unchanged.
    pub async fn append_audit_records(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
        records: &[AuditRecord],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<StepCounts> {
        let mut counts = StepCounts::default();
        if records.is_empty() && checkpoint.is_none() {
            return Ok(counts);
        }
        // A blob may repeat a record, and one statement must not name a key twice.
        let mut seen = std::collections::HashSet::with_capacity(records.len());
        let fresh: Vec<&AuditRecord> = records.iter().filter(|r| seen.insert(r.key())).collect();
        let tenant = tenant_id.to_string();
        let now = now_millis();
        let mut columns =
            String::from("organization_id, tenant_id, item_key, archived, created_at, updated_at");
        for (name, _) in AuditRecord::COLUMNS {
            columns.push_str(", ");
            columns.push_str(name);
        }
        let insert = format!("INSERT INTO {} ({columns}) ", AuditRecord::TABLE);
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        for chunk in fresh.chunks(CHUNK) {
            counts.created += on_tx!(&mut tx, |c| {
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
                query.push(" ON CONFLICT (tenant_id, item_key) DO NOTHING");
                query
                    .build()
                    .persistent(false)
                    .execute(c)
                    .await
                    .done("saving audit records")
            })?;
        }
        counts.unchanged = fresh.len() as u64 - counts.created;
        if let Some(checkpoint) = checkpoint {
            save_checkpoint(&mut tx, &tenant, checkpoint, now).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Deletes the tenant's audit records created before `created_before` (a UTC time written
    /// as the common schema writes it); a record without a creation time goes by when it was
    /// kept, `stored_before` (milliseconds since 1970). Returns how many went.
    pub async fn expire_audit_records(
        &self,
        tenant_id: &TenantId,
        created_before: &str,
        stored_before: i64,
    ) -> Result<u64> {
        let tenant = tenant_id.to_string();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        let deleted = on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM audit_records WHERE tenant_id = $1 \
             AND (creation_time < $2 OR (creation_time IS NULL AND created_at < $3))"
        )
        .bind(&tenant)
        .bind(created_before)
        .bind(stored_before)
        .execute(c)
        .await
        .done("deleting audit records past their retention"))?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Audit records by organisation and tenant, oldest first.
    pub async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<ListedRow<AuditRecord>>> {
        let columns: String = select_list::<AuditRecord>()
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let select = format!(
            "SELECT {columns}, t.tenant_id, o.name AS organization FROM audit_records t \
             JOIN organizations o ON o.id = t.organization_id WHERE TRUE"
        );
        let tenant = query.tenant_id.map(|t| t.to_string());
        let user = query.user.as_deref().map(|u| u.trim().to_lowercase());
        on_pool!(&self.pool, |p| {
            let mut sql = sqlx::QueryBuilder::new(select.as_str());
            if let Some(tenant) = &tenant {
                sql.push(" AND t.tenant_id = ").push_bind(tenant.clone());
            }
            if let Some(since) = &query.since {
                sql.push(" AND t.creation_time >= ")
                    .push_bind(since.clone());
            }
            if let Some(user) = &user {
                sql.push(" AND t.user_id = ").push_bind(user.clone());
            }
            // Records without a time last, on both backends (they disagree on where NULL sorts).
            sql.push(
                " ORDER BY o.name, t.tenant_id, t.creation_time IS NULL, t.creation_time, t.item_key",
            );
            let rows = sql
                .build()
                .persistent(false)
                .fetch_all(p)
                .await
                .doing("listing audit records")?;
            rows.iter()
                .map(|r| {
                    let (_, row) = stored_row::<AuditRecord>(r)?;
                    Ok(ListedRow {
                        organization: r.text_req("organization")?,
                        tenant_id: r.text_req("tenant_id")?,
                        row,
                    })
                })
                .collect()
        })
    }

    /// One page of a tenant's audit records, newest first (records without a time last),
    /// narrowed to those whose user, operation, workload, result, client address or object holds
    /// `search` in any case; and how many match in all.
    pub async fn audit_page(
        &self,
        tenant_id: &TenantId,
        search: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ListedRow<AuditRecord>>, i64)> {
        let columns: String = select_list::<AuditRecord>()
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = crate::contacts::TextSearch::new(self.backend(), search);
        // Only the closed list of columns and the backend's operator reach the SQL text.
        let text_test = text
            .as_ref()
            .map(|t| {
                t.any_of(
                    &[
                        "t.user_id",
                        "t.operation",
                        "t.workload",
                        "t.result_status",
                        "t.client_ip",
                        "t.object_id",
                    ],
                    "$2",
                )
            })
            .unwrap_or_else(|| "($2 IS NULL)".into());
        let filter = format!(
            "FROM audit_records t JOIN organizations o ON o.id = t.organization_id \
             WHERE t.tenant_id = $1 AND {text_test}"
        );
        let count_sql = format!("SELECT COUNT(*) {filter}");
        let page_sql = format!(
            "SELECT {columns}, t.tenant_id, o.name AS organization {filter} \
             ORDER BY t.creation_time IS NULL, t.creation_time DESC, t.item_key DESC LIMIT $3 OFFSET $4"
        );
        let tenant = tenant_id.to_string();
        let pattern = text.map(|t| t.pattern);
        on_pool!(&self.pool, |p| {
            let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone()))
                .bind(tenant.as_str())
                .bind(pattern.as_deref())
                .fetch_one(p)
                .await
                .doing("counting audit records")?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(page_sql.clone()))
                .bind(tenant.as_str())
                .bind(pattern.as_deref())
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(p)
                .await
                .doing("listing a page of audit records")?;
            let listed = rows
                .iter()
                .map(|r| {
                    let (_, row) = stored_row::<AuditRecord>(r)?;
                    Ok(ListedRow {
                        organization: r.text_req("organization")?,
                        tenant_id: r.text_req("tenant_id")?,
                        row,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok::<_, StoreError>((listed, total))
        })
    }

    /// Sets how long a connection keeps audit records; the next sync of each of its tenants
    /// deletes what is older.
    pub async fn set_audit_retention(&self, name: &str, retention: AuditRetention) -> Result<()> {
        let changed = write_on_pool!(self, |p| sqlx::query(
            "UPDATE connections SET audit_retention_days = $1 WHERE name = $2"
        )
        .bind(i64::from(retention.days()))
        .bind(name)
        .execute(p)
        .await
        .done("saving a connection's audit retention"))?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "there is no connection named '{name}'; `m365sync connection list` shows them"
            )));
        }
        Ok(())
    }
}
