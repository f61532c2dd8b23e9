//! The HTTP face of m365sync: server-rendered pages behind logins ([`ui`]), the REST API under
//! `/api/v1` ([`api`]) with its OpenAPI document, and the health, readiness and metrics
//! endpoints ([`ops`]). Thin by design: every rule lives in `domain`, `sync` and `store`;
//! handlers read, act through those crates, and render.
//!
//! Every request passes the same guards: it must name a host the server answers for (DNS
//! rebinding), it has a bounded time to be answered, and every response carries security headers
//! (a Content-Security-Policy that allows script and style from the server alone, and no framing).
//! Pages also need a session, a CSRF token on every form, and the admin role for every change.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Router, middleware};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use store::Store;
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;

mod access;
pub mod api;
pub mod auth;
mod ops;
mod query;
mod ui;

pub use access::PublicName;
use access::{Access, ConnectionAddr};
pub use auth::{check_password, check_user_name, hash_password};

/// What the pages allow a browser to do: load the server's own script and stylesheet, send its
/// requests to the server, and nothing else (no inline script, no frame, no form posting
/// elsewhere).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// How the server meets the network.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Host names answered beside the address the server listens on (e.g. behind a proxy).
    pub public_names: Vec<PublicName>,
    /// How long a client has to send a request's headers, and how long an idle kept-alive
    /// connection stays open; then it is closed.
    pub header_read_timeout: Duration,
    /// How long one request may take to be answered.
    pub request_timeout: Duration,
    /// Browsers reach the server over HTTPS (a reverse proxy terminates TLS): cookies are marked
    /// `Secure`.
    pub behind_tls: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            public_names: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            behind_tls: false,
        }
    }
}

fn router(store: Store, options: &ServeOptions) -> Router {
    let pages = ui::routes(Arc::new(ui::Ui {
        store: store.clone(),
        limiter: auth::LoginLimiter::default(),
        secure_cookies: options.behind_tls,
    }));
    Router::new()
        .nest(api::PREFIX, api::router(store.clone()))
        .merge(ops::router(store))
        .merge(pages)
        .fallback(fallback)
}

/// An address nothing is routed to: the API's JSON under its prefix, the page elsewhere.
async fn fallback(request: Request) -> Response {
    if api::is_api_path(request.uri().path()) {
        api::no_such_route().into_response()
    } else {
        ui::fallback(request).await
    }
}

/// The pages and the API behind the server's guards: only requests for a host the server answers
/// for get through, each has `request_timeout` to be answered, and every response (refusals and
/// errors included) carries the security headers.
fn app(store: Store, options: &ServeOptions) -> Router {
    let access = Arc::new(Access::new(options.public_names.clone()));
    let security_headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ];
    let mut app = router(store, options)
        .layer(middleware::from_fn_with_state(
            options.request_timeout,
            answer_in_time,
        ))
        .layer(middleware::from_fn_with_state(access, access::check_host));
    for (name, value) in security_headers {
        app = app.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    // Pages show one person's view of the store: no cache keeps them (assets say otherwise).
    app.layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
}

/// A refusal made before the request reaches a page or the API (its host, its time), in the shape
/// of the one it was meant for: `{code, message}` under `/api/v1`, the error page elsewhere.
pub(crate) fn refusal(
    path: &str,
    status: StatusCode,
    code: &'static str,
    message: String,
) -> Response {
    if api::is_api_path(path) {
        api::ApiError::new(status, code, message).into_response()
    } else {
        ui::error_page(None, status, message)
    }
}

/// Middleware: a request not answered within `limit` gets 503 and the reason.
async fn answer_in_time(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => refusal(
            &path,
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "The answer took longer than {}, so the server stopped waiting; try again in a moment, or ask for less at once.",
                match limit.as_secs() {
                    0 => format!("{} ms", limit.as_millis()),
                    1 => "1 second".to_string(),
                    n => format!("{n} seconds"),
                }
            ),
        ),
    }
}

/// Serves until the process is stopped. A client that does not send a request's headers within
/// `header_read_timeout` (at the start or between kept-alive requests) is disconnected.
pub async fn serve(
    store: Store,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
) -> std::io::Result<()> {
    let app = app(store, &options);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let http = Arc::new(http);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection gone before it was accepted: wait a
                // moment rather than spin.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let service = app.clone().map_request(move |mut request: Request<_>| {
            request.extensions_mut().insert(ConnectionAddr(local));
            request.extensions_mut().insert(ops::PeerAddr(peer));
            request
        });
        let http = Arc::clone(&http);
        tokio::spawn(async move {
            let served = http
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Makes a one-time set-up link's token when no admin exists yet (the link is
/// `/setup/TOKEN`); `None` when there is an admin. Each call makes a new token: the set-up
/// page accepts any unused, unexpired one until the first admin exists.
pub async fn first_run_setup_token(store: &Store) -> store::Result<Option<String>> {
    if store.admin_count().await? > 0 {
        return Ok(None);
    }
    let token = auth::random_token();
    let expires = store::now_millis() + auth::SETUP_LINK_LIFETIME.as_millis() as i64;
    store
        .create_setup_token(&auth::token_hash(&token), expires)
        .await?;
    Ok(Some(token))
}
