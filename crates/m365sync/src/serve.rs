//! `simulate`, `demo` and `serve` (the web pages, with the scheduler and a worker beside them).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use domain::{ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, TenantId};
use graph_sim::{SimConfig, TenantSpec};
use store::NewConnection;
use sync::SyncEngine;

use crate::UsageError;
use crate::commands::open_store;
use crate::jobs;
use crate::progress::TerminalProgress;

#[derive(Args)]
pub struct SimulateArgs {
    /// Where to listen; port 0 picks a free port. Report downloads get a second port.
    #[arg(long, default_value = "127.0.0.1:8400")]
    listen: SocketAddr,
    /// How many tenants.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    tenants: u64,
    /// Users per tenant (up to 10 million; none is held in memory).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    users: u64,
    /// Seed of the generated tenants: the same seed gives the same tenants.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Milliseconds added to every request.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    latency_ms: u64,
    /// Application permissions granted to every tenant's app, comma-separated.
    #[arg(long, value_delimiter = ',')]
    permissions: Option<Vec<String>>,
    /// Conceal user names in reports, as Microsoft 365 does by default.
    #[arg(long)]
    conceal_report_names: bool,
    /// Make the first tenant a partner (GDAP) whose app reaches the other tenants as customers.
    #[arg(long)]
    partner: bool,
    /// Serve HTTPS with a certificate made for loopback, as Microsoft's own client libraries
    /// require; the certificate is written to --cert-out for clients to trust.
    #[arg(long)]
    tls: bool,
    /// Where `--tls` writes the simulator's certificate (PEM).
    #[arg(long, default_value = "m365sync-simulator.pem", requires = "tls")]
    cert_out: std::path::PathBuf,
    /// Enforce Microsoft's documented throttling limits per app and tenant, answering 429 with
    /// Retry-After beyond them as Graph does.
    #[arg(long)]
    microsoft_limits: bool,
}

impl SimulateArgs {
    fn config(&self) -> SimConfig {
        let mut spec = TenantSpec::with_users(self.users);
        if let Some(permissions) = &self.permissions {
            spec.roles = permissions
                .iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
        }
        spec.concealed_names = self.conceal_report_names;
        SimConfig {
            seed: self.seed,
            tenants: (0..self.tenants).map(|_| spec.clone()).collect(),
            latency: Duration::from_millis(self.latency_ms),
            partner: self.partner,
            limits: self.microsoft_limits.then(graph_sim::Limits::microsoft),
            ..SimConfig::default()
        }
    }
}

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let certificate = if args.tls {
        let certificate = graph_sim::LoopbackCertificate::generate()?;
        certificate.write(&args.cert_out)?;
        Some(certificate)
    } else {
        None
    };
    let sim = graph_sim::start_with(args.config(), args.listen, certificate.as_ref()).await?;
    let mut announcement = sim.announcement();
    if args.tls {
        let path = std::fs::canonicalize(&args.cert_out).unwrap_or_else(|_| args.cert_out.clone());
        announcement["ca_cert"] = serde_json::json!(path.display().to_string());
    }
    // A reader that took the announcement and left must not stop the simulator.
    let _ = out!("{announcement}");
    note!(
        "Simulator listening on {}; control API under {}/_sim/tenants. Press Ctrl-C to stop.",
        sim.url,
        sim.url
    );
    let ca_cert = announcement["ca_cert"].as_str().map(str::to_string);
    for line in connection_add_lines(&sim.tenants(), &sim.url, args.partner, ca_cert.as_deref()) {
        note!("{line}");
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(ExitCode::SUCCESS)
}

/// What a person pastes into another shell to connect m365sync to each simulated tenant (for
/// a partner simulator, to the partner, whose connection reaches the others).
fn connection_add_lines(
    tenants: &[graph_sim::TenantInfo],
    url: &str,
    partner: bool,
    ca_cert: Option<&str>,
) -> Vec<String> {
    let trust = ca_cert
        .map(|path| format!(" --ca-cert '{path}'"))
        .unwrap_or_default();
    let chosen = if partner {
        &tenants[..1.min(tenants.len())]
    } else {
        tenants
    };
    let mut lines = Vec::new();
    for (position, tenant) in chosen.iter().enumerate() {
        let variable = format!("SIM_SECRET_{position}");
        lines.push(format!(
            "To connect to {}{}, paste:",
            tenant.display_name,
            if partner { " (the partner)" } else { "" }
        ));
        lines.push(format!("  export {variable}='{}'", tenant.client_secret));
        lines.push(format!(
            "  m365sync{trust} connection add sim-{position} --tenant-id {} --client-id {} --client-secret-env {variable} --login-url {url} --graph-url {url}{}",
            tenant.tenant_id,
            tenant.client_id,
            if partner { " --partner --create-organization" } else { "" }
        ));
    }
    lines
}

/// How the web pages meet the network: `serve` and `demo` share these.
#[derive(Args)]
pub struct ExposureArgs {
    /// Also answer requests for this host name, e.g. behind a reverse proxy: NAME on any port,
    /// NAME:PORT on that port only. Repeat it, or give several separated by commas.
    #[arg(
        long = "public-name",
        value_name = "NAME[:PORT]",
        env = "M365SYNC_PUBLIC_NAME",
        value_delimiter = ','
    )]
    public_names: Vec<web::PublicName>,
    /// Browsers reach m365sync over HTTPS through a reverse proxy that terminates TLS: cookies
    /// are marked Secure, and listening beyond loopback draws no warning.
    #[arg(long)]
    behind_tls_proxy: bool,
}

impl ExposureArgs {
    /// Warns when passwords and session cookies would cross a network in clear text.
    fn warn(&self, listen: SocketAddr) {
        if !listen.ip().to_canonical().is_loopback() && !self.behind_tls_proxy {
            note!(
                "warning: listening on {listen}, beyond loopback, over plain HTTP: passwords and session cookies cross the network unencrypted. Put a reverse proxy with TLS in front and start with --behind-tls-proxy, or listen on 127.0.0.1."
            );
        }
    }

    fn options(&self) -> web::ServeOptions {
        web::ServeOptions {
            public_names: self.public_names.clone(),
            behind_tls: self.behind_tls_proxy,
            ..web::ServeOptions::default()
        }
    }
}

/// The address to print for a listener: one a browser on this machine can open.
fn browsable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

/// Prints the one-time set-up link when nobody can log in yet.
async fn announce_setup(store: &store::Store, url: &str) -> anyhow::Result<()> {
    if let Some(token) = web::first_run_setup_token(store).await? {
        let _ = out!(
            "No admin exists yet: open {url}/setup/{token} within 24 hours to create the first one (or run `m365sync admin create NAME`)."
        );
    }
    Ok(())
}

/// The demo's login: `demo`, an admin, with a new random password each start.
async fn demo_login(store: &store::Store) -> anyhow::Result<String> {
    let password = web::auth::random_token()[..20].to_string();
    let hash = web::hash_password(&password).map_err(|e| anyhow::anyhow!(e))?;
    match store.app_user_credentials("demo").await? {
        Some((user, _)) => {
            store.set_app_user_password(user.id, &hash).await?;
            if user.role != store::AppRole::Admin {
                store
                    .set_app_user_role(user.id, store::AppRole::Admin)
                    .await?;
            }
        }
        None => {
            store
                .create_app_user("demo", &hash, store::AppRole::Admin)
                .await?;
        }
    }
    Ok(password)
}

#[derive(Args)]
pub struct DemoArgs {
    /// Where the web pages listen (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Users in the simulated tenant.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    users: u64,
    #[command(flatten)]
    exposure: ExposureArgs,
}

pub async fn demo(db: &str, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let listener = web::bind(args.listen).await.map_err(|e| {
        UsageError(format!(
            "cannot listen on {}: {e}; choose another address with --listen, e.g. 127.0.0.1:8081",
            args.listen
        ))
    })?;
    let sim_addr: SocketAddr = "127.0.0.1:0".parse().context("loopback address")?;
    let sim = graph_sim::start(
        SimConfig {
            seed: 1,
            tenants: vec![TenantSpec::with_users(args.users)],
            // The demo shows a sync that keeps to Microsoft's limits, as a real tenant needs.
            limits: Some(graph_sim::Limits::microsoft()),
            ..SimConfig::default()
        },
        sim_addr,
    )
    .await?;
    let tenant = sim.tenants().remove(0);
    let store = open_store(db).await?;
    // The simulator gets a new port each time: replace the demo connection rather than keep a stale one.
    if store.connection("demo").await?.is_some() {
        store.remove_connection("demo").await?;
    }
    store
        .add_connection(NewConnection {
            name: ConnectionName::parse("demo")?,
            tenant_id: TenantId::parse(&tenant.tenant_id)?,
            client_id: ClientId::parse(&tenant.client_id)?,
            credential: Credential::Secret(ClientSecret::parse(&tenant.client_secret)?),
            cloud: Cloud::custom(&sim.url, &sim.url)?,
            datasets: Dataset::ALL.to_vec(),
        })
        .await?;
    note!(
        "Simulated tenant '{}' with {} users at {}; syncing into {} …",
        tenant.display_name,
        tenant.users,
        sim.url,
        store.location()
    );
    let progress = TerminalProgress::new(true);
    let report = SyncEngine::new(store.clone())
        .sync("demo", &progress)
        .await?;
    progress.finish();
    note!("Sync run {} {}.", report.run_id, report.status);
    let url = format!(
        "http://{}",
        browsable(
            listener
                .local_addr()
                .context("reading the listen address")?
        )
    );
    args.exposure.warn(args.listen);
    let password = demo_login(&store).await?;
    let _ = out!("m365sync demo is ready: {url}");
    let _ = out!("Log in as demo with the password {password}");
    let _ = out!(
        "(the simulator stays up at {} while this runs; `m365sync --db {db} sync demo` from another shell syncs again)",
        sim.url
    );
    // A worker beside the pages runs what "Sync now" queues; the demo stops at once when asked.
    let signals = jobs::stop_signals();
    let worker = jobs::work_apart(
        db.to_string(),
        store::queue::DEFAULT_LEASE,
        Duration::from_secs(2),
        signals.clone(),
    );
    let mut stopped = signals;
    tokio::select! {
        served = web::serve(store, listener, args.exposure.options()) => served.context("serving the web pages")?,
        _ = worker => {}
        _ = stopped.wait_for(|count| *count > 0) => {}
    }
    drop(sim);
    Ok(ExitCode::SUCCESS)
}

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen; beyond loopback, put a reverse proxy with TLS in front.
    #[arg(long, env = "M365SYNC_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Serve only: queue no scheduled runs and run none (another process runs `m365sync
    /// worker`).
    #[arg(long)]
    no_worker: bool,
    #[command(flatten)]
    exposure: ExposureArgs,
}

pub async fn serve(db: &str, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let listener = web::bind(args.listen).await.map_err(|e| {
        UsageError(format!(
            "cannot listen on {}: {e}; choose another address with --listen",
            args.listen
        ))
    })?;
    let url = format!(
        "http://{}",
        browsable(
            listener
                .local_addr()
                .context("reading the listen address")?
        )
    );
    let _ = out!("m365sync is serving {} at {url}", store.location());
    args.exposure.warn(args.listen);
    announce_setup(&store, &url).await?;
    let signals = jobs::stop_signals();
    let working = !args.no_worker;
    if working {
        tokio::spawn(jobs::schedule_loop(
            store.clone(),
            jobs::SCHEDULER_TICK,
            signals.clone(),
        ));
    }
    let mut worker = working.then(|| {
        jobs::work_apart(
            db.to_string(),
            store::queue::DEFAULT_LEASE,
            Duration::from_secs(2),
            signals.clone(),
        )
    });
    let mut stopped = signals.clone();
    let ended = tokio::select! {
        served = web::serve(store, listener, args.exposure.options()) => {
            served.context("serving the web pages")?;
            None
        }
        ended = async { worker.as_mut().expect("a worker").await }, if worker.is_some() => {
            worker = None;
            Some(ended.unwrap_or(jobs::WorkerEnd::Stopped))
        }
        _ = stopped.wait_for(|count| *count > 0) => None,
    };
    // The pages stop at once; the run going finishes first, unless asked twice.
    let ended = match (ended, worker) {
        (Some(ended), _) => ended,
        (None, Some(worker)) => worker.await.unwrap_or(jobs::WorkerEnd::Stopped),
        (None, None) => jobs::WorkerEnd::Stopped,
    };
    if ended == jobs::WorkerEnd::Abandoned {
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}
