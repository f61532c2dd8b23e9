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
use store::{BookingRow, Connection, DelegatedAccount, NewAccount, Store, StoreError};
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
        "the account {username} needs to be connected again: {problem}. Run `m365sync account connect --connection {connection}` and sign in as {username}"
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
    #[error("the booking {id} was {state}: it cannot be {action}")]
    BookingState {
        id: i64,
        state: String,
        action: &'static str,
    },
    #[error("{0}")]
    Setup(String),
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
pub async fn complete_sign_in(
    store: &Store,
    connection: &Connection,
    app: &DelegatedApp,
    pending: PendingSignIn,
    callback: &Callback,
) -> AccountResult<DelegatedAccount> {
    let signed_in = app.finish(pending, callback).await?;
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
    let slots = rules::free_slots(&window, &hours, &busy, request);
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
    match booking.account_id {
        Some(id) => {
            let account = store.account_by_id(id).await?.ok_or_else(|| {
                AccountError::Setup(format!(
                    "the account that made booking {} was removed; connect it again to change the booking, or change the event in Outlook",
                    booking.id
                ))
            })?;
            account_calendar(store, &account, Some(&booking.mailbox)).await
        }
        None => {
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

/// What to book.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    pub slot: Span,
    pub subject: String,
    pub attendees: Vec<String>,
    pub location: Option<String>,
    pub online_meeting: bool,
    /// The same for every try of one booking: a retry never books twice.
    pub transaction_id: String,
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
/// never books twice. A transaction id already booked returns that booking.
pub async fn book(
    store: &Store,
    access: &CalendarAccess,
    request: &BookingRequest,
) -> AccountResult<BookingRow> {
    let booking = store
        .begin_booking(
            access.connection_id,
            access.account_id,
            &access.address,
            &request.transaction_id,
            &request.subject,
            request.slot.start.timestamp_millis(),
            request.slot.end.timestamp_millis(),
        )
        .await?;
    if booking.state == "booked" {
        return Ok(booking);
    }
    let lock = MailboxLock::take(store, &access.address).await?;
    let outcome = book_locked(store, access, request, &booking).await;
    lock.release().await?;
    let event = match outcome {
        Ok(event) => event,
        Err(e) => {
            store
                .update_booking(booking.id, "failed", None, booking.start_at, booking.end_at)
                .await?;
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

async fn book_locked(
    _store: &Store,
    access: &CalendarAccess,
    request: &BookingRequest,
    booking: &BookingRow,
) -> AccountResult<Event> {
    if let Some(event) = blocking_event(access, &request.slot, None).await? {
        // Our own event from an earlier try of this same booking is not in the way.
        if event.transaction_id.as_deref() != Some(booking.transaction_id.as_str()) {
            return Err(slot_taken(access, &request.slot, &event));
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
        .await?;
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
            action,
        }),
    }
}
