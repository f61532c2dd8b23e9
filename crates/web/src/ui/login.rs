//! Logging in and out, and the one-time set-up link that makes the first admin.

use std::time::Instant;

use super::PagePath as Path;
use super::PageQuery as Query;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{FORM_COOKIE, Fields, Frame, PeerAddr, UiState, Viewer, cookie, error_page, page};
use crate::auth;

struct LoginForm {
    name: String,
    password: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    frame: Frame,
    problem: Option<String>,
    name: String,
    next: String,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
}

/// Where to go after logging in: `next` when it is a plain path on this server, else the
/// dashboard. Every reader of `next` goes through here. A plain path starts with one `/` (not
/// `//` or `/\`, which browsers read as another host) and holds printable ASCII only: no
/// backslash (read as `/`), no control character (browsers drop a tab or line break, so that
/// `/\t/evil.example` is `//evil.example`; in a header it is not even valid) and no space. The
/// addresses the guard sends here are percent-encoded, so they always pass.
fn local_next(next: Option<&str>) -> String {
    let plain = |path: &str| {
        let rest = path.strip_prefix('/');
        rest.is_some_and(|rest| !rest.starts_with(['/', '\\']))
            && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    };
    match next {
        Some(path) if plain(path) => path.to_string(),
        _ => "/".to_string(),
    }
}

/// The form token of a page seen before login: the one in the visitor's cookie, or a new one.
fn form_token(ui: &UiState, headers: &HeaderMap) -> (String, Option<axum::http::HeaderValue>) {
    match cookie(headers, FORM_COOKIE) {
        Some(token) if token.len() == 43 => (token.to_string(), None),
        _ => {
            let token = auth::random_token();
            let set = ui.cookie(FORM_COOKIE, &token, None);
            (token, Some(set))
        }
    }
}

fn with_cookie(mut response: Response, set: Option<axum::http::HeaderValue>) -> Response {
    if let Some(value) = set {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub(crate) async fn form(
    State(ui): State<UiState>,
    viewer: Option<Extension<Viewer>>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let next = local_next(query.next.as_deref());
    if viewer.is_some() {
        return Redirect::to(&next).into_response();
    }
    let (token, set) = form_token(&ui, &headers);
    let body = LoginPage {
        frame: Frame::anonymous("Log in", token)
            .at("/login")
            .with_notice(query.notice),
        problem: None,
        name: String::new(),
        next,
    };
    with_cookie(page(&body), set)
}

pub(crate) async fn submit(
    State(ui): State<UiState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    fields: Fields,
) -> Response {
    let address = peer.map(|p| p.0.0.ip());
    let login = LoginForm {
        name: auth::canonical_user_name(fields.get("name")),
        password: fields.get("password").to_string(),
    };
    let next = local_next(Some(fields.get("next")));
    let (token, set) = form_token(&ui, &headers);
    let refuse = |status: StatusCode, problem: String| {
        let body = LoginPage {
            frame: Frame::anonymous("Log in", token.clone()),
            problem: Some(problem),
            name: login.name.clone(),
            next: next.clone(),
        };
        with_cookie((status, page(&body)).into_response(), set.clone())
    };
    if let Some(wait) = ui.limiter.blocked(&login.name, address, Instant::now()) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed logins from this address. Try again in {minutes} minute(s), or ask an admin to reset your password."
            ),
        );
    }
    let found = match ui.store.app_user_credentials(&login.name).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!("reading a user: {e}");
            return error_page(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "The store could not be read to check your login; try again in a moment.",
            );
        }
    };
    // Argon2 is slow on purpose: off the async threads.
    let password = login.password.clone();
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, auth::decoy_hash().to_string()),
    };
    let matches = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        ui.limiter.failed(&login.name, address, Instant::now());
        return refuse(
            StatusCode::UNAUTHORIZED,
            "That name and password do not match. Check both and try again.".into(),
        );
    };
    ui.limiter.succeeded(&login.name, address);
    start_session(&ui, user.id, &next).await
}

/// A new session (a new token: never one the browser had before) and the way to `next`.
async fn start_session(ui: &UiState, user_id: i64, next: &str) -> Response {
    let token = auth::random_token();
    let csrf = auth::random_token();
    if let Err(e) = ui
        .store
        .create_app_session(
            &auth::token_hash(&token),
            user_id,
            &csrf,
            auth::SESSION_TIMES,
        )
        .await
    {
        tracing::error!("starting a session: {e}");
        return error_page(
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "The session could not be kept in the store; try again in a moment.",
        );
    }
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        ui.cookie(
            ui.session_cookie_name(),
            &token,
            Some(auth::SESSION_ABSOLUTE.as_secs()),
        ),
    );
    headers.append(header::SET_COOKIE, ui.cookie(FORM_COOKIE, "", Some(0)));
    response
}

/// A link or a typed address to /logout: logging out takes the form's POST (with its CSRF
/// token, so no other site can log a person out), so this points to the button.
pub(crate) async fn logout_by_address() -> Response {
    Redirect::to(&super::notice_link(
        "/",
        "To log out, use the Log out button at the top of the page.",
    ))
    .into_response()
}

pub(crate) async fn logout(State(ui): State<UiState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, ui.session_cookie_name())
        && let Err(e) = ui.store.end_app_session(&auth::token_hash(token)).await
    {
        tracing::error!("ending a session: {e}");
    }
    let mut response =
        Redirect::to(&super::notice_link("/login", "You are logged out.")).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        ui.cookie(ui.session_cookie_name(), "", Some(0)),
    );
    response
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    frame: Frame,
    problem: Option<String>,
    name: String,
    token: String,
    min_password: usize,
}

struct SetupForm {
    name: String,
    password: String,
    confirm: String,
}

fn setup_link_gone() -> Response {
    error_page(
        None,
        StatusCode::NOT_FOUND,
        "This set-up link does not work: it was used already, has expired, or an admin exists. Log in, or run `m365sync admin create NAME` on the server.",
    )
}

pub(crate) async fn setup_form(
    State(ui): State<UiState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    match ui.store.setup_token_usable(&auth::token_hash(&token)).await {
        Ok(true) => {}
        Ok(false) => return setup_link_gone(),
        Err(e) => {
            tracing::error!("reading a set-up link: {e}");
            return setup_link_gone();
        }
    }
    let (form, set) = form_token(&ui, &headers);
    let body = SetupPage {
        frame: Frame::anonymous("Set up m365sync", form),
        problem: None,
        name: String::new(),
        token,
        min_password: auth::MIN_PASSWORD_CHARS,
    };
    with_cookie(page(&body), set)
}

pub(crate) async fn setup_submit(
    State(ui): State<UiState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    fields: Fields,
) -> Response {
    let setup = SetupForm {
        name: auth::canonical_user_name(fields.get("name")),
        password: fields.get("password").to_string(),
        confirm: fields.get("confirm").to_string(),
    };
    let (form, set) = form_token(&ui, &headers);
    let again = |problem: String| {
        let body = SetupPage {
            frame: Frame::anonymous("Set up m365sync", form.clone()),
            problem: Some(problem),
            name: setup.name.clone(),
            token: token.clone(),
            min_password: auth::MIN_PASSWORD_CHARS,
        };
        with_cookie(
            (StatusCode::UNPROCESSABLE_ENTITY, page(&body)).into_response(),
            set.clone(),
        )
    };
    let name = match auth::check_user_name(&setup.name) {
        Ok(name) => name,
        Err(problem) => return again(super::upper_first(&problem)),
    };
    if setup.password != setup.confirm {
        return again("The two passwords differ; type the same one twice.".into());
    }
    let password = setup.password.clone();
    let hash = match tokio::task::spawn_blocking(move || auth::hash_password(&password)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(problem)) => return again(super::upper_first(&problem)),
        Err(_) => return again("The password could not be hashed; try again.".into()),
    };
    match ui
        .store
        .create_first_admin(&auth::token_hash(&token), &name, &hash)
        .await
    {
        Ok(user) => {
            start_session(
                &ui,
                user.id,
                &super::notice_link(
                    "/",
                    "Welcome! You are the first admin. Add a connection to start.",
                ),
            )
            .await
        }
        Err(store::StoreError::Conflict(_)) => setup_link_gone(),
        Err(e) => again(super::upper_first(&e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::local_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_next(Some("/runs/3")), "/runs/3");
        assert_eq!(local_next(Some("//evil.example/")), "/");
        assert_eq!(local_next(Some("https://evil.example/")), "/");
        assert_eq!(local_next(Some("/\\evil.example")), "/");
        assert_eq!(local_next(None), "/");
        assert_eq!(
            local_next(Some("/connections?page=2&q=a%20b")),
            "/connections?page=2&q=a%20b"
        );
        for hostile in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: a=b",
            "/\u{1}x",
            "/\u{7f}x",
            "/\u{85}x",
            "/a\\b",
            "\\\\evil.example",
            " /runs",
            "/runs 3",
            "",
            "runs",
        ] {
            assert_eq!(local_next(Some(hostile)), "/", "{hostile:?}");
        }
    }
}
