//! Delegated accounts at work: signing a person in through a connection's app registration,
//! refreshing their token (the new refresh token replaces the old; a refused one turns the
//! account to "needs reconnect"), the scheduler's refresh of idle accounts, and calendars:
//! free slots, and bookings that re-check their slot under a per-mailbox lock and carry a
//! `transactionId` so a retry never books twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::accounts::{AccountState, CALENDAR_SCOPES, RefreshToken, SIGN_IN_SCOPES, TokenHealth};
use domain::calendar::{self as rules, BusyTime, ShowAs, SlotRequest, Span, WorkingHours};
use domain::{Credential, InputError};
use graph::calendar::{Bearer, CalendarClient, CalendarError, Event, Mailbox, NewEvent};
use graph::delegated::{Callback, DelegatedApp, DelegatedError, PendingSignIn, SecretToken};
use graph::{ClientCertificate, ClientCredential, RetryPolicy};
use store::{BookingRow, Connection, DelegatedAccount, NewAccount, NewBooking, Store, StoreError};
use tracing::{info, warn};

/// Why an account or calendar action did not work, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SignIn(#[from] DelegatedError),
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("{}: {} ({})", .0.field, .0.problem, .0.fix)]
    Input(InputError),
    #[error(
        "the account {username} needs to be connected again: {problem}. Run `m365sync account connect --connection {connection} --reconnect {username}` and sign in as {username}"
    )]
    NeedsReconnect {
        username: String,
        connection: String,
        problem: String,
    },
    #[error(
        "the slot {start} – {end} is no longer free in {mailbox}'s calendar: {subject}. Choose another slot (`m365sync calendar free`)"
    )]
    SlotTaken {
        mailbox: String,
        start: String,
        end: String,
        subject: String,
    },
    #[error("another booking in {0}'s calendar is still being written; try again in a minute")]
    Busy(String),
    #[error("booking {id} {}: it cannot be {action}", state_words(.state, .problem.as_deref()))]
    BookingState {
        id: i64,
        state: String,
        problem: Option<String>,
        action: &'static str,
    },
    #[error(
        "the request id {request_id} was already used for another booking ({first}); nothing was written. Send a new request id for a different booking, or the same request as before to get that booking"
    )]
    RequestIdReused { request_id: String, first: String },
    #[error(
        "you signed in as {signed_in}; to reconnect {expected}, sign in as {expected}. Nothing was saved and {expected} still needs reconnecting"
    )]
    WrongPerson { expected: String, signed_in: String },
    #[error(
        "{username} has no Exchange Online mailbox (Microsoft answered MailboxNotEnabledForRESTAPI), so there is no calendar to read or book in. Give {username} a licence that includes Exchange Online, wait until the mailbox exists, then connect again; nothing was saved"
    )]
    NoMailbox { username: String },
    #[error(
        "booking {booking} was made by the account {username}, which was removed, so it cannot be changed from here; connect {username} again (`m365sync account connect --connection {connection}`, signing in as {username}) and try again, or change the event in Outlook"
    )]
    AccountRemoved {
        booking: i64,
        username: String,
        connection: String,
    },
    #[error("{0}")]
    Setup(String),
}

/// A booking's state as a sentence part: "is cancelled", "failed (the slot was taken)".
fn state_words(state: &str, problem: Option<&str>) -> String {
    let why = problem.map(|p| format!(" ({p})")).unwrap_or_default();
    match state {
        "failed" => format!("failed{why}"),
        "pending" => format!("is not confirmed by Microsoft 365{why}"),
        "cancelled" => "is cancelled".to_string(),
        other => format!("is {other}{why}"),
    }
}

impl From<InputError> for AccountError {
    fn from(e: InputError) -> Self {
        Self::Input(e)
    }
}

pub type AccountResult<T> = std::result::Result<T, AccountError>;

/// The Graph resource the delegated permissions are named under in this cloud.
fn graph_resource(connection: &Connection) -> String {
    match connection.cloud {
        domain::Cloud::Custom { .. } => "https://graph.microsoft.com".to_string(),
        ref cloud => cloud.endpoints().graph,
    }
}

/// The permissions asked for: sign-in, a refresh token, and the calendars.
pub fn account_scopes(connection: &Connection) -> Vec<String> {
    let resource = graph_resource(connection);
    SIGN_IN_SCOPES
        .iter()
        .map(|s| s.to_string())
        .chain(CALENDAR_SCOPES.iter().map(|s| format!("{resource}/{s}")))
        .collect()
}

fn client_credential(
    connection: &Connection,
    credential: &Credential,
) -> AccountResult<ClientCredential> {
    Ok(match credential {
        Credential::Secret(secret) => {
            ClientCredential::Secret(graph::ClientSecretValue::new(secret.expose()))
        }
        Credential::Certificate(certificate) => ClientCredential::Certificate(Arc::new(
            ClientCertificate::from_pem(certificate.pem()).map_err(|e| {
                AccountError::Setup(format!(
                    "the certificate of connection {} cannot be used: {e}",
                    connection.name
                ))
            })?,
        )),
    })
}

/// The connection's app registration signing people in at `tenant` (the connection's own
/// tenant by default, `organizations` for people of any organisation).
pub async fn delegated_app(
    store: &Store,
    connection: &Connection,
    redirect_uri: &str,
    tenant: Option<&str>,
) -> AccountResult<DelegatedApp> {
    let credential = store.connection_credential(connection).await?;
    let tenant = tenant
        .map(str::to_string)
        .unwrap_or_else(|| connection.tenant_id.to_string());
    Ok(DelegatedApp::new(
        &connection.cloud.endpoints().login,
        &tenant,
        &connection.client_id.to_string(),
        client_credential(connection, &credential)?,
        redirect_uri,
        account_scopes(connection),
        crate::client::extra_ca(),
    )?)
}

/// Finishes a sign-in and keeps the account (replacing its earlier token on a re-connect).
/// When `reconnecting` names an account, the person must sign in as that account: someone else
/// is refused, so that a re-connect never adds another person and leaves the first broken.
/// The account's calendar is read once before it is kept: a person without an Exchange Online
/// mailbox is refused now, rather than at their first booking.
pub async fn complete_sign_in(
    store: &Store,
    connection: &Connection,
    app: &DelegatedApp,
    pending: PendingSignIn,
    callback: &Callback,
    reconnecting: Option<&DelegatedAccount>,
) -> AccountResult<DelegatedAccount> {
    let signed_in = app.finish(pending, callback).await?;
    if let Some(expected) = reconnecting
        && !(expected
            .tenant_id
            .eq_ignore_ascii_case(&signed_in.tenant_id)
            && expected
                .object_id
                .eq_ignore_ascii_case(&signed_in.object_id))
    {
        warn!(account = expected.id, expected = %expected.username, signed_in = %signed_in.username, "a re-connect was signed in as another person; refused");
        return Err(AccountError::WrongPerson {
            expected: expected.username.clone(),
            signed_in: signed_in.username.clone(),
        });
    }
    check_mailbox(
        connection,
        &signed_in.username,
        &signed_in.access_token.value,
    )
    .await?;
    let refresh_token = RefreshToken::new(signed_in.refresh_token.expose())?;
    let account = store
        .save_account(NewAccount {
            connection_id: connection.id,
            tenant_id: signed_in.tenant_id,
            object_id: signed_in.object_id,
            username: signed_in.username,
            display_name: signed_in.display_name,
            scopes: signed_in.scopes,
            refresh_token,
        })
        .await?;
    info!(account = account.id, user = %account.username, connection = %connection.name, "an account was connected");
    Ok(account)
}

/// Reads a minute of the person's own calendar: Outlook answers MailboxNotEnabledForRESTAPI
/// when they have no Exchange Online mailbox. The calendar view needs no permission beyond
/// the calendar ones asked for (mailboxSettings would need MailboxSettings.Read as well). Any
/// other failure here is only logged: the account itself is fine, and a booking says more.
async fn check_mailbox(
    connection: &Connection,
    username: &str,
    access_token: &SecretToken,
) -> AccountResult<()> {
    let client = CalendarClient::new(
        &connection.cloud.endpoints().graph,
        Bearer::Delegated(SecretToken::new(access_token.expose())),
        crate::client::extra_ca(),
    )?;
    let now = Utc::now();
    match client
        .calendar_view(
            &Mailbox::Me,
            &graph_utc(now),
            &graph_utc(now + chrono::Duration::minutes(1)),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(CalendarError::Refused { code, .. }) if code == "MailboxNotEnabledForRESTAPI" => {
            Err(AccountError::NoMailbox {
                username: username.to_string(),
            })
        }
        Err(e) => {
            warn!(user = %username, problem = %e, "the calendar of a newly connected account could not be read");
            Ok(())
        }
    }
}

fn connection_of<'a>(
    connections: &'a [Connection],
    account: &DelegatedAccount,
) -> AccountResult<&'a Connection> {
    connections
        .iter()
        .find(|c| c.id == account.connection_id)
        .ok_or_else(|| {
            AccountError::Setup(format!(
                "the connection of account {} is gone",
                account.username
            ))
        })
}

/// Refreshes an account: a new access token, and the refresh token that replaces the old one,
/// kept in the same statement that checks no other refresh replaced it first. A refusal that
/// only signing in again can fix turns the account to "needs reconnect", with why.
pub async fn refresh_account(
    store: &Store,
    account: &DelegatedAccount,
) -> AccountResult<SecretToken> {
    let connections = store.connections().await?;
    let connection = connection_of(&connections, account)?;
    if account.state == AccountState::NeedsReconnect {
        return Err(AccountError::NeedsReconnect {
            username: account.username.clone(),
            connection: connection.name.to_string(),
            problem: account
                .problem
                .clone()
                .unwrap_or_else(|| "Microsoft refused its token".into()),
        });
    }
    // The redirect URI plays no part in a refresh.
    let app = delegated_app(
        store,
        connection,
        "http://localhost",
        Some(&account.tenant_id),
    )
    .await?;
    let (token, generation) = store.account_refresh_token(account).await?;
    match app.refresh(&SecretToken::new(token.expose())).await {
        Ok(refreshed) => {
            let next = RefreshToken::new(refreshed.refresh_token.expose())?;
            let now = store::now_millis();
            if !store
                .rotate_account_token(account.id, generation, &next, now)
                .await?
            {
                // Another process refreshed first; its token is kept. Ours still works until
                // Microsoft retires it, so the access token is used all the same.
                info!(
                    account = account.id,
                    "the account was refreshed by another process meanwhile"
                );
            }
            store.mark_account_used(account.id, now).await?;
            Ok(refreshed.access_token.value)
        }
        Err(e) if e.needs_reconnect() => {
            let problem = e.to_string();
            store
                .mark_account_needs_reconnect(account.id, &problem)
                .await?;
            warn!(account = account.id, user = %account.username, problem = %problem, "a connected account needs to be connected again");
            Err(AccountError::NeedsReconnect {
                username: account.username.clone(),
                connection: connection.name.to_string(),
                problem,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// What the scheduler's pass over the accounts did to one.
#[derive(Debug)]
pub enum RefreshOutcome {
    Refreshed {
        username: String,
    },
    NeedsReconnect {
        username: String,
        problem: String,
    },
    /// Could not be refreshed now (Microsoft unreachable…); tried again next pass.
    Failed {
        username: String,
        problem: String,
    },
    /// Its token is old and the limit is near: said loudly while there is time.
    Stale {
        username: String,
        days_left: i64,
    },
}

/// Refreshes every active account not refreshed for a week, well inside Microsoft's 90-day
/// inactivity limit, and warns of any whose token is getting old.
pub async fn refresh_idle_accounts(store: &Store, now: i64) -> AccountResult<Vec<RefreshOutcome>> {
    let mut outcomes = Vec::new();
    for account in store.accounts().await? {
        if !TokenHealth::due_for_refresh(account.state, account.last_refreshed_at, now) {
            continue;
        }
        match refresh_account(store, &account).await {
            Ok(_) => outcomes.push(RefreshOutcome::Refreshed {
                username: account.username.clone(),
            }),
            Err(AccountError::NeedsReconnect { problem, .. }) => {
                outcomes.push(RefreshOutcome::NeedsReconnect {
                    username: account.username.clone(),
                    problem,
                })
            }
            Err(e) => {
                let problem = e.to_string();
                warn!(account = account.id, user = %account.username, problem = %problem, "a connected account could not be refreshed; it is tried again at the next pass");
                if let TokenHealth::Stale { days_left } =
                    TokenHealth::of(account.state, account.last_refreshed_at, now)
                {
                    warn!(account = account.id, user = %account.username, days_left, "a connected account's token will be revoked by Microsoft unless a refresh succeeds");
                    outcomes.push(RefreshOutcome::Stale {
                        username: account.username.clone(),
                        days_left,
                    });
                }
                outcomes.push(RefreshOutcome::Failed {
                    username: account.username.clone(),
                    problem,
                });
            }
        }
    }
    Ok(outcomes)
}

/// Whose calendar, and how to reach it: a connected account (its own calendar, or one shared
/// with it), or a mailbox the connection's app may read with application permissions.
pub struct CalendarAccess {
    pub client: CalendarClient,
    pub mailbox: Mailbox,
    /// The mailbox's address, as free/busy and bookings name it.
    pub address: String,
    pub connection_id: i64,
    pub account_id: Option<i64>,
}

/// A connected account's calendar access (refreshing its token), for its own mailbox or
/// `other` (a calendar shared with it).
pub async fn account_calendar(
    store: &Store,
    account: &DelegatedAccount,
    other: Option<&str>,
) -> AccountResult<CalendarAccess> {
    let connections = store.connections().await?;
    let connection = connection_of(&connections, account)?;
    let token = refresh_account(store, account).await?;
    let client = CalendarClient::new(
        &connection.cloud.endpoints().graph,
        Bearer::Delegated(token),
        crate::client::extra_ca(),
    )?;
    let (mailbox, address) = match other {
        Some(address) if !address.eq_ignore_ascii_case(&account.username) => {
            (Mailbox::User(address.to_string()), address.to_string())
        }
        _ => (Mailbox::Me, account.username.clone()),
    };
    Ok(CalendarAccess {
        client,
        mailbox,
        address,
        connection_id: connection.id,
        account_id: Some(account.id),
    })
}

/// A mailbox reached with the connection's application permissions (Calendars.ReadWrite).
pub async fn app_calendar(
    store: &Store,
    connection: &Connection,
    address: &str,
) -> AccountResult<CalendarAccess> {
    let credential = store.connection_credential(connection).await?;
    let graph_client = crate::client::graph_client(connection, &credential, RetryPolicy::default())
        .map_err(|e| AccountError::Setup(e.to_string()))?;
    let client = CalendarClient::new(
        &connection.cloud.endpoints().graph,
        Bearer::App(Arc::new(graph_client)),
        crate::client::extra_ca(),
    )?;
    Ok(CalendarAccess {
        client,
        mailbox: Mailbox::User(address.to_string()),
        address: address.to_string(),
        connection_id: connection.id,
        account_id: None,
    })
}

/// A UTC instant as Graph is sent it: `YYYY-MM-DDTHH:MM:SS`.
fn graph_utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A time Graph sent (asked for in UTC; other zones are converted).
fn instant_of(value: &graph::calendar::DateTimeZone) -> AccountResult<DateTime<Utc>> {
    let zone = rules::zone_from_outlook(&value.time_zone)?;
    let text = value.date_time.trim_end_matches('Z');
    let local =
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| {
            InputError::new(
                "dateTime",
                format!(
                    "Microsoft Graph sent '{}', which is not a date and time",
                    value.date_time
                ),
                "Report this answer; nothing was changed",
            )
        })?;
    Ok(rules::local_instant(zone, local))
}

fn busy_of(event: &Event) -> AccountResult<Option<BusyTime>> {
    if event.is_cancelled {
        return Ok(None);
    }
    Ok(Some(BusyTime {
        span: Span::new(instant_of(&event.start)?, instant_of(&event.end)?)?,
        show_as: ShowAs::parse(event.show_as.as_deref().unwrap_or("busy")),
    }))
}

/// The free slots of one mailbox (and, when `with` names people or rooms, of all of them at
/// once) inside the mailbox's working hours and time zone.
pub struct FreeSlots {
    pub hours: WorkingHours,
    pub slots: Vec<Span>,
    /// People whose free/busy could not be read, with why.
    pub unknown: Vec<(String, String)>,
}

pub async fn free_slots(
    access: &CalendarAccess,
    window: Span,
    request: SlotRequest,
    with: &[String],
) -> AccountResult<FreeSlots> {
    let mut people = vec![access.address.clone()];
    people.extend(with.iter().cloned());
    let (start, end) = (graph_utc(window.start), graph_utc(window.end));
    let schedules = access
        .client
        .schedule(&access.mailbox, &people, &start, &end)
        .await?;
    let own = schedules
        .iter()
        .find(|s| s.schedule_id.eq_ignore_ascii_case(&access.address))
        .and_then(|s| s.working_hours.as_ref())
        .ok_or_else(|| {
            AccountError::Setup(format!(
                "Outlook gave no working hours for {}; set them in Outlook (Settings → Calendar → Work hours)",
                access.address
            ))
        })?;
    let hours = WorkingHours::from_outlook(
        &own.days_of_week,
        &own.start_time,
        &own.end_time,
        &own.time_zone.name,
    )?;
    // The mailbox's own calendar view: every instance of a recurring event, with its showAs.
    let mut busy = Vec::new();
    for event in access
        .client
        .calendar_view(&access.mailbox, &start, &end)
        .await?
    {
        busy.extend(busy_of(&event)?);
    }
    let mut unknown = Vec::new();
    for schedule in schedules
        .iter()
        .filter(|s| !s.schedule_id.eq_ignore_ascii_case(&access.address))
    {
        if let Some(error) = &schedule.error {
            unknown.push((
                schedule.schedule_id.clone(),
                error
                    .message
                    .clone()
                    .or_else(|| error.response_code.clone())
                    .unwrap_or_default(),
            ));
            continue;
        }
        for item in &schedule.schedule_items {
            busy.push(BusyTime {
                span: Span::new(instant_of(&item.start)?, instant_of(&item.end)?)?,
                show_as: ShowAs::parse(&item.status),
            });
        }
    }
    // The past is never offered: today's slots start from now.
    let slots = rules::from_now(&window, Utc::now())
        .map(|future| rules::free_slots(&future, &hours, &busy, request))
        .unwrap_or_default();
    Ok(FreeSlots {
        hours,
        slots,
        unknown,
    })
}

/// The mailbox's working hours and time zone, as Outlook keeps them: local times people type
/// (a day, a start) are read in this zone.
pub async fn working_hours(access: &CalendarAccess) -> AccountResult<WorkingHours> {
    let now = Utc::now();
    let day = Span::new(now, now + chrono::Duration::days(1))?;
    let request = SlotRequest {
        length: chrono::Duration::minutes(30),
        step: chrono::Duration::minutes(30),
    };
    Ok(free_slots(access, day, request, &[]).await?.hours)
}

/// The most days one free-slot search may span: Outlook answers `getSchedule` for 62 days.
pub const MAX_SEARCH_DAYS: u32 = 62;

/// The span of `days` local days from `first_day` (today, tomorrow or YYYY-MM-DD) in `zone`.
pub fn days_window(
    first_day: &str,
    days: u32,
    zone: rules::Tz,
    now: DateTime<Utc>,
) -> AccountResult<Span> {
    if !(1..=MAX_SEARCH_DAYS).contains(&days) {
        return Err(InputError::new(
            "days",
            format!("{days} is out of range"),
            format!("Give a number of days from 1 to {MAX_SEARCH_DAYS}"),
        )
        .into());
    }
    let first = rules::parse_day_in(first_day, zone, now)?;
    if first.end <= now {
        return Err(InputError::new(
            "date",
            format!(
                "{} is in the past (today is {} in {})",
                first.start.with_timezone(&zone).date_naive(),
                now.with_timezone(&zone).date_naive(),
                zone.name()
            ),
            "Give today, tomorrow or a later date",
        )
        .into());
    }
    let last_day =
        first.start.with_timezone(&zone).date_naive() + chrono::Duration::days(i64::from(days) - 1);
    let last = rules::parse_day_in(&last_day.to_string(), zone, now)?;
    Ok(Span::new(first.start, last.end)?)
}

/// The calendar a booking was made in, reached as it was booked: through its account, or with
/// the connection's application permission.
pub async fn booking_calendar(
    store: &Store,
    booking: &BookingRow,
) -> AccountResult<CalendarAccess> {
    let removed = |username: &str, connection: String| AccountError::AccountRemoved {
        booking: booking.id,
        username: username.to_string(),
        connection,
    };
    let connection_name = async || {
        Ok::<_, AccountError>(
            store
                .connections()
                .await?
                .into_iter()
                .find(|c| c.id == booking.connection_id)
                .map_or_else(|| "NAME".to_string(), |c| c.name.to_string()),
        )
    };
    match (booking.account_id, booking.account_username.as_deref()) {
        (Some(id), username) => match (store.account_by_id(id).await?, username) {
            (Some(account), _) => account_calendar(store, &account, Some(&booking.mailbox)).await,
            // Removed while this was asked.
            (None, Some(username)) => Err(removed(username, connection_name().await?)),
            (None, None) => Err(AccountError::Setup(format!(
                "the account that made booking {} was removed; connect it again to change the booking, or change the event in Outlook",
                booking.id
            ))),
        },
        // Made by an account since removed: the connection's app is not who made it, and
        // trying with it would fail at Microsoft.
        (None, Some(username)) => Err(removed(username, connection_name().await?)),
        (None, None) => {
            let connection = store
                .connections()
                .await?
                .into_iter()
                .find(|c| c.id == booking.connection_id)
                .ok_or_else(|| {
                    AccountError::Setup(format!("the connection of booking {} is gone", booking.id))
                })?;
            app_calendar(store, &connection, &booking.mailbox).await
        }
    }
}

/// What to book, checked.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    pub slot: Span,
    pub subject: String,
    pub attendees: Vec<String>,
    pub location: Option<String>,
    pub online_meeting: bool,
    /// The same for every try of one booking: a retry never books twice.
    pub transaction_id: String,
    /// The mailbox's zone, in which the booking is shown.
    pub zone: rules::Tz,
}

impl BookingRequest {
    /// What was asked, as a retry under the same request id must ask it again: the slot, the
    /// subject, the attendees (in any order and case), the location and the Teams meeting.
    fn fingerprint(&self, mailbox: &str) -> String {
        let mut attendees: Vec<String> = self
            .attendees
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect();
        attendees.sort();
        serde_json::json!({
            "mailbox": mailbox.to_ascii_lowercase(),
            "start": self.slot.start.timestamp_millis(),
            "end": self.slot.end.timestamp_millis(),
            "subject": self.subject,
            "attendees": attendees,
            "location": self.location,
            "online_meeting": self.online_meeting,
        })
        .to_string()
    }
}

/// How a slot's end is given: a time (the pages and the API) or a length (the command line).
#[derive(Debug, Clone, Copy)]
pub enum SlotEnd<'a> {
    At(&'a str),
    After(chrono::Duration),
}

/// A booking as asked, unchecked: the command line, the pages and the API hand it over as
/// typed, and `book_as_asked` applies every rule.
#[derive(Debug, Clone)]
pub struct BookingInput<'a> {
    /// `YYYY-MM-DDTHH:MM` in the mailbox's zone, or an instant with an offset.
    pub start: &'a str,
    pub end: SlotEnd<'a>,
    pub subject: &'a str,
    pub attendees: &'a [String],
    pub location: Option<&'a str>,
    pub online_meeting: bool,
    /// The caller's id for this booking; a new one is made when left out.
    pub request_id: Option<&'a str>,
    /// The person means a slot outside the mailbox's working hours.
    pub outside_working_hours: bool,
}

/// Whether a request id is usable: 1 to 100 letters, digits, `-` or `_`.
pub fn request_id_ok(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// A new request id, unique to one booking.
pub fn new_request_id() -> String {
    format!("m365sync-{}", uuid::Uuid::new_v4().simple())
}

/// A slot from a start and an end (or length) as typed, read in the mailbox's zone, and
/// checked: not past, not longer than 14 days, inside the working hours unless meant otherwise.
pub fn read_slot(
    start: &str,
    end: SlotEnd<'_>,
    hours: &WorkingHours,
    now: DateTime<Utc>,
    outside_working_hours: bool,
) -> AccountResult<Span> {
    let start = rules::parse_local_time("start", start, hours.zone)?;
    let end = match end {
        SlotEnd::At(text) => rules::parse_local_time("end", text, hours.zone)?,
        SlotEnd::After(length) => start + length,
    };
    let slot = Span::new(start, end)?;
    rules::check_slot(&slot, hours, now, outside_working_hours)?;
    Ok(slot)
}

/// Checks a booking as asked against every rule, in the mailbox's working hours.
pub fn booking_request(
    access: &CalendarAccess,
    hours: &WorkingHours,
    input: &BookingInput<'_>,
    now: DateTime<Utc>,
) -> AccountResult<BookingRequest> {
    let subject = rules::subject(input.subject)?;
    let attendees = rules::attendees("attendees", input.attendees, &access.address)?;
    let location = rules::location(input.location)?;
    let transaction_id = match input.request_id.map(str::trim) {
        Some(id) if request_id_ok(id) => id.to_string(),
        Some(id) => {
            return Err(InputError::new(
                "request_id",
                format!("'{}' is not usable", id.escape_debug()),
                "Give 1 to 100 letters, digits, '-' or '_', or leave it out",
            )
            .into());
        }
        None => new_request_id(),
    };
    let slot = read_slot(
        input.start,
        input.end,
        hours,
        now,
        input.outside_working_hours,
    )?;
    Ok(BookingRequest {
        slot,
        subject,
        attendees,
        location,
        online_meeting: input.online_meeting,
        transaction_id,
        zone: hours.zone,
    })
}

/// Books what was asked: reads the mailbox's working hours and zone, checks the request
/// (`booking_request`), then books it (`book`). The booking, and the hours it was read in.
pub async fn book_as_asked(
    store: &Store,
    access: &CalendarAccess,
    input: &BookingInput<'_>,
) -> AccountResult<(BookingRow, WorkingHours)> {
    let hours = working_hours(access).await?;
    let request = booking_request(access, &hours, input, Utc::now())?;
    Ok((book(store, access, &request).await?, hours))
}

/// Moves a booking to a slot as typed (`end` as a time or a length), after the same checks as
/// a booking. The moved booking, and the hours it was read in.
pub async fn move_as_asked(
    store: &Store,
    access: &CalendarAccess,
    booking: &BookingRow,
    start: &str,
    end: SlotEnd<'_>,
    outside_working_hours: bool,
) -> AccountResult<(BookingRow, WorkingHours)> {
    booked_event(booking, "moved")?;
    let hours = working_hours(access).await?;
    let slot = read_slot(start, end, &hours, Utc::now(), outside_working_hours)?;
    Ok((move_booking(store, access, booking, slot).await?, hours))
}

/// A booking's time as people read it: in the mailbox's zone (kept with the booking, else
/// `zone` when given, else UTC), with the zone's name.
pub fn booking_when(booking: &BookingRow, zone: Option<rules::Tz>) -> String {
    let zone = booking
        .time_zone
        .as_deref()
        .and_then(|z| z.parse::<rules::Tz>().ok())
        .or(zone)
        .unwrap_or(rules::Tz::UTC);
    let millis = |t| DateTime::<Utc>::from_timestamp_millis(t).unwrap_or_default();
    match Span::new(millis(booking.start_at), millis(booking.end_at)) {
        Ok(span) => rules::describe_span(&span, zone),
        Err(_) => millis(booking.start_at).to_rfc3339(),
    }
}

/// How long one booking may hold a mailbox's lock, and how long another waits for it.
const LOCK_HOLD: Duration = Duration::from_secs(60);
const LOCK_WAIT: Duration = Duration::from_secs(30);

struct MailboxLock<'a> {
    store: &'a Store,
    mailbox: String,
    holder: String,
}

impl<'a> MailboxLock<'a> {
    async fn take(store: &'a Store, mailbox: &str) -> AccountResult<Self> {
        let holder = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            let now = store::now_millis();
            if store
                .lock_mailbox(mailbox, &holder, now, now + LOCK_HOLD.as_millis() as i64)
                .await?
            {
                return Ok(Self {
                    store,
                    mailbox: mailbox.to_string(),
                    holder,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AccountError::Busy(mailbox.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(100 + fastrand_millis())).await;
        }
    }

    async fn release(self) -> AccountResult<()> {
        Ok(self
            .store
            .unlock_mailbox(&self.mailbox, &self.holder)
            .await?)
    }
}

fn fastrand_millis() -> u64 {
    (uuid::Uuid::new_v4().as_u128() % 100) as u64
}

/// The first event (other than `except`) that blocks `slot`, if any.
async fn blocking_event(
    access: &CalendarAccess,
    slot: &Span,
    except: Option<&str>,
) -> AccountResult<Option<Event>> {
    let events = access
        .client
        .calendar_view(
            &access.mailbox,
            &graph_utc(slot.start),
            &graph_utc(slot.end),
        )
        .await?;
    for event in events {
        if except.is_some_and(|id| id == event.id) {
            continue;
        }
        if let Some(busy) = busy_of(&event)?
            && busy.show_as.blocks()
            && busy.span.overlaps(slot)
        {
            return Ok(Some(event));
        }
    }
    Ok(None)
}

/// Books an event: re-checks the slot just before writing, under the mailbox's lock so that two
/// bookings of one slot never both succeed, and with a `transactionId` so that a retried request
/// never books twice. A request id already used returns that booking when the same thing is
/// asked again, and is refused when something else is asked; an attempt that failed without
/// writing anything does not hold its id.
pub async fn book(
    store: &Store,
    access: &CalendarAccess,
    request: &BookingRequest,
) -> AccountResult<BookingRow> {
    let fingerprint = request.fingerprint(&access.address);
    let new = NewBooking {
        connection_id: access.connection_id,
        account_id: access.account_id,
        mailbox: &access.address,
        transaction_id: &request.transaction_id,
        request: &fingerprint,
        subject: &request.subject,
        start_at: request.slot.start.timestamp_millis(),
        end_at: request.slot.end.timestamp_millis(),
        time_zone: request.zone.name(),
    };
    let mut booking = store.begin_booking(&new).await?;
    if booking.state == "failed" {
        // Nothing of the failed attempt reached Outlook: this request takes the id over.
        if !store.restart_failed_booking(booking.id, &new).await? {
            return Err(AccountError::Busy(access.address.clone()));
        }
        booking = store.booking(booking.id).await?;
    }
    let same = match &booking.request {
        Some(asked) => *asked == fingerprint,
        // Booked before requests were kept: the slot and subject are what can be compared.
        None => {
            booking.start_at == new.start_at
                && booking.end_at == new.end_at
                && booking.subject == request.subject
                && booking.mailbox.eq_ignore_ascii_case(&access.address)
        }
    };
    if !same {
        return Err(AccountError::RequestIdReused {
            request_id: request.transaction_id.clone(),
            first: format!(
                "'{}', {}, booking {}",
                booking.subject,
                booking_when(&booking, Some(request.zone)),
                booking.id
            ),
        });
    }
    if booking.state != "pending" {
        return Ok(booking);
    }
    let lock = match MailboxLock::take(store, &access.address).await {
        Ok(lock) => lock,
        Err(e) => {
            store
                .booking_problem(booking.id, "failed", &e.to_string())
                .await?;
            return Err(e);
        }
    };
    let outcome = book_locked(store, access, request, &booking).await;
    lock.release().await?;
    let event = match outcome {
        Ok(event) => event,
        Err((e, written)) => {
            let (state, problem) = match written {
                Written::Nothing => ("failed", e.to_string()),
                Written::Unknown => (
                    "pending",
                    format!(
                        "Microsoft 365 did not confirm it ({e}); sending the same request again books it at most once"
                    ),
                ),
            };
            store.booking_problem(booking.id, state, &problem).await?;
            return Err(e);
        }
    };
    store
        .update_booking(
            booking.id,
            "booked",
            Some(&event.id),
            booking.start_at,
            booking.end_at,
        )
        .await?;
    Ok(store.booking(booking.id).await?)
}

/// Whether a failed attempt may have left an event in Outlook.
enum Written {
    /// Refused before or by Outlook: no event exists.
    Nothing,
    /// Outlook's answer was lost: the event may exist, under the attempt's transaction id.
    Unknown,
}

async fn book_locked(
    _store: &Store,
    access: &CalendarAccess,
    request: &BookingRequest,
    booking: &BookingRow,
) -> Result<Event, (AccountError, Written)> {
    let nothing = |e: AccountError| (e, Written::Nothing);
    if let Some(event) = blocking_event(access, &request.slot, None)
        .await
        .map_err(nothing)?
    {
        // Our own event from an earlier try of this same booking is not in the way.
        if event.transaction_id.as_deref() != Some(booking.transaction_id.as_str()) {
            return Err(nothing(slot_taken(access, &request.slot, &event)));
        }
    }
    let event = access
        .client
        .create_event(
            &access.mailbox,
            &NewEvent {
                subject: request.subject.clone(),
                start_utc: graph_utc(request.slot.start),
                end_utc: graph_utc(request.slot.end),
                attendees: request
                    .attendees
                    .iter()
                    .map(|a| (a.clone(), None))
                    .collect(),
                location: request.location.clone(),
                online_meeting: request.online_meeting,
                transaction_id: request.transaction_id.clone(),
            },
        )
        .await
        .map_err(|e| {
            // A refusal (4xx, throttling, a token problem) wrote nothing; a lost or unreadable
            // answer, or a server error, may have come after the event was made.
            let written = match &e {
                CalendarError::Refused { status, .. } if *status < 500 => Written::Nothing,
                CalendarError::Throttled { .. } | CalendarError::Token(_) => Written::Nothing,
                _ => Written::Unknown,
            };
            (AccountError::from(e), written)
        })?;
    Ok(event)
}

fn slot_taken(access: &CalendarAccess, slot: &Span, event: &Event) -> AccountError {
    AccountError::SlotTaken {
        mailbox: access.address.clone(),
        start: slot.start.to_rfc3339(),
        end: slot.end.to_rfc3339(),
        subject: event
            .subject
            .clone()
            .filter(|s| !s.is_empty())
            .map(|s| format!("'{s}' is there"))
            .unwrap_or_else(|| "another event is there".into()),
    }
}

/// Moves a booking to `slot`, re-checking the new slot (the event itself aside) under the lock.
pub async fn move_booking(
    store: &Store,
    access: &CalendarAccess,
    booking: &BookingRow,
    slot: Span,
) -> AccountResult<BookingRow> {
    let event_id = booked_event(booking, "moved")?;
    let lock = MailboxLock::take(store, &access.address).await?;
    let outcome = async {
        if let Some(event) = blocking_event(access, &slot, Some(&event_id)).await? {
            return Err(slot_taken(access, &slot, &event));
        }
        access
            .client
            .move_event(
                &access.mailbox,
                &event_id,
                &graph_utc(slot.start),
                &graph_utc(slot.end),
            )
            .await
            .map_err(AccountError::from)
    }
    .await;
    lock.release().await?;
    outcome?;
    store
        .update_booking(
            booking.id,
            "booked",
            None,
            slot.start.timestamp_millis(),
            slot.end.timestamp_millis(),
        )
        .await?;
    Ok(store.booking(booking.id).await?)
}

/// Cancels a booking; its attendees are told with `comment`.
pub async fn cancel_booking(
    store: &Store,
    access: &CalendarAccess,
    booking: &BookingRow,
    comment: &str,
) -> AccountResult<BookingRow> {
    let event_id = booked_event(booking, "cancelled")?;
    access
        .client
        .cancel_event(&access.mailbox, &event_id, comment)
        .await?;
    store
        .update_booking(
            booking.id,
            "cancelled",
            None,
            booking.start_at,
            booking.end_at,
        )
        .await?;
    Ok(store.booking(booking.id).await?)
}

fn booked_event(booking: &BookingRow, action: &'static str) -> AccountResult<String> {
    match (&booking.event_id, booking.state.as_str()) {
        (Some(id), "booked") => Ok(id.clone()),
        _ => Err(AccountError::BookingState {
            id: booking.id,
            state: booking.state.clone(),
            problem: booking.problem.clone(),
            action,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(request_id_ok(&new_request_id()));
        assert!(!request_id_ok(""));
        assert!(!request_id_ok("a b"));
        assert!(!request_id_ok(&"x".repeat(101)));
    }

    fn request(start_hour: u32, subject: &str, attendees: &[&str]) -> BookingRequest {
        use chrono::TimeZone;
        let start = Utc.with_ymd_and_hms(2026, 12, 1, start_hour, 0, 0).unwrap();
        BookingRequest {
            slot: Span::new(start, start + chrono::Duration::minutes(30)).unwrap(),
            subject: subject.into(),
            attendees: attendees.iter().map(|a| a.to_string()).collect(),
            location: None,
            online_meeting: false,
            transaction_id: "form-1".into(),
            zone: rules::Tz::UTC,
        }
    }

    #[test]
    fn a_retry_matches_its_request_in_any_attendee_order_and_another_slot_or_subject_does_not() {
        let first = request(10, "Housing", &["a@x.com", "B@y.org"]);
        let same = request(10, "Housing", &["b@y.org", "a@x.com"]);
        assert_eq!(first.fingerprint("o@x.com"), same.fingerprint("O@X.com"));
        for other in [
            request(11, "Housing", &["a@x.com", "b@y.org"]),
            request(10, "Rent", &["a@x.com", "b@y.org"]),
            request(10, "Housing", &["a@x.com"]),
        ] {
            assert_ne!(first.fingerprint("o@x.com"), other.fingerprint("o@x.com"));
        }
    }
}
