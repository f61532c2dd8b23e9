//! The `m365sync` command line: connections, sync, the queue and its worker, export, simulate,
//! demo, serve, the people who log in to it (admin) and bench.
//!
//! Owns only the edge: parsing arguments, reading secrets from the environment or standard
//! input, drawing progress, printing results, and turning every error into one sentence and a
//! fix with exit code 1 (it did not work) or 2 (it was asked wrongly).

#[macro_use]
mod output;
mod accounts;
mod admin;
mod backup;
mod bench;
mod commands;
mod compare;
mod config;
mod export;
mod insight;
mod jobs;
mod manual;
mod people;
mod progress;
mod serve;
mod tenants;
mod tokens;

use std::process::ExitCode;

use clap::{FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "m365sync",
    version,
    about = "Keeps a documentation store in step with Microsoft 365 tenants.",
    after_help = "Settings come from the command line, then M365SYNC_* environment variables, then the configuration file, then the defaults; `m365sync config show` prints them and where each came from."
)]
pub(crate) struct Cli {
    /// The store: a SQLite file (created on first use) or a postgres:// URL.
    #[arg(
        long,
        global = true,
        env = "M365SYNC_DB",
        default_value = "m365sync.db",
        help_heading = GLOBAL
    )]
    db: String,

    /// Also trust the CA certificates in this PEM file when talking to Microsoft (a TLS-inspecting
    /// proxy, or `simulate --tls`).
    #[arg(long, global = true, env = "M365SYNC_CA_CERT", value_name = "FILE", help_heading = GLOBAL)]
    ca_cert: Option<std::path::PathBuf>,

    /// The configuration file (TOML). Default: ~/.config/m365sync/config.toml if it exists, else
    /// /etc/m365sync/config.toml if it exists.
    #[arg(long, global = true, env = config::CONFIG_ENV, value_name = "FILE", help_heading = GLOBAL)]
    config: Option<std::path::PathBuf>,

    /// The file holding the key that seals the store's secrets, when M365SYNC_SECRET_KEY is not
    /// set. Default: beside a SQLite store (<db>.key), ~/.config/m365sync/secret.key for PostgreSQL.
    #[arg(long, global = true, env = config::KEY_FILE_ENV, value_name = "FILE", help_heading = GLOBAL)]
    key_file: Option<std::path::PathBuf>,

    /// How log lines on standard error are written: text for a person, json for a collector.
    #[arg(
        long,
        global = true,
        env = "M365SYNC_LOG_FORMAT",
        value_enum,
        default_value = "text",
        help_heading = GLOBAL
    )]
    log_format: config::LogFormat,

    /// Log more: -v for progress details, -vv for every request.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

/// The heading of the options every command takes, shown apart from a command's own.
const GLOBAL: &str = "Global options";

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
    /// Write one kind of record as JSON or CSV to standard output: contacts, organisations,
    /// licences, mailboxes, devices, groups, usage, audit and more (`export --help` lists all).
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
    /// Copy the store to FILE, consistently while it is in use (SQLite; PostgreSQL: pg_dump).
    Backup(backup::BackupArgs),
    /// Show the effective settings and where each comes from.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completions(manual::CompletionsArgs),
    /// Write the manual pages (roff), for packaging.
    #[command(hide = true)]
    Manual(manual::ManualArgs),
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
    /// List detected software consolidated into products, with versions, devices and users,
    /// and the names no rule matched.
    Software(insight::SoftwareArgs),
    /// Consolidate detected software into products now (a sync does it when apps changed).
    Consolidate(insight::ConsolidateArgs),
    /// Licence hygiene: where licences are paid for and not used.
    #[command(subcommand)]
    Licenses(insight::LicensesCommand),
    /// Show how a tenant's headline figures moved, snapshot by snapshot.
    Trends(insight::TrendsArgs),
    /// Write a dated tenant report (HTML with charts, readable offline, or JSON).
    Report(insight::ReportArgs),
    /// Manage the people who log in to the web pages.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Time a full sync of N simulated users against the floor of only downloading and parsing.
    Bench(bench::BenchArgs),
    /// Make, list and revoke the bearer tokens programs use with the REST API.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
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

/// glibc gives each thread that allocates a heap arena of its own, up to eight per core, and
/// each arena keeps what was freed in it: a sync's fetch tasks, SQLite connection threads and
/// lanes spread over a dozen arenas, and a full sync of every dataset peaked at 179–186 MiB,
/// against 136 MiB with two. The limit is read only as a process starts, so the process starts
/// again in place (same pid, same arguments) with it set, unless the environment chose one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn with_two_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    const ARENAS: &str = "MALLOC_ARENA_MAX";
    if std::env::var_os(ARENAS).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut again = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        again.arg0(name);
    }
    // Returns only if the exec failed (the binary replaced or gone): carry on as started.
    let _ = again.args(args).env(ARENAS, "2").exec();
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    with_two_malloc_arenas();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let file = match config::ConfigFile::load(&args) {
        Ok(file) => file,
        Err(error) => {
            note!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let matches = manual::command(&file).get_matches_from(&args);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    file.remember(cli.key_file.clone());
    output::init_logging(cli.verbose, cli.log_format);
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
    match runtime.block_on(run(cli, &matches, &file)) {
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

async fn run(
    cli: Cli,
    matches: &clap::ArgMatches,
    file: &config::ConfigFile,
) -> anyhow::Result<ExitCode> {
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
        Command::Backup(args) => backup::run(&cli.db, args).await,
        Command::Config(config::ConfigCommand::Show { json }) => {
            config::show(matches, file, &cli, json)
        }
        Command::Completions(args) => manual::completions(args, file),
        Command::Manual(args) => manual::manual(args, file),
        Command::Account(command) => accounts::account(&cli.db, command).await,
        Command::Calendar(command) => accounts::calendar(&cli.db, command).await,
        Command::Simulate(args) => serve::simulate(args).await,
        Command::Demo(args) => serve::demo(&cli.db, args).await,
        Command::Serve(args) => serve::serve(&cli.db, args).await,
        Command::Admin(command) => admin::admin(&cli.db, command).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Token(command) => tokens::token(&cli.db, command).await,
        Command::Software(args) => insight::software(&cli.db, args).await,
        Command::Consolidate(args) => insight::consolidate(&cli.db, args).await,
        Command::Licenses(command) => insight::licenses(&cli.db, command).await,
        Command::Trends(args) => insight::trends(&cli.db, args).await,
        Command::Report(args) => insight::report(&cli.db, args).await,
    }
}
