//! Delegated accounts and their calendars: the connected accounts with their token health (never
//! a token), removing one, free slots, and booking, moving and cancelling events: the
//! `sync::accounts` functions the command line and the pages call.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::accounts::TokenHealth;
use domain::calendar::{self as rules, SlotRequest};
use serde::{Deserialize, Serialize};
use store::{BookingRow, DelegatedAccount, Store};
use sync::accounts::{self as flows, AccountError, BookingInput, SlotEnd};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, PageParams, maybe_time, time};

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let (status, code, message) = crate::ui::accounts::describe(&error);
        Self::new(status, code, message)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    /// The connection whose app registration the person signed in through.
    pub connection: String,
    /// Who signed in (the id token's `preferred_username`).
    pub username: String,
    pub display_name: Option<String>,
    /// The person's tenant (`tid`) and object id (`oid`).
    pub tenant_id: String,
    pub object_id: String,
    /// The delegated permissions Microsoft granted.
    pub scopes: Vec<String>,
    /// `active`, or `needs_reconnect` when Microsoft refused its token.
    pub state: String,
    /// Why it needs to be connected again.
    pub problem: Option<String>,
    pub connected_at: String,
    pub last_used_at: Option<String>,
    pub last_refreshed_at: String,
    /// `healthy`, `stale`, `expired` or `needs_reconnect`.
    pub token_health: String,
    /// Days until Microsoft revokes an unused token (healthy and stale tokens).
    pub days_left: Option<i64>,
    /// What to do, where something must be done.
    pub fix: Option<String>,
}

fn account_view(account: &DelegatedAccount, now: i64) -> AccountView {
    let (token_health, days_left) =
        match TokenHealth::of(account.state, account.last_refreshed_at, now) {
            TokenHealth::Healthy { days_left } => ("healthy", Some(days_left)),
            TokenHealth::Stale { days_left } => ("stale", Some(days_left)),
            TokenHealth::Expired => ("expired", None),
            TokenHealth::NeedsReconnect => ("needs_reconnect", None),
        };
    AccountView {
        id: account.id,
        connection: account.connection_name.clone(),
        username: account.username.clone(),
        display_name: account.display_name.clone(),
        tenant_id: account.tenant_id.clone(),
        object_id: account.object_id.clone(),
        scopes: account.scopes.clone(),
        state: account.state.as_str().to_string(),
        problem: account.problem.clone(),
        connected_at: time(account.connected_at),
        last_used_at: maybe_time(account.last_used_at),
        last_refreshed_at: time(account.last_refreshed_at),
        token_health: token_health.to_string(),
        days_left,
        fix: crate::ui::accounts::health(account, now).2,
    }
}

async fn account_of(store: &Store, id: i64) -> ApiResult<DelegatedAccount> {
    store.account_by_id(id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "There is no connected account {id}; GET /api/v1/accounts lists them, and an admin connects one in the web pages (Accounts → Connect account)."
        ))
    })
}

async fn booking_of(store: &Store, id: i64) -> ApiResult<BookingRow> {
    match store.booking(id).await {
        Err(store::StoreError::NotFound(_)) => Err(ApiError::not_found(format!(
            "There is no booking {id}; GET /api/v1/bookings lists them."
        ))),
        other => Ok(other?),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub items: Vec<AccountView>,
    /// Pass it as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<String>,
}

/// The connected accounts with the health of their tokens; never a token.
#[utoipa::path(get, path = "/accounts", tag = "accounts", params(PageParams),
    responses((status = 200, body = AccountPage)))]
pub async fn list_accounts(
    State(store): State<Store>,
    ApiQuery(query): ApiQuery<PageParams>,
) -> ApiResult<Json<AccountPage>> {
    let now = store::now_millis();
    let (accounts, next_cursor) = query.page(store.accounts().await?)?;
    Ok(Json(AccountPage {
        items: accounts.iter().map(|a| account_view(a, now)).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedAccount {
    pub id: i64,
    pub username: String,
    /// What removing here does not do: the consent at Microsoft stays until it is revoked.
    pub revoke_consent: String,
}

/// Removes a connected account and its tokens; its bookings stay in Outlook.
#[utoipa::path(delete, path = "/accounts/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "The account's id")),
    responses((status = 200, body = RemovedAccount), (status = 404, body = super::ErrorBody)))]
pub async fn remove_account(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RemovedAccount>> {
    let account = account_of(&store, id).await?;
    store.remove_account(account.id).await?;
    tracing::info!(account = account.id, user = %account.username, "a connected account was removed through the API");
    Ok(Json(RemovedAccount {
        id: account.id,
        username: account.username,
        revoke_consent: "The consent the person gave stays at Microsoft: they revoke it at https://myapps.microsoft.com (the app → Manage → Revoke permissions), or an administrator in the Entra admin center (Enterprise applications → the app → Permissions); revoking the person's sessions there ends every refresh token they gave.".into(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FreeQuery {
    /// The first day: `today`, `tomorrow` or YYYY-MM-DD, in the mailbox's time zone (today
    /// unless given).
    pub date: Option<String>,
    /// How many days from `date`, 1 to 62 (1 unless given).
    pub days: Option<u32>,
    /// The slot length: `30`, `45m`, `1h`, `1h30m` (30 minutes unless given).
    pub length: Option<String>,
    /// The grid slots start on (30 minutes, or the length when shorter, unless given).
    pub step: Option<String>,
    /// Also free for these people or rooms: addresses separated by commas.
    pub with: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadSchedule {
    pub address: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreeSlotsView {
    pub mailbox: String,
    /// The mailbox's time zone (IANA name), in which working hours and days are read.
    pub time_zone: String,
    pub slots: Vec<SlotView>,
    /// People or rooms whose free/busy could not be read: their time is not counted.
    pub unknown: Vec<UnreadSchedule>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The free slots of the given length in a connected account's calendar, inside its working
/// hours and time zone, with recurring events counted; with `with`, free for all of them.
#[utoipa::path(get, path = "/accounts/{id}/free", tag = "accounts",
    params(("id" = i64, Path, description = "The account's id"), FreeQuery),
    responses((status = 200, body = FreeSlotsView), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody, description = "The account needs to be connected again (`needs_reconnect`)."),
        (status = 502, body = super::ErrorBody, description = "Microsoft 365 did not answer as expected.")))]
pub async fn free_slots(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<FreeQuery>,
) -> ApiResult<Json<FreeSlotsView>> {
    let account = account_of(&store, id).await?;
    let length = rules::parse_minutes("length", query.length.as_deref().unwrap_or("30m"))?;
    let step = match &query.step {
        Some(step) => rules::parse_minutes("step", step)?,
        None => chrono::Duration::minutes(30).min(length),
    };
    let with = crate::ui::accounts::addresses("with", query.with.as_deref().unwrap_or_default())?;
    let access = flows::account_calendar(&store, &account, None).await?;
    let zone = flows::working_hours(&access).await?.zone;
    let window = flows::days_window(
        query.date.as_deref().unwrap_or("today"),
        query.days.unwrap_or(1),
        zone,
        Utc::now(),
    )?;
    let free = flows::free_slots(&access, window, SlotRequest { length, step }, &with).await?;
    Ok(Json(FreeSlotsView {
        mailbox: access.address.clone(),
        time_zone: free.hours.zone.name().to_string(),
        slots: free
            .slots
            .iter()
            .map(|s| SlotView {
                start: utc(s.start),
                end: utc(s.end),
            })
            .collect(),
        unknown: free
            .unknown
            .into_iter()
            .map(|(address, reason)| UnreadSchedule { address, reason })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    pub id: i64,
    /// The account it was booked through; none once that account was removed.
    pub account_id: Option<i64>,
    pub mailbox: String,
    pub subject: String,
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    /// The mailbox's time zone (IANA) it was booked in; none for bookings made before it was kept.
    pub time_zone: Option<String>,
    /// Start and end in the mailbox's time zone, with its name, as people read them.
    pub when: String,
    /// `pending` (being written, or not confirmed by Microsoft 365), `booked`, `failed`
    /// (nothing was written) or `cancelled`.
    pub state: String,
    /// Why it failed or is not confirmed.
    pub problem: Option<String>,
    /// The id the request was sent with: the same id never books twice.
    pub request_id: String,
    /// Outlook's id of the event.
    pub event_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn booking_view(booking: &BookingRow) -> BookingView {
    BookingView {
        id: booking.id,
        account_id: booking.account_id,
        mailbox: booking.mailbox.clone(),
        subject: booking.subject.clone(),
        start: time(booking.start_at),
        end: time(booking.end_at),
        time_zone: booking.time_zone.clone(),
        when: flows::booking_when(booking, None),
        state: booking.state.clone(),
        problem: booking.problem.clone(),
        request_id: booking.transaction_id.clone(),
        event_id: booking.event_id.clone(),
        created_at: time(booking.created_at),
        updated_at: time(booking.updated_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBooking {
    /// `YYYY-MM-DDTHH:MM` in the mailbox's time zone, or an instant with an offset.
    pub start: String,
    /// As `start`; after it.
    pub end: String,
    /// The event's subject, as attendees see it.
    pub subject: String,
    /// Attendees' addresses; each gets an invitation.
    #[serde(default)]
    pub attendees: Vec<String>,
    /// Where it takes place (a room or an address).
    pub location: Option<String>,
    /// Make it a Teams meeting.
    #[serde(default)]
    pub online_meeting: bool,
    /// An id of your own for this booking (letters, digits, `-`, `_`; up to 100): a retry with
    /// the same id and the same body returns the first booking rather than booking twice; the
    /// same id with another slot, subject or attendees is refused (409 `request_id_reused`).
    /// An attempt that failed without writing anything does not hold its id. Made up when
    /// left out.
    pub request_id: Option<String>,
    /// Book even though the slot lies outside the mailbox's working hours (refused otherwise).
    #[serde(default)]
    pub outside_working_hours: bool,
}

/// Books an event in a connected account's calendar: the slot is checked again just before it
/// is written, two bookings of one slot never both succeed, and a retried request (same
/// `request_id`) never books twice.
#[utoipa::path(post, path = "/accounts/{id}/bookings", tag = "accounts",
    params(("id" = i64, Path, description = "The account's id")),
    request_body = NewBooking,
    responses((status = 201, body = BookingView), (status = 404, body = super::ErrorBody),
        (status = 400, body = super::ErrorBody, description = "A field is not acceptable (`invalid_input`): a past or nonexistent time, a slot outside the working hours, an event over 14 days, a subject or location over 255 characters or with control characters, more than 100 attendees or a bad address."),
        (status = 409, body = super::ErrorBody, description = "The slot is taken (`slot_taken`), the request id was used for another booking (`request_id_reused`), the mailbox is busy with another booking (`busy`), or the account needs to be connected again (`needs_reconnect`)."),
        (status = 502, body = super::ErrorBody, description = "Microsoft 365 did not answer as expected.")))]
pub async fn book(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewBooking>,
) -> ApiResult<(StatusCode, Json<BookingView>)> {
    let account = account_of(&store, id).await?;
    let access = flows::account_calendar(&store, &account, None).await?;
    let (booking, _) = flows::book_as_asked(
        &store,
        &access,
        &BookingInput {
            start: &body.start,
            end: SlotEnd::At(&body.end),
            subject: &body.subject,
            attendees: &body.attendees,
            location: body.location.as_deref(),
            online_meeting: body.online_meeting,
            request_id: body.request_id.as_deref(),
            outside_working_hours: body.outside_working_hours,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(booking_view(&booking))))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingPage {
    /// Newest first.
    pub items: Vec<BookingView>,
    /// Pass it as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<String>,
}

/// The bookings made through m365sync, newest first.
#[utoipa::path(get, path = "/bookings", tag = "accounts", params(PageParams),
    responses((status = 200, body = BookingPage)))]
pub async fn list_bookings(
    State(store): State<Store>,
    ApiQuery(query): ApiQuery<PageParams>,
) -> ApiResult<Json<BookingPage>> {
    let mut bookings = store.bookings().await?;
    bookings.sort_by_key(|b| std::cmp::Reverse(b.id));
    let (bookings, next_cursor) = query.page(bookings)?;
    Ok(Json(BookingPage {
        items: bookings.iter().map(booking_view).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBooking {
    /// The new start: `YYYY-MM-DDTHH:MM` in the mailbox's time zone, or an instant with an
    /// offset.
    pub start: String,
    /// The new end, as `start`.
    pub end: String,
    /// Move even though the slot lies outside the mailbox's working hours (refused otherwise).
    #[serde(default)]
    pub outside_working_hours: bool,
}

/// Moves a booking; the new slot is checked (the event itself aside) just before it is written.
#[utoipa::path(patch, path = "/bookings/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "The booking's id")),
    request_body = MoveBooking,
    responses((status = 200, body = BookingView), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody, description = "The slot is taken, the booking is not booked, or its account needs to be connected again."),
        (status = 502, body = super::ErrorBody, description = "Microsoft 365 did not answer as expected.")))]
pub async fn move_booking(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<MoveBooking>,
) -> ApiResult<Json<BookingView>> {
    let booking = booking_of(&store, id).await?;
    let access = flows::booking_calendar(&store, &booking).await?;
    let (moved, _) = flows::move_as_asked(
        &store,
        &access,
        &booking,
        &body.start,
        SlotEnd::At(&body.end),
        body.outside_working_hours,
    )
    .await?;
    Ok(Json(booking_view(&moved)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBooking {
    /// A message for the attendees ("This appointment is cancelled." unless given).
    pub comment: Option<String>,
}

/// Cancels a booking; its attendees are told.
#[utoipa::path(post, path = "/bookings/{id}/cancel", tag = "accounts",
    params(("id" = i64, Path, description = "The booking's id")),
    request_body = CancelBooking,
    responses((status = 200, body = BookingView), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody, description = "The booking is not booked, or its account needs to be connected again."),
        (status = 502, body = super::ErrorBody, description = "Microsoft 365 did not answer as expected.")))]
pub async fn cancel_booking(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CancelBooking>,
) -> ApiResult<Json<BookingView>> {
    let booking = booking_of(&store, id).await?;
    let comment = body
        .comment
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "This appointment is cancelled.".into());
    let access = flows::booking_calendar(&store, &booking).await?;
    let cancelled = flows::cancel_booking(&store, &access, &booking, &comment).await?;
    Ok(Json(booking_view(&cancelled)))
}
