//! For whoever runs m365sync: `/healthz` (the process answers), `/readyz` (the store answers and
//! its schema is current) and `/metrics` in Prometheus' text format.
//!
//! The run figures are read from the store at each scrape, so that runs made by any process
//! (a separate `m365sync worker`, a `sync` from a shell) count; the Graph figures are this
//! process's own (its worker's requests), counted by the `graph` client as it goes.
//!
//! `/metrics` names connections and how often they fail, which is not for everyone: it answers
//! a request with any API token, or one from this machine that no proxy relayed (a loopback
//! peer, without `Forwarded`, `X-Forwarded-For` or `X-Real-IP`); anything else gets 401.

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use store::Store;
use sync::observe::RequestCounts;

/// The address of the client at the other end of a request's connection, set by the server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// Bounds, in seconds, of the run duration buckets: from a quick resync to a large tenant's
/// first sync.
const RUN_BOUNDS: [f64; 11] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];
/// Bounds, in seconds, of the step duration buckets.
const STEP_BOUNDS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

pub(crate) fn router(store: Store) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(store)
}

#[derive(Serialize)]
struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    message: String,
}

async fn readyz(State(store): State<Store>) -> Response {
    let (status, readiness) = match store.pending_migrations().await {
        Ok(pending) if pending.is_empty() => (
            StatusCode::OK,
            Readiness {
                status: "ready",
                message: "The store answers and its schema is current.".into(),
            },
        ),
        Ok(pending) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Readiness {
                status: "not_ready",
                message: format!(
                    "The store lacks migration(s) {}; run `m365sync migrate` (or restart m365sync, which applies them).",
                    pending
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        ),
        Err(e) => {
            // The cause goes to the log only: this answer is for anyone who can reach the port.
            tracing::warn!("readiness: the store does not answer: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Readiness {
                    status: "not_ready",
                    message: "The store does not answer; m365sync's log says why.".into(),
                },
            )
        }
    };
    (status, Json(readiness)).into_response()
}

/// Whether a request came straight from this machine: a loopback peer, and no header saying a
/// proxy relayed it from elsewhere.
fn from_this_machine(peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    let relayed = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name));
    !relayed && peer.is_some_and(|p| p.ip().to_canonical().is_loopback())
}

async fn metrics(State(store): State<Store>, request: Request) -> Response {
    let peer = request.extensions().get::<PeerAddr>().map(|p| p.0);
    if !from_this_machine(peer, request.headers()) {
        let token = match crate::api::bearer(request.headers()) {
            Some(secret) => store.authenticate_api_token(secret).await,
            None => Ok(None),
        };
        match token {
            Ok(Some(_)) => {}
            Ok(None) => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                    "/metrics answers requests from this machine, or with an API token: make one with `m365sync token create prometheus --role viewer` and set it as the scrape's bearer token.\n",
                )
                    .into_response();
            }
            Err(e) => {
                tracing::error!("metrics: checking a token: {e}");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The store does not answer; m365sync's log says why.\n",
                )
                    .into_response();
            }
        }
    }
    match render(&store).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("metrics: reading the run log: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The store does not answer; m365sync's log says why.\n",
            )
                .into_response()
        }
    }
}

/// A label value as the text format writes it.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value.is_infinite() {
        "+Inf".into()
    } else {
        format!("{value}")
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds: &[f64],
    h: &store::DurationHistogram,
) {
    for (bound, count) in bounds.iter().zip(&h.at_most) {
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"{}\"}} {count}",
            number(*bound)
        );
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", number(h.sum_seconds));
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// A figure given per connection: its name, type, help, and how to read it from the counts.
type Figure = (
    &'static str,
    &'static str,
    &'static str,
    fn(&RequestCounts) -> String,
);

/// Every figure, in Prometheus' text exposition format.
pub(crate) async fn render(store: &Store) -> store::Result<String> {
    let mut out = String::new();

    family(
        &mut out,
        "m365sync_runs",
        "gauge",
        "Sync runs in the store, by connection and status.",
    );
    for row in store.run_status_counts().await? {
        let _ = writeln!(
            out,
            "m365sync_runs{{connection=\"{}\",status=\"{}\"}} {}",
            label(&row.connection),
            label(&row.status),
            row.runs
        );
    }

    family(
        &mut out,
        "m365sync_run_duration_seconds",
        "histogram",
        "How long finished sync runs took, from start to finish, by connection.",
    );
    for h in store.run_durations(&RUN_BOUNDS).await? {
        let labels = format!("connection=\"{}\"", label(&h.connection));
        histogram(
            &mut out,
            "m365sync_run_duration_seconds",
            &labels,
            &RUN_BOUNDS,
            &h,
        );
    }

    family(
        &mut out,
        "m365sync_step_duration_seconds",
        "histogram",
        "How long finished sync steps took, by connection and dataset.",
    );
    for h in store.step_durations(&STEP_BOUNDS).await? {
        let labels = format!(
            "connection=\"{}\",dataset=\"{}\"",
            label(&h.connection),
            label(h.dataset.as_deref().unwrap_or_default())
        );
        histogram(
            &mut out,
            "m365sync_step_duration_seconds",
            &labels,
            &STEP_BOUNDS,
            &h,
        );
    }

    let counts = sync::observe::request_counts();
    family(
        &mut out,
        "m365sync_graph_requests_total",
        "counter",
        "Answers from Microsoft to this process, by connection and HTTP status (each request inside a $batch counts, and so does the batch).",
    );
    for (connection, c) in &counts {
        for (status, n) in &c.by_status {
            let _ = writeln!(
                out,
                "m365sync_graph_requests_total{{connection=\"{}\",status=\"{status}\"}} {n}",
                label(connection)
            );
        }
    }
    let per_connection: [Figure; 6] = [
        (
            "m365sync_graph_throttled_total",
            "counter",
            "Answers that were 429 Too Many Requests, by connection.",
            |c| c.throttled().to_string(),
        ),
        (
            "m365sync_graph_unanswered_total",
            "counter",
            "Requests to Microsoft that got no answer (connection failed or timed out), by connection.",
            |c| c.unanswered.to_string(),
        ),
        (
            "m365sync_graph_retry_waits_total",
            "counter",
            "Waits before sending a request again (after a 429, a 5xx or a lost connection), by connection.",
            |c| c.retry_waits.to_string(),
        ),
        (
            "m365sync_graph_retry_wait_seconds_total",
            "counter",
            "Time spent in those waits, by connection.",
            |c| number(c.retry_wait_seconds),
        ),
        (
            "m365sync_graph_pacing_waits_total",
            "counter",
            "Waits to keep within Microsoft's documented budgets before a request, by connection.",
            |c| c.pacing_waits.to_string(),
        ),
        (
            "m365sync_graph_pacing_wait_seconds_total",
            "counter",
            "Time spent in those waits, by connection.",
            |c| number(c.pacing_wait_seconds),
        ),
    ];
    for (name, kind, help, value) in per_connection {
        family(&mut out, name, kind, help);
        for (connection, c) in &counts {
            let _ = writeln!(
                out,
                "{name}{{connection=\"{}\"}} {}",
                label(connection),
                value(c)
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn only_unrelayed_loopback_requests_count_as_this_machine() {
        let loopback = Some(SocketAddr::from(([127, 0, 0, 1], 50000)));
        let lan = Some(SocketAddr::from(([192, 168, 1, 20], 50000)));
        let mut headers = HeaderMap::new();
        assert!(from_this_machine(loopback, &headers));
        assert!(!from_this_machine(lan, &headers));
        assert!(!from_this_machine(None, &headers));
        headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert!(!from_this_machine(loopback, &headers));
    }
}
