//! The `m365sync` command line: connections, sync, the queue and its worker, export, simulate,
//! demo, serve and bench.
//!
//! Owns only the edge: parsing arguments, reading secrets from the environment or standard
//! input, drawing progress, printing results, and turning every error into one sentence and a
//! fix with exit code 1 (it did not work) or 2 (it was asked wrongly).

#[macro_use]
mod output;
mod accounts;
mod bench;
mod commands;
mod compare;
mod export;
mod jobs;
mod people;
mod progress;
mod serve;
mod tenants;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "m365sync",
    version,
    about = "Keeps a documentation store in step with Microsoft 365 tenants."
)]
struct Cli {
    /// The store: a SQLite file (created on first use) or a postgres:// URL.
    #[arg(
        long,
        global = true,
        env = "M365SYNC_DB",
        default_value = "m365sync.db"
    )]
    db: String,

    /// Also trust the CA certificates in this PEM file when talking to Microsoft (a TLS-inspecting
    /// proxy, or `simulate --tls`).
    #[arg(long, global = true, env = "M365SYNC_CA_CERT", value_name = "FILE")]
    ca_cert: Option<std::path::PathBuf>,

    /// Log more: -v for progress details, -vv for every request.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add, list, test and remove connections to tenants.
    #[command(subcommand)]
    Connection(commands::ConnectionCommand),
    /// Sync a connection's tenant into the store now.
    Sync(commands::SyncArgs),
    /// Show the log of sync runs: when each started, how long it took, and how it ended.
    Runs(commands::RunsArgs),
    /// Show one run: each step with its counts, and what it did to every record it created,
    /// updated, archived, left out, held or could not write.
    Run(commands::RunArgs),
    /// Stop a run: a queued one does not start, a running one stops at its next page boundary.
    Cancel(jobs::CancelArgs),
    /// Forget cached fetches, so that the next run fetches again.
    #[command(subcommand)]
    Cache(jobs::CacheCommand),
    /// Claim and run queued runs until stopped (Ctrl-C or SIGTERM lets the run going finish).
    Worker(jobs::WorkerArgs),
    /// List the tenants seen, with the organisation each is filed under or the suggestions
    /// awaiting a decision.
    Tenants(tenants::TenantsArgs),
    /// Decide which organisation a tenant belongs to: accept a suggestion, choose or create one,
    /// ignore the tenant, or unlink it.
    Match(tenants::MatchArgs),
    /// Write contacts, organisations or licences as JSON or CSV to standard output.
    Export(export::ExportArgs),
    /// Show what was changed on a record, run by run and field by field.
    #[command(subcommand)]
    History(people::HistoryCommand),
    /// Show what the store holds of a record beside what Microsoft 365 says now, field by field.
    #[command(subcommand)]
    Compare(compare::CompareCommand),
    /// List the users a sync held back because more than one contact could be theirs, or
    /// settle one.
    Review(people::ReviewArgs),
    /// Edit a contact by hand, where Microsoft 365 does not own the field.
    #[command(subcommand)]
    Contact(people::ContactCommand),
    /// Undo a wrong link between a contact and a user, for good.
    #[command(subcommand)]
    Unlink(people::UnlinkCommand),
    /// Bring existing contacts in, so that syncs link them instead of making duplicates.
    #[command(subcommand)]
    Import(people::ImportCommand),
    /// Create or update the store's schema, then exit.
    Migrate,
    /// Connect people's own Microsoft 365 accounts, list and remove them.
    #[command(subcommand)]
    Account(accounts::AccountCommand),
    /// Free slots, bookings, moves and cancellations in Outlook calendars.
    #[command(subcommand)]
    Calendar(accounts::CalendarCommand),
    /// Run the bundled Microsoft Graph and identity simulator.
    Simulate(serve::SimulateArgs),
    /// Start the simulator, connect to it, sync, and serve the result on loopback.
    Demo(serve::DemoArgs),
    /// Serve the web pages and JSON API over the store, queue the scheduled runs, and run them.
    Serve(serve::ServeArgs),
    /// Time a full sync of N simulated users against the floor of only downloading and parsing.
    Bench(bench::BenchArgs),
}

/// The person asked for something in a way m365sync cannot do (exit 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            note!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // A reader that stopped early (`| head`) is not a failure of ours; only the write that
        // found it gone ends this way, never another error that happened meanwhile.
        Err(error) if output::reader_gone() && is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            note!("error: {}", describe(&error));
            if error.downcast_ref::<UsageError>().is_some()
                || error.downcast_ref::<domain::InputError>().is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Whether an error is a write that found its reader gone, however the writer (plain io, csv,
/// serde_json) wrapped it.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == BrokenPipe)
            || cause.downcast_ref::<csv::Error>().is_some_and(
                |e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe),
            )
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(BrokenPipe))
    })
}

/// An error and its causes in one sentence, each cause said once.
pub fn describe(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    message
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,sqlx=error,rustls_platform_verifier=off",
        1 => "info,sqlx=warn",
        _ => "debug,sqlx=info,hyper=info,h2=info,reqwest=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("M365SYNC_LOG")
        .unwrap_or_else(|_| default.into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(path) = &cli.ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            UsageError(format!(
                "--ca-cert {}: {e}; give the path of a PEM certificate file",
                path.display()
            ))
        })?;
        sync::trust_extra_ca(pem)
            .map_err(|e| UsageError(format!("--ca-cert {}: {e}", path.display())))?;
    }
    match cli.command {
        Command::Connection(command) => commands::connection(&cli.db, command).await,
        Command::Sync(args) => commands::sync(&cli.db, args).await,
        Command::Runs(args) => commands::runs(&cli.db, args).await,
        Command::Run(args) => commands::run(&cli.db, args).await,
        Command::Cancel(args) => jobs::cancel(&cli.db, args).await,
        Command::Cache(command) => jobs::cache_command(&cli.db, command).await,
        Command::Worker(args) => jobs::worker(&cli.db, args).await,
        Command::Tenants(args) => tenants::tenants(&cli.db, args).await,
        Command::Match(args) => tenants::decide(&cli.db, args).await,
        Command::Export(args) => export::run(&cli.db, args).await,
        Command::History(command) => people::history(&cli.db, command).await,
        Command::Compare(command) => compare::compare(&cli.db, command).await,
        Command::Review(args) => people::review(&cli.db, args).await,
        Command::Contact(command) => people::contact(&cli.db, command).await,
        Command::Unlink(command) => people::unlink(&cli.db, command).await,
        Command::Import(command) => people::import(&cli.db, command).await,
        Command::Migrate => {
            let store = commands::open_store(&cli.db).await?;
            out!("The store at {} is up to date.", store.location())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Account(command) => accounts::account(&cli.db, command).await,
        Command::Calendar(command) => accounts::calendar(&cli.db, command).await,
        Command::Simulate(args) => serve::simulate(args).await,
        Command::Demo(args) => serve::demo(&cli.db, args).await,
        Command::Serve(args) => serve::serve(&cli.db, args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}
