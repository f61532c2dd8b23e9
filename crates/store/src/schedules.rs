//! When connections sync on their own, and how fresh each dataset's last fetch is. Owns each
//! connection's schedule and the time it next comes due, the scheduler's tick that queues the
//! due runs, each connection's cache lifetimes, and when each dataset was last fetched for each
//! tenant.
//!
//! The tick queues a due run and moves the schedule on in one transaction (SQLite admits one
//! writer at a time; PostgreSQL reads the due schedules `FOR UPDATE SKIP LOCKED`, and the move
//! is conditional on the time read), so that several schedulers never queue one due run twice.

use domain::cache::CacheLifetimes;
use domain::{Dataset, Schedule};
use serde::Serialize;
use tracing::warn;

use crate::backend::{Tx, on_tx};
use crate::error::{Context, Executed, Result, StoreError};
use crate::queue::{Queued, RunOptions, RunTrigger, enqueue_in};
use crate::{Connection, Store};

/// A connection's schedule, as `connection list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleRow {
    pub connection_id: i64,
    pub connection_name: String,
    /// As typed back: `every 1h`, `cron "0 */4 * * *" Europe/Paris`; `None` when it has none.
    pub schedule: Option<String>,
    pub next_run_at: Option<i64>,
}

/// A run the scheduler queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRun {
    pub connection_name: String,
    pub queued: Queued,
}

fn no_connection(name: &str) -> StoreError {
    StoreError::NotFound(format!(
        "there is no connection named '{name}'; `m365sync connection list` shows them"
    ))
}

impl Store {
    /// Gives a connection a schedule, or takes it away (`None`); returns when it next comes due.
    pub async fn set_schedule(
        &self,
        name: &str,
        schedule: Option<&Schedule>,
        now: i64,
    ) -> Result<Option<i64>> {
        let next = schedule.and_then(|s| s.first_run_after(now));
        let text = schedule.map(|s| s.to_string());
        let mut tx = self.begin().await?;
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE connections SET schedule = $1, next_run_at = $2 WHERE name = $3")
                .bind(&text)
                .bind(next)
                .bind(name)
                .execute(&mut *c)
                .await
                .done("saving a connection's schedule")
        })?;
        if changed == 0 {
            return Err(no_connection(name));
        }
        tx.commit().await?;
        Ok(next)
    }

    /// Every connection's schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        let mut tx = self.begin().await?;
        let rows: Vec<(i64, String, Option<String>, Option<i64>)> = on_tx!(&mut tx, |c| {
            sqlx::query_as("SELECT id, name, schedule, next_run_at FROM connections ORDER BY name")
                .fetch_all(&mut *c)
                .await
                .doing("reading the schedules")
        })?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(
                |(connection_id, connection_name, schedule, next_run_at)| ScheduleRow {
                    connection_id,
                    connection_name,
                    schedule,
                    next_run_at,
                },
            )
            .collect())
    }

    /// The scheduler's tick at `now`: queues a scheduled run of every connection whose schedule
    /// is due (joining one already queued) and moves its schedule on, in one transaction.
    pub async fn queue_due_runs(&self, now: i64) -> Result<Vec<DueRun>> {
        let mut tx = self.begin().await?;
        let lock = if matches!(tx, Tx::Postgres(_)) {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, name, schedule, next_run_at FROM connections WHERE schedule IS NOT NULL AND (next_run_at IS NULL OR next_run_at <= $1) ORDER BY id{lock}"
        );
        let due: Vec<(i64, String, String, Option<i64>)> = on_tx!(&mut tx, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(now)
                .fetch_all(&mut *c)
                .await
                .doing("reading the due schedules")
        })?;
        let mut queued = Vec::new();
        for (id, name, text, next_run_at) in due {
            let schedule = match Schedule::parse(&text, now) {
                Ok(schedule) => schedule,
                Err(e) => {
                    warn!(connection = %name, schedule = %text, problem = %e.problem, "a stored schedule cannot be read; set it again with `m365sync connection schedule`");
                    continue;
                }
            };
            let tick = schedule.tick(next_run_at, now);
            // Moved on only from the time read: a scheduler that read it too queues nothing.
            let moved = on_tx!(&mut tx, |c| {
                sqlx::query("UPDATE connections SET next_run_at = $1 WHERE id = $2 AND COALESCE(next_run_at, -1) = $3")
                    .bind(tick.next_run_at)
                    .bind(id)
                    .bind(next_run_at.unwrap_or(-1))
                    .execute(&mut *c)
                    .await
                    .done("moving a schedule on")
            })?;
            if moved == 1 && tick.queue {
                let run = enqueue_in(
                    &mut tx,
                    id,
                    &name,
                    RunTrigger::Scheduled,
                    RunOptions::default(),
                )
                .await?;
                queued.push(DueRun {
                    connection_name: name,
                    queued: run,
                });
            }
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// A connection's cache lifetimes (the defaults, and its own where it set them).
    pub async fn cache_lifetimes(&self, connection_id: i64) -> Result<CacheLifetimes> {
        let mut tx = self.begin().await?;
        let stored: Option<String> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar("SELECT cache_lifetimes FROM connections WHERE id = $1")
                .bind(connection_id)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a connection's cache lifetimes")
        })?;
        tx.commit().await?;
        lifetimes_of(stored.as_deref())
    }

    /// Sets how long a fetch of `dataset` stays fresh for a connection, in seconds (0: every
    /// run), as `domain::cache::parse_lifetime` read them.
    pub async fn set_cache_lifetime(
        &self,
        name: &str,
        dataset: Dataset,
        seconds: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let stored: Option<String> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar("SELECT cache_lifetimes FROM connections WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a connection's cache lifetimes")
        })?;
        let Some(stored) = stored else {
            return Err(no_connection(name));
        };
        let mut lifetimes = lifetimes_of(Some(&stored))?;
        lifetimes.set(dataset, seconds);
        let text =
            serde_json::to_string(&lifetimes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE connections SET cache_lifetimes = $1 WHERE name = $2")
                .bind(&text)
                .bind(name)
                .execute(&mut *c)
                .await
                .done("saving a connection's cache lifetimes")
        })?;
        tx.commit().await
    }

    /// When `dataset` was last fetched whole for `tenant_id`.
    pub async fn dataset_fetched_at(
        &self,
        tenant_id: &str,
        dataset: Dataset,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let at: Option<i64> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "SELECT fetched_at FROM dataset_fetches WHERE tenant_id = $1 AND dataset = $2",
            )
            .bind(tenant_id)
            .bind(dataset.name())
            .fetch_optional(&mut *c)
            .await
            .doing("reading when a dataset was fetched")
        })?;
        tx.commit().await?;
        Ok(at)
    }

    /// Notes that `dataset` was fetched whole for `tenant_id` at `at`.
    pub async fn record_fetch(&self, tenant_id: &str, dataset: Dataset, at: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "INSERT INTO dataset_fetches (tenant_id, dataset, fetched_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, dataset) DO UPDATE SET fetched_at = excluded.fetched_at",
            )
            .bind(tenant_id)
            .bind(dataset.name())
            .bind(at)
            .execute(&mut *c)
            .await
            .done("noting when a dataset was fetched")
        })?;
        tx.commit().await
    }

    /// Forgets when the connection's tenants (its own, and a partner's customers) last fetched
    /// `dataset` (every dataset when `None`), so that the next run fetches it; how many fetches
    /// were forgotten.
    pub async fn clear_cache(
        &self,
        connection: &Connection,
        dataset: Option<Dataset>,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let cleared = on_tx!(&mut tx, |c| {
            sqlx::query(
                "DELETE FROM dataset_fetches WHERE ($1 IS NULL OR dataset = $1) AND \
                 (tenant_id = $2 OR tenant_id IN (SELECT tenant_id FROM tenants WHERE connection_id = $3))",
            )
            .bind(dataset.map(|d| d.name()))
            .bind(connection.tenant_id.to_string())
            .bind(connection.id)
            .execute(&mut *c)
            .await
            .done("clearing a connection's cache")
        })?;
        tx.commit().await?;
        Ok(cleared)
    }
}

fn lifetimes_of(stored: Option<&str>) -> Result<CacheLifetimes> {
    match stored {
        None => Ok(CacheLifetimes::default()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("connection cache lifetimes: {e}"))),
    }
}
