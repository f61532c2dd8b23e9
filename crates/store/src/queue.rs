//! The run queue: runs are jobs. A run is queued (by a person, or by its connection's schedule),
//! claimed by one worker with a lease the worker renews while it runs, and finished by that
//! worker. A run is interrupted only when its lease has expired (or, on this host, when the
//! process that held it is certainly gone), never because another command started. One run per
//! connection at a time; a person's run goes before scheduled ones, and asking again while one
//! is queued joins it rather than queueing a second.
//!
//! Claiming is one transaction: SQLite admits one writer at a time, and on PostgreSQL the
//! candidates are read `FOR UPDATE SKIP LOCKED`, so several worker processes can share the queue.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{Tx, on_tx};
use crate::error::{Context, Executed, Result, StoreError};
use crate::owner::{Liveness, RunOwner};
use crate::{Store, now_millis};

/// What a run is asked to do beyond a plain sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// List everything again, ignoring delta links and caches: a clean sync.
    #[serde(default)]
    pub full: bool,
    /// A person confirmed that this listing may archive most of a tenant's contacts.
    #[serde(default)]
    pub confirm_archive: bool,
}

impl RunOptions {
    /// Both runs' wishes, when a request joins a queued run.
    fn joined(self, other: RunOptions) -> RunOptions {
        RunOptions {
            full: self.full || other.full,
            confirm_archive: self.confirm_archive || other.confirm_archive,
        }
    }
}

/// Who asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    /// A person, from the CLI or the web: it goes before scheduled runs.
    Manual,
    Scheduled,
}

impl RunTrigger {
    fn priority(self) -> i64 {
        match self {
            RunTrigger::Manual => 0,
            RunTrigger::Scheduled => 1,
        }
    }
    fn kind(self, options: RunOptions) -> &'static str {
        match (self, options.full) {
            (_, true) => "full",
            (RunTrigger::Manual, false) => "manual",
            (RunTrigger::Scheduled, false) => "scheduled",
        }
    }
}

/// A run put in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub run_id: i64,
    /// The request joined a run that was already queued for the connection.
    pub joined: bool,
}

/// A worker: who holds a lease, and for how long each renewal keeps it.
#[derive(Debug, Clone)]
pub struct Worker {
    pub owner: RunOwner,
    /// Tells two workers of one process apart.
    pub name: String,
    pub lease: Duration,
}

impl Worker {
    /// A worker in this process.
    pub fn current(lease: Duration) -> Self {
        Self {
            owner: RunOwner::current(),
            name: uuid::Uuid::new_v4().to_string(),
            lease,
        }
    }
    /// How the run's row names this worker as its lease holder.
    pub(crate) fn holder(&self) -> String {
        format!("{}:{}", self.owner.host, self.name)
    }
    fn lease_millis(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// A run a worker has claimed.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub run_id: i64,
    pub connection_id: i64,
    pub connection_name: String,
    pub options: RunOptions,
    pub kind: String,
}

/// What claiming found.
#[derive(Debug, Clone)]
pub enum Claim {
    Claimed(ClaimedRun),
    /// The run asked for waits for another run of its connection, still held by its worker.
    Busy {
        run_id: i64,
        started_at: i64,
        owner: Option<RunOwner>,
    },
    /// Nothing in the queue can run now.
    Nothing,
}

/// What renewing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Held {
        /// Someone asked that the run stop at the next page boundary.
        cancel_requested: bool,
    },
    /// The lease expired and the run was closed as interrupted: the worker must stop writing.
    Lost,
}

/// What asking to cancel a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It was only queued: it will not run.
    Dequeued,
    /// It runs: it stops at its next page boundary, keeping what it committed.
    Stopping,
}

/// A run of the connection still in the way of another, and whether its lease is still valid.
type RunningRow = (
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// How long a claim holds a run before it must be renewed; a worker renews it every third of
/// that, so a stopped worker's run is taken for interrupted within a minute.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

const INTERRUPTED: &str = "interrupted: its worker stopped renewing the lease (the process was stopped or lost); what it committed is kept";

/// Every run going, with what tells whether it is still held.
async fn running_runs(tx: &mut Tx) -> Result<Vec<RunningRow>> {
    on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, connection_id, started_at, lease_until, owner_host, owner_pid, owner_started FROM sync_runs WHERE status = 'running'",
        )
        .fetch_all(&mut *c)
        .await
        .doing("looking at the runs going")
    })
}

/// Closes a run and its open steps as interrupted, unless it was closed meanwhile.
pub(crate) async fn close_interrupted(tx: &mut Tx, run_id: i64, now: i64) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("UPDATE sync_steps SET status = 'failed', message = 'interrupted: the run stopped during this step', finished_at = $1 WHERE run_id = $2 AND status = 'running'")
            .bind(now)
            .bind(run_id)
            .execute(&mut *c)
            .await
            .done("closing interrupted steps")?;
        sqlx::query("UPDATE sync_runs SET status = 'failed', message = $1, finished_at = $2, lease_owner = NULL WHERE id = $3 AND status = 'running'")
            .bind(INTERRUPTED)
            .bind(now)
            .bind(run_id)
            .execute(&mut *c)
            .await
            .done("closing interrupted runs")
    })?;
    Ok(())
}

/// Why a run asked for could not be claimed, as the error a person reads.
pub fn refusal(connection_name: &str, asked: i64, claim: &Claim) -> StoreError {
    match claim {
        Claim::Busy {
            run_id,
            started_at,
            owner,
        } => {
            let by = match owner {
                Some(owner) => {
                    let way_out = if owner.liveness() == Liveness::Unknown {
                        format!(
                            "; if {} no longer runs it (a machine or container that is gone), close it with `m365sync runs --close {run_id}`, or wait for its lease to expire",
                            owner.host
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        " by process {} on {}. Wait for it to finish (`m365sync runs --connection {connection_name}`), or stop that process{way_out}",
                        owner.pid, owner.host
                    )
                }
                None => format!(
                    ". Wait for it to finish (`m365sync runs --connection {connection_name}`)"
                ),
            };
            StoreError::Conflict(format!(
                "connection '{connection_name}' is already syncing: run {run_id}, started {}{by}",
                crate::runs::started_ago(now_millis(), *started_at)
            ))
        }
        _ => StoreError::Conflict(format!(
            "run {asked} of connection '{connection_name}' was taken by a worker meanwhile; follow it with `m365sync runs --connection {connection_name}`"
        )),
    }
}

/// Whether a running run is still held: its lease is valid and its owner, where it can be seen
/// from here, is alive.
fn still_held(row: &RunningRow, now: i64) -> bool {
    let (_, _, _, lease_until, host, pid, started) = row;
    if lease_until.unwrap_or(0) < now {
        return false;
    }
    let owner = match (host, pid) {
        (Some(host), Some(pid)) => RunOwner {
            host: host.clone(),
            pid: *pid,
            started: started.clone().unwrap_or_default(),
        },
        _ => return true,
    };
    owner.liveness() != Liveness::Gone
}

/// Queues a run of a connection within `tx`, joining one already queued for it: the scheduler
/// queues due runs in the same transaction that moves their schedules on.
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    connection_id: i64,
    connection_name: &str,
    trigger: RunTrigger,
    options: RunOptions,
) -> Result<Queued> {
    tx.lock_tenant(&format!("connection-run:{connection_id}"))
        .await?;
    let queued: Option<(i64, String, i64)> = on_tx!(&mut *tx, |c| {
        sqlx::query_as("SELECT id, options, priority FROM sync_runs WHERE connection_id = $1 AND status = 'queued' ORDER BY id LIMIT 1")
            .bind(connection_id)
            .fetch_optional(&mut *c)
            .await
            .doing("looking for a queued run")
    })?;
    let now = now_millis();
    if let Some((run_id, stored, priority)) = &queued {
        let before: RunOptions = serde_json::from_str(stored).unwrap_or_default();
        let options = before.joined(options);
        let text = serde_json::to_string(&options).unwrap_or_else(|_| "{}".into());
        // A person's run joined by a schedule stays the person's.
        let asked_by = if *priority <= RunTrigger::Manual.priority() {
            RunTrigger::Manual
        } else {
            trigger
        };
        // Only while still queued: one a worker has just claimed would drop this request's
        // wishes (a clean listing, an accepted drop); a run of its own is queued instead.
        let joined = on_tx!(&mut *tx, |c| {
            sqlx::query("UPDATE sync_runs SET options = $1, kind = $2, priority = CASE WHEN priority < $3 THEN priority ELSE $3 END WHERE id = $4 AND status = 'queued'")
                .bind(&text)
                .bind(asked_by.kind(options))
                .bind(trigger.priority())
                .bind(*run_id)
                .execute(&mut *c)
                .await
                .done("joining a queued run")
        })?;
        if joined == 1 {
            return Ok(Queued {
                run_id: *run_id,
                joined: true,
            });
        }
    }
    let text = serde_json::to_string(&options).unwrap_or_else(|_| "{}".into());
    let run_id = on_tx!(&mut *tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO sync_runs (connection_id, connection_name, kind, status, started_at, queued_at, priority, options) VALUES ($1, $2, $3, 'queued', $4, $4, $5, $6) RETURNING id",
        )
        .bind(connection_id)
        .bind(connection_name)
        .bind(trigger.kind(options))
        .bind(now)
        .bind(trigger.priority())
        .bind(&text)
        .fetch_one(&mut *c)
        .await
        .doing("queueing a run")
    })?;
    Ok(Queued {
        run_id,
        joined: false,
    })
}

impl Store {
    /// Queues a run of a connection. A run already queued for it is joined instead (a person's
    /// request raises it before scheduled runs).
    pub async fn enqueue_run(
        &self,
        connection_id: i64,
        connection_name: &str,
        trigger: RunTrigger,
        options: RunOptions,
    ) -> Result<Queued> {
        let mut tx = self.begin().await?;
        let outcome = enqueue_in(&mut tx, connection_id, connection_name, trigger, options).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Closes the runs whose lease expired, or whose process on this host is gone; how many.
    pub async fn close_expired_runs(&self) -> Result<u64> {
        let now = now_millis();
        let mut tx = self.begin().await?;
        let running = running_runs(&mut tx).await?;
        let mut closed = 0;
        for row in running.iter().filter(|row| !still_held(row, now)) {
            close_interrupted(&mut tx, row.0, now).await?;
            closed += 1;
        }
        tx.commit().await?;
        Ok(closed)
    }

    /// Claims the next run for `worker`: the oldest of the highest priority whose connection has
    /// no run going; `only` claims that run and no other. Runs whose lease expired are closed as
    /// interrupted first. `None` when nothing can be claimed now.
    pub async fn claim_run(&self, worker: &Worker, only: Option<i64>) -> Result<Claim> {
        let now = now_millis();
        let mut tx = self.begin().await?;
        let postgres = matches!(tx, Tx::Postgres(_));
        let running = running_runs(&mut tx).await?;
        let mut busy = std::collections::HashMap::new();
        for row in &running {
            if still_held(row, now) {
                if let Some(connection) = row.1 {
                    busy.insert(connection, row);
                }
            } else {
                close_interrupted(&mut tx, row.0, now).await?;
            }
        }
        // SKIP LOCKED: another worker's claim in progress is passed over, not waited for. A
        // request for one run waits instead, to learn who got it.
        let lock = match (postgres, only) {
            (false, _) => "",
            (true, None) => " FOR UPDATE SKIP LOCKED",
            (true, Some(_)) => " FOR UPDATE",
        };
        let sql = format!(
            "SELECT id, connection_id, connection_name, options, kind FROM sync_runs WHERE status = 'queued' AND ($1 IS NULL OR id = $1) ORDER BY priority, id LIMIT 50{lock}"
        );
        let candidates: Vec<(i64, Option<i64>, String, String, String)> = on_tx!(&mut tx, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(only)
                .fetch_all(&mut *c)
                .await
                .doing("reading the queue")
        })?;
        let free = candidates
            .iter()
            .find(|c| c.1.is_some_and(|id| !busy.contains_key(&id)))
            .cloned();
        let Some((run_id, connection_id, connection_name, options, kind)) = free else {
            // The run asked for waits behind its connection's run: say which.
            // Or it is itself going already: another request claimed the run this one joined.
            let blocking = candidates
                .first()
                .filter(|_| only.is_some())
                .and_then(|c| c.1)
                .and_then(|connection| busy.get(&connection))
                .or_else(|| {
                    let asked = only?;
                    busy.values().find(|row| row.0 == asked)
                });
            let blocking = match (blocking, only) {
                (Some(row), _) => Some((*row).clone()),
                // Claimed by a request whose transaction ended after this one's read began.
                (None, Some(asked)) => on_tx!(&mut tx, |c| {
                    sqlx::query_as::<_, RunningRow>(
                        "SELECT id, connection_id, started_at, lease_until, owner_host, owner_pid, owner_started FROM sync_runs WHERE id = $1 AND status = 'running'",
                    )
                    .bind(asked)
                    .fetch_optional(&mut *c)
                    .await
                    .doing("reading the run asked for")
                })?,
                (None, None) => None,
            };
            tx.commit().await?;
            return Ok(match blocking {
                Some((id, _, started_at, _, host, pid, started)) => Claim::Busy {
                    run_id: id,
                    started_at,
                    owner: match (host, pid) {
                        (Some(host), Some(pid)) => Some(RunOwner {
                            host,
                            pid,
                            started: started.unwrap_or_default(),
                        }),
                        _ => None,
                    },
                },
                None => Claim::Nothing,
            });
        };
        let connection_id = connection_id.unwrap_or_default();
        let holder = worker.holder();
        on_tx!(&mut tx, |c| {
            sqlx::query("UPDATE sync_runs SET status = 'running', started_at = $1, lease_owner = $2, lease_until = $3, owner_host = $4, owner_pid = $5, owner_started = $6 WHERE id = $7 AND status = 'queued'")
                .bind(now)
                .bind(&holder)
                .bind(now + worker.lease_millis())
                .bind(&worker.owner.host)
                .bind(worker.owner.pid)
                .bind(&worker.owner.started)
                .bind(run_id)
                .execute(&mut *c)
                .await
                .done("claiming a run")
        })?;
        tx.commit().await?;
        Ok(Claim::Claimed(ClaimedRun {
            run_id,
            connection_id,
            connection_name,
            options: serde_json::from_str(&options).unwrap_or_default(),
            kind,
        }))
    }

    /// Extends the worker's lease on a run it holds, and says whether someone asked it to stop.
    pub async fn renew_lease(&self, worker: &Worker, run_id: i64) -> Result<Lease> {
        let now = now_millis();
        let holder = worker.holder();
        let mut tx = self.begin().await?;
        let row: Option<(bool,)> = on_tx!(&mut tx, |c| {
            sqlx::query_as("UPDATE sync_runs SET lease_until = $1 WHERE id = $2 AND status = 'running' AND lease_owner = $3 RETURNING cancel_requested")
                .bind(now + worker.lease_millis())
                .bind(run_id)
                .bind(&holder)
                .fetch_optional(&mut *c)
                .await
                .doing("renewing a lease")
        })?;
        tx.commit().await?;
        Ok(match row {
            Some((cancel_requested,)) => Lease::Held { cancel_requested },
            None => Lease::Lost,
        })
    }

    /// Whether the worker still holds the run (its lease was not taken for expired meanwhile).
    pub async fn holds_run(&self, worker: &Worker, run_id: i64) -> Result<bool> {
        let holder = worker.holder();
        let mut tx = self.begin().await?;
        let found: Option<i64> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
                "SELECT id FROM sync_runs WHERE id = $1 AND status = 'running' AND lease_owner = $2",
            )
            .bind(run_id)
            .bind(&holder)
            .fetch_optional(&mut *c)
            .await
            .doing("reading a run's lease")
        })?;
        tx.commit().await?;
        Ok(found.is_some())
    }

    /// Asks a run to stop: a queued one is cancelled at once; a running one stops at its next
    /// page boundary, keeping what it committed.
    pub async fn cancel_run(&self, run_id: i64) -> Result<Cancelled> {
        let now = now_millis();
        let mut tx = self.begin().await?;
        let status: Option<String> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a run")
        })?;
        let outcome = match status.as_deref() {
            None => {
                return Err(StoreError::NotFound(format!(
                    "there is no run {run_id}; `m365sync runs` lists them"
                )));
            }
            Some("queued") => {
                // Only while still queued: a worker may claim it between the read and here.
                let dequeued = on_tx!(&mut tx, |c| {
                    sqlx::query("UPDATE sync_runs SET status = 'cancelled', message = 'cancelled before it started', finished_at = $1 WHERE id = $2 AND status = 'queued'")
                        .bind(now)
                        .bind(run_id)
                        .execute(&mut *c)
                        .await
                        .done("cancelling a run")
                })?;
                if dequeued == 1 {
                    Cancelled::Dequeued
                } else {
                    on_tx!(&mut tx, |c| {
                        sqlx::query("UPDATE sync_runs SET cancel_requested = TRUE WHERE id = $1 AND status = 'running'")
                            .bind(run_id)
                            .execute(&mut *c)
                            .await
                            .done("asking a run to stop")
                    })?;
                    Cancelled::Stopping
                }
            }
            Some("running") => {
                on_tx!(&mut tx, |c| {
                    sqlx::query("UPDATE sync_runs SET cancel_requested = TRUE WHERE id = $1")
                        .bind(run_id)
                        .execute(&mut *c)
                        .await
                        .done("asking a run to stop")
                })?;
                Cancelled::Stopping
            }
            Some(other) => {
                return Err(StoreError::Conflict(format!(
                    "run {run_id} has already ended ({other}); there is nothing to cancel"
                )));
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Takes back a run this request queued and could not start (its connection was busy), so
    /// that the refusal leaves nothing behind.
    pub async fn withdraw_run(&self, run_id: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM sync_runs WHERE id = $1 AND status = 'queued'")
                .bind(run_id)
                .execute(&mut *c)
                .await
                .done("withdrawing a queued run")
        })?;
        tx.commit().await
    }

    /// The runs waiting in the queue, in the order they will be claimed.
    pub async fn queued_runs(&self) -> Result<Vec<(i64, String, String)>> {
        let mut tx = self.begin().await?;
        let rows: Vec<(i64, String, String)> = on_tx!(&mut tx, |c| {
            sqlx::query_as("SELECT id, connection_name, kind FROM sync_runs WHERE status = 'queued' ORDER BY priority, id")
                .fetch_all(&mut *c)
                .await
                .doing("reading the queue")
        })?;
        tx.commit().await?;
        Ok(rows)
    }
}
