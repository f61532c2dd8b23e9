//! `bench`: how long a full sync of N users takes next to its floor — the same pages only
//! downloaded and parsed — so that the ratio, not the machine, is what is read.
//!
//! The simulator runs as a child process, so the peak memory reported is the syncing side's only.
//! Beside that scenario it can time a lean script doing the same pull (`--peer`), a sync under
//! latency against its unavoidable round trips (`--latency-ms`), a partner connection of many
//! customers against the ideal for its concurrency (`--tenants`), and PostgreSQL (`--store`).

use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use domain::{ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, TenantId};
use graph::models::{
    APPLICATION_SELECT, ActiveUserRow, ActivityContent, AppUserRow, COMPANY_SUBSCRIPTION_SELECT,
    DEVICE_SELECT, DetectedApp, Device, DirectoryObject, DirectoryRole, EmailActivityRow,
    GROUP_SELECT, MANAGED_DEVICE_SELECT, MailboxUsageRow, ManagedDevice, ORGANIZATION_SELECT,
    SIGN_IN_PAGE, SUBSCRIBED_SKU_SELECT, USER_SELECT, User, UserSignIns,
};
use graph::{AppCredentials, GraphClient, GraphEndpoints, RetryPolicy};
use serde::Serialize;
use store::{ConnectionMode, NewConnection, OrganizationSetup, SecretKey, Store};
use sync::{NoProgress, Progress, StepKey, StepReport, SyncEngine};

#[derive(Args)]
pub struct BenchArgs {
    /// Users in the simulated tenant (in each customer tenant too, with --tenants).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    users: u64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    /// Run the simulator with Microsoft's documented throttling limits, to count the 429s a
    /// sync meets (none, when it paces itself as it should).
    #[arg(long)]
    microsoft_limits: bool,
    /// Which datasets the connection syncs: `default` (organisation, licences, users,
    /// mailboxes: what a new connection syncs) or `all`.
    #[arg(long, value_enum, default_value_t = DatasetChoice::All)]
    datasets: DatasetChoice,
    /// Also time the lean script bench/peer.py (Python 3; orjson when `M365SYNC_BENCH_PYTHON`
    /// names an interpreter that has it) doing the same
    /// pull of the default datasets into SQLite, and print the sync's time as a share of its
    /// time. Needs `--datasets default`.
    #[arg(long)]
    peer: bool,
    /// Milliseconds of latency the simulator adds to every request; the full sync is then also
    /// shown beside the round trips no sync can avoid (the longest chain of dependent pages).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    latency_ms: u64,
    /// Also sync a partner connection reaching this many customer tenants of --users users each,
    /// timed against the ideal for --tenants-at-once.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=999))]
    tenants: Option<u64>,
    /// How many customers a partner sync runs at once (with --tenants).
    #[arg(long, default_value_t = sync::DEFAULT_TENANTS_AT_ONCE as u64, value_parser = clap::value_parser!(u64).range(1..=256))]
    tenants_at_once: u64,
    /// Where the sync writes: `sqlite` (a temporary file), or `postgres` or `postgres=URL` for a
    /// database the bench creates on that server and drops afterwards (default server
    /// postgres://postgres@127.0.0.1:5432).
    #[arg(long, default_value = "sqlite", value_parser = StoreChoice::parse)]
    store: StoreChoice,
}

impl BenchArgs {
    fn customers_at_once(&self) -> usize {
        usize::try_from(self.tenants_at_once).unwrap_or(usize::MAX)
    }
}

/// The datasets a bench connection syncs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum DatasetChoice {
    Default,
    All,
}

impl DatasetChoice {
    fn datasets(self) -> Vec<Dataset> {
        match self {
            Self::Default => Dataset::DEFAULT.to_vec(),
            Self::All => Dataset::ALL.to_vec(),
        }
    }
}

/// The database a bench sync writes to.
#[derive(Clone, Debug)]
enum StoreChoice {
    Sqlite,
    /// The server's URL; the bench makes its own database there.
    Postgres(String),
}

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

impl StoreChoice {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().split_once('=') {
            None if raw.trim() == "sqlite" => Ok(Self::Sqlite),
            None if raw.trim() == "postgres" => Ok(Self::Postgres(DEFAULT_POSTGRES.into())),
            Some(("postgres", url))
                if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                Ok(Self::Postgres(url.to_string()))
            }
            Some(("postgres", url)) => Err(format!(
                "'{url}' is not a PostgreSQL URL: write it as postgres://USER@HOST:PORT"
            )),
            _ => Err(format!(
                "'{raw}' is not a store: use sqlite, postgres, or postgres=postgres://USER@HOST:PORT"
            )),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }
}

#[derive(Serialize)]
struct Figures {
    users: u64,
    /// `default` or `all`.
    datasets: DatasetChoice,
    /// `SQLite` or `PostgreSQL`.
    store: &'static str,
    floor_seconds: f64,
    full_sync_seconds: f64,
    ratio: f64,
    users_per_second: f64,
    resync_unchanged_seconds: f64,
    resync_writes: u64,
    changed_users: u64,
    delta_after_change_seconds: f64,
    delta_updated: u64,
    clean_resync_seconds: f64,
    /// Whether the simulator enforced Microsoft's limits.
    microsoft_limits: bool,
    /// 429s the simulator sent over the whole bench.
    throttled_429: u64,
    clean_resync_writes: u64,
    floor_peak_rss_mib: Option<f64>,
    sync_peak_rss_mib: Option<f64>,
    /// Consolidating the tenant's detected apps into products again, on demand.
    software: crate::insight::ConsolidationCost,
    /// Reading rule files of growing size: the time per rule stays flat when loading is linear.
    rule_loading: Vec<crate::insight::RuleLoadingCost>,
    /// Each dataset's share: its pages downloaded alone, and its step in the full sync.
    steps: Vec<StepFigure>,
    /// The lean script's run of the same pull (with --peer).
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<PeerFigure>,
    /// The full sync beside its unavoidable round trips (with --latency-ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<LatencyFigure>,
    /// A partner connection's sync of many customers (with --tenants).
    #[serde(skip_serializing_if = "Option::is_none")]
    partner: Option<PartnerFigure>,
}

#[derive(Serialize)]
struct StepFigure {
    dataset: Dataset,
    floor_seconds: f64,
    sync_seconds: f64,
    /// Items the floor read.
    items: u64,
    /// Items per second of the sync step.
    items_per_second: f64,
}

#[derive(Serialize)]
struct PeerFigure {
    /// Why the peer did not run (no python3), when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<String>,
    /// The interpreter that ran it and the JSON parser it had (`orjson` or `json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parser: Option<String>,
    seconds: Option<f64>,
    requests: Option<u64>,
    users: Option<u64>,
    mailboxes: Option<u64>,
    /// The full sync's time over the peer's: below 1 the sync is the faster.
    sync_to_peer_ratio: Option<f64>,
}

#[derive(Serialize)]
struct LatencyFigure {
    latency_ms: u64,
    /// Dependent round trips per dataset (pages that each need the one before).
    chains: Vec<(Dataset, u64)>,
    /// Steps of one tenant the sync runs side by side.
    steps_at_once: usize,
    round_trips: u64,
    unavoidable_seconds: f64,
    full_sync_seconds: f64,
    ratio: f64,
    how: &'static str,
}

#[derive(Serialize)]
struct PartnerFigure {
    tenants: u64,
    users_per_tenant: u64,
    tenants_at_once: usize,
    /// Every customer's floor, one after another.
    floor_total_seconds: f64,
    longest_tenant_floor_seconds: f64,
    ideal_seconds: f64,
    /// Every customer's floor again, as many at once as the sync runs: what downloading and
    /// parsing alone take with that concurrency on this machine (the ideal assumes each
    /// customer side by side is as fast as one alone, which fewer cores than customers at once
    /// cannot give).
    floor_at_once_seconds: f64,
    sync_seconds: f64,
    ratio: f64,
    /// The sync against the floor read at the same concurrency.
    ratio_to_floor_at_once: f64,
    sync_peak_rss_mib: Option<f64>,
    how: &'static str,
}

const ROUND_TRIPS_HOW: &str = "one token request, then the longest chain of dependent pages of one dataset, or every dataset's chain spread over the steps run at once if that is more";
const PARTNER_IDEAL_HOW: &str = "the customers' floors added up and divided by the customers synced at once, or the longest single customer's floor if that is more";

/// Round trips that no sync of one tenant can avoid: each dataset's pages follow one another
/// (a page's link comes in the page before), datasets may run side by side up to
/// `side_by_side` at once, and the token comes before any of them.
fn unavoidable_round_trips(chains: &[u64], side_by_side: usize) -> u64 {
    let longest = chains.iter().copied().max().unwrap_or(0);
    let total: u64 = chains.iter().sum();
    let spread = total.div_ceil(side_by_side.max(1) as u64);
    1 + longest.max(spread)
}

/// The shortest time a partner sync of customers whose floors are `floors` can take with
/// `at_once` customers side by side.
fn ideal_partner_seconds(floors: &[f64], at_once: usize) -> f64 {
    let longest = floors.iter().copied().fold(0.0, f64::max);
    let total: f64 = floors.iter().sum();
    (total / at_once.max(1) as f64).max(longest)
}

/// What a floor read of one dataset cost.
#[derive(Default, Clone, Copy)]
struct StepFloor {
    took: Duration,
    items: u64,
    /// The longest chain of requests that each needed the answer of the one before.
    chain: u64,
}

/// Time spent and items read per dataset.
#[derive(Default)]
struct StepTimes(std::collections::BTreeMap<Dataset, StepFloor>);

impl StepTimes {
    /// Reads of one dataset that do not depend on one another add their time and items; the
    /// chain is the longest of them.
    fn add(&mut self, dataset: Dataset, took: Duration, items: u64, chain: u64) {
        let entry = self.0.entry(dataset).or_default();
        entry.took += took;
        entry.items += items;
        entry.chain = entry.chain.max(chain);
    }

    fn total(&self) -> Duration {
        self.0.values().map(|step| step.took).sum()
    }

    fn chains(&self) -> Vec<(Dataset, u64)> {
        self.0
            .iter()
            .map(|(dataset, step)| (*dataset, step.chain))
            .collect()
    }
}

/// Each step's wall time in a sync, from when it started to when it finished.
#[derive(Default)]
struct StepClock(std::sync::Mutex<(std::collections::HashMap<StepKey, Instant>, StepTimes)>);

impl Progress for StepClock {
    fn step_started(&self, step: StepKey) {
        if let Ok(mut clock) = self.0.lock() {
            clock.0.insert(step, Instant::now());
        }
    }

    fn step_finished(&self, step: &StepReport) {
        if let Ok(mut clock) = self.0.lock()
            && let Some(started) = clock.0.remove(&step.key())
        {
            clock.1.add(step.dataset, started.elapsed(), 0, 0);
        }
    }
}

impl StepClock {
    fn figures(&self, floor: &StepTimes) -> Vec<StepFigure> {
        let clock = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Dataset::ALL
            .into_iter()
            .filter_map(|dataset| {
                let floor = floor.0.get(&dataset).copied().unwrap_or_default();
                let sync_took = clock.1.0.get(&dataset)?.took;
                Some(StepFigure {
                    dataset,
                    floor_seconds: round(floor.took.as_secs_f64()),
                    sync_seconds: round(sync_took.as_secs_f64()),
                    items: floor.items,
                    items_per_second: round(floor.items as f64 / sync_took.as_secs_f64().max(1e-9)),
                })
            })
            .collect()
    }
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How to sign in to one simulated tenant.
struct SimTenant {
    tenant_id: String,
    client_id: String,
    secret: String,
}

/// The running simulator child and what it announced.
struct Simulator {
    _child: Child,
    url: String,
    first: SimTenant,
    /// The partner's app and the customers it reaches, by tenant id and name (with --tenants).
    partner: Option<(SimTenant, Vec<(String, String)>)>,
}

async fn start_simulator(args: &BenchArgs) -> anyhow::Result<Simulator> {
    let exe = std::env::current_exe().context("finding the m365sync binary")?;
    let mut simulate: Vec<String> = [
        "simulate",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "1",
        "--users",
    ]
    .map(String::from)
    .to_vec();
    simulate.push(args.users.to_string());
    if args.microsoft_limits {
        simulate.push("--microsoft-limits".into());
    }
    if args.latency_ms > 0 {
        simulate.extend(["--latency-ms".into(), args.latency_ms.to_string()]);
    }
    if let Some(customers) = args.tenants {
        // Tenant 0 is the partner; it is also the tenant the single-tenant figures sync.
        simulate.extend([
            "--partner".into(),
            "--tenants".into(),
            (customers + 1).to_string(),
        ]);
    }
    let mut child = Child(
        std::process::Command::new(exe)
            .args(simulate)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the simulator")?,
    );
    let stdout = child
        .0
        .stdout
        .take()
        .context("reading the simulator's output")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let announced: serde_json::Value = serde_json::from_str(&line)
        .with_context(|| format!("the simulator said '{}'", line.trim()))?;
    let url = announced["url"]
        .as_str()
        .context("no url in the simulator's announcement")?
        .to_string();
    let tenant_of = |tenant: &serde_json::Value| -> anyhow::Result<SimTenant> {
        let field = |name: &str| {
            tenant[name]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("no {name} in the simulator's announcement"))
        };
        Ok(SimTenant {
            tenant_id: field("tenant_id")?,
            client_id: field("client_id")?,
            secret: field("client_secret")?,
        })
    };
    let first = tenant_of(&announced["tenants"][0])?;
    let partner = match args.tenants {
        None => None,
        Some(_) => {
            let partner = &announced["partner"];
            let customers = partner["customers"]
                .as_array()
                .context("no customers in the simulator's announcement")?
                .iter()
                .filter_map(|c| {
                    Some((
                        c["tenant_id"].as_str()?.to_string(),
                        c["display_name"].as_str()?.to_string(),
                    ))
                })
                .collect();
            Some((tenant_of(partner)?, customers))
        }
    };
    Ok(Simulator {
        _child: child,
        url,
        first,
        partner,
    })
}

/// A PostgreSQL database made for one bench run, dropped by `drop_database`.
struct BenchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    async fn create(server: &str) -> anyhow::Result<Self> {
        use sqlx::Connection as _;
        let mut admin = reqwest::Url::parse(server)
            .with_context(|| format!("'{server}' is not a PostgreSQL URL"))?;
        if admin.path().trim_matches('/').is_empty() {
            admin.set_path("/postgres");
        }
        let name = format!("m365sync_bench_{}", uuid::Uuid::new_v4().simple());
        let mut bench = admin.clone();
        bench.set_path(&format!("/{name}"));
        let admin_url = admin.to_string();
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| {
                format!(
                    "connecting to PostgreSQL at {} to make the bench's database",
                    store::redact_url(&admin_url)
                )
            })?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating the database {name}"))?;
        let _ = conn.close().await;
        Ok(Self {
            admin_url,
            name,
            url: bench.to_string(),
        })
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .with_context(|| format!("dropping the bench's database {}", self.name))?;
        let _ = conn.close().await;
        Ok(())
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.peer && args.datasets != DatasetChoice::Default {
        bail!(
            "--peer compares the default datasets only (the peer script pulls those): add --datasets default"
        );
    }
    let dir = tempfile::tempdir().context("a temporary folder for the store")?;
    // The partner's customers get a store of their own: beside the single tenant's
    // organisation, their similar names would wait for a person's decision.
    let mut locations = Vec::new();
    let mut databases = Vec::new();
    for file in ["bench.db", "partner.db"]
        .into_iter()
        .take(if args.tenants.is_some() { 2 } else { 1 })
    {
        match &args.store {
            StoreChoice::Sqlite => locations.push(
                dir.path()
                    .join(file)
                    .to_str()
                    .context("temporary path is not UTF-8")?
                    .to_string(),
            ),
            StoreChoice::Postgres(server) => {
                let database = BenchDatabase::create(server).await;
                if let Ok(database) = &database {
                    locations.push(database.url.clone());
                }
                match database {
                    Ok(database) => databases.push(database),
                    Err(e) => {
                        drop_all(databases).await?;
                        return Err(e);
                    }
                }
            }
        }
    }
    let outcome = measure(&args, &locations, dir.path()).await;
    let dropped = drop_all(databases).await;
    if outcome.is_ok() {
        dropped?;
    }
    let figures = outcome?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&figures)?)?;
    } else {
        print_figures(&figures)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Drops every database the bench made.
async fn drop_all(databases: Vec<BenchDatabase>) -> anyhow::Result<()> {
    let mut first_error = None;
    for database in databases {
        if let Err(e) = database.drop_database().await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Runs every scenario asked for: the single tenant's in the store at `locations[0]`, the
/// partner's in the one at `locations[1]`.
async fn measure(
    args: &BenchArgs,
    locations: &[String],
    scratch: &std::path::Path,
) -> anyhow::Result<Figures> {
    let sim = start_simulator(args).await?;
    let url = sim.url.clone();
    let SimTenant {
        tenant_id,
        client_id,
        secret,
    } = &sim.first;
    let datasets = args.datasets.datasets();
    note!(
        "bench: {} users, {} datasets, {}, simulator at {url}",
        args.users,
        match args.datasets {
            DatasetChoice::Default => "default",
            DatasetChoice::All => "all",
        },
        args.store.name()
    );

    reset_peak_rss();
    // The simulator throttles only with Microsoft's limits on; without them, pacing to those
    // limits would measure Microsoft's budgets (sign-in activity: 5 pages of 120 users every
    // 10 s), not the sync. The floor and the sync pace alike, so their ratio stays fair.
    let retry = RetryPolicy {
        pacing: args.microsoft_limits.then(graph::Budgets::microsoft),
        ..RetryPolicy::default()
    };
    let floor_steps = floor(&url, tenant_id, client_id, secret, &retry, &datasets, None).await?;
    let floor = floor_steps.total();
    let floor_rss = peak_rss_mib();
    note!(
        "bench: floor (download and parse only) {:.2} s",
        floor.as_secs_f64()
    );

    let store = Store::open(&locations[0], SecretKey::generate()).await?;
    store
        .add_connection(NewConnection {
            name: ConnectionName::parse("bench")?,
            tenant_id: TenantId::parse(tenant_id)?,
            client_id: ClientId::parse(client_id)?,
            credential: Credential::Secret(ClientSecret::parse(secret)?),
            cloud: Cloud::custom(&url, &url)?,
            datasets: datasets.clone(),
        })
        .await?;
    let engine = SyncEngine::new(store.clone())
        .with_retry(retry.clone())
        .with_concurrency(sync::DEFAULT_STEPS_AT_ONCE, args.customers_at_once());
    reset_peak_rss();
    let started = Instant::now();
    let clock = StepClock::default();
    let report = engine.sync("bench", &clock).await?;
    let full = started.elapsed();
    let sync_rss = peak_rss_mib();
    if report.status != domain::RunStatus::Succeeded {
        bail!(
            "the benchmark sync did not succeed: {}",
            serde_json::to_string(&report)?
        );
    }
    note!("bench: full sync {:.2} s", full.as_secs_f64());
    let peer = if args.peer {
        let peer = run_peer(&url, &sim.first, scratch).await?;
        Some(match peer {
            Ok(run) => {
                note!("bench: peer script {:.2} s", run.seconds);
                PeerFigure {
                    missing: None,
                    python: Some(run.python),
                    parser: Some(run.parser),
                    seconds: Some(round(run.seconds)),
                    requests: Some(run.requests),
                    users: Some(run.users),
                    mailboxes: Some(run.mailboxes),
                    sync_to_peer_ratio: Some(round(full.as_secs_f64() / run.seconds.max(1e-9))),
                }
            }
            Err(missing) => {
                note!("bench: {missing}");
                PeerFigure {
                    missing: Some(missing),
                    python: None,
                    parser: None,
                    seconds: None,
                    requests: None,
                    users: None,
                    mailboxes: None,
                    sync_to_peer_ratio: None,
                }
            }
        })
    } else {
        None
    };
    let started = Instant::now();
    let again = engine.sync("bench", &NoProgress).await?;
    let resync = started.elapsed();
    note!(
        "bench: unchanged resync (delta) {:.2} s",
        resync.as_secs_f64()
    );

    // 1% of the users change at the source, through the simulator's control API.
    let changed = (args.users / 100).max(1);
    let control = reqwest::Client::new();
    for n in 0..changed {
        let index = n * 100;
        control
            .patch(format!("{url}/_sim/tenants/0/users/{index}"))
            .json(&serde_json::json!({ "jobTitle": format!("Changed in bench {n}") }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("changing a simulated user")?;
    }
    let started = Instant::now();
    let delta = engine.sync("bench", &NoProgress).await?;
    let delta_time = started.elapsed();
    let delta_updated = delta
        .step(Dataset::Users)
        .map(|s| s.counts.updated)
        .unwrap_or(0);
    note!(
        "bench: delta after {changed} changes {:.2} s ({delta_updated} updated)",
        delta_time.as_secs_f64()
    );
    let started = Instant::now();
    let clean = engine.sync_with("bench", &NoProgress, true).await?;
    let clean_time = started.elapsed();
    let software = crate::insight::consolidation_cost(&store, tenant_id).await?;
    let rule_loading = crate::insight::rule_loading_cost(&[1_000, 4_000, 16_000])?;

    let latency = (args.latency_ms > 0).then(|| {
        let chains = floor_steps.chains();
        let lengths: Vec<u64> = chains.iter().map(|(_, chain)| *chain).collect();
        let round_trips = unavoidable_round_trips(&lengths, sync::DEFAULT_STEPS_AT_ONCE);
        let unavoidable = round_trips as f64 * args.latency_ms as f64 / 1000.0;
        LatencyFigure {
            latency_ms: args.latency_ms,
            chains,
            steps_at_once: sync::DEFAULT_STEPS_AT_ONCE,
            round_trips,
            unavoidable_seconds: round(unavoidable),
            full_sync_seconds: round(full.as_secs_f64()),
            ratio: round(full.as_secs_f64() / unavoidable.max(1e-9)),
            how: ROUND_TRIPS_HOW,
        }
    });

    store.close().await;
    let partner = match (&sim.partner, locations.get(1)) {
        (Some((app, customers)), Some(location)) => {
            let store = Store::open(location, SecretKey::generate()).await?;
            let figure = partner_sync(&store, &url, app, customers, &datasets, &retry, args).await;
            store.close().await;
            Some(figure?)
        }
        _ => None,
    };

    let stats: serde_json::Value = control
        .get(format!("{url}/_sim/stats"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("reading the simulator's counts")?
        .json()
        .await
        .context("reading the simulator's counts")?;
    let throttled_429 = stats["over_limit"].as_u64().unwrap_or(0);
    note!(
        "bench: {throttled_429} answers of 429 ({})",
        if args.microsoft_limits {
            "with Microsoft's limits"
        } else {
            "without limits"
        }
    );

    Ok(Figures {
        users: args.users,
        datasets: args.datasets,
        store: args.store.name(),
        floor_seconds: round(floor.as_secs_f64()),
        full_sync_seconds: round(full.as_secs_f64()),
        ratio: round(full.as_secs_f64() / floor.as_secs_f64().max(1e-9)),
        users_per_second: round(args.users as f64 / full.as_secs_f64().max(1e-9)),
        resync_unchanged_seconds: round(resync.as_secs_f64()),
        resync_writes: again.writes(),
        changed_users: changed,
        delta_after_change_seconds: round(delta_time.as_secs_f64()),
        delta_updated,
        clean_resync_seconds: round(clean_time.as_secs_f64()),
        microsoft_limits: args.microsoft_limits,
        throttled_429,
        clean_resync_writes: clean.writes(),
        floor_peak_rss_mib: floor_rss,
        sync_peak_rss_mib: sync_rss,
        steps: clock.figures(&floor_steps),
        software,
        rule_loading,
        peer,
        latency,
        partner,
    })
}

/// Floors every customer one after another, then syncs them all through one partner
/// connection.
async fn partner_sync(
    store: &Store,
    url: &str,
    app: &SimTenant,
    customers: &[(String, String)],
    datasets: &[Dataset],
    retry: &RetryPolicy,
    args: &BenchArgs,
) -> anyhow::Result<PartnerFigure> {
    // The customers' reads share one set of connections, as the partner sync's clients do.
    let partner = GraphClient::new(
        GraphEndpoints {
            login: url.into(),
            graph: url.into(),
            scope: "https://graph.microsoft.com/.default".into(),
        },
        AppCredentials::with_secret(&app.tenant_id, &app.client_id, &app.secret),
        retry.clone(),
    )?;
    let floor_of = |at: usize| {
        floor(
            url,
            &customers[at].0,
            &app.client_id,
            &app.secret,
            retry,
            datasets,
            Some(&partner),
        )
    };
    let mut floors = Vec::with_capacity(customers.len());
    for at in 0..customers.len() {
        let steps = floor_of(at).await?;
        floors.push(steps.total().as_secs_f64());
    }
    let ideal = ideal_partner_seconds(&floors, args.customers_at_once());
    let started = Instant::now();
    use futures_util::StreamExt;
    let mut at_once = futures_util::stream::iter(0..customers.len())
        .map(floor_of)
        .buffer_unordered(args.customers_at_once());
    while let Some(read) = at_once.next().await {
        read?;
    }
    drop(at_once);
    let floor_at_once = started.elapsed().as_secs_f64();
    note!(
        "bench: {} customers floored, {:.2} s in all; ideal partner sync {ideal:.2} s",
        customers.len(),
        floors.iter().sum::<f64>()
    );
    store
        .add_connection_in(
            NewConnection {
                name: ConnectionName::parse("bench-partner")?,
                tenant_id: TenantId::parse(&app.tenant_id)?,
                client_id: ClientId::parse(&app.client_id)?,
                credential: Credential::Secret(ClientSecret::parse(&app.secret)?),
                cloud: Cloud::custom(url, url)?,
                datasets: datasets.to_vec(),
            },
            ConnectionMode::Partner,
            OrganizationSetup {
                create_organization: true,
                organization: None,
            },
        )
        .await?;
    // Each customer's organisation is already kept under its exact name, as a partner's are:
    // the simulated customers' names are alike ("Fabrikam Inc", "Fabrikam Inc 2"), and a
    // customer left to the rules would wait for a person's decision instead of being synced.
    for (_, name) in customers {
        store.create_organization(name).await?;
    }
    let engine = SyncEngine::new(store.clone())
        .with_retry(retry.clone())
        .with_concurrency(sync::DEFAULT_STEPS_AT_ONCE, args.customers_at_once());
    reset_peak_rss();
    let started = Instant::now();
    let report = engine.sync("bench-partner", &NoProgress).await?;
    let took = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    if report.status != domain::RunStatus::Succeeded {
        let failed: Vec<String> = report
            .steps
            .iter()
            .filter(|s| s.status != domain::StepStatus::Succeeded)
            .take(3)
            .map(|s| {
                format!(
                    "{} of {}: {}",
                    s.dataset.name(),
                    s.tenant_name
                        .clone()
                        .unwrap_or_else(|| s.tenant_id.to_string()),
                    s.message.as_deref().unwrap_or("no message")
                )
            })
            .collect();
        bail!(
            "the partner sync of {} customers ended {:?}: {}",
            customers.len(),
            report.status,
            report.message.clone().unwrap_or_else(|| failed.join("; "))
        );
    }
    note!("bench: partner sync {took:.2} s");
    Ok(PartnerFigure {
        tenants: customers.len() as u64,
        users_per_tenant: args.users,
        tenants_at_once: args.customers_at_once(),
        floor_total_seconds: round(floors.iter().sum()),
        longest_tenant_floor_seconds: round(floors.iter().copied().fold(0.0, f64::max)),
        ideal_seconds: round(ideal),
        floor_at_once_seconds: round(floor_at_once),
        sync_seconds: round(took),
        ratio: round(took / ideal.max(1e-9)),
        ratio_to_floor_at_once: round(took / floor_at_once.max(1e-9)),
        sync_peak_rss_mib: rss,
        how: PARTNER_IDEAL_HOW,
    })
}

/// The peer script's own report of its run.
#[derive(serde::Deserialize)]
struct PeerRun {
    seconds: f64,
    requests: u64,
    users: u64,
    mailboxes: u64,
    parser: String,
    /// Which interpreter ran it: not the script's to say.
    #[serde(skip)]
    python: String,
}

/// Runs bench/peer.py against the simulated tenant; `Err` says why it could not run at all
/// (python3 missing), while a script that runs and fails is an error of the bench.
async fn run_peer(
    url: &str,
    tenant: &SimTenant,
    scratch: &std::path::Path,
) -> anyhow::Result<Result<PeerRun, String>> {
    const SECRET_ENV: &str = "M365SYNC_BENCH_PEER_SECRET";
    let python = std::env::var("M365SYNC_BENCH_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "python3".into());
    if std::process::Command::new(&python)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Ok(Err(format!(
            "{python} does not run (python3 missing, or M365SYNC_BENCH_PYTHON wrong): the peer script was not run; compare with the floor only"
        )));
    }
    let script = scratch.join("peer.py");
    std::fs::write(&script, PEER_SCRIPT)
        .with_context(|| format!("writing {}", script.display()))?;
    let db = scratch.join("peer.db");
    let mut command = std::process::Command::new(&python);
    command
        .arg(&script)
        .args(["--url", url])
        .args(["--tenant", &tenant.tenant_id])
        .args(["--client-id", &tenant.client_id])
        .args(["--secret-env", SECRET_ENV])
        .arg("--db")
        .arg(&db)
        .args(["--user-select", USER_SELECT])
        .args(["--sku-select", SUBSCRIBED_SKU_SELECT])
        .args(["--subscription-select", COMPANY_SUBSCRIPTION_SELECT])
        .args(["--organization-select", ORGANIZATION_SELECT])
        .env(SECRET_ENV, &tenant.secret);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .with_context(|| format!("running the peer script with {python}"))?;
    if !output.status.success() {
        bail!(
            "the peer script failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let said = String::from_utf8_lossy(&output.stdout);
    let mut run: PeerRun = serde_json::from_str(said.trim())
        .with_context(|| format!("the peer script said '{}'", said.trim()))?;
    run.python = python;
    Ok(Ok(run))
}

/// The lean script, carried in the binary so that the bench runs from any folder.
const PEER_SCRIPT: &str = include_str!("../../../bench/peer.py");

fn print_figures(figures: &Figures) -> anyhow::Result<()> {
    let mib = |v: Option<f64>| {
        v.map(|m| format!("{m:.1} MiB"))
            .unwrap_or_else(|| "n/a".into())
    };
    out!("users                    {}", figures.users)?;
    if figures.datasets == DatasetChoice::Default {
        out!("datasets                 default (organisation, licences, users, mailboxes)")?;
    }
    out!(
        "floor (download+parse)   {:.2} s   peak RSS {}",
        figures.floor_seconds,
        mib(figures.floor_peak_rss_mib)
    )?;
    out!(
        "{:<25}{:.2} s   peak RSS {}",
        format!("full sync ({})", figures.store),
        figures.full_sync_seconds,
        mib(figures.sync_peak_rss_mib)
    )?;
    out!("ratio sync/floor         {:.2}", figures.ratio)?;
    out!("users per second         {:.0}", figures.users_per_second)?;
    if let Some(peer) = &figures.peer {
        match (&peer.missing, peer.seconds, peer.sync_to_peer_ratio) {
            (Some(missing), _, _) => out!("peer script              {missing}")?,
            (None, Some(seconds), Some(ratio)) => out!(
                "peer script (Python)     {seconds:.2} s   ({} users, {} mailboxes, {} requests; {}, {})\nratio sync/peer          {ratio:.2}",
                peer.users.unwrap_or(0),
                peer.mailboxes.unwrap_or(0),
                peer.requests.unwrap_or(0),
                peer.python.as_deref().unwrap_or_default(),
                peer.parser.as_deref().unwrap_or_default(),
            )?,
            _ => {}
        }
    }
    if let Some(latency) = &figures.latency {
        let chains: Vec<String> = latency
            .chains
            .iter()
            .map(|(dataset, chain)| format!("{} {chain}", dataset.name()))
            .collect();
        out!(
            "latency                  {} ms a request; dependent pages: {}",
            latency.latency_ms,
            chains.join(", ")
        )?;
        out!(
            "unavoidable round trips  {} = {:.2} s   ({}; {} steps at once)",
            latency.round_trips,
            latency.unavoidable_seconds,
            latency.how,
            latency.steps_at_once
        )?;
        out!(
            "ratio sync/round trips   {:.2}   (full sync {:.2} s)",
            latency.ratio,
            latency.full_sync_seconds
        )?;
    }
    out!(
        "unchanged resync (delta) {:.2} s   ({} writes)",
        figures.resync_unchanged_seconds,
        figures.resync_writes
    )?;
    out!(
        "delta after 1% change    {:.2} s   ({} of {} changed users updated)",
        figures.delta_after_change_seconds,
        figures.delta_updated,
        figures.changed_users
    )?;
    out!(
        "clean resync (full)      {:.2} s   ({} writes)",
        figures.clean_resync_seconds,
        figures.clean_resync_writes
    )?;
    out!("per step                 floor s   sync s   ratio   items   items/s")?;
    for step in &figures.steps {
        out!(
            "  {:<22} {:>7.2}  {:>7.2}  {:>6.1}  {:>6}  {:>8.0}",
            step.dataset.name(),
            step.floor_seconds,
            step.sync_seconds,
            step.sync_seconds / step.floor_seconds.max(0.01),
            step.items,
            step.items_per_second
        )?;
    }
    if let Some(partner) = &figures.partner {
        out!(
            "partner sync             {} customers of {} users, {} at once: {:.2} s   peak RSS {}",
            partner.tenants,
            partner.users_per_tenant,
            partner.tenants_at_once,
            partner.sync_seconds,
            mib(partner.sync_peak_rss_mib)
        )?;
        out!(
            "  ideal                  {:.2} s   ({}: {:.2} s in all, longest {:.2} s)",
            partner.ideal_seconds,
            partner.how,
            partner.floor_total_seconds,
            partner.longest_tenant_floor_seconds
        )?;
        out!("  ratio sync/ideal       {:.2}", partner.ratio)?;
        out!(
            "  floor at once          {:.2} s   (every customer downloaded and parsed only, {} at once as in the sync)",
            partner.floor_at_once_seconds,
            partner.tenants_at_once
        )?;
        out!(
            "  ratio sync/floor at once {:.2}",
            partner.ratio_to_floor_at_once
        )?;
    }
    out!("software consolidation   {}", figures.software)?;
    for cost in &figures.rule_loading {
        out!(
            "  rule file of {:>6} rules  {:.3} s   ({:.1} µs a rule)",
            cost.rules,
            cost.seconds,
            cost.microseconds_per_rule
        )?;
    }
    out!(
        "429 answers              {}   ({})",
        figures.throttled_429,
        if figures.microsoft_limits {
            "Microsoft's limits enforced"
        } else {
            "no limits enforced"
        }
    )?;
    Ok(())
}

/// The same requests and parsing a sync of `datasets` makes, with nothing stored: the floor a
/// full sync is measured against. Each dataset's longest chain of dependent requests is counted
/// too, for the round trips a sync under latency cannot avoid.
/// `alongside`: a client whose connections this read shares, as a partner's customers share
/// the partner's in the sync.
async fn floor(
    url: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
    retry: &RetryPolicy,
    datasets: &[Dataset],
    alongside: Option<&GraphClient>,
) -> anyhow::Result<StepTimes> {
    let client_for = |scope: &str| -> anyhow::Result<GraphClient> {
        let endpoints = GraphEndpoints {
            login: url.into(),
            graph: url.into(),
            scope: scope.into(),
        };
        let credentials = AppCredentials::with_secret(tenant, client_id, secret);
        Ok(match alongside {
            Some(shared) => shared.alongside(endpoints, credentials, retry.clone()),
            None => GraphClient::new(endpoints, credentials, retry.clone())?,
        })
    };
    let client = client_for("https://graph.microsoft.com/.default")?;
    let management = client_for("https://manage.office.com/.default")?;
    let wanted = |dataset: Dataset| datasets.contains(&dataset);
    let mut floor = StepTimes::default();
    let mut timed = Instant::now();
    let mut lap = |dataset: Dataset, (items, chain): (usize, u64), floor: &mut StepTimes| {
        floor.add(dataset, timed.elapsed(), items as u64, chain);
        timed = Instant::now();
    };
    for (dataset, path) in [
        (Dataset::Organization, "v1.0/organization".to_string()),
        (
            Dataset::Licenses,
            format!("v1.0/subscribedSkus?$select={SUBSCRIBED_SKU_SELECT}"),
        ),
        (
            Dataset::Licenses,
            format!("v1.0/directory/subscriptions?$select={COMPANY_SUBSCRIPTION_SELECT}"),
        ),
        (Dataset::Domains, "v1.0/domains".into()),
        (
            Dataset::ServiceHealth,
            "v1.0/admin/serviceAnnouncement/healthOverviews".into(),
        ),
        (
            Dataset::ServiceHealth,
            "v1.0/admin/serviceAnnouncement/issues".into(),
        ),
        (
            Dataset::ServiceMessages,
            "v1.0/admin/serviceAnnouncement/messages".into(),
        ),
        (
            Dataset::Applications,
            format!("v1.0/applications?$select={APPLICATION_SELECT}"),
        ),
        (
            Dataset::TermsOfUse,
            "v1.0/identityGovernance/termsOfUse/agreements".into(),
        ),
        (
            Dataset::Groups,
            format!("v1.0/groups/delta?$select={GROUP_SELECT},members"),
        ),
    ] {
        if wanted(dataset) {
            let read = read_all::<serde_json::Value>(&client, &path).await?;
            lap(dataset, read, &mut floor);
        }
    }
    if wanted(Dataset::Users) {
        let read =
            read_all::<User>(&client, &format!("v1.0/users/delta?$select={USER_SELECT}")).await?;
        lap(Dataset::Users, read, &mut floor);
    }
    if wanted(Dataset::ManagedDevices) {
        let read = read_all::<ManagedDevice>(
            &client,
            &format!(
                "v1.0/deviceManagement/managedDevices?$select={MANAGED_DEVICE_SELECT}&$top=999"
            ),
        )
        .await?;
        lap(Dataset::ManagedDevices, read, &mut floor);
    }
    if wanted(Dataset::Devices) {
        let read = read_all::<Device>(
            &client,
            &format!("v1.0/devices?$select={DEVICE_SELECT}&$top=999"),
        )
        .await?;
        lap(Dataset::Devices, read, &mut floor);
    }
    if wanted(Dataset::SignInActivity) {
        let read = read_all::<UserSignIns>(
            &client,
            &format!("v1.0/users?$select=id,userPrincipalName,signInActivity&$top={SIGN_IN_PAGE}"),
        )
        .await?;
        lap(Dataset::SignInActivity, read, &mut floor);
    }
    // Members of roles and devices of detected apps, twenty to a batch as the sync asks: the
    // listing, then batches that may all go at once.
    if wanted(Dataset::DirectoryRoles) {
        let roles = client
            .pages::<DirectoryRole>("v1.0/directoryRoles")
            .next_page()
            .await?
            .unwrap_or_default();
        let paths: Vec<String> = roles
            .iter()
            .map(|r| format!("/directoryRoles/{}/members", r.id))
            .collect();
        let items = client
            .batch_collections::<DirectoryObject>("v1.0", &paths)
            .await?
            .iter()
            .map(Vec::len)
            .sum::<usize>();
        lap(Dataset::DirectoryRoles, (items, 2), &mut floor);
    }
    if wanted(Dataset::DetectedApps) {
        let apps = client
            .pages::<DetectedApp>("v1.0/deviceManagement/detectedApps?$top=999")
            .next_page()
            .await?
            .unwrap_or_default();
        let paths: Vec<String> = apps
            .iter()
            .map(|a| {
                format!(
                    "/deviceManagement/detectedApps/{}/managedDevices?$select=id&$top=999",
                    a.id
                )
            })
            .collect();
        let items = client
            .batch_collections::<DirectoryObject>("v1.0", &paths)
            .await?
            .iter()
            .map(Vec::len)
            .sum::<usize>();
        lap(Dataset::DetectedApps, (items, 2), &mut floor);
    }
    if wanted(Dataset::Mailboxes) {
        let read =
            read_report::<MailboxUsageRow>(&client, "getMailboxUsageDetail(period='D7')").await?;
        lap(Dataset::Mailboxes, read, &mut floor);
    }
    if wanted(Dataset::Usage) {
        // Three reports that do not wait for one another.
        let (mut items, chain) =
            read_report::<ActiveUserRow>(&client, "getOffice365ActiveUserDetail(period='D30')")
                .await?;
        items += read_report::<AppUserRow>(&client, "getM365AppUserDetail(period='D30')")
            .await?
            .0;
        items +=
            read_report::<EmailActivityRow>(&client, "getEmailActivityUserDetail(period='D30')")
                .await?
                .0;
        lap(Dataset::Usage, (items, chain), &mut floor);
    }
    if wanted(Dataset::Audit) {
        let read = read_audit(&management, tenant).await?;
        lap(Dataset::Audit, read, &mut floor);
    }
    Ok(floor)
}

/// Items read, and pages: each page's link comes in the page before.
async fn read_all<T: serde::de::DeserializeOwned + Send + 'static>(
    client: &GraphClient,
    path: &str,
) -> anyhow::Result<(usize, u64)> {
    let mut pager = client.pages::<T>(path).max_page_size(999);
    let mut count = 0;
    while let Some(page) = pager.next_page().await? {
        count += page.len();
    }
    Ok((count, pager.pages_read().max(1)))
}

/// Rows read, and the two requests in a row a report takes: the redirect, then the file.
async fn read_report<R: serde::de::DeserializeOwned>(
    client: &GraphClient,
    function: &str,
) -> anyhow::Result<(usize, u64)> {
    let file = client
        .download_report(&format!("reports/{function}"))
        .await?;
    let mut rows = file.rows::<R>()?;
    let mut count = 0;
    while rows.next_row()?.is_some() {
        count += 1;
    }
    Ok((count, 2))
}

/// Every audit blob of the last seven days, in the 24-hour windows the API allows. The chain is
/// the subscription's start, then the longest window's listing pages and its blobs' fetch (the
/// windows and content types do not wait for one another, nor the blobs of one page).
async fn read_audit(client: &GraphClient, tenant: &str) -> anyhow::Result<(usize, u64)> {
    let root = format!("api/v1.0/{tenant}/activity/feed");
    let publisher = format!("PublisherIdentifier={tenant}");
    let now = chrono::Utc::now();
    let mut records = 0;
    let mut longest_window = 0u64;
    for content_type in sync::AUDIT_CONTENT_TYPES {
        let _: serde_json::Value = client
            .post_empty(&format!(
                "{root}/subscriptions/start?contentType={content_type}&{publisher}"
            ))
            .await?;
        for day in (0..7).rev() {
            let end = now - chrono::Duration::days(day);
            let start = end - chrono::Duration::hours(24) + chrono::Duration::minutes(5);
            let window =
                |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
            let mut next = Some(format!(
                "{root}/subscriptions/content?contentType={content_type}&startTime={}&endTime={}&{publisher}",
                window(start),
                window(end)
            ));
            let mut chain = 0u64;
            while let Some(url) = next.take() {
                let (blobs, more): (Vec<ActivityContent>, Option<String>) =
                    client.get_json_and_header(&url, "NextPageUri").await?;
                chain += 1;
                for blob in &blobs {
                    records += client
                        .get_json::<Vec<serde_json::Value>>(&blob.content_uri)
                        .await?
                        .len();
                }
                if more.is_none() && !blobs.is_empty() {
                    chain += 1;
                }
                next = more;
            }
            longest_window = longest_window.max(chain);
        }
    }
    Ok((records, 1 + longest_window))
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Linux resets the peak-RSS mark when 5 is written to clear_refs; elsewhere this does nothing.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_chain_bounds_round_trips_when_steps_run_side_by_side() {
        // Users' 21 pages outlast the other three datasets run beside them, after the token.
        assert_eq!(unavoidable_round_trips(&[1, 2, 21, 2], 4), 22);
    }

    #[test]
    fn chains_beyond_the_steps_at_once_spread_over_them() {
        // Eight chains of 3 on 2 steps at once: 12 round trips each side, after the token.
        assert_eq!(unavoidable_round_trips(&[3; 8], 2), 13);
        assert_eq!(unavoidable_round_trips(&[], 4), 1);
        // Rounded up: 5 round trips over 2 steps take 3.
        assert_eq!(unavoidable_round_trips(&[1, 1, 1, 1, 1], 2), 4);
    }

    #[test]
    fn the_partner_ideal_is_the_shared_floor_unless_one_customer_is_longer() {
        assert_eq!(ideal_partner_seconds(&[1.0; 8], 4), 2.0);
        assert_eq!(ideal_partner_seconds(&[1.0, 1.0, 6.0], 4), 6.0);
        assert_eq!(ideal_partner_seconds(&[], 4), 0.0);
    }

    #[test]
    fn a_store_is_sqlite_or_postgres_with_an_optional_url() {
        assert!(matches!(
            StoreChoice::parse("sqlite"),
            Ok(StoreChoice::Sqlite)
        ));
        assert!(
            matches!(StoreChoice::parse("postgres"), Ok(StoreChoice::Postgres(url)) if url == DEFAULT_POSTGRES)
        );
        assert!(
            matches!(StoreChoice::parse("postgres=postgres://me@db:5433"), Ok(StoreChoice::Postgres(url)) if url == "postgres://me@db:5433")
        );
        let wrong = StoreChoice::parse("postgres=mysql://db").unwrap_err();
        assert!(wrong.contains("mysql://db"), "{wrong}");
        let wrong = StoreChoice::parse("oracle").unwrap_err();
        assert!(wrong.contains("'oracle' is not a store"), "{wrong}");
    }
}
