//! Runs that happen on their own: `connection schedule`, `connection cache`, `cache clear`,
//! `cancel`, `worker`, and the scheduler and worker that `serve` runs beside the web pages.
//!
//! A worker stops claiming at the first Ctrl-C or SIGTERM and lets the run it holds finish; a
//! second signal ends it at once, and that run's lease then expires as any lost worker's does.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use domain::cache::{describe_lifetime, parse_lifetime};
use domain::{Dataset, Schedule};
use store::{Cancelled, Store, Worker};
use sync::{NoProgress, SyncEngine};
use tokio::sync::watch;

use crate::UsageError;
use crate::commands::open_store;

/// How often `serve` looks for due schedules.
pub const SCHEDULER_TICK: Duration = Duration::from_secs(30);

#[derive(Args)]
pub struct ScheduleArgs {
    /// The connection's name, as `connection list` shows it.
    name: String,
    /// Sync every interval: 1h, 30m, 1d (5m at least).
    #[arg(long, value_name = "INTERVAL", conflicts_with_all = ["cron", "off"], required_unless_present_any = ["cron", "off"])]
    every: Option<String>,
    /// Sync when this five-field cron pattern matches, e.g. "0 */4 * * *".
    #[arg(long, value_name = "PATTERN", conflicts_with = "off")]
    cron: Option<String>,
    /// The time zone the cron pattern is read in (an IANA name such as Europe/Paris). When not
    /// given: M365SYNC_TIME_ZONE, else the configuration file's `time_zone`, else UTC.
    #[arg(long, value_name = "ZONE", requires = "cron")]
    time_zone: Option<String>,
    /// Sync only when asked.
    #[arg(long)]
    off: bool,
}

#[derive(Args)]
pub struct CacheArgs {
    /// The connection's name, as `connection list` shows it.
    name: String,
    /// The dataset whose cache lifetime to set (all are shown when none is given).
    #[arg(long, requires = "lifetime")]
    dataset: Option<String>,
    /// How long its fetch stays fresh: 12h, 15m, 1d; 0 fetches it on every run.
    #[arg(long, requires = "dataset")]
    lifetime: Option<String>,
}

#[derive(Subcommand)]
pub enum CacheCommand {
    /// Forget when the connection's datasets were fetched, so that its next run fetches them.
    Clear {
        /// The connection's name, as `connection list` shows it.
        name: String,
        /// Only this dataset.
        #[arg(long)]
        dataset: Option<String>,
    },
}

#[derive(Args)]
pub struct CancelArgs {
    /// The run's id, as `m365sync runs` shows it.
    run: i64,
}

#[derive(Args)]
pub struct WorkerArgs {
    /// How long a claimed run stays the worker's without renewal: a worker that stops is taken
    /// for gone after that, and its run for interrupted.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    lease: String,
    /// How often an idle worker looks at the queue.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    poll: String,
    /// Stop once the queue is empty instead of waiting for more.
    #[arg(long)]
    until_idle: bool,
}

fn duration(option: &'static str, raw: &str) -> Result<Duration, UsageError> {
    let seconds = domain::schedule::parse_duration(option, raw)
        .map_err(|e| UsageError(format!("{option} {}: {}", raw, e.problem)))?;
    if seconds == 0 {
        return Err(UsageError(format!("{option} must be longer than 0")));
    }
    Ok(Duration::from_secs(seconds))
}

fn dataset(raw: &str) -> Result<Dataset, UsageError> {
    Dataset::parse(raw).map_err(|e| UsageError(format!("--dataset {}. {}", e.problem, e.fix)))
}

/// A time as the command line shows it: to the minute, in UTC.
pub fn moment(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "an unreadable time".into())
}

pub async fn schedule(db: &str, args: ScheduleArgs) -> anyhow::Result<ExitCode> {
    let now = store::now_millis();
    let usage = |e: domain::InputError| UsageError(format!("{}. {}", e.problem, e.fix));
    let wanted = match (&args.every, &args.cron) {
        _ if args.off => None,
        (Some(every), _) => Some(Schedule::every(every).map_err(usage)?),
        (None, Some(pattern)) => Some(
            Schedule::cron(
                pattern,
                args.time_zone
                    .clone()
                    .or_else(crate::config::default_time_zone)
                    .as_deref(),
                now,
            )
            .map_err(usage)?,
        ),
        (None, None) => {
            return Err(UsageError("give --every, --cron or --off".into()).into());
        }
    };
    let store = open_store(db).await?;
    let next = store.set_schedule(&args.name, wanted.as_ref(), now).await?;
    match (&wanted, next) {
        (None, _) => out!(
            "Connection '{}' has no schedule: it syncs when asked (`m365sync sync {}`).",
            args.name,
            args.name
        )?,
        (Some(schedule), Some(next)) => out!(
            "Connection '{}' syncs {schedule}; next run {}. A worker runs it: `m365sync serve` or `m365sync worker`.",
            args.name,
            moment(next)
        )?,
        (Some(schedule), None) => out!(
            "Connection '{}' syncs {schedule}, which does not come due again.",
            args.name
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cache(db: &str, args: CacheArgs) -> anyhow::Result<ExitCode> {
    let set = match (&args.dataset, &args.lifetime) {
        (Some(raw), Some(lifetime)) => {
            let dataset = dataset(raw)?;
            let seconds = parse_lifetime(dataset, lifetime)
                .map_err(|e| UsageError(format!("{}. {}", e.problem, e.fix)))?;
            Some((dataset, seconds))
        }
        _ => None,
    };
    let store = open_store(db).await?;
    let connection = store
        .connection(&args.name)
        .await?
        .ok_or_else(|| sync::SyncError::NoConnection(args.name.clone()))?;
    if let Some((dataset, seconds)) = set {
        store
            .set_cache_lifetime(&args.name, dataset, seconds)
            .await?;
        out!(
            "Connection '{}' fetches {} {}.",
            args.name,
            dataset.name(),
            match seconds {
                0 => "on every run".to_string(),
                s => format!("at most once every {}", describe_lifetime(s)),
            }
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let lifetimes = store.cache_lifetimes(connection.id).await?;
    out!("Cache lifetimes of connection '{}':", args.name)?;
    for (dataset, seconds, default) in lifetimes.all() {
        if dataset == Dataset::Organization {
            continue;
        }
        out!(
            "  {:<18} {}{}",
            dataset.name(),
            describe_lifetime(seconds),
            if default {
                ""
            } else {
                " (set for this connection)"
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cache_command(db: &str, command: CacheCommand) -> anyhow::Result<ExitCode> {
    let CacheCommand::Clear { name, dataset: raw } = command;
    let only = raw.as_deref().map(dataset).transpose()?;
    let store = open_store(db).await?;
    let connection = store
        .connection(&name)
        .await?
        .ok_or_else(|| sync::SyncError::NoConnection(name.clone()))?;
    let cleared = store.clear_cache(&connection, only).await?;
    let what = match only {
        Some(dataset) => format!("{} of connection '{name}'", dataset.name()),
        None => format!("every dataset of connection '{name}'"),
    };
    out!("Cleared the cache of {what} ({cleared} fetch(es) forgotten): the next run fetches it.")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn cancel(db: &str, args: CancelArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    match store.cancel_run(args.run).await? {
        Cancelled::Dequeued => out!("Run {} is cancelled; it had not started.", args.run)?,
        Cancelled::Stopping => out!(
            "Run {} stops at its next page boundary, keeping what it committed; `m365sync runs` shows when it has.",
            args.run
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Counts Ctrl-C and SIGTERM as they arrive: the first asks a worker to stop claiming, the
/// second to stop at once.
pub fn stop_signals() -> watch::Receiver<u32> {
    let (count, signals) = watch::channel(0u32);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let arrived = tokio::select! {
                interrupt = tokio::signal::ctrl_c() => interrupt.is_ok(),
                _ = async {
                    match terminate.as_mut() {
                        Some(signal) => { signal.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => true,
            };
            #[cfg(not(unix))]
            let arrived = tokio::signal::ctrl_c().await.is_ok();
            if !arrived {
                return;
            }
            count.send_modify(|n| *n += 1);
        }
    });
    signals
}

/// Runs [`work`] on a thread and runtime of its own, with a store handle of its own: a sync's
/// parsing and planning then never hold up the pages served beside it, nor the pages the sync.
/// The answer comes when the worker ends (or at once, if it could not start).
pub fn work_apart(
    db: String,
    lease: Duration,
    poll: Duration,
    signals: watch::Receiver<u32>,
) -> tokio::sync::oneshot::Receiver<WorkerEnd> {
    let (ended, answer) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("m365sync-worker".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("m365sync-worker")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    note!("The worker could not start ({e}); queued runs wait for `m365sync worker`.");
                    let _ = ended.send(WorkerEnd::Stopped);
                    return;
                }
            };
            let end = runtime.block_on(async move {
                match open_store(&db).await {
                    Ok(store) => work(store, lease, poll, false, signals).await,
                    Err(e) => {
                        note!(
                            "The worker could not open the store ({}); queued runs wait for `m365sync worker`.",
                            crate::describe(&e)
                        );
                        WorkerEnd::Stopped
                    }
                }
            });
            let _ = ended.send(end);
        });
    if let Err(e) = started {
        note!("The worker thread could not start ({e}); queued runs wait for `m365sync worker`.");
    }
    answer
}

/// How a worker's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEnd {
    /// Asked to stop, with no run left half done.
    Stopped,
    /// The queue was empty (`--until-idle`).
    Idle,
    /// Asked twice: the run it held is left for its lease to expire.
    Abandoned,
}

/// Claims and runs queued runs until `signals` says stop (or, `until_idle`, the queue is empty).
pub async fn work(
    store: Store,
    lease: Duration,
    poll: Duration,
    until_idle: bool,
    mut signals: watch::Receiver<u32>,
) -> WorkerEnd {
    let engine = SyncEngine::new(store.clone()).with_lease(lease);
    let worker = Worker::current(lease);
    loop {
        if *signals.borrow_and_update() > 0 {
            return WorkerEnd::Stopped;
        }
        let claimed = engine.work_once(&worker, &NoProgress);
        tokio::pin!(claimed);
        let ran = loop {
            tokio::select! {
                ran = &mut claimed => break Some(ran),
                changed = signals.changed() => {
                    let count = *signals.borrow_and_update();
                    if changed.is_err() || count >= 2 {
                        break None;
                    }
                    note!("Stopping: the run going finishes first (Ctrl-C again stops at once, leaving it to its lease).");
                }
            }
        };
        match ran {
            None => return WorkerEnd::Abandoned,
            Some(Ok(Some(report))) => {
                let _ = out!(
                    "Run {} {}.{}",
                    report.run_id,
                    report.status,
                    report
                        .message
                        .as_deref()
                        .map(|m| format!(" {m}"))
                        .unwrap_or_default()
                );
                continue;
            }
            Some(Ok(None)) if until_idle => return WorkerEnd::Idle,
            Some(Ok(None)) => {}
            // A run that could not start is closed as failed by the engine; a store that did not
            // answer is asked again after the pause.
            Some(Err(e)) => note!("warning: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = signals.changed() => {}
        }
    }
}

/// Queues the due scheduled runs now and every [`SCHEDULER_TICK`], until the first signal.
pub async fn schedule_loop(store: Store, tick: Duration, mut signals: watch::Receiver<u32>) {
    loop {
        if *signals.borrow_and_update() > 0 {
            return;
        }
        match store.queue_due_runs(store::now_millis()).await {
            Ok(due) => {
                for run in due {
                    tracing::info!(connection = %run.connection_name, run = run.queued.run_id, joined = run.queued.joined, "a scheduled run is queued");
                }
            }
            Err(e) => note!("warning: the schedules could not be read: {e}"),
        }
        crate::accounts::refresh_idle_accounts(&store).await;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = signals.changed() => {}
        }
    }
}

pub async fn worker(db: &str, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let lease = duration("--lease", &args.lease)?;
    let poll = duration("--poll", &args.poll)?;
    let store = open_store(db).await?;
    let signals = stop_signals();
    note!(
        "Worker running the queue of {}; Ctrl-C stops it after the run going.",
        store.location()
    );
    Ok(
        match work(store, lease, poll, args.until_idle, signals).await {
            WorkerEnd::Stopped | WorkerEnd::Idle => ExitCode::SUCCESS,
            WorkerEnd::Abandoned => {
                note!(
                    "Stopped at once: the run it held is taken for interrupted once its lease expires."
                );
                ExitCode::from(130)
            }
        },
    )
}
