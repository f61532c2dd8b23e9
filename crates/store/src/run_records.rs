//! The process log's detail: what a run did to each record it changed or could not write
//! (created, updated with the fields old → new, archived or marked deleted with the reason,
//! skipped by a filter, held for review, failed with Graph's error). Unchanged records are only
//! counted, in their step, so that an unchanged resync writes nothing here.
//!
//! Records are buffered by whoever applies a plan and written with it, in its transaction, in
//! one multi-row insert. Only the records of a connection's last [`KEPT_RUNS`] runs are kept.

use serde::{Deserialize, Serialize};

use crate::backend::{Columns, Tx, on_pool, on_tx, write_on_pool};
use crate::error::{Context, Executed, Result, StoreError};
use crate::{Store, now_millis};

/// How many of a connection's latest runs keep their records; older runs keep their steps and
/// counts only. A fixed number for now; a setting of its own later.
pub const KEPT_RUNS: i64 = 50;

/// Rows per insert: a page of users (at most 999) and its removals fit in one statement, well
/// under both backends' limits on bound values.
const RECORDS_PER_INSERT: usize = 1_200;

/// What a run did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordOutcome {
    Created,
    Updated,
    Archived,
    /// In Microsoft 365's recycle bin: marked deleted, restorable, archived only later.
    Deleted,
    /// Left out by the connection's filters.
    Skipped,
    /// More than one contact could be this user: nothing written until a person decides.
    Held,
    Failed,
}

impl RecordOutcome {
    pub const ALL: [RecordOutcome; 7] = [
        Self::Created,
        Self::Updated,
        Self::Archived,
        Self::Deleted,
        Self::Skipped,
        Self::Held,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Archived => "archived",
            Self::Deleted => "deleted",
            Self::Skipped => "skipped",
            Self::Held => "held",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

impl std::fmt::Display for RecordOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The step a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordStep {
    pub run_id: i64,
    pub step_id: i64,
    pub tenant_id: String,
    pub dataset: String,
}

/// One record's outcome, to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub outcome: RecordOutcome,
    /// Its key in Microsoft 365 (a directory object id), or what stands for it (a page).
    pub key: String,
    /// How a person knows it: a user principal name, or a name.
    pub label: Option<String>,
    /// The fields changed, the reason, or the error.
    pub detail: serde_json::Value,
    pub contact_id: Option<i64>,
}

/// One record's outcome, as read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecordRow {
    pub step_id: Option<i64>,
    pub tenant_id: String,
    pub dataset: String,
    pub key: String,
    pub label: Option<String>,
    pub outcome: RecordOutcome,
    pub detail: serde_json::Value,
    pub contact_id: Option<i64>,
}

/// Writes records of one step in the caller's transaction.
pub(crate) async fn write_records(
    tx: &mut Tx,
    step: &RecordStep,
    records: &[RunRecord],
) -> Result<()> {
    let now = now_millis();
    for chunk in records.chunks(RECORDS_PER_INSERT) {
        let details: Vec<String> = chunk.iter().map(|r| r.detail.to_string()).collect();
        on_tx!(tx, |c| {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO run_records (run_id, step_id, tenant_id, dataset, record_key, label, outcome, detail, contact_id, recorded_at) ",
            );
            query.push_values(chunk.iter().zip(&details), |mut row, (record, detail)| {
                row.push_bind(step.run_id)
                    .push_bind(step.step_id)
                    .push_bind(step.tenant_id.as_str())
                    .push_bind(step.dataset.as_str())
                    .push_bind(record.key.as_str())
                    .push_bind(record.label.as_deref())
                    .push_bind(record.outcome.as_str())
                    .push_bind(detail.as_str())
                    .push_bind(record.contact_id)
                    .push_bind(now);
            });
            query
                .build()
                .persistent(false)
                .execute(&mut *c)
                .await
                .done("keeping the run's record outcomes")
        })?;
    }
    Ok(())
}

fn record_from(row: &impl Columns) -> Result<RunRecordRow> {
    let outcome = row.text_req("outcome")?;
    let detail = row.text_req("detail")?;
    Ok(RunRecordRow {
        step_id: row.int("step_id")?,
        tenant_id: row.text_req("tenant_id")?,
        dataset: row.text_req("dataset")?,
        key: row.text_req("record_key")?,
        label: row.text("label")?,
        outcome: RecordOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("record outcome '{outcome}'")))?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| StoreError::Corrupt(format!("record detail: {e}")))?,
        contact_id: row.int("contact_id")?,
    })
}

impl Store {
    /// Writes records of a step that no plan implies (a page Graph would not give), in a
    /// transaction of their own.
    pub async fn record_outcomes(&self, step: &RecordStep, records: &[RunRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        write_records(&mut tx, step, records).await?;
        tx.commit().await
    }

    /// A run's records in the order they were written, of one outcome when asked.
    pub async fn run_records(
        &self,
        run_id: i64,
        outcome: Option<RecordOutcome>,
    ) -> Result<Vec<RunRecordRow>> {
        let outcome = outcome.map(RecordOutcome::as_str);
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT step_id, tenant_id, dataset, record_key, label, outcome, detail, contact_id FROM run_records \
                 WHERE run_id = $1 AND ($2 IS NULL OR outcome = $2) ORDER BY id",
            )
            .bind(run_id)
            .bind(outcome)
            .fetch_all(p)
            .await
            .doing("reading a run's records")?;
            rows.iter().map(record_from).collect()
        })
    }

    /// One page of a run's records in the order they were written, of one outcome when asked,
    /// and how many such records the run has.
    pub async fn run_records_page(
        &self,
        run_id: i64,
        outcome: Option<RecordOutcome>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<RunRecordRow>, i64)> {
        let outcome = outcome.map(RecordOutcome::as_str);
        let rows = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT step_id, tenant_id, dataset, record_key, label, outcome, detail, contact_id FROM run_records \
                 WHERE run_id = $1 AND ($2 IS NULL OR outcome = $2) ORDER BY id LIMIT $3 OFFSET $4",
            )
            .bind(run_id)
            .bind(outcome)
            .bind(limit.max(0))
            .bind(offset.max(0))
            .fetch_all(p)
            .await
            .doing("reading a page of a run's records")?;
            rows.iter().map(record_from).collect::<Result<Vec<_>>>()
        })?;
        let total: i64 = on_pool!(&self.pool, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM run_records WHERE run_id = $1 AND ($2 IS NULL OR outcome = $2)",
            )
            .bind(run_id)
            .bind(outcome)
            .fetch_one(p)
            .await
            .doing("counting a run's records")
        })?;
        Ok((rows, total))
    }

    /// Forgets the records of the runs of `run_id`'s connection older than its latest
    /// [`KEPT_RUNS`].
    pub(crate) async fn prune_run_records_of(&self, run_id: i64) -> Result<u64> {
        let connection: Option<Option<i64>> = on_pool!(&self.pool, |p| {
            sqlx::query_scalar("SELECT connection_id FROM sync_runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(p)
                .await
                .doing("reading a run's connection")
        })?;
        match connection.flatten() {
            Some(connection_id) => self.prune_run_records(connection_id, KEPT_RUNS).await,
            None => Ok(0),
        }
    }

    /// Forgets the records of the connection's runs older than its `keep` latest (their steps
    /// and counts stay); how many records went.
    pub async fn prune_run_records(&self, connection_id: i64, keep: i64) -> Result<u64> {
        write_on_pool!(self, |p| {
            sqlx::query(
                "DELETE FROM run_records WHERE run_id IN (SELECT id FROM sync_runs WHERE connection_id = $1 AND id < \
                 (SELECT MIN(id) FROM (SELECT id FROM sync_runs WHERE connection_id = $1 ORDER BY id DESC LIMIT $2) latest))",
            )
            .bind(connection_id)
            .bind(keep.max(1))
            .execute(p)
            .await
            .done("forgetting the records of old runs")
        })
    }
}
