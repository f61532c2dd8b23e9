//! The HTTP face of m365sync: read-only pages of organisations, contacts and the run log, the
//! REST API under `/api/v1` ([`api`]) with its OpenAPI document, and the health, readiness and
//! metrics endpoints ([`ops`]). Thin by design: every rule lives in `domain`, `sync` and
//! `store`; handlers only read, call and render.
//!
//! Until there are logins, [`serve`] keeps to what a browser cannot abuse: it answers only requests
//! that name its own address or a configured public name, sends headers that keep its pages out of
//! other sites' frames and scripts, and drops clients that are slow to send a request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use store::{ContactFilter, ContactRow, Store};
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

mod access;
pub mod api;
mod ops;
mod page;

pub use access::PublicName;
use access::{Access, ConnectionAddr};
use page::{STYLESHEET, STYLESHEET_PATH, escape, layout};

const PAGE_SIZE: i64 = 100;

/// What the pages allow a browser to do: load the server's own stylesheet, and nothing else (no
/// script, no frame, no form posting elsewhere).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

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
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            public_names: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

fn router(store: Store) -> Router {
    Router::new()
        .route("/", get(organizations_page))
        .route("/organizations/{id}", get(organization_page))
        .route("/runs", get(runs_page))
        .route(
            STYLESHEET_PATH,
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    STYLESHEET,
                )
            }),
        )
        .fallback(|| async { error_page(StatusCode::NOT_FOUND, "There is no such page.") })
        .with_state(store.clone())
        .nest(api::PREFIX, api::router(store.clone()))
        .merge(ops::router(store))
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
    let mut app = router(store)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            options.request_timeout,
        ))
        .layer(middleware::from_fn_with_state(access, access::check_host));
    for (name, value) in security_headers {
        app = app.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    app
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

fn error_page(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(layout(
            "Error",
            &format!("<p class=\"error\">{}</p>", escape(message)),
        )),
    )
        .into_response()
}

fn store_error(error: store::StoreError) -> Response {
    tracing::error!("store error: {error}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("The store could not be read: {error}"),
    )
}

async fn organizations_page(State(store): State<Store>) -> Response {
    let orgs = match store.organizations().await {
        Ok(o) => o,
        Err(e) => return store_error(e),
    };
    let mut body = String::from("<h1>Organisations</h1>");
    if orgs.is_empty() {
        body.push_str("<p>No organisations yet. Add a connection with <code>m365sync connection add</code> and run <code>m365sync sync</code>.</p>");
    } else {
        body.push_str("<table data-testid=\"organizations\"><thead><tr><th>Organisation</th><th>Tenant</th><th>Domains</th><th>Contacts</th></tr></thead><tbody>");
        for org in &orgs {
            body.push_str(&format!(
                "<tr><td><a href=\"/organizations/{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                org.id,
                escape(&org.name),
                escape(org.tenant_name.as_deref().unwrap_or("—")),
                escape(&org.verified_domains.join(", ")),
                org.contacts
            ));
        }
        body.push_str("</tbody></table>");
    }
    Html(layout("Organisations", &body)).into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    after: i64,
}

async fn organization_page(
    State(store): State<Store>,
    Path(id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> Response {
    let org = match store.organization(id).await {
        Ok(Some(o)) => o,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "There is no such organisation."),
        Err(e) => return store_error(e),
    };
    let filter = ContactFilter {
        organization_id: Some(id),
        ..ContactFilter::default()
    };
    let contacts = match store.contacts_page(&filter, query.after, PAGE_SIZE).await {
        Ok(c) => c,
        Err(e) => return store_error(e),
    };
    let mut body = format!(
        "<p><a href=\"/\">← Organisations</a></p><h1>{}</h1><p>Tenant {} · {} contacts</p>",
        escape(&org.name),
        escape(org.tenant_id.as_deref().unwrap_or("not linked")),
        org.contacts
    );
    body.push_str("<table data-testid=\"contacts\"><thead><tr><th>Name</th><th>User principal name</th><th>Job title</th><th>Licences</th><th>Mailbox used</th><th>Sign-in</th></tr></thead><tbody>");
    for contact in &contacts {
        body.push_str(&contact_row(contact));
    }
    body.push_str("</tbody></table>");
    if contacts.len() as i64 == PAGE_SIZE
        && let Some(last) = contacts.last()
    {
        body.push_str(&format!(
            "<p><a href=\"/organizations/{id}?after={}\">Next page →</a></p>",
            last.id
        ));
    }
    Html(layout(&org.name, &body)).into_response()
}

fn contact_row(contact: &ContactRow) -> String {
    let mailbox = contact
        .mailbox
        .as_ref()
        .and_then(|m| m.storage_used_bytes)
        .map(human_bytes)
        .unwrap_or_else(|| "—".to_string());
    let sign_in = match contact.account_enabled {
        Some(false) => "blocked",
        _ => "allowed",
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
        escape(&contact.display_name),
        escape(contact.user_principal_name.as_deref().unwrap_or("")),
        escape(contact.job_title.as_deref().unwrap_or("")),
        escape(&contact.license_names.join(", ")),
        mailbox,
        sign_in
    )
}

fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

async fn runs_page(State(store): State<Store>) -> Response {
    let runs = match store.runs(None, 50).await {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    let mut body = String::from(
        "<h1>Sync runs</h1><table data-testid=\"runs\"><thead><tr><th>Run</th><th>Connection</th><th>Status</th><th>Steps</th><th>Warnings</th></tr></thead><tbody>",
    );
    for run in &runs {
        let steps: Vec<String> = run
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{} {} (+{} ~{} ={} −{})",
                    escape(&s.dataset),
                    s.status,
                    s.counts.created,
                    s.counts.updated,
                    s.counts.unchanged,
                    s.counts.archived
                )
            })
            .collect();
        let warnings: Vec<String> = run.warnings.iter().map(|w| escape(&w.message)).collect();
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            run.id,
            escape(&run.connection_name),
            run.status,
            steps.join("<br>"),
            warnings.join("<br>")
        ));
    }
    body.push_str("</tbody></table>");
    Html(layout("Sync runs", &body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1_572_864), "1.5 MB");
    }
}
