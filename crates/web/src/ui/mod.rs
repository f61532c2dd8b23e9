//! The server-rendered pages: compiled askama templates over the store, a little htmx, and the
//! guard every page request passes: a live session (else the login page), a CSRF token on every
//! form, and the admin role for every change.
//!
//! Handlers read through the store and act through the same `sync`/`store` functions the CLI
//! calls; they format for people and decide nothing.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use store::{AppRole, AppUser, Store};

use crate::auth::{self, LoginLimiter};

pub(crate) mod accounts;
mod charts;
mod compare;
mod connections;
mod dashboard;
mod format;
mod insight;
mod login;
mod organizations;
mod runs;
mod settings;
mod tenants;

pub(crate) const SESSION_COOKIE: &str = "m365sync_session";
/// The `__Host-` prefix makes browsers keep the cookie to this exact origin over HTTPS.
pub(crate) const SECURE_SESSION_COOKIE: &str = "__Host-m365sync_session";
/// The token a login or set-up form carries before there is a session (double submit).
pub(crate) const FORM_COOKIE: &str = "m365sync_form";

/// Forms are small; anything larger is refused before it is read whole.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// What the pages share.
pub(crate) struct Ui {
    pub(crate) store: Store,
    pub(crate) limiter: LoginLimiter,
    /// Cookies are marked `Secure` (and session cookies take the `__Host-` prefix): the server
    /// is reached over HTTPS, through a proxy that terminates TLS.
    pub(crate) secure_cookies: bool,
}

pub(crate) type UiState = Arc<Ui>;

pub(crate) use crate::ops::PeerAddr;

/// Who is asking, on every page request past the guard.
#[derive(Clone)]
pub(crate) struct Viewer {
    pub(crate) user: AppUser,
    pub(crate) csrf: String,
    /// The path asked for: a sealed notice shows only on the page it was sealed for.
    pub(crate) path: String,
}

impl Viewer {
    pub(crate) fn is_admin(&self) -> bool {
        self.user.role == AppRole::Admin
    }

    pub(crate) fn frame(&self, title: impl Into<String>, section: &str) -> Frame {
        Frame {
            title: title.into(),
            signed_in: true,
            user: self.user.name.clone(),
            role: self.user.role.as_str(),
            admin: self.is_admin(),
            csrf: self.csrf.clone(),
            nav: NAV
                .iter()
                .map(|(key, label, href)| NavItem {
                    key,
                    label,
                    href,
                    active: *key == section,
                })
                .collect(),
            notice: None,
            path: self.path.clone(),
        }
    }
}

const NAV: &[(&str, &str, &str)] = &[
    ("dashboard", "Dashboard", "/"),
    ("connections", "Connections", "/connections"),
    ("tenants", "Tenants", "/tenants"),
    ("organizations", "Organisations", "/organizations"),
    ("runs", "Runs", "/runs"),
    ("accounts", "Accounts", "/accounts"),
    ("settings", "Settings", "/settings"),
];

/// The page around the content: title, navigation, who is logged in, their CSRF token.
pub(crate) struct Frame {
    pub(crate) title: String,
    pub(crate) signed_in: bool,
    pub(crate) user: String,
    pub(crate) role: &'static str,
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    pub(crate) nav: Vec<NavItem>,
    pub(crate) notice: Option<String>,
    /// The path of the page, which a notice's seal must name.
    pub(crate) path: String,
}

impl Frame {
    /// A frame for pages seen before logging in.
    pub(crate) fn anonymous(title: &str, csrf: String) -> Self {
        Self {
            title: title.to_string(),
            signed_in: false,
            user: String::new(),
            role: "",
            admin: false,
            csrf,
            nav: Vec::new(),
            notice: None,
            path: String::new(),
        }
    }

    /// The frame of the page at `path` (a page seen before login knows its own).
    pub(crate) fn at(mut self, path: &str) -> Self {
        self.path = path.to_string();
        self
    }

    /// Shows the `notice` of the address only when this server wrote it for this page a short
    /// while ago (see [`notice_link`]): a link made elsewhere cannot put its own words, such as
    /// a phishing text, on a page, and one of ours cannot be replayed elsewhere or later.
    pub(crate) fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice
            .as_deref()
            .and_then(|sealed| verified_notice(&self.path, sealed));
        self
    }
}

pub(crate) struct NavItem {
    pub(crate) key: &'static str,
    pub(crate) label: &'static str,
    pub(crate) href: &'static str,
    pub(crate) active: bool,
}

/// Renders a template as a page; a template that fails to render is a 500 with a plain message.
pub(crate) fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("rendering a page: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be drawn; the server's log says why.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    frame: Frame,
    heading: String,
    message: String,
    back_href: String,
    back_label: String,
}

/// A page that says what went wrong and where to go next, never a framework's raw text.
pub(crate) fn error_page(
    viewer: Option<&Viewer>,
    status: StatusCode,
    message: impl Into<String>,
) -> Response {
    let heading = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "Please check what you sent",
        StatusCode::CONFLICT => "That cannot be done now",
        _ => "Something went wrong",
    };
    let frame = match viewer {
        Some(viewer) => viewer.frame(heading, ""),
        None => Frame::anonymous(heading, String::new()),
    };
    let body = ErrorPage {
        frame,
        heading: heading.to_string(),
        message: message.into(),
        back_href: "/".into(),
        back_label: "Back to the dashboard".into(),
    };
    (status, page(&body)).into_response()
}

/// What a store error means to the person who asked.
pub(crate) fn store_failure(viewer: &Viewer, error: store::StoreError) -> Response {
    let status = match &error {
        store::StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        store::StoreError::Conflict(_) => StatusCode::CONFLICT,
        _ => {
            tracing::error!("store error: {error}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error_page(Some(viewer), status, upper_first(&error.to_string()))
}

pub(crate) fn not_found(viewer: &Viewer, what: &str) -> Response {
    error_page(
        Some(viewer),
        StatusCode::NOT_FOUND,
        format!(
            "There is no such {what}. It may have been removed; the menu above leads to what there is."
        ),
    )
}

/// `message` with the command that does the same on the server, said the same way on every
/// page whose action the command line also takes.
pub(crate) fn or_on_the_server(message: &str, command: &str) -> String {
    let message = message.trim_end();
    let stop = if message.ends_with(['.', '!', '?']) {
        ""
    } else {
        "."
    };
    format!("{message}{stop} Or run `{command}` on the server.")
}

/// `word` as a shell reads it back as one argument: quoted when it holds anything but letters,
/// digits and `._-`.
pub(crate) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

pub(crate) fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// After a change, back to a page with a note of what happened (a redirect, so that reloading
/// does not send the form again).
pub(crate) fn done(to: &str, notice: &str) -> Response {
    Redirect::to(&notice_link(to, notice)).into_response()
}

/// Between a notice's text, its expiry and its seal in the `notice` query field.
pub(crate) const NOTICE_SEAL: char = '|';

/// How long a notice link shows its notice: long enough for the redirect it rides on, too
/// short for a link passed around.
const NOTICE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(10 * 60);

fn unix_seconds(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The address `to` with `notice` to show there, sealed with a key derived from the store's
/// together with `to`'s path and an expiry, so that [`Frame::with_notice`] shows it on that
/// page for [`NOTICE_LIFETIME`] and shows no text a stranger puts in a link.
pub(crate) fn notice_link(to: &str, notice: &str) -> String {
    notice_link_at(to, notice, std::time::SystemTime::now())
}

fn notice_link_at(to: &str, notice: &str, now: std::time::SystemTime) -> String {
    let (path, separator) = match to.split_once('?') {
        Some((path, _)) => (path, '&'),
        None => (to, '?'),
    };
    let expires = unix_seconds(now) + NOTICE_LIFETIME.as_secs();
    let sealed = format!(
        "{notice}{NOTICE_SEAL}{expires}{NOTICE_SEAL}{}",
        notice_seal(path, expires, notice)
    );
    format!("{to}{separator}notice={}", format::url_encode(&sealed))
}

/// The text of a notice sealed here for the page at `path` and not yet expired, or `None`
/// (also when it is empty).
pub(crate) fn verified_notice(path: &str, sealed: &str) -> Option<String> {
    verified_notice_at(path, sealed, std::time::SystemTime::now())
}

fn verified_notice_at(path: &str, sealed: &str, now: std::time::SystemTime) -> Option<String> {
    let (rest, seal) = sealed.rsplit_once(NOTICE_SEAL)?;
    let (text, expires) = rest.rsplit_once(NOTICE_SEAL)?;
    let expires: u64 = expires.parse().ok()?;
    let expected = notice_seal(path, expires, text);
    // Compared in full every time, so the time taken says nothing about how much matched.
    let same = auth::same_secret(seal, &expected);
    (same && !text.is_empty() && !path.is_empty() && unix_seconds(now) < expires)
        .then(|| text.to_string())
}

/// The key notices are sealed with: derived from the store's secret key once the pages are
/// routed, so that every process serving the store reads the others' notices (a redirect may
/// land on another worker); a random one for a process that never routed pages.
static NOTICE_KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();

fn set_notice_key(store: &store::Store) {
    // Several servers in one process (tests) share the first store's key: each still seals
    // and reads with one and the same key.
    let _ = NOTICE_KEY.set(store.derived_key("page notices"));
}

/// HMAC-SHA-256 of the page's path, the expiry and `text` under the notice key, in hex. The
/// path (printable ASCII) and the expiry (digits) hold no NUL, so no two triples read alike.
fn notice_seal(path: &str, expires: u64, text: &str) -> String {
    use hmac::{Hmac, Mac};
    let key = NOTICE_KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source is available");
        key
    });
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{path}\0{expires}\0").as_bytes());
    mac.update(text.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A 400 page for a query value the page does not know, naming it and the ones it takes, so a
/// mistyped link is not silently shown as something else.
pub(crate) fn unknown_value(
    viewer: &Viewer,
    parameter: &str,
    value: &str,
    allowed: &[&str],
) -> Response {
    error_page(
        Some(viewer),
        StatusCode::BAD_REQUEST,
        format!(
            "'{value}' is not a value of '{parameter}'; use one of: {}, or leave it out.",
            allowed.join(", ")
        ),
    )
}

/// The error page for an address that cannot be read, shown to whoever is signed in.
fn refused_address(parts: &axum::http::request::Parts, text: String) -> Response {
    let viewer = parts.extensions.get::<Viewer>().cloned();
    error_page(viewer.as_ref(), StatusCode::BAD_REQUEST, text)
}

/// `Query<T>` whose refusal is the HTML error page in our words, not the framework's plain text.
pub(crate) struct PageQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for PageQuery<T>
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(refused_address(
                parts,
                format!(
                    "This page cannot be shown: {}. Open the page from its menu link to start again.",
                    crate::query::query_problem(&rejection)
                ),
            )),
        }
    }
}

/// `Path<T>` whose refusal (an address with bytes that are not UTF-8 text, such as `%FF`) is the
/// HTML error page in our words, not the framework's plain text.
pub(crate) struct PagePath<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for PagePath<T>
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(refused_address(
                parts,
                format!(
                    "This page cannot be shown: {}.",
                    crate::query::path_problem(&rejection)
                ),
            )),
        }
    }
}

/// Reads one cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

impl Ui {
    pub(crate) fn session_cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// A `Set-Cookie` value: `HttpOnly` and `SameSite=Lax` always, `Secure` behind TLS;
    /// `max_age` 0 removes it.
    pub(crate) fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure_cookies {
            text.push_str("; Secure");
        }
        if let Some(age) = max_age {
            text.push_str(&format!("; Max-Age={age}"));
        }
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Paths a person reaches before logging in.
fn is_public(path: &str) -> bool {
    path == "/login" || path.starts_with("/setup/") || path.starts_with("/assets/")
}

/// Unsafe requests a viewer may still send: only logging out.
fn viewer_may_post(path: &str) -> bool {
    path == "/logout"
}

/// The guard in front of every page: finds the session, sends strangers to the login page,
/// checks the CSRF token of every form, and refuses changes to anyone but an admin.
async fn guard(State(ui): State<UiState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let session = match cookie(request.headers(), ui.session_cookie_name()) {
        Some(token) => match ui
            .store
            .app_session(&auth::token_hash(token), auth::SESSION_TIMES.idle_millis)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::error!("reading a session: {e}");
                return error_page(
                    None,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The store could not be read to check your session; try again in a moment.",
                );
            }
        },
        None => None,
    };
    let viewer = session.map(|s| Viewer {
        user: s.user,
        csrf: s.csrf_token,
        path: path.clone(),
    });
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD);
    if !unsafe_method {
        if viewer.is_none() && !is_public(&path) {
            let wanted = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            let target = if wanted == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", format::url_encode(&wanted))
            };
            return Redirect::to(&target).into_response();
        }
        let mut request = request;
        if let Some(viewer) = viewer {
            request.extensions_mut().insert(viewer);
        }
        return next.run(request).await;
    }

    if *request.method() != Method::POST {
        // No form sends PUT, DELETE and the like, and no page takes them: they go on to the
        // "method not allowed" page without a viewer, so no handler could act for anyone.
        return next.run(request).await;
    }
    if let Some(refusal) = cross_site(request.headers()) {
        return error_page(viewer.as_ref(), StatusCode::FORBIDDEN, refusal);
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error_page(
                viewer.as_ref(),
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The form is larger than {} KiB; send less at once.",
                    MAX_FORM_BYTES / 1024
                ),
            );
        }
    };
    let sent = form_token(&parts.headers, &bytes);
    let expected = if is_public(&path) {
        cookie(&parts.headers, FORM_COOKIE).map(str::to_string)
    } else {
        match &viewer {
            Some(viewer) => Some(viewer.csrf.clone()),
            None => return Redirect::to("/login").into_response(),
        }
    };
    let valid = matches!((&sent, &expected), (Some(sent), Some(expected)) if auth::same_secret(sent, expected));
    if !valid {
        return error_page(
            viewer.as_ref(),
            StatusCode::FORBIDDEN,
            "This form was refused: it carried no valid security token (it may be from an old page, or from another site). Reload the page and send it again.",
        );
    }
    if let Some(viewer) = &viewer
        && !viewer.is_admin()
        && !viewer_may_post(&path)
        && !is_public(&path)
    {
        return error_page(
            Some(viewer),
            StatusCode::FORBIDDEN,
            "Viewers can read every page but change nothing. Ask an admin to make this change, or to make you an admin under Settings.",
        );
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    if let Some(viewer) = viewer {
        request.extensions_mut().insert(viewer);
    }
    next.run(request).await
}

/// Refuses a form sent from another site, by what the browser says of where it came from.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site")
    {
        return Some("This form came from another web site, so it was refused.");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())?;
    // Under `Referrer-Policy: no-referrer` browsers send `Origin: null` for the server's own
    // forms: it says nothing, and the CSRF token decides.
    if origin == "null" {
        return None;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok())?;
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    (!origin_host.eq_ignore_ascii_case(host))
        .then_some("This form came from another web site, so it was refused.")
}

/// The CSRF token a request carries: htmx sends it as a header, a plain form as a field.
fn form_token(headers: &HeaderMap, body: &Bytes) -> Option<String> {
    if let Some(value) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return Some(value.to_string());
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(key, value)| (key == "csrf").then_some(value))
}

const STYLESHEET: &str = include_str!("../../assets/app.css");
/// htmx 2, vendored from its npm package (BSD Zero Clause licence, beside it in assets/).
const HTMX: &str = include_str!("../../assets/htmx-2.0.11.min.js");
/// Fills a certificate's text area from a picked file.
const FORMS_SCRIPT: &str = include_str!("../../assets/forms.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The pages, behind their guard.
pub(crate) fn routes(ui: UiState) -> Router {
    set_notice_key(&ui.store);
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", get(login::logout_by_address).post(login::logout))
        .route(
            "/setup/{token}",
            get(login::setup_form).post(login::setup_submit),
        )
        .route(
            "/connections",
            get(connections::list).post(connections::create),
        )
        .route("/connections/new", get(connections::new_form))
        .route("/connections/{name}", get(connections::show))
        .route(
            "/connections/{name}/edit",
            get(connections::edit_form).post(connections::update),
        )
        .route(
            "/connections/{name}/test",
            post(connections::test).get(form_address),
        )
        .route(
            "/connections/{name}/sync",
            post(connections::sync_now).get(form_address),
        )
        .route(
            "/connections/{name}/delete",
            get(connections::delete_form).post(connections::delete),
        )
        .route("/tenants", get(tenants::list))
        .route(
            "/tenants/organization-options",
            get(tenants::organization_options),
        )
        .route("/tenants/{id}", post(tenants::decide).get(form_address))
        .route("/review", get(tenants::review))
        .route("/review/{id}", post(tenants::settle).get(form_address))
        .route("/organizations", get(organizations::list))
        .route("/organizations/{id}", get(organizations::contacts))
        .route("/organizations/{id}/{dataset}", get(organizations::dataset))
        .route("/organizations/{id}/report.html", get(insight::report))
        .route("/contacts/{id}", get(organizations::contact))
        .route("/contacts/{id}/compare", get(compare::show))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/cancel", post(runs::cancel).get(form_address))
        .route("/accounts", get(accounts::list))
        .route(
            "/accounts/connect",
            get(accounts::connect_form).post(accounts::connect_start),
        )
        .route(accounts::CALLBACK_PATH, get(accounts::callback))
        .route(
            "/accounts/{id}/remove",
            get(accounts::remove_form).post(accounts::remove),
        )
        .route("/accounts/{id}/calendar", get(accounts::calendar))
        .route(
            "/accounts/{id}/book",
            get(accounts::book_form).post(accounts::book),
        )
        .route(
            "/bookings/{id}/move",
            get(accounts::move_form).post(accounts::move_booking),
        )
        .route(
            "/bookings/{id}/cancel",
            get(accounts::cancel_form).post(accounts::cancel),
        )
        .route("/settings", get(settings::show))
        .route(
            "/settings/users",
            post(settings::create_user).get(form_address),
        )
        .route(
            "/settings/users/{id}/role",
            post(settings::set_role).get(form_address),
        )
        .route(
            "/settings/users/{id}/password",
            post(settings::set_password).get(form_address),
        )
        .route(
            "/settings/users/{id}/delete",
            post(settings::remove_user).get(form_address),
        )
        .route(
            "/settings/tokens",
            post(settings::create_token).get(form_address),
        )
        .route(
            "/settings/tokens/revoke",
            post(settings::revoke_token).get(form_address),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLESHEET) }),
        )
        .route(
            "/assets/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX) }),
        )
        .route(
            "/assets/forms.js",
            get(|| async { asset("text/javascript; charset=utf-8", FORMS_SCRIPT) }),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&ui), guard))
        .with_state(ui)
}

/// The page for a method a page does not take (the `Allow` header names those it does).
async fn method_not_allowed(request: Request) -> Response {
    let viewer = request.extensions().get::<Viewer>().cloned();
    error_page(
        viewer.as_ref(),
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "This address does not take {}: pages are opened by following a link, and changed by sending their forms. Open it from the menu above.",
            request.method()
        ),
    )
}

/// `GET` on the address a form is sent to (a reload after sending it, a copied link): nothing
/// is done, and the browser goes to the page the form belongs to.
async fn form_address(uri: axum::http::Uri) -> Response {
    done(
        &form_page(uri.path()),
        "That address is where this page's form is sent, and only takes the form; nothing was changed.",
    )
}

/// The page whose form is sent to `path` (kept as sent, percent-encoding and all).
fn form_page(path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["connections", name, "test" | "sync"] => format!("/connections/{name}"),
        ["runs", id, "cancel"] => format!("/runs/{id}"),
        ["tenants", _] => "/tenants".into(),
        ["review", _] => "/review".into(),
        ["settings", ..] => "/settings".into(),
        _ => "/".into(),
    }
}

/// The page for a URL that names nothing, signed in or not.
pub(crate) async fn fallback(request: Request) -> Response {
    let viewer = request.extensions().get::<Viewer>().cloned();
    error_page(
        viewer.as_ref(),
        StatusCode::NOT_FOUND,
        "There is no such page. Check the address, or start again from the dashboard.",
    )
}

/// A form's fields as sent, in order (a checkbox list repeats its name). Read by hand rather
/// than with `Form<T>`, so that a malformed form gets a page that says so, not a framework's
/// text.
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find_map(|(k, v)| (k == name).then_some(v.as_str()))
            .unwrap_or("")
    }

    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|(k, v)| (k == name).then_some(v.as_str()))
            .collect()
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let viewer = request.extensions().get::<Viewer>().cloned();
        let bytes = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                error_page(
                    viewer.as_ref(),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is too large; send less at once.",
                )
            })?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Fields)
            .map_err(|_| {
                error_page(
                    viewer.as_ref(),
                    StatusCode::BAD_REQUEST,
                    "The form could not be read; reload the page and send it again.",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// The `notice` field of a link, decoded.
    fn sealed_of(link: &str) -> String {
        let (_, field) = link.split_once("notice=").unwrap();
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("n={field}")).unwrap()[0]
            .1
            .clone()
    }

    #[test]
    fn a_notice_shows_on_its_own_page_until_it_expires() {
        let now = SystemTime::now();
        let link = notice_link_at("/tenants?state=matched", "Matched.", now);
        assert!(link.starts_with("/tenants?state=matched&notice="), "{link}");
        let sealed = sealed_of(&link);
        assert_eq!(
            verified_notice_at("/tenants", &sealed, now).as_deref(),
            Some("Matched.")
        );
        let nearly = now + NOTICE_LIFETIME - Duration::from_secs(1);
        assert!(verified_notice_at("/tenants", &sealed, nearly).is_some());
        assert!(verified_notice_at("/tenants", &sealed, now + NOTICE_LIFETIME).is_none());
        assert!(verified_notice_at("/connections", &sealed, now).is_none());
        assert!(verified_notice_at("", &sealed, now).is_none());
        // A later expiry put in by hand breaks the seal.
        let (text_and_expiry, seal) = sealed.rsplit_once(NOTICE_SEAL).unwrap();
        let (text, expiry) = text_and_expiry.rsplit_once(NOTICE_SEAL).unwrap();
        let later: u64 = expiry.parse::<u64>().unwrap() + 86_400;
        let stretched = format!("{text}{NOTICE_SEAL}{later}{NOTICE_SEAL}{seal}");
        assert!(verified_notice_at("/tenants", &stretched, now + NOTICE_LIFETIME).is_none());
    }
}
