//! The run log: every sync run and each of its steps, with counts and messages.

use domain::{RunStatus, StepStatus};
use serde::{Deserialize, Serialize};

use crate::backend::{Columns, on_pool, write_on_pool};
use crate::error::{Context, Executed, Result, StoreError};
use crate::owner::{Liveness, RunOwner};
use crate::{Store, now_millis};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub archived: u64,
    /// Marked deleted: in Microsoft 365's recycle bin, restorable, not archived yet.
    #[serde(default)]
    pub deleted: u64,
}

impl std::ops::AddAssign for StepCounts {
    fn add_assign(&mut self, other: Self) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.archived += other.archived;
        self.deleted += other.deleted;
    }
}

impl std::fmt::Display for StepCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} unchanged, {} archived",
            self.created, self.updated, self.unchanged, self.archived
        )?;
        if self.deleted > 0 {
            write!(f, ", {} deleted (restorable)", self.deleted)?;
        }
        Ok(())
    }
}

impl StepCounts {
    /// Records written: what an unchanged resync must keep at zero.
    pub fn writes(&self) -> u64 {
        self.created + self.updated + self.archived + self.deleted
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunWarning {
    pub code: String,
    pub message: String,
}

/// The tenant a step belongs to: the connection's own, or one of a partner's customers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepTenant {
    pub tenant_id: String,
    /// As the run knew it; unknown before a tenant's first organisation step.
    pub tenant_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub id: i64,
    pub dataset: String,
    /// The tenant it belongs to (none only for steps logged before tenants were recorded).
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub status: StepStatus,
    #[serde(flatten)]
    pub counts: StepCounts,
    pub message: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub connection_name: String,
    pub kind: String,
    pub status: RunStatus,
    pub warnings: Vec<RunWarning>,
    pub message: Option<String>,
    /// When it was put in the queue (milliseconds since 1970, as every time here).
    pub queued_at: Option<i64>,
    /// When a worker began it; `None` while it waits in the queue.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// From start to finish; `None` until it has finished (or if it never started).
    pub duration_ms: Option<i64>,
    pub steps: Vec<StepRow>,
}

/// The message to log on the `attempt`-th try to close a row in a full store: whole, then short,
/// then none.
fn shrunk(message: Option<&str>, attempt: u32) -> Option<String> {
    match attempt {
        // PostgreSQL cannot keep a NUL in text, whatever an error message carried.
        0 => message.map(|m| m.replace('\0', "")),
        1 => message.map(|_| "the store is full: free disk space, then sync again".to_string()),
        _ => None,
    }
}

/// A run's status and owner columns.
type StatusAndOwner = (String, Option<String>, Option<i64>, Option<String>);

fn owner_of(host: Option<String>, pid: Option<i64>, started: Option<String>) -> Option<RunOwner> {
    Some(RunOwner {
        host: host?,
        pid: pid?,
        started: started.unwrap_or_default(),
    })
}

pub(crate) fn started_ago(now: i64, started_at: i64) -> String {
    let seconds = (now.saturating_sub(started_at) / 1000).max(0);
    match seconds {
        0..=119 => format!("{seconds} s ago"),
        120..=7199 => format!("{} min ago", seconds / 60),
        _ => format!("{} h ago", seconds / 3600),
    }
}

fn counts(value: i64) -> u64 {
    value.max(0) as u64
}

fn step_from(row: &impl Columns) -> Result<StepRow> {
    let status = row.text_req("status")?;
    Ok(StepRow {
        id: row.int_req("id")?,
        dataset: row.text_req("dataset")?,
        tenant_id: row.text("tenant_id")?,
        tenant_name: row.text("tenant_name")?,
        status: StepStatus::from_db(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("step status '{status}'")))?,
        counts: StepCounts {
            created: counts(row.int_req("created")?),
            updated: counts(row.int_req("updated")?),
            unchanged: counts(row.int_req("unchanged")?),
            archived: counts(row.int_req("archived")?),
            deleted: counts(row.int_req("deleted")?),
        },
        message: row.text("message")?,
        started_at: row.int_req("started_at")?,
        finished_at: row.int("finished_at")?,
    })
}

fn run_from(row: &impl Columns) -> Result<RunRow> {
    let status = row.text_req("status")?;
    let status = RunStatus::from_db(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("run status '{status}'")))?;
    // A queued run's start is its queueing (set again when a worker claims it); a run cancelled
    // in the queue never started: no worker ever held a lease on it.
    let claimed = row.int("lease_until")?.is_some();
    let started_at = Some(row.int_req("started_at")?).filter(|_| match status {
        RunStatus::Queued => false,
        RunStatus::Cancelled => claimed,
        _ => true,
    });
    let finished_at = row.int("finished_at")?;
    Ok(RunRow {
        id: row.int_req("id")?,
        connection_name: row.text_req("connection_name")?,
        kind: row.text_req("kind")?,
        status,
        warnings: serde_json::from_str(&row.text_req("warnings")?)
            .map_err(|e| StoreError::Corrupt(format!("run warnings: {e}")))?,
        message: row.text("message")?,
        queued_at: row.int("queued_at")?,
        started_at,
        finished_at,
        duration_ms: started_at
            .zip(finished_at)
            .map(|(start, end)| end.saturating_sub(start).max(0)),
        steps: Vec::new(),
    })
}

impl Store {
    /// Starts a run of a connection, owned by this process. A run of the same connection that
    /// is still going in another process is not joined: it is refused, naming that run.
    pub async fn start_run(
        &self,
        connection_id: i64,
        connection_name: &str,
        kind: &str,
    ) -> Result<i64> {
        self.start_run_as(connection_id, connection_name, kind, &RunOwner::current())
            .await
    }

    /// Starts a run owned by `owner`: queued and claimed at once, with a lease of
    /// [`crate::queue::DEFAULT_LEASE`]. A run of the connection whose lease expired (or whose
    /// process is certainly gone) is closed as interrupted first; one still held is refused,
    /// naming it.
    pub async fn start_run_as(
        &self,
        connection_id: i64,
        connection_name: &str,
        kind: &str,
        owner: &RunOwner,
    ) -> Result<i64> {
        let options = crate::RunOptions {
            full: kind == "full",
            ..crate::RunOptions::default()
        };
        let worker = crate::Worker {
            owner: owner.clone(),
            name: uuid::Uuid::new_v4().to_string(),
            lease: crate::queue::DEFAULT_LEASE,
        };
        let queued = self
            .enqueue_run(
                connection_id,
                connection_name,
                crate::RunTrigger::Manual,
                options,
            )
            .await?;
        match self.claim_run(&worker, Some(queued.run_id)).await? {
            crate::Claim::Claimed(claimed) => Ok(claimed.run_id),
            refused => {
                if !queued.joined {
                    self.withdraw_run(queued.run_id).await?;
                }
                Err(crate::queue::refusal(
                    connection_name,
                    queued.run_id,
                    &refused,
                ))
            }
        }
    }

    /// Starts a step of a run, in the tenant it reads.
    pub async fn start_step(&self, run_id: i64, dataset: &str, tenant: &StepTenant) -> Result<i64> {
        write_on_pool!(self, |p| {
            sqlx::query_scalar(
            "INSERT INTO sync_steps (run_id, dataset, tenant_id, tenant_name, status, started_at) VALUES ($1, $2, $3, $4, 'running', $5) RETURNING id",
        )
        .bind(run_id)
        .bind(dataset)
        .bind(&tenant.tenant_id)
        .bind(&tenant.tenant_name)
        .bind(now_millis())
        .fetch_one(p)
        .await
        .doing("starting a step")
        })
    }

    /// Closes a step, with its tenant's name when the step learned it (a tenant's first
    /// organisation step). When the store is full, the step is still closed with a shorter
    /// message (and at worst none): a run left open would look live.
    pub async fn finish_step(
        &self,
        step_id: i64,
        status: StepStatus,
        counts: StepCounts,
        message: Option<&str>,
        tenant_name: Option<&str>,
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            let message = shrunk(message, attempt);
            let written = write_on_pool!(self, |p| {
                sqlx::query(
                "UPDATE sync_steps SET status = $1, created = $2, updated = $3, unchanged = $4, archived = $5, message = $6, finished_at = $7, tenant_name = COALESCE($8, tenant_name), deleted = $10 WHERE id = $9",
            )
            .bind(status.as_str())
            .bind(counts.created as i64)
            .bind(counts.updated as i64)
            .bind(counts.unchanged as i64)
            .bind(counts.archived as i64)
            .bind(message)
            .bind(now_millis())
            .bind(tenant_name)
            .bind(step_id)
            .bind(counts.deleted as i64)
            .execute(p).await.done("finishing a step")
            });
            match written {
                Err(e) if e.is_full() && attempt < 2 => attempt += 1,
                other => return other.map(|_| ()),
            }
        }
    }

    /// Closes a run, as `finish_step` does; on a full store its warnings may be left out. The
    /// records of its connection's runs older than the latest [`crate::run_records::KEPT_RUNS`]
    /// are forgotten then.
    pub async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        warnings: &[RunWarning],
        message: Option<&str>,
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            let warnings = if attempt == 0 {
                serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into())
            } else {
                "[]".to_string()
            };
            let message = shrunk(message, attempt);
            let written = write_on_pool!(self, |p| {
                // Only a run still going: one closed as interrupted (its lease expired) stays
                // so, and one taken over by another worker is that worker's to close.
                sqlx::query("UPDATE sync_runs SET status = $1, warnings = $2, message = $3, finished_at = $4, lease_owner = NULL WHERE id = $5 AND status = 'running' AND ($6 IS NULL OR lease_owner = $6)")
                .bind(status.as_str())
                .bind(&warnings)
                .bind(message)
                .bind(now_millis())
                .bind(run_id)
                .bind(self.fence_holder())
                .execute(p).await.done("finishing a run")
            });
            match written {
                Err(e) if e.is_full() && attempt < 2 => attempt += 1,
                Err(e) => return Err(e),
                Ok(_) => {
                    // Forgetting old records is housekeeping: the run is closed either way.
                    if let Err(e) = self.prune_run_records_of(run_id).await {
                        tracing::warn!(run = run_id, error = %e, "the records of old runs could not be forgotten");
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Marks as failed the runs whose lease expired (their worker stopped or was killed), with
    /// their open steps, and those whose process on this host is certainly gone. A run still
    /// held (a sync in another terminal, or on another host within its lease) is left alone.
    pub async fn fail_interrupted_runs(&self) -> Result<u64> {
        self.close_expired_runs().await
    }

    /// Closes a running run whose process a person knows is gone (another host's, which this
    /// one cannot see). A run whose process is alive on this host is refused.
    pub async fn close_run(&self, run_id: i64) -> Result<()> {
        let row: Option<StatusAndOwner> = on_pool!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT status, owner_host, owner_pid, owner_started FROM sync_runs WHERE id = $1",
            )
            .bind(run_id)
            .fetch_optional(p)
            .await
            .doing("reading a run")
        })?;
        let Some((status, host, pid, started)) = row else {
            return Err(StoreError::NotFound(format!(
                "there is no run {run_id}; `m365sync runs` lists them"
            )));
        };
        if status != "running" {
            return Err(StoreError::Conflict(format!(
                "run {run_id} is not running (it {status})"
            )));
        }
        if let Some(owner) = owner_of(host, pid, started)
            && owner.liveness() == Liveness::Alive
        {
            return Err(StoreError::Conflict(format!(
                "run {run_id} is still going in process {} on this machine; stop that process first, or let it finish",
                owner.pid
            )));
        }
        let mut tx = self.begin().await?;
        crate::queue::close_interrupted(&mut tx, run_id, now_millis()).await?;
        tx.commit().await
    }

    /// The newest runs first, with their steps; of one connection when named.
    pub async fn runs(&self, connection_name: Option<&str>, limit: i64) -> Result<Vec<RunRow>> {
        self.runs_before(connection_name, None, limit).await
    }

    /// [`runs`](Self::runs) older than run `before` when given: the next page of the log.
    pub async fn runs_before(
        &self,
        connection_name: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        let mut runs = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT id, connection_name, kind, status, warnings, message, queued_at, started_at, finished_at, lease_until FROM sync_runs WHERE ($1 IS NULL OR connection_name = $1) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $2",
            )
            .bind(connection_name)
            .bind(limit)
            .bind(before)
            .fetch_all(p)
            .await
            .doing("listing runs")?;
            rows.iter().map(run_from).collect::<Result<Vec<_>>>()
        })?;
        for run in &mut runs {
            run.steps = self.steps(run.id).await?;
        }
        Ok(runs)
    }

    pub async fn run(&self, run_id: i64) -> Result<Option<RunRow>> {
        let run = on_pool!(&self.pool, |p| {
            let row = sqlx::query("SELECT id, connection_name, kind, status, warnings, message, queued_at, started_at, finished_at, lease_until FROM sync_runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(p)
                .await
                .doing("reading a run")?;
            row.as_ref().map(run_from).transpose()
        })?;
        let Some(mut run) = run else { return Ok(None) };
        run.steps = self.steps(run.id).await?;
        Ok(Some(run))
    }

    async fn steps(&self, run_id: i64) -> Result<Vec<StepRow>> {
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT id, dataset, tenant_id, tenant_name, status, created, updated, unchanged, archived, deleted, message, started_at, finished_at FROM sync_steps AS step WHERE run_id = $1 ORDER BY (SELECT MIN(first.id) FROM sync_steps AS first WHERE first.run_id = step.run_id AND COALESCE(first.tenant_id, '') = COALESCE(step.tenant_id, '')), id",
            )
            .bind(run_id)
            .fetch_all(p)
            .await
            .doing("reading steps")?;
            rows.iter().map(step_from).collect()
        })
    }
}
