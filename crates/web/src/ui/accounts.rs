//! Delegated accounts in the pages: the list with each account's token health and the fix where
//! it needs one, "Connect account" (the authorization code flow with PKCE, its `state` bound to
//! the login session that started it), Microsoft's callback, remove with how to revoke consent,
//! re-connect; and for a connected account its free slots, and booking, moving and cancelling
//! events. Every action is the `sync::accounts` function the command line calls.

use std::time::Duration;

use super::PagePath as Path;
use askama::Template;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::accounts::TokenHealth;
use domain::calendar::{self as rules, SlotRequest, Span, Tz};
use graph::delegated::{Callback, DelegatedError, PendingSignIn, Surface};
use serde::Deserialize;
use store::{BookingRow, DelegatedAccount};
use sync::accounts::{self as flows, AccountError, BookingInput, SlotEnd};

use super::PageQuery as Query;
use super::format::{time, time_or};
use super::{
    Fields, Frame, UiState, Viewer, cookie, done, error_page, not_found, page, store_failure,
    upper_first,
};
use crate::auth;

/// Where Microsoft sends the browser back; the app registration lists it as a redirect URI.
pub(crate) const CALLBACK_PATH: &str = "/integrations/office365/callback";

/// How long a started sign-in waits for Microsoft's answer before it must be started again.
const SIGN_IN_PATIENCE: Duration = Duration::from_secs(15 * 60);
/// The most sign-ins waiting at once: a flood of started sign-ins cannot grow the store without end.
const MAX_WAITING: i64 = 1000;
/// The most free slots one page lists: a long window of short slots is read a screen at a time.
const MAX_SLOTS_SHOWN: usize = 200;

/// Why an answer from Microsoft was not matched to a waiting sign-in.
#[derive(Debug, PartialEq, Eq)]
enum Unmatched {
    /// No sign-in waits under that state: made up, tampered with, or already finished.
    Unknown,
    /// It belongs to a sign-in another login session started.
    OtherSession,
    Expired,
}

/// Whether the sign-in kept under an answer's state may be finished by `session` at `now`:
/// only by the login session that started it, and within the patience. An answer shown to
/// another session leaves the sign-in waiting for the session that started it.
fn may_finish(
    waiting: Option<&store::PendingSignInRow>,
    session: &str,
    now: i64,
) -> Result<(), Unmatched> {
    let waiting = waiting.ok_or(Unmatched::Unknown)?;
    if !auth::same_secret(&waiting.session_hash, session) {
        return Err(Unmatched::OtherSession);
    }
    if now - waiting.started_at >= SIGN_IN_PATIENCE.as_millis() as i64 {
        return Err(Unmatched::Expired);
    }
    Ok(())
}

/// Takes the sign-in waiting under `state` for `session`, from the store so that any server
/// process finishes it after a restart; one taken is gone, so that an answer is used once.
async fn take_waiting(
    ui: &UiState,
    state: Option<&str>,
    session: &str,
) -> Result<Result<store::PendingSignInRow, Unmatched>, store::StoreError> {
    let Some(state) = state else {
        return Ok(Err(Unmatched::Unknown));
    };
    let waiting = ui.store.pending_sign_in(state).await?;
    let now = store::now_millis();
    match may_finish(waiting.as_ref(), session, now) {
        Err(Unmatched::OtherSession) => Ok(Err(Unmatched::OtherSession)),
        outcome => {
            // Taken whatever else is wrong with it, so that it cannot be tried again; only the
            // call that removed it goes on.
            if !ui.store.take_pending_sign_in(state).await? {
                return Ok(Err(Unmatched::Unknown));
            }
            Ok(outcome.and_then(|()| waiting.ok_or(Unmatched::Unknown)))
        }
    }
}

impl Unmatched {
    fn words(&self) -> String {
        match self {
            Self::Unknown => "The answer from Microsoft does not belong to any sign-in waiting here: its state is not one this server sent, or that sign-in was already finished (a sign-in and its code work only once). Nothing was saved. Start again with Connect account; if it happens again, someone may be trying to slip their own account into yours.".into(),
            Self::OtherSession => "This answer from Microsoft belongs to a sign-in started in another login session, so it was refused and nothing was saved. Finish the sign-in in the browser that started it, or start again with Connect account here.".into(),
            Self::Expired => format!(
                "The sign-in took longer than {} minutes, so it was refused and nothing was saved. Start again with Connect account.",
                SIGN_IN_PATIENCE.as_secs() / 60
            ),
        }
    }
}

/// A failed account or calendar action as people and programs read it: a status, a stable code
/// and the words, with the fix in the terms of the pages.
pub(crate) fn describe(error: &AccountError) -> (StatusCode, &'static str, String) {
    match error {
        AccountError::Store(e) => match e {
            store::StoreError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", upper_first(m)),
            store::StoreError::Conflict(m) => (StatusCode::CONFLICT, "conflict", upper_first(m)),
            other => {
                tracing::error!("store error: {other}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_error",
                    format!("The store could not do it: {other}"),
                )
            }
        },
        AccountError::SignIn(DelegatedError::StateMismatch) => (
            StatusCode::BAD_REQUEST,
            "state_mismatch",
            Unmatched::Unknown.words(),
        ),
        AccountError::SignIn(DelegatedError::Refused { error, codes, .. }) => {
            let (words, fix) = graph::delegated::explain_on(error, codes, Surface::WebPages);
            let codes: String = codes.iter().map(|c| format!(", AADSTS{c}")).collect();
            (
                StatusCode::BAD_REQUEST,
                "sign_in_refused",
                format!("Microsoft refused: {words} ({error}{codes}). {fix}."),
            )
        }
        AccountError::SignIn(other) => (
            StatusCode::BAD_GATEWAY,
            "microsoft_error",
            upper_first(&other.to_string()),
        ),
        AccountError::Calendar(graph::calendar::CalendarError::Refused { code, .. })
            if code == "MailboxNotEnabledForRESTAPI" =>
        {
            (
                StatusCode::CONFLICT,
                "no_mailbox",
                "The mailbox has no Exchange Online calendar (Microsoft answered MailboxNotEnabledForRESTAPI). Give the person a licence that includes Exchange Online, or choose another mailbox.".to_string(),
            )
        }
        AccountError::Calendar(e) => (
            StatusCode::BAD_GATEWAY,
            "microsoft_error",
            format!("Microsoft 365 did not do it: {}.", bare(&e.to_string())),
        ),
        AccountError::Input(input) => (
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!(
                "{}: {}. {}.",
                input.field,
                bare(&input.problem),
                bare(&input.fix)
            ),
        ),
        AccountError::NeedsReconnect {
            username, problem, ..
        } => (
            StatusCode::CONFLICT,
            "needs_reconnect",
            format!(
                "The account {username} needs to be connected again: {}. An admin re-connects it (Accounts → Re-connect) and signs in as {username}.",
                bare(problem)
            ),
        ),
        AccountError::RequestIdReused { .. } => (
            StatusCode::CONFLICT,
            "request_id_reused",
            format!("{}.", upper_first(&error.to_string())),
        ),
        AccountError::WrongPerson { .. } => (
            StatusCode::CONFLICT,
            "wrong_person",
            format!("{}.", upper_first(&error.to_string())),
        ),
        AccountError::NoMailbox { .. } => (
            StatusCode::CONFLICT,
            "no_mailbox",
            format!("{}.", upper_first(&error.to_string())),
        ),
        AccountError::SlotTaken {
            mailbox,
            start,
            end,
            subject,
        } => (
            StatusCode::CONFLICT,
            "slot_taken",
            format!(
                "The slot {start} – {end} is no longer free in {mailbox}'s calendar: {subject}. Nothing was written; choose another slot."
            ),
        ),
        AccountError::Busy(_) => (
            StatusCode::CONFLICT,
            "busy",
            format!("{}.", upper_first(&error.to_string())),
        ),
        AccountError::AccountRemoved {
            booking, username, ..
        } => (
            StatusCode::CONFLICT,
            "account_removed",
            format!(
                "Booking {booking} was made by the account {username}, which was removed, so it cannot be changed from here. Connect {username} again (Accounts → Connect account, signing in as {username}) and try again, or change the event in Outlook."
            ),
        ),
        AccountError::BookingState { .. } | AccountError::Setup(_) => (
            StatusCode::CONFLICT,
            "conflict",
            format!("{}.", upper_first(bare(&error.to_string()))),
        ),
    }
}

/// A text without its closing full stop, to be put inside a sentence that closes itself.
fn bare(text: &str) -> &str {
    text.trim_end().trim_end_matches('.')
}

fn failure(viewer: &Viewer, error: &AccountError) -> Response {
    let (status, _, message) = describe(error);
    error_page(Some(viewer), status, message)
}

fn only_admins(viewer: &Viewer) -> Option<Response> {
    (!viewer.is_admin()).then(|| {
        error_page(
            Some(viewer),
            StatusCode::FORBIDDEN,
            "Only admins connect, remove or re-connect accounts and book, move or cancel events. Ask an admin, or read the Accounts page.",
        )
    })
}

/// The token health in words, its badge, and the fix where it needs one.
pub(crate) fn health(
    account: &DelegatedAccount,
    now: i64,
) -> (String, &'static str, Option<String>) {
    let username = &account.username;
    match TokenHealth::of(account.state, account.last_refreshed_at, now) {
        TokenHealth::Healthy { days_left } => (
            format!("healthy · {days_left} days left if unused"),
            "good",
            None,
        ),
        TokenHealth::Stale { days_left } => (
            format!("stale · revoked in {days_left} days"),
            "warn",
            Some(format!(
                "Its token has not been refreshed for a long time; Microsoft revokes it in {days_left} days unless a refresh succeeds. Keep `m365sync serve` running (it refreshes every account weekly), or re-connect it and sign in as {username}."
            )),
        ),
        TokenHealth::Expired => (
            "expired".into(),
            "bad",
            Some(format!(
                "It went unused past Microsoft's 90-day limit. Re-connect it and sign in as {username}."
            )),
        ),
        TokenHealth::NeedsReconnect => (
            "needs reconnect".into(),
            "bad",
            Some(format!(
                "Microsoft refused its token{}. Re-connect it and sign in as {username}.",
                account
                    .problem
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            )),
        ),
    }
}

/// What the dashboard lists under "needs attention": accounts whose token needs a person.
pub(crate) fn attention(
    accounts: &[DelegatedAccount],
    now: i64,
) -> Vec<super::dashboard::Attention> {
    accounts
        .iter()
        .filter_map(|account| {
            let (_, _, fix) = health(account, now);
            let username = &account.username;
            let what = match TokenHealth::of(account.state, account.last_refreshed_at, now) {
                TokenHealth::Healthy { .. } => return None,
                TokenHealth::Stale { days_left } => format!(
                    "The token of the connected account {username} is stale: Microsoft revokes it in {days_left} days."
                ),
                TokenHealth::Expired => {
                    format!("The token of the connected account {username} has expired.")
                }
                TokenHealth::NeedsReconnect => {
                    format!("The connected account {username} needs to be reconnected.")
                }
            };
            Some(super::dashboard::Attention {
                what,
                fix: fix?,
                href: Some(format!("/accounts/connect?account={}", account.id)),
                link: "Re-connect it".into(),
            })
        })
        .collect()
}

struct AccountRow {
    id: i64,
    username: String,
    display_name: String,
    connection: String,
    tenant_id: String,
    scopes: String,
    connected: String,
    last_used: String,
    health: String,
    health_class: &'static str,
    fix: Option<String>,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    frame: Frame,
    accounts: Vec<AccountRow>,
    has_connections: bool,
}

/// What an accounts page was sent back with after an action: a notice this server sealed.
#[derive(Deserialize, Default)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
}

pub(crate) async fn list(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let accounts = match ui.store.accounts().await {
        Ok(a) => a,
        Err(e) => return store_failure(&viewer, e),
    };
    let connections = match ui.store.connections().await {
        Ok(c) => c,
        Err(e) => return store_failure(&viewer, e),
    };
    let now = store::now_millis();
    let rows = accounts
        .iter()
        .map(|a| {
            let (health, health_class, fix) = health(a, now);
            AccountRow {
                id: a.id,
                username: a.username.clone(),
                display_name: a.display_name.clone().unwrap_or_default(),
                connection: a.connection_name.clone(),
                tenant_id: a.tenant_id.clone(),
                scopes: a.scopes.join(" "),
                connected: time(a.connected_at),
                last_used: time_or(a.last_used_at, "never"),
                health,
                health_class,
                fix,
            }
        })
        .collect();
    page(&AccountsPage {
        frame: viewer
            .frame("Accounts", "accounts")
            .with_notice(query.notice),
        accounts: rows,
        has_connections: !connections.is_empty(),
    })
}

/// The redirect URI of this server as the browser reaches it: the host it asked for (the host
/// guard admits only the server's own names) on the callback path.
fn redirect_uri(ui: &UiState, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if ui.secure_cookies { "https" } else { "http" };
    Some(format!("{scheme}://{host}{CALLBACK_PATH}"))
}

/// The hash of the request's session token: what a sign-in is bound to.
fn session_of(ui: &UiState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, ui.session_cookie_name()).map(auth::token_hash)
}

struct ConnectionChoice {
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "accounts_connect.html")]
struct ConnectPage {
    frame: Frame,
    connections: Vec<ConnectionChoice>,
    tenant: String,
    login_hint: String,
    prompt: String,
    prompts: Vec<(&'static str, &'static str)>,
    redirect_uri: String,
    reconnecting: Option<String>,
    problem: Option<String>,
}

const PROMPTS: &[(&str, &str)] = &[
    ("", "as Microsoft decides"),
    ("select_account", "let the person pick an account"),
    ("login", "always ask for the password"),
    ("consent", "always show the permissions"),
];

#[derive(Deserialize)]
pub(crate) struct ConnectQuery {
    account: Option<String>,
}

struct ConnectForm {
    connection: String,
    tenant: String,
    login_hint: String,
    prompt: String,
    reconnecting: Option<String>,
}

async fn connect_page(
    ui: &UiState,
    viewer: &Viewer,
    headers: &HeaderMap,
    form: ConnectForm,
    problem: Option<String>,
) -> Response {
    let connections = match ui.store.connections().await {
        Ok(c) => c,
        Err(e) => return store_failure(viewer, e),
    };
    if connections.is_empty() {
        return error_page(
            Some(viewer),
            StatusCode::CONFLICT,
            super::or_on_the_server(
                "There is no connection yet: people sign in through a connection's app registration. Add a connection first (Connections → Add)",
                "m365sync connection add NAME --tenant-id TENANT --client-id APP_ID",
            ),
        );
    }
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = page(&ConnectPage {
        frame: viewer.frame(
            if form.reconnecting.is_some() {
                "Re-connect an account"
            } else {
                "Connect an account"
            },
            "accounts",
        ),
        connections: connections
            .iter()
            .map(|c| ConnectionChoice {
                name: c.name.to_string(),
                selected: c.name.to_string() == form.connection,
            })
            .collect(),
        tenant: form.tenant,
        login_hint: form.login_hint,
        prompt: form.prompt,
        prompts: PROMPTS.to_vec(),
        redirect_uri: redirect_uri(ui, headers).unwrap_or_default(),
        reconnecting: form.reconnecting,
        problem,
    });
    (status, body).into_response()
}

pub(crate) async fn connect_form(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Query(query): Query<ConnectQuery>,
) -> Response {
    if let Some(refusal) = only_admins(&viewer) {
        return refusal;
    }
    let form = match query.account.as_deref().filter(|a| !a.is_empty()) {
        Some(key) => {
            let account = match find_account(&ui, &viewer, key).await {
                Ok(a) => a,
                Err(r) => return r,
            };
            ConnectForm {
                connection: account.connection_name.clone(),
                tenant: account.tenant_id.clone(),
                login_hint: account.username.clone(),
                prompt: "login".into(),
                reconnecting: Some(account.username),
            }
        }
        None => ConnectForm {
            connection: String::new(),
            tenant: String::new(),
            login_hint: String::new(),
            prompt: String::new(),
            reconnecting: None,
        },
    };
    connect_page(&ui, &viewer, &headers, form, None).await
}

#[derive(Template)]
#[template(path = "accounts_continue.html")]
struct ContinuePage {
    frame: Frame,
    url: String,
    connection: String,
    redirect_uri: String,
}

/// Starts a sign-in: a fresh state, nonce and PKCE verifier kept for this login session, and a
/// page with the link to Microsoft. A link rather than a redirect: the pages' policy lets a
/// form lead only to this server, and a person sees where they are sent.
pub(crate) async fn connect_start(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    fields: Fields,
) -> Response {
    let form = ConnectForm {
        connection: fields.get("connection").trim().to_string(),
        tenant: fields.get("tenant").trim().to_string(),
        login_hint: fields.get("login_hint").trim().to_string(),
        prompt: fields.get("prompt").trim().to_string(),
        reconnecting: Some(fields.get("reconnecting").trim().to_string()).filter(|r| !r.is_empty()),
    };
    let Some(session) = session_of(&ui, &headers) else {
        return error_page(
            Some(&viewer),
            StatusCode::FORBIDDEN,
            "Your login session could not be read; log in again, then connect the account.",
        );
    };
    let Some(redirect) = redirect_uri(&ui, &headers) else {
        return error_page(
            Some(&viewer),
            StatusCode::BAD_REQUEST,
            "The request named no host, so the address Microsoft should send the browser back to is unknown. Open the page through the server's address and try again.",
        );
    };
    let connection = match ui.store.connection(&form.connection).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            let problem = if form.connection.is_empty() {
                "connection: none was chosen. Choose the connection whose app registration people sign in through.".to_string()
            } else {
                format!(
                    "connection: there is no connection named '{}'. Choose one from the list.",
                    form.connection
                )
            };
            return connect_page(&ui, &viewer, &headers, form, Some(problem)).await;
        }
        Err(e) => return store_failure(&viewer, e),
    };
    if form
        .tenant
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.')))
    {
        let problem = format!(
            "tenant: '{}' is not a tenant id, a domain or organizations. Leave it empty for the connection's own tenant.",
            form.tenant
        );
        return connect_page(&ui, &viewer, &headers, form, Some(problem)).await;
    }
    if !form.login_hint.is_empty() && domain::Upn::parse(&form.login_hint).is_err() {
        let problem = format!(
            "login hint: '{}' is not a user name (alias@contoso.com). Leave it empty to let the person type theirs.",
            form.login_hint
        );
        return connect_page(&ui, &viewer, &headers, form, Some(problem)).await;
    }
    let tenant = Some(form.tenant.clone()).filter(|t| !t.is_empty());
    let app = match flows::delegated_app(&ui.store, &connection, &redirect, tenant.as_deref()).await
    {
        Ok(app) => app,
        Err(e) => return failure(&viewer, &e),
    };
    let prompt = Some(form.prompt.as_str()).filter(|p| !p.is_empty());
    let hint = Some(form.login_hint.as_str()).filter(|h| !h.is_empty());
    let sign_in = match app.start(prompt, hint) {
        Ok(s) => s,
        Err(e) => {
            let (_, _, problem) = describe(&AccountError::SignIn(e));
            return connect_page(&ui, &viewer, &headers, form, Some(problem)).await;
        }
    };
    let reconnecting = match &form.reconnecting {
        Some(username) => match ui.store.accounts().await {
            Ok(accounts) => accounts
                .into_iter()
                .find(|a| {
                    a.connection_id == connection.id && a.username.eq_ignore_ascii_case(username)
                })
                .map(|a| a.id),
            Err(e) => return store_failure(&viewer, e),
        },
        None => None,
    };
    let url = sign_in.url.clone();
    let now = store::now_millis();
    let kept = ui
        .store
        .save_pending_sign_in(
            &store::PendingSignInRow {
                state: sign_in.state().to_string(),
                session_hash: session,
                connection_id: connection.id,
                tenant,
                redirect_uri: redirect.clone(),
                reconnecting,
                url: url.clone(),
                nonce: sign_in.nonce_secret().to_string(),
                verifier: sign_in.verifier_secret().to_string(),
                started_at: now,
            },
            now - SIGN_IN_PATIENCE.as_millis() as i64,
            MAX_WAITING,
        )
        .await;
    if let Err(e) = kept {
        return store_failure(&viewer, e);
    }
    page(&ContinuePage {
        frame: viewer.frame("Sign in at Microsoft", "accounts"),
        url,
        connection: connection.name.to_string(),
        redirect_uri: redirect,
    })
}

/// Microsoft's answer: matched to the sign-in this login session started, then the code is
/// redeemed with its PKCE verifier and the id token validated (`sync::accounts`), and the
/// account kept.
pub(crate) async fn callback(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let answer = Callback::from_query(query.as_deref().unwrap_or_default());
    let session = session_of(&ui, &headers).unwrap_or_default();
    let waiting = match take_waiting(&ui, answer.state.as_deref(), &session).await {
        Err(e) => return store_failure(&viewer, e),
        Ok(Ok(w)) => w,
        Ok(Err(unmatched)) => {
            tracing::warn!(
                user = %viewer.user.name,
                reason = ?unmatched,
                "an answer from Microsoft matched no waiting sign-in"
            );
            return error_page(Some(&viewer), StatusCode::BAD_REQUEST, unmatched.words());
        }
    };
    let connection = match ui.store.connections().await {
        Ok(all) => all.into_iter().find(|c| c.id == waiting.connection_id),
        Err(e) => return store_failure(&viewer, e),
    };
    let Some(connection) = connection else {
        return error_page(
            Some(&viewer),
            StatusCode::CONFLICT,
            "The connection this sign-in went through was deleted meanwhile; nothing was saved.",
        );
    };
    let app = match flows::delegated_app(
        &ui.store,
        &connection,
        &waiting.redirect_uri,
        waiting.tenant.as_deref(),
    )
    .await
    {
        Ok(app) => app,
        Err(e) => return failure(&viewer, &e),
    };
    let reconnecting = match waiting.reconnecting {
        Some(id) => match ui.store.account_by_id(id).await {
            Ok(account) => account,
            Err(e) => return store_failure(&viewer, e),
        },
        None => None,
    };
    let sign_in = PendingSignIn::resume(
        waiting.url.clone(),
        waiting.state.clone(),
        waiting.nonce.clone(),
        waiting.verifier.clone(),
    );
    match flows::complete_sign_in(
        &ui.store,
        &connection,
        &app,
        sign_in,
        &answer,
        reconnecting.as_ref(),
    )
    .await
    {
        Ok(account) => done(
            "/accounts",
            &format!(
                "Connected {} (tenant {}) through {}.",
                account.username, account.tenant_id, account.connection_name
            ),
        ),
        Err(e) => failure(&viewer, &e),
    }
}

async fn find_account(
    ui: &UiState,
    viewer: &Viewer,
    key: &str,
) -> Result<DelegatedAccount, Response> {
    let Ok(id) = key.parse::<i64>() else {
        return Err(not_found(viewer, "account"));
    };
    match ui.store.account_by_id(id).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(not_found(viewer, "account")),
        Err(e) => Err(store_failure(viewer, e)),
    }
}

#[derive(Template)]
#[template(path = "accounts_remove.html")]
struct RemovePage {
    frame: Frame,
    id: i64,
    username: String,
    connection: String,
    tenant_id: String,
    bookings: usize,
}

pub(crate) async fn remove_form(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
) -> Response {
    if let Some(refusal) = only_admins(&viewer) {
        return refusal;
    }
    let account = match find_account(&ui, &viewer, &key).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let bookings = match ui.store.bookings().await {
        Ok(b) => b
            .iter()
            .filter(|b| b.account_id == Some(account.id) && b.state == "booked")
            .count(),
        Err(e) => return store_failure(&viewer, e),
    };
    page(&RemovePage {
        frame: viewer.frame(format!("Remove {}", account.username), "accounts"),
        id: account.id,
        username: account.username,
        connection: account.connection_name,
        tenant_id: account.tenant_id,
        bookings,
    })
}

pub(crate) async fn remove(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
) -> Response {
    let account = match find_account(&ui, &viewer, &key).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match ui.store.remove_account(account.id).await {
        Ok(()) => {
            tracing::info!(account = account.id, user = %account.username, by = %viewer.user.name, "a connected account was removed");
            done(
                "/accounts",
                "Removed the account and its tokens. Microsoft still lists the consent it gave: revoke it at https://myapps.microsoft.com or in the Entra admin center.",
            )
        }
        Err(e) => store_failure(&viewer, e),
    }
}

/// A time in the mailbox's zone, as the forms take it.
fn form_time(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string()
}

fn millis(t: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(t).unwrap_or_default()
}

/// Addresses as typed: separated by commas, semicolons, spaces or lines.
fn split_addresses(text: &str) -> Vec<String> {
    text.split([',', ';', ' ', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// Addresses as typed, each checked.
pub(crate) fn addresses(
    field: &'static str,
    text: &str,
) -> Result<Vec<String>, domain::InputError> {
    split_addresses(text)
        .into_iter()
        .map(|a| {
            domain::Upn::parse(&a).map(|_| a.clone()).map_err(|_| {
                domain::InputError::new(
                    field,
                    format!("'{a}' is not an email address"),
                    "Give addresses such as person@contoso.com, separated by commas",
                )
            })
        })
        .collect()
}

struct SlotRow {
    when: String,
    book_href: String,
}

struct BookingLine {
    id: i64,
    subject: String,
    when: String,
    state: String,
    /// Why it failed or is not confirmed.
    problem: Option<String>,
    booked: bool,
}

#[derive(Template)]
#[template(path = "accounts_calendar.html")]
struct CalendarPage {
    frame: Frame,
    id: i64,
    username: String,
    date: String,
    days: String,
    length: String,
    with: String,
    zone: String,
    hours: String,
    searched: bool,
    slots: Vec<SlotRow>,
    more_slots: usize,
    unknown: Vec<String>,
    problem: Option<String>,
    bookings: Vec<BookingLine>,
}

#[derive(Deserialize)]
pub(crate) struct CalendarQuery {
    date: Option<String>,
    days: Option<String>,
    length: Option<String>,
    with: Option<String>,
    notice: Option<String>,
}

struct Found {
    zone: Tz,
    hours: String,
    slots: Vec<Span>,
    unknown: Vec<String>,
}

async fn search(
    ui: &UiState,
    account: &DelegatedAccount,
    date: &str,
    days: &str,
    length: &str,
    with: &str,
) -> Result<Found, AccountError> {
    let days: u32 = days.trim().parse().map_err(|_| {
        domain::InputError::new(
            "days",
            format!("'{days}' is not a number"),
            format!("Give a number of days from 1 to {}", flows::MAX_SEARCH_DAYS),
        )
    })?;
    let length = rules::parse_minutes("length", length)?;
    let with = addresses("with", with)?;
    let access = flows::account_calendar(&ui.store, account, None).await?;
    let hours = flows::working_hours(&access).await?;
    let window = flows::days_window(date, days, hours.zone, Utc::now())?;
    let step = chrono::Duration::minutes(30).min(length);
    let free = flows::free_slots(&access, window, SlotRequest { length, step }, &with).await?;
    Ok(Found {
        zone: hours.zone,
        hours: format!(
            "{} {}–{}",
            hours
                .days
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            hours.start.format("%H:%M"),
            hours.end.format("%H:%M")
        ),
        slots: free.slots,
        unknown: free
            .unknown
            .into_iter()
            .map(|(who, why)| format!("{who}: {why}"))
            .collect(),
    })
}

fn booking_lines(bookings: &[BookingRow], account_id: i64, zone: Option<Tz>) -> Vec<BookingLine> {
    bookings
        .iter()
        .filter(|b| b.account_id == Some(account_id))
        .map(|b| BookingLine {
            id: b.id,
            subject: b.subject.clone(),
            when: flows::booking_when(b, zone),
            state: match b.state.as_str() {
                "pending" if b.problem.is_some() => "not confirmed".to_string(),
                other => other.to_string(),
            },
            problem: b.problem.clone(),
            booked: b.state == "booked",
        })
        .collect()
}

/// A connected account's calendar: the free-slot search with its results, and the bookings made
/// through it.
pub(crate) async fn calendar(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
    Query(query): Query<CalendarQuery>,
) -> Response {
    let account = match find_account(&ui, &viewer, &key).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let date = query.date.clone().unwrap_or_else(|| "today".into());
    let days = query.days.clone().unwrap_or_else(|| "1".into());
    let length = query.length.clone().unwrap_or_else(|| "30m".into());
    let with = query.with.clone().unwrap_or_default();
    let searched = query.date.is_some();
    let (found, problem) = if searched {
        match search(&ui, &account, &date, &days, &length, &with).await {
            Ok(found) => (Some(found), None),
            Err(e) => (None, Some(describe(&e).2)),
        }
    } else {
        (None, None)
    };
    let bookings = match ui.store.bookings().await {
        Ok(b) => b,
        Err(e) => return store_failure(&viewer, e),
    };
    let zone = found.as_ref().map(|f| f.zone);
    let (slots, more_slots) = match &found {
        Some(found) => {
            let rows = found
                .slots
                .iter()
                .take(MAX_SLOTS_SHOWN)
                .map(|slot| SlotRow {
                    when: rules::describe_span(slot, found.zone),
                    book_href: format!(
                        "/accounts/{}/book?start={}&end={}",
                        account.id,
                        super::format::url_encode(&form_time(slot.start, found.zone)),
                        super::format::url_encode(&form_time(slot.end, found.zone)),
                    ),
                })
                .collect();
            (rows, found.slots.len().saturating_sub(MAX_SLOTS_SHOWN))
        }
        None => (Vec::new(), 0),
    };
    page(&CalendarPage {
        frame: viewer
            .frame(format!("Calendar of {}", account.username), "accounts")
            .with_notice(query.notice.clone()),
        id: account.id,
        username: account.username.clone(),
        date,
        days,
        length,
        with,
        zone: zone.map(|z| z.name().to_string()).unwrap_or_default(),
        hours: found.as_ref().map(|f| f.hours.clone()).unwrap_or_default(),
        searched: found.is_some(),
        slots,
        more_slots,
        unknown: found.map(|f| f.unknown).unwrap_or_default(),
        problem,
        bookings: booking_lines(&bookings, account.id, zone),
    })
}

#[derive(Template)]
#[template(path = "accounts_booking.html")]
struct BookingForm {
    frame: Frame,
    action: String,
    back: String,
    moving: bool,
    mailbox: String,
    zone: String,
    subject: String,
    start: String,
    end: String,
    attendees: String,
    location: String,
    online: bool,
    request_id: String,
    outside_working_hours: bool,
    problem: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct BookQuery {
    start: Option<String>,
    end: Option<String>,
}

pub(crate) async fn book_form(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
    Query(query): Query<BookQuery>,
) -> Response {
    if let Some(refusal) = only_admins(&viewer) {
        return refusal;
    }
    let account = match find_account(&ui, &viewer, &key).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let zone = match zone_of_account(&ui, &account).await {
        Ok(z) => z,
        Err(e) => return failure(&viewer, &e),
    };
    page(&BookingForm {
        frame: viewer.frame(
            format!("Book in {}'s calendar", account.username),
            "accounts",
        ),
        action: format!("/accounts/{}/book", account.id),
        back: format!("/accounts/{}/calendar", account.id),
        moving: false,
        mailbox: account.username.clone(),
        zone: zone.name().to_string(),
        subject: String::new(),
        start: query.start.unwrap_or_default(),
        end: query.end.unwrap_or_default(),
        attendees: String::new(),
        location: String::new(),
        online: false,
        request_id: flows::new_request_id(),
        outside_working_hours: false,
        problem: None,
    })
}

async fn zone_of_account(ui: &UiState, account: &DelegatedAccount) -> Result<Tz, AccountError> {
    let access = flows::account_calendar(&ui.store, account, None).await?;
    Ok(flows::working_hours(&access).await?.zone)
}

pub(crate) async fn book(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
    fields: Fields,
) -> Response {
    let account = match find_account(&ui, &viewer, &key).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut form = BookingForm {
        frame: viewer.frame(
            format!("Book in {}'s calendar", account.username),
            "accounts",
        ),
        action: format!("/accounts/{}/book", account.id),
        back: format!("/accounts/{}/calendar", account.id),
        moving: false,
        mailbox: account.username.clone(),
        zone: String::new(),
        subject: fields.get("subject").trim().to_string(),
        start: fields.get("start").trim().to_string(),
        end: fields.get("end").trim().to_string(),
        attendees: fields.get("attendees").trim().to_string(),
        location: fields.get("location").trim().to_string(),
        online: fields.flag("online"),
        request_id: fields.get("request_id").trim().to_string(),
        outside_working_hours: fields.flag("outside_working_hours"),
        problem: None,
    };
    if !flows::request_id_ok(&form.request_id) {
        return error_page(
            Some(&viewer),
            StatusCode::BAD_REQUEST,
            "The booking form carried no valid request id; open the booking form again and send it from there.",
        );
    }
    let outcome = async {
        let attendees = split_addresses(&form.attendees);
        let access = flows::account_calendar(&ui.store, &account, None).await?;
        flows::book_as_asked(
            &ui.store,
            &access,
            &BookingInput {
                start: &form.start,
                end: SlotEnd::At(&form.end),
                subject: &form.subject,
                attendees: &attendees,
                location: Some(form.location.as_str()),
                online_meeting: form.online,
                request_id: Some(&form.request_id),
                outside_working_hours: form.outside_working_hours,
            },
        )
        .await
    }
    .await;
    match outcome {
        Ok((booking, _)) => done(
            &format!("/accounts/{}/calendar", account.id),
            &format!(
                "Booked '{}' in {}'s calendar, {}.",
                booking.subject,
                booking.mailbox,
                flows::booking_when(&booking, None)
            ),
        ),
        Err(e) => {
            let (status, _, message) = describe(&e);
            form.problem = Some(message);
            (status, page(&form)).into_response()
        }
    }
}

async fn find_booking(ui: &UiState, viewer: &Viewer, key: &str) -> Result<BookingRow, Response> {
    let Ok(id) = key.parse::<i64>() else {
        return Err(not_found(viewer, "booking"));
    };
    match ui.store.booking(id).await {
        Ok(booking) => Ok(booking),
        Err(store::StoreError::NotFound(_)) => Err(not_found(viewer, "booking")),
        Err(e) => Err(store_failure(viewer, e)),
    }
}

/// Where a booking's pages lead back to: its account's calendar.
fn back_of(booking: &BookingRow) -> String {
    match booking.account_id {
        Some(id) => format!("/accounts/{id}/calendar"),
        None => "/accounts".into(),
    }
}

pub(crate) async fn move_form(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
) -> Response {
    if let Some(refusal) = only_admins(&viewer) {
        return refusal;
    }
    let booking = match find_booking(&ui, &viewer, &key).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let zone = match flows::booking_calendar(&ui.store, &booking).await {
        Ok(access) => match flows::working_hours(&access).await {
            Ok(hours) => hours.zone,
            Err(e) => return failure(&viewer, &e),
        },
        Err(e) => return failure(&viewer, &e),
    };
    page(&BookingForm {
        frame: viewer.frame(format!("Move '{}'", booking.subject), "accounts"),
        action: format!("/bookings/{}/move", booking.id),
        back: back_of(&booking),
        moving: true,
        mailbox: booking.mailbox.clone(),
        zone: zone.name().to_string(),
        subject: booking.subject.clone(),
        start: form_time(millis(booking.start_at), zone),
        end: form_time(millis(booking.end_at), zone),
        attendees: String::new(),
        location: String::new(),
        online: false,
        request_id: String::new(),
        outside_working_hours: false,
        problem: None,
    })
}

pub(crate) async fn move_booking(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
    fields: Fields,
) -> Response {
    let booking = match find_booking(&ui, &viewer, &key).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (start, end) = (fields.get("start").trim(), fields.get("end").trim());
    let outside_working_hours = fields.flag("outside_working_hours");
    let outcome = async {
        let access = flows::booking_calendar(&ui.store, &booking).await?;
        flows::move_as_asked(
            &ui.store,
            &access,
            &booking,
            start,
            SlotEnd::At(end),
            outside_working_hours,
        )
        .await
    }
    .await;
    match outcome {
        Ok((moved, _)) => done(
            &back_of(&booking),
            &format!(
                "Moved '{}' to {}.",
                moved.subject,
                flows::booking_when(&moved, None)
            ),
        ),
        Err(e) => {
            let (status, _, message) = describe(&e);
            let form = BookingForm {
                frame: viewer.frame(format!("Move '{}'", booking.subject), "accounts"),
                action: format!("/bookings/{}/move", booking.id),
                back: back_of(&booking),
                moving: true,
                mailbox: booking.mailbox.clone(),
                zone: String::new(),
                subject: booking.subject.clone(),
                start: start.to_string(),
                end: end.to_string(),
                attendees: String::new(),
                location: String::new(),
                online: false,
                request_id: String::new(),
                outside_working_hours,
                problem: Some(message),
            };
            (status, page(&form)).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "accounts_cancel.html")]
struct CancelPage {
    frame: Frame,
    id: i64,
    subject: String,
    mailbox: String,
    when: String,
    back: String,
}

pub(crate) async fn cancel_form(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
) -> Response {
    if let Some(refusal) = only_admins(&viewer) {
        return refusal;
    }
    let booking = match find_booking(&ui, &viewer, &key).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    page(&CancelPage {
        frame: viewer.frame(format!("Cancel '{}'", booking.subject), "accounts"),
        id: booking.id,
        subject: booking.subject.clone(),
        mailbox: booking.mailbox.clone(),
        when: flows::booking_when(&booking, None),
        back: back_of(&booking),
    })
}

pub(crate) async fn cancel(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(key): Path<String>,
    fields: Fields,
) -> Response {
    let booking = match find_booking(&ui, &viewer, &key).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let comment = match fields.get("comment").trim() {
        "" => "This appointment is cancelled.",
        text => text,
    };
    let outcome = async {
        let access = flows::booking_calendar(&ui.store, &booking).await?;
        flows::cancel_booking(&ui.store, &access, &booking, comment).await
    }
    .await;
    match outcome {
        Ok(cancelled) => done(
            &back_of(&booking),
            &format!(
                "Cancelled '{}'; its attendees were told.",
                cancelled.subject
            ),
        ),
        Err(e) => failure(&viewer, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(session: &str, started_at: i64) -> store::PendingSignInRow {
        store::PendingSignInRow {
            state: "state".into(),
            session_hash: session.into(),
            connection_id: 1,
            tenant: None,
            redirect_uri: String::new(),
            reconnecting: None,
            url: String::new(),
            nonce: "nonce".into(),
            verifier: "verifier".into(),
            started_at,
        }
    }

    #[test]
    fn a_sign_in_is_finished_only_by_the_session_that_started_it_within_the_patience() {
        let now = 1_000_000_000;
        let w = waiting("session-a", now - 1_000);
        assert_eq!(
            may_finish(Some(&w), "session-b", now),
            Err(Unmatched::OtherSession)
        );
        assert_eq!(may_finish(None, "session-a", now), Err(Unmatched::Unknown));
        assert_eq!(may_finish(Some(&w), "session-a", now), Ok(()));
        let long_ago = waiting("session-a", now - SIGN_IN_PATIENCE.as_millis() as i64);
        assert_eq!(
            may_finish(Some(&long_ago), "session-a", now),
            Err(Unmatched::Expired)
        );
    }

    #[test]
    fn addresses_are_split_and_checked() {
        assert_eq!(
            addresses("with", "a@x.com, b@y.org;c@z.net").unwrap(),
            vec!["a@x.com", "b@y.org", "c@z.net"]
        );
        assert!(addresses("with", "").unwrap().is_empty());
        let error = addresses("attendees", "a@x.com, nobody").unwrap_err();
        assert_eq!(error.field, "attendees");
        assert!(error.problem.contains("nobody"));
    }
}
