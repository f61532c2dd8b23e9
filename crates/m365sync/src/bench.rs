//! `bench`: how long a full sync of N users takes next to its floor — the same pages only
//! downloaded and parsed — so that the ratio, not the machine, is what is read.
//!
//! The simulator runs as a child process, so the peak memory reported is the syncing side's only.

use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use domain::{ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, TenantId};
use graph::models::{
    APPLICATION_SELECT, ActiveUserRow, ActivityContent, AppUserRow, DEVICE_SELECT, DetectedApp,
    Device, DirectoryObject, DirectoryRole, EmailActivityRow, GROUP_SELECT, MANAGED_DEVICE_SELECT,
    MailboxUsageRow, ManagedDevice, SIGN_IN_PAGE, SUBSCRIBED_SKU_SELECT, USER_SELECT, User,
    UserSignIns,
};
use graph::{AppCredentials, GraphClient, GraphEndpoints, RetryPolicy};
use serde::Serialize;
use store::{NewConnection, SecretKey, Store};
use sync::{NoProgress, Progress, StepKey, StepReport, SyncEngine};

#[derive(Args)]
pub struct BenchArgs {
    /// Users in the simulated tenant.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    users: u64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    /// Run the simulator with Microsoft's documented throttling limits, to count the 429s a
    /// sync meets (none, when it paces itself as it should).
    #[arg(long)]
    microsoft_limits: bool,
}

#[derive(Serialize)]
struct Figures {
    users: u64,
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

/// Time spent and items read per dataset.
#[derive(Default)]
struct StepTimes(std::collections::BTreeMap<Dataset, (Duration, u64)>);

impl StepTimes {
    fn add(&mut self, dataset: Dataset, took: Duration, items: u64) {
        let entry = self.0.entry(dataset).or_default();
        entry.0 += took;
        entry.1 += items;
    }

    fn total(&self) -> Duration {
        self.0.values().map(|(took, _)| *took).sum()
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
            clock.1.add(step.dataset, started.elapsed(), 0);
        }
    }
}

impl StepClock {
    fn figures(&self, floor: &StepTimes) -> Vec<StepFigure> {
        let clock = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Dataset::ALL
            .into_iter()
            .filter_map(|dataset| {
                let (floor_took, items) = floor.0.get(&dataset).copied().unwrap_or_default();
                let (sync_took, _) = clock.1.0.get(&dataset).copied()?;
                Some(StepFigure {
                    dataset,
                    floor_seconds: round(floor_took.as_secs_f64()),
                    sync_seconds: round(sync_took.as_secs_f64()),
                    items,
                    items_per_second: round(items as f64 / sync_took.as_secs_f64().max(1e-9)),
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

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the m365sync binary")?;
    let users = args.users.to_string();
    let mut simulate = vec![
        "simulate",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "1",
        "--users",
        &users,
    ];
    if args.microsoft_limits {
        simulate.push("--microsoft-limits");
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
    let tenant = &announced["tenants"][0];
    let field = |name: &str| {
        tenant[name]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no {name} in the announcement"))
    };
    let (tenant_id, client_id, secret) = (
        field("tenant_id")?,
        field("client_id")?,
        field("client_secret")?,
    );
    note!("bench: {} users, simulator at {url}", args.users);

    reset_peak_rss();
    // The simulator throttles only with Microsoft's limits on; without them, pacing to those
    // limits would measure Microsoft's budgets (sign-in activity: 5 pages of 120 users every
    // 10 s), not the sync. The floor and the sync pace alike, so their ratio stays fair.
    let retry = RetryPolicy {
        pacing: args.microsoft_limits.then(graph::Budgets::microsoft),
        ..RetryPolicy::default()
    };
    let floor_steps = floor(&url, &tenant_id, &client_id, &secret, &retry).await?;
    let floor = floor_steps.total();
    let floor_rss = peak_rss_mib();
    note!(
        "bench: floor (download and parse only) {:.2} s",
        floor.as_secs_f64()
    );

    let dir = tempfile::tempdir().context("a temporary folder for the store")?;
    let db = dir.path().join("bench.db");
    let store = Store::open(
        db.to_str().context("temporary path is not UTF-8")?,
        SecretKey::generate(),
    )
    .await?;
    store
        .add_connection(NewConnection {
            name: ConnectionName::parse("bench")?,
            tenant_id: TenantId::parse(&tenant_id)?,
            client_id: ClientId::parse(&client_id)?,
            credential: Credential::Secret(ClientSecret::parse(&secret)?),
            cloud: Cloud::custom(&url, &url)?,
            datasets: Dataset::ALL.to_vec(),
        })
        .await?;
    let engine = SyncEngine::new(store.clone()).with_retry(retry);
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
    let software = crate::insight::consolidation_cost(&store, &tenant_id).await?;
    let rule_loading = crate::insight::rule_loading_cost(&[1_000, 4_000, 16_000])?;
    store.close().await;
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

    let figures = Figures {
        users: args.users,
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
    };
    if args.json {
        out!("{}", serde_json::to_string_pretty(&figures)?)?;
    } else {
        let mib = |v: Option<f64>| {
            v.map(|m| format!("{m:.1} MiB"))
                .unwrap_or_else(|| "n/a".into())
        };
        out!("users                    {}", figures.users)?;
        out!(
            "floor (download+parse)   {:.2} s   peak RSS {}",
            figures.floor_seconds,
            mib(figures.floor_peak_rss_mib)
        )?;
        out!(
            "full sync (SQLite)       {:.2} s   peak RSS {}",
            figures.full_sync_seconds,
            mib(figures.sync_peak_rss_mib)
        )?;
        out!("ratio sync/floor         {:.2}", figures.ratio)?;
        out!("users per second         {:.0}", figures.users_per_second)?;
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
    }
    drop(child);
    Ok(ExitCode::SUCCESS)
}

/// The same requests and parsing a sync with every dataset makes, with nothing stored: the
/// floor a full sync is measured against.
async fn floor(
    url: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
    retry: &RetryPolicy,
) -> anyhow::Result<StepTimes> {
    let endpoints = |scope: &str| GraphEndpoints {
        login: url.into(),
        graph: url.into(),
        scope: scope.into(),
    };
    let client = GraphClient::new(
        endpoints("https://graph.microsoft.com/.default"),
        AppCredentials::with_secret(tenant, client_id, secret),
        retry.clone(),
    )?;
    let management = GraphClient::new(
        endpoints("https://manage.office.com/.default"),
        AppCredentials::with_secret(tenant, client_id, secret),
        retry.clone(),
    )?;
    let mut floor = StepTimes::default();
    let mut timed = Instant::now();
    let mut lap = |dataset: Dataset, items: usize, floor: &mut StepTimes| {
        floor.add(dataset, timed.elapsed(), items as u64);
        timed = Instant::now();
    };
    for (dataset, path) in [
        (Dataset::Organization, "v1.0/organization".to_string()),
        (
            Dataset::Licenses,
            format!("v1.0/subscribedSkus?$select={SUBSCRIBED_SKU_SELECT}"),
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
        let items = read_all::<serde_json::Value>(&client, &path).await?;
        lap(dataset, items, &mut floor);
    }
    let items =
        read_all::<User>(&client, &format!("v1.0/users/delta?$select={USER_SELECT}")).await?;
    lap(Dataset::Users, items, &mut floor);
    let items = read_all::<ManagedDevice>(
        &client,
        &format!("v1.0/deviceManagement/managedDevices?$select={MANAGED_DEVICE_SELECT}&$top=999"),
    )
    .await?;
    lap(Dataset::ManagedDevices, items, &mut floor);
    let items = read_all::<Device>(
        &client,
        &format!("v1.0/devices?$select={DEVICE_SELECT}&$top=999"),
    )
    .await?;
    lap(Dataset::Devices, items, &mut floor);
    let items = read_all::<UserSignIns>(
        &client,
        &format!("v1.0/users?$select=id,userPrincipalName,signInActivity&$top={SIGN_IN_PAGE}"),
    )
    .await?;
    lap(Dataset::SignInActivity, items, &mut floor);
    // Members of roles and devices of detected apps, twenty to a batch as the sync asks.
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
    lap(Dataset::DirectoryRoles, items, &mut floor);
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
    lap(Dataset::DetectedApps, items, &mut floor);
    let items =
        read_report::<MailboxUsageRow>(&client, "getMailboxUsageDetail(period='D7')").await?;
    lap(Dataset::Mailboxes, items, &mut floor);
    let mut items =
        read_report::<ActiveUserRow>(&client, "getOffice365ActiveUserDetail(period='D30')").await?;
    items += read_report::<AppUserRow>(&client, "getM365AppUserDetail(period='D30')").await?;
    items += read_report::<EmailActivityRow>(&client, "getEmailActivityUserDetail(period='D30')")
        .await?;
    lap(Dataset::Usage, items, &mut floor);
    let items = read_audit(&management, tenant).await?;
    lap(Dataset::Audit, items, &mut floor);
    Ok(floor)
}

async fn read_all<T: serde::de::DeserializeOwned + Send + 'static>(
    client: &GraphClient,
    path: &str,
) -> anyhow::Result<usize> {
    let mut pager = client.pages::<T>(path).max_page_size(999);
    let mut count = 0;
    while let Some(page) = pager.next_page().await? {
        count += page.len();
    }
    Ok(count)
}

async fn read_report<R: serde::de::DeserializeOwned>(
    client: &GraphClient,
    function: &str,
) -> anyhow::Result<usize> {
    let file = client
        .download_report(&format!("reports/{function}"))
        .await?;
    let mut rows = file.rows::<R>()?;
    let mut count = 0;
    while rows.next_row()?.is_some() {
        count += 1;
    }
    Ok(count)
}

/// Every audit blob of the last seven days, in the 24-hour windows the API allows.
async fn read_audit(client: &GraphClient, tenant: &str) -> anyhow::Result<usize> {
    let root = format!("api/v1.0/{tenant}/activity/feed");
    let publisher = format!("PublisherIdentifier={tenant}");
    let now = chrono::Utc::now();
    let mut records = 0;
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
            while let Some(url) = next.take() {
                let (blobs, more): (Vec<ActivityContent>, Option<String>) =
                    client.get_json_and_header(&url, "NextPageUri").await?;
                for blob in &blobs {
                    records += client
                        .get_json::<Vec<serde_json::Value>>(&blob.content_uri)
                        .await?
                        .len();
                }
                next = more;
            }
        }
    }
    Ok(records)
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
