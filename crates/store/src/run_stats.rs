//! Figures over the whole run log, for monitoring: how many runs each connection has in each
//! status, and how long finished runs and their steps took, counted into buckets. Read from the
//! store rather than counted in one process, so that runs made by any worker or command show.

use serde::Serialize;

use crate::Store;
use crate::backend::{Columns, on_pool};
use crate::error::{Context, Result};

/// Runs of one connection in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunStatusCount {
    pub connection: String,
    pub status: String,
    pub runs: u64,
}

/// How long the finished runs (or steps) of one connection (and dataset) took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DurationHistogram {
    pub connection: String,
    /// The dataset, for steps.
    pub dataset: Option<String>,
    /// How many took at most each bound (in the order of the bounds asked for, cumulative).
    pub at_most: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

/// The SQL columns that count durations (`duration`, in ms) into buckets of `bounds` seconds.
fn bucket_columns(bounds: &[f64]) -> String {
    bounds
        .iter()
        .enumerate()
        .map(|(i, bound)| {
            // Bounds are the program's own numbers, never a request's: safe in the text.
            let ms = (bound * 1000.0).round() as i64;
            format!(", CAST(SUM(CASE WHEN duration <= {ms} THEN 1 ELSE 0 END) AS BIGINT) AS le_{i}")
        })
        .collect()
}

fn histogram_from(
    row: &impl Columns,
    bounds: &[f64],
    dataset: Option<String>,
) -> Result<DurationHistogram> {
    let at_most = (0..bounds.len())
        .map(|i| Ok(row.int(&format!("le_{i}"))?.unwrap_or(0).max(0) as u64))
        .collect::<Result<Vec<_>>>()?;
    Ok(DurationHistogram {
        connection: row.text_req("connection_name")?,
        dataset,
        at_most,
        count: row.int("runs")?.unwrap_or(0).max(0) as u64,
        sum_seconds: row.int("total_ms")?.unwrap_or(0).max(0) as f64 / 1000.0,
    })
}

impl Store {
    /// How many runs each connection has in each status.
    pub async fn run_status_counts(&self) -> Result<Vec<RunStatusCount>> {
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT connection_name, status, COUNT(*) AS runs FROM sync_runs GROUP BY connection_name, status ORDER BY connection_name, status",
            )
            .fetch_all(p)
            .await
            .doing("counting runs by status")?;
            rows.iter()
                .map(|r| {
                    Ok(RunStatusCount {
                        connection: r.text_req("connection_name")?,
                        status: r.text_req("status")?,
                        runs: r.int_req("runs")?.max(0) as u64,
                    })
                })
                .collect()
        })
    }

    /// How long each connection's finished runs took, from start to finish, in buckets of
    /// `bounds` seconds. A run cancelled in the queue never started and is left out.
    pub async fn run_durations(&self, bounds: &[f64]) -> Result<Vec<DurationHistogram>> {
        let sql = format!(
            "SELECT connection_name, COUNT(*) AS runs, CAST(SUM(duration) AS BIGINT) AS total_ms{} FROM \
             (SELECT connection_name, finished_at - started_at AS duration FROM sync_runs \
              WHERE finished_at IS NOT NULL AND status <> 'queued' AND NOT (status = 'cancelled' AND lease_until IS NULL)) finished \
             GROUP BY connection_name ORDER BY connection_name",
            bucket_columns(bounds)
        );
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(p)
                .await
                .doing("measuring run durations")?;
            rows.iter()
                .map(|r| histogram_from(r, bounds, None))
                .collect()
        })
    }

    /// How long each connection's finished steps took, per dataset, in buckets of `bounds`
    /// seconds.
    pub async fn step_durations(&self, bounds: &[f64]) -> Result<Vec<DurationHistogram>> {
        let sql = format!(
            "SELECT connection_name, dataset, COUNT(*) AS runs, CAST(SUM(duration) AS BIGINT) AS total_ms{} FROM \
             (SELECT r.connection_name, s.dataset, s.finished_at - s.started_at AS duration FROM sync_steps s \
              JOIN sync_runs r ON r.id = s.run_id WHERE s.finished_at IS NOT NULL) finished \
             GROUP BY connection_name, dataset ORDER BY connection_name, dataset",
            bucket_columns(bounds)
        );
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(p)
                .await
                .doing("measuring step durations")?;
            rows.iter()
                .map(|r| histogram_from(r, bounds, Some(r.text_req("dataset")?)))
                .collect()
        })
    }
}
