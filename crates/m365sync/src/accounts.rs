//! `account` and `calendar`: people connect their own Microsoft 365 account (the CLI prints the
//! sign-in address and listens on loopback for Microsoft's redirect), see and remove connected
//! accounts, and find free slots, book, move and cancel events in calendars.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::{ArgGroup, Args, Subcommand};
use domain::accounts::TokenHealth;
use domain::calendar::{self as rules, SlotRequest};
use graph::delegated::Callback;
use store::{BookingRow, DelegatedAccount, Store};
use sync::accounts::{
    self as flows, AccountError, BookingInput, CalendarAccess, RefreshOutcome, SlotEnd,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::UsageError;
use crate::commands::{local_time, open_store};

/// The path Microsoft sends people back to, on loopback for the CLI and on the server for the
/// web pages: the app registration lists it once as a redirect URI.
pub const CALLBACK_PATH: &str = "/integrations/office365/callback";

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Connect a person's own Microsoft 365 account: prints the address to open, waits on
    /// loopback for Microsoft to send the browser back, and keeps the account.
    Connect(ConnectArgs),
    /// List the connected accounts with the health of their tokens.
    List {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a connected account and its tokens.
    Remove {
        /// The account: its number or user name.
        account: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Refresh accounts now (all active ones, or the one named).
    Refresh {
        /// The account (its number or user name, as `account list` shows it); all when left out.
        account: Option<String>,
    },
}

#[derive(Args)]
pub struct ConnectArgs {
    /// The connection whose app registration people sign in through.
    #[arg(long)]
    connection: String,
    /// Where people sign in: the connection's tenant (default), a tenant id or domain, or
    /// `organizations` for people of any organisation (a multi-tenant app).
    #[arg(long)]
    tenant: Option<String>,
    /// Where to wait for Microsoft's redirect: 127.0.0.1 and a port (0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Microsoft's prompt: login, consent, select_account or none.
    #[arg(long)]
    prompt: Option<String>,
    /// Fill in the person's user name on the sign-in page.
    #[arg(long)]
    login_hint: Option<String>,
    /// Re-connect this account (number or user name): the person must sign in as it, and
    /// anyone else is refused.
    #[arg(long)]
    reconnect: Option<String>,
    /// How long to wait for the sign-in.
    #[arg(long, default_value = "10m")]
    timeout: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum CalendarCommand {
    /// The free slots of a given length inside the mailbox's working hours.
    Free(FreeArgs),
    /// Book an event in a free slot (re-checked just before it is written).
    Book(BookArgs),
    /// Move a booking to another time.
    Move(MoveArgs),
    /// Cancel a booking; its attendees are told.
    Cancel(CancelArgs),
    /// List the bookings made through m365sync.
    Bookings {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone)]
#[command(group(ArgGroup::new("who").required(true).args(["account", "connection"])))]
pub struct Whose {
    /// A connected account (number or user name): its calendar, or with --mailbox one shared
    /// with it.
    #[arg(long)]
    account: Option<String>,
    /// A connection whose app holds the application permission Calendars.ReadWrite; needs
    /// --mailbox.
    #[arg(long, requires = "mailbox")]
    connection: Option<String>,
    /// Whose calendar, by address.
    #[arg(long)]
    mailbox: Option<String>,
}

#[derive(Args)]
pub struct FreeArgs {
    #[command(flatten)]
    whose: Whose,
    /// The first day: today, tomorrow or YYYY-MM-DD (in the mailbox's time zone).
    #[arg(long, default_value = "today")]
    date: String,
    /// How many days from --date.
    #[arg(long, default_value_t = 1)]
    days: u32,
    /// The slot length: 30, 45m, 1h, 1h30m.
    #[arg(long, default_value = "30m")]
    length: String,
    /// The grid slots start on (default: 30m).
    #[arg(long, default_value = "30m")]
    step: String,
    /// Also free for these people or rooms (addresses; repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    with: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct BookArgs {
    #[command(flatten)]
    whose: Whose,
    /// The start: YYYY-MM-DDTHH:MM in the mailbox's time zone, or an instant with an offset.
    #[arg(long)]
    start: String,
    /// The length (default 30m).
    #[arg(long, default_value = "30m")]
    length: String,
    /// The event's subject, as attendees see it.
    #[arg(long)]
    subject: String,
    /// An attendee's address (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    attendee: Vec<String>,
    /// Where it takes place (a room or an address).
    #[arg(long)]
    location: Option<String>,
    /// Make it a Teams meeting.
    #[arg(long)]
    online: bool,
    /// An id of your own for this booking: a retry with the same id never books twice; the same
    /// id with another slot, subject or attendees is refused.
    #[arg(long)]
    request_id: Option<String>,
    /// Book even though the slot lies outside the mailbox's working hours.
    #[arg(long)]
    outside_working_hours: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct MoveArgs {
    /// The booking's number (`m365sync calendar bookings`).
    booking: i64,
    /// The new start: YYYY-MM-DDTHH:MM in the mailbox's time zone, or an instant with an offset.
    #[arg(long)]
    start: String,
    /// The new length (default: as it was).
    #[arg(long)]
    length: Option<String>,
    /// Move even though the slot lies outside the mailbox's working hours.
    #[arg(long)]
    outside_working_hours: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CancelArgs {
    /// The booking's number (`m365sync calendar bookings`).
    booking: i64,
    /// A message for the attendees.
    #[arg(long, default_value = "This appointment is cancelled.")]
    comment: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let minutes = rules::parse_minutes("timeout", text).ok();
    let seconds = text
        .strip_suffix('s')
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    seconds
        .or_else(|| minutes.map(|m| Duration::from_secs(m.num_seconds().max(0) as u64)))
        .ok_or_else(|| {
            UsageError(format!(
                "{flag} '{text}' is not a length of time; give seconds (30s) or minutes (10m)"
            ))
            .into()
        })
}

fn account_error(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Input(input) => input.into(),
        other => anyhow::Error::new(other),
    }
}

pub async fn account(db: &str, command: AccountCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    match command {
        AccountCommand::Connect(args) => connect(&store, args).await,
        AccountCommand::List { json } => list(&store, json).await,
        AccountCommand::Remove { account, yes } => remove(&store, &account, yes).await,
        AccountCommand::Refresh { account } => refresh(&store, account.as_deref()).await,
    }
}

async fn connect(store: &Store, args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let timeout = duration("--timeout", &args.timeout)?;
    // Microsoft does not accept the IPv6 loopback ([::1]) in redirect URIs: 127.0.0.1 only.
    if args.listen.ip() != std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
        return Err(UsageError(format!(
            "--listen {}: the redirect is received on 127.0.0.1 only (Microsoft redirects to http://127.0.0.1 with any port); give --listen 127.0.0.1:PORT",
            args.listen
        ))
        .into());
    }
    let connection = store.connection(&args.connection).await?.ok_or_else(|| {
        UsageError(format!(
            "there is no connection named '{}'; `m365sync connection list` shows them",
            args.connection
        ))
    })?;
    let reconnecting = match &args.reconnect {
        Some(key) => {
            let account = store.account(key).await?;
            if account.connection_id != connection.id {
                return Err(UsageError(format!(
                    "--reconnect {key}: that account was connected through connection {}, not {}; give --connection {}",
                    account.connection_name, connection.name, account.connection_name
                ))
                .into());
            }
            Some(account)
        }
        None => None,
    };
    let listener = TcpListener::bind(args.listen).await.map_err(|e| {
        UsageError(format!(
            "cannot listen on {}: {e}; choose another address with --listen",
            args.listen
        ))
    })?;
    // The redirect names the address listened on, 127.0.0.1, rather than `localhost`: a browser
    // may resolve `localhost` to ::1 first, where nothing listens, and Microsoft recommends the
    // IP literal for loopback redirects (it ignores the port of a loopback redirect URI, so one
    // registered `http://127.0.0.1/integrations/office365/callback` covers every port).
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let app = flows::delegated_app(store, &connection, &redirect_uri, args.tenant.as_deref())
        .await
        .map_err(account_error)?;
    // A re-connect fills in the account's own user name unless another hint was given.
    let hint = args
        .login_hint
        .clone()
        .or_else(|| reconnecting.as_ref().map(|a| a.username.clone()));
    let pending = app.start(args.prompt.as_deref(), hint.as_deref())?;
    note!("Open this address in a browser and sign in as the person whose account to connect:");
    out!("{}", pending.url)?;
    note!(
        "Waiting up to {} for Microsoft to send the browser back to {redirect_uri} …",
        args.timeout
    );
    let callback = tokio::time::timeout(timeout, receive_callback(&listener))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "nobody signed in within {}; run `m365sync account connect` again (and open the address it prints)",
                args.timeout
            )
        })??;
    let outcome = flows::complete_sign_in(
        store,
        &connection,
        &app,
        pending,
        &callback.0,
        reconnecting.as_ref(),
    )
    .await;
    let page = match &outcome {
        Ok(account) => format!(
            "Connected {} to m365sync. You can close this window.",
            html_escape(&account.username)
        ),
        Err(e) => format!(
            "The account was not connected: {}",
            html_escape(&e.to_string())
        ),
    };
    callback.1.answer(&page).await;
    let account = outcome.map_err(account_error)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&account)?)?;
    } else {
        out!(
            "Connected {} ({}) as account {} through connection {}; permissions: {}",
            account.username,
            account.tenant_id,
            account.id,
            account.connection_name,
            account.scopes.join(" ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The browser's connection, kept open to answer once the sign-in is finished.
struct Answer(tokio::net::TcpStream);

impl Answer {
    async fn answer(mut self, text: &str) {
        let body = format!(
            "<!doctype html><html><head><title>m365sync</title></head><body><p id=\"outcome\">{text}</p></body></html>"
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = self.0.write_all(response.as_bytes()).await;
        let _ = self.0.shutdown().await;
    }
}

/// Waits for the browser's GET of the callback path; anything else (a favicon) gets a 404.
async fn receive_callback(listener: &TcpListener) -> anyhow::Result<(Callback, Answer)> {
    loop {
        let (mut stream, _) = listener.accept().await.context("waiting for the browser")?;
        let mut head = Vec::new();
        let mut buffer = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head);
        let target = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        if path == CALLBACK_PATH {
            return Ok((Callback::from_query(query), Answer(stream)));
        }
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    }
}

fn health_of(account: &DelegatedAccount, now: i64) -> TokenHealth {
    TokenHealth::of(account.state, account.last_refreshed_at, now)
}

async fn list(store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let accounts = store.accounts().await?;
    let now = store::now_millis();
    if json {
        let rows: Vec<serde_json::Value> = accounts
            .iter()
            .map(|a| {
                let mut row = serde_json::to_value(a).unwrap_or_default();
                row["token_health"] = serde_json::to_value(health_of(a, now)).unwrap_or_default();
                row
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if accounts.is_empty() {
        out!("No connected accounts: `m365sync account connect --connection NAME` adds one.")?;
    }
    if !accounts.is_empty() {
        let mut table = crate::output::Table::new(&[
            "ID",
            "ACCOUNT",
            "NAME",
            "TENANT",
            "CONNECTION",
            "CONNECTED",
            "LAST USED",
            "TOKEN",
        ]);
        for a in &accounts {
            table.row(vec![
                a.id.to_string(),
                a.username.clone(),
                a.display_name.clone().unwrap_or_else(|| "-".into()),
                a.tenant_id.to_string(),
                a.connection_name.to_string(),
                local_time(a.connected_at),
                a.last_used_at
                    .map(local_time)
                    .unwrap_or_else(|| "never".into()),
                health_of(a, now).describe(),
            ]);
        }
        table.print()?;
        // Permissions and problems are long: they follow the table, account by account.
        for a in &accounts {
            out!("\nAccount {} ({}):", a.id, a.username)?;
            out!("  permissions: {}", a.scopes.join(" "))?;
            if let Some(problem) = &a.problem {
                out!("  why: {problem}")?;
            }
        }
    }
    let attention = accounts
        .iter()
        .filter(|a| !matches!(health_of(a, now), TokenHealth::Healthy { .. }))
        .count();
    if attention > 0 {
        note!("warning: {attention} account(s) need attention; see above.");
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(store: &Store, key: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let account = store.account(key).await?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(format!(
                "removing {} deletes its tokens; add --yes to confirm",
                account.username
            ))
            .into());
        }
        note!(
            "Remove {} (account {}, via {}) and its tokens? Type yes to confirm:",
            account.username,
            account.id,
            account.connection_name
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            out!("Nothing removed.")?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    store.remove_account(account.id).await?;
    out!("Removed {} and its tokens from m365sync.", account.username)?;
    out!(
        "Microsoft still lists the consent it gave: the person can revoke it at https://myapps.microsoft.com (the app → Manage → Revoke permissions), an administrator can remove it in the Entra admin center (Enterprise applications → the app → Permissions), and revoking the person's sessions (Entra admin center → Users → the person → Revoke sessions) ends every refresh token they gave."
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn refresh(store: &Store, key: Option<&str>) -> anyhow::Result<ExitCode> {
    let accounts = match key {
        Some(key) => vec![store.account(key).await?],
        None => store.accounts().await?,
    };
    let mut failed = 0;
    for account in accounts {
        match flows::refresh_account(store, &account).await {
            Ok(_) => out!("{}: refreshed", account.username)?,
            Err(e) => {
                failed += 1;
                out!("{}: {e}", account.username)?;
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The scheduler's pass: refreshes accounts idle for a week, and says which need reconnecting.
pub async fn refresh_idle_accounts(store: &Store) {
    match flows::refresh_idle_accounts(store, store::now_millis()).await {
        Ok(outcomes) => {
            for outcome in outcomes {
                match outcome {
                    RefreshOutcome::Refreshed { username } => {
                        tracing::info!(account = %username, "a connected account was refreshed")
                    }
                    RefreshOutcome::NeedsReconnect { username, problem } => {
                        note!(
                            "warning: the account {username} needs to be connected again: {problem}"
                        )
                    }
                    RefreshOutcome::Stale {
                        username,
                        days_left,
                    } => note!(
                        "warning: the account {username} has not been refreshed for a long time; Microsoft revokes its token in {days_left} days unless a refresh succeeds"
                    ),
                    RefreshOutcome::Failed { username, problem } => {
                        note!("warning: the account {username} could not be refreshed: {problem}")
                    }
                }
            }
        }
        Err(e) => note!("warning: the connected accounts could not be read: {e}"),
    }
}

async fn access_for(store: &Store, whose: &Whose) -> anyhow::Result<CalendarAccess> {
    match (&whose.account, &whose.connection) {
        (Some(account), _) => {
            let account = store.account(account).await?;
            flows::account_calendar(store, &account, whose.mailbox.as_deref())
                .await
                .map_err(account_error)
        }
        (None, Some(connection)) => {
            let connection = store.connection(connection).await?.ok_or_else(|| {
                UsageError(format!(
                    "there is no connection named '{connection}'; `m365sync connection list` shows them"
                ))
            })?;
            let mailbox = whose.mailbox.as_deref().unwrap_or_default();
            flows::app_calendar(store, &connection, mailbox)
                .await
                .map_err(account_error)
        }
        (None, None) => Err(UsageError("give --account or --connection".into()).into()),
    }
}

/// The mailbox's time zone, from its working hours.
async fn zone_of(access: &CalendarAccess) -> anyhow::Result<chrono_tz::Tz> {
    Ok(flows::working_hours(access)
        .await
        .map_err(account_error)?
        .zone)
}

pub async fn calendar(db: &str, command: CalendarCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    match command {
        CalendarCommand::Free(args) => free(&store, args).await,
        CalendarCommand::Book(args) => book(&store, args).await,
        CalendarCommand::Move(args) => move_booking(&store, args).await,
        CalendarCommand::Cancel(args) => cancel(&store, args).await,
        CalendarCommand::Bookings { json } => bookings(&store, json).await,
    }
}

async fn free(store: &Store, args: FreeArgs) -> anyhow::Result<ExitCode> {
    let length = rules::parse_minutes("--length", &args.length)?;
    let step = rules::parse_minutes("--step", &args.step)?;
    if !(1..=flows::MAX_SEARCH_DAYS).contains(&args.days) {
        return Err(UsageError(format!(
            "--days must be from 1 to {}",
            flows::MAX_SEARCH_DAYS
        ))
        .into());
    }
    let access = access_for(store, &args.whose).await?;
    let zone = zone_of(&access).await?;
    let window =
        flows::days_window(&args.date, args.days, zone, Utc::now()).map_err(account_error)?;
    let free = flows::free_slots(&access, window, SlotRequest { length, step }, &args.with)
        .await
        .map_err(account_error)?;
    for (who, why) in &free.unknown {
        note!("warning: the free/busy of {who} could not be read ({why}); its time is not counted");
    }
    if args.json {
        let slots: Vec<serde_json::Value> = free
            .slots
            .iter()
            .map(|s| serde_json::json!({ "start": s.start, "end": s.end }))
            .collect();
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "mailbox": access.address, "time_zone": free.hours.zone.name(), "slots": slots,
            }))?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if free.slots.is_empty() {
        out!(
            "No free slot of {} in {}'s working hours then.",
            args.length,
            access.address
        )?;
    }
    for slot in &free.slots {
        out!("{}", rules::describe_span(slot, free.hours.zone))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_booking(booking: &BookingRow, json: bool, verb: &str) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(booking)?)?;
        return Ok(());
    }
    out!(
        "{verb} booking {}: '{}' in {}'s calendar, {} (event {})",
        booking.id,
        booking.subject,
        booking.mailbox,
        flows::booking_when(booking, None),
        booking.event_id.as_deref().unwrap_or("-")
    )?;
    Ok(())
}

async fn book(store: &Store, args: BookArgs) -> anyhow::Result<ExitCode> {
    let length = rules::parse_minutes("--length", &args.length)?;
    let access = access_for(store, &args.whose).await?;
    let (booking, _) = flows::book_as_asked(
        store,
        &access,
        &BookingInput {
            start: &args.start,
            end: SlotEnd::After(length),
            subject: &args.subject,
            attendees: &args.attendee,
            location: args.location.as_deref(),
            online_meeting: args.online,
            request_id: args.request_id.as_deref(),
            outside_working_hours: args.outside_working_hours,
        },
    )
    .await
    .map_err(account_error)?;
    print_booking(&booking, args.json, "Booked")?;
    Ok(ExitCode::SUCCESS)
}

async fn booking_access(store: &Store, booking: &BookingRow) -> anyhow::Result<CalendarAccess> {
    flows::booking_calendar(store, booking)
        .await
        .map_err(account_error)
}

/// A booking by its number, or a refusal that says where the numbers are.
async fn booking_numbered(store: &Store, id: i64) -> anyhow::Result<BookingRow> {
    match store.booking(id).await {
        Err(store::StoreError::NotFound(_)) => Err(UsageError(format!(
            "there is no booking {id}; `m365sync calendar bookings` lists them"
        ))
        .into()),
        other => Ok(other?),
    }
}

async fn move_booking(store: &Store, args: MoveArgs) -> anyhow::Result<ExitCode> {
    let booking = booking_numbered(store, args.booking).await?;
    let length = match &args.length {
        Some(text) => rules::parse_minutes("--length", text)?,
        None => chrono::Duration::milliseconds(booking.end_at - booking.start_at),
    };
    let access = booking_access(store, &booking).await?;
    let (moved, _) = flows::move_as_asked(
        store,
        &access,
        &booking,
        &args.start,
        SlotEnd::After(length),
        args.outside_working_hours,
    )
    .await
    .map_err(account_error)?;
    print_booking(&moved, args.json, "Moved")?;
    Ok(ExitCode::SUCCESS)
}

async fn cancel(store: &Store, args: CancelArgs) -> anyhow::Result<ExitCode> {
    let booking = booking_numbered(store, args.booking).await?;
    let access = booking_access(store, &booking).await?;
    let cancelled = flows::cancel_booking(store, &access, &booking, &args.comment)
        .await
        .map_err(account_error)?;
    print_booking(&cancelled, args.json, "Cancelled")?;
    Ok(ExitCode::SUCCESS)
}

async fn bookings(store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let rows = store.bookings().await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        out!("No bookings yet: `m365sync calendar book` makes one.")?;
    }
    if !rows.is_empty() {
        let mut table =
            crate::output::Table::new(&["ID", "STATE", "MAILBOX", "WHEN", "SUBJECT", "PROBLEM"]);
        for b in &rows {
            table.row(vec![
                b.id.to_string(),
                b.state.to_string(),
                b.mailbox.clone(),
                flows::booking_when(b, None),
                b.subject.clone(),
                b.problem.clone().unwrap_or_default(),
            ]);
        }
        table.print()?;
    }
    Ok(ExitCode::SUCCESS)
}
