//! `POST /v1.0/$batch`: up to 20 requests in one, each answered as if sent alone — with its own
//! status, headers (a throttled one carries its own `Retry-After`) and body. Each inner request
//! goes through the same routes, token check, permissions and faults as a direct one.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::SimState;
use crate::api::{graph_error, graph_ok};

/// Graph's limit on requests in one batch.
const MAX_REQUESTS: usize = 20;

#[derive(Deserialize)]
struct BatchRequest {
    requests: Vec<InnerRequest>,
}

#[derive(Deserialize)]
struct InnerRequest {
    id: String,
    method: String,
    url: String,
}

pub(crate) async fn batch(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |message: &str| {
        graph_error(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            message,
        )
    };
    let Ok(parsed) = serde_json::from_slice::<BatchRequest>(&body) else {
        return bad(
            "Invalid batch payload format: expected {\"requests\": [{\"id\", \"method\", \"url\"}]}.",
        );
    };
    if parsed.requests.is_empty() {
        return bad("Invalid batch payload format: the batch holds no requests.");
    }
    if parsed.requests.len() > MAX_REQUESTS {
        return bad(&format!(
            "Number of batch requests exceeds the maximum of {MAX_REQUESTS}: {}.",
            parsed.requests.len()
        ));
    }
    let mut ids = HashSet::new();
    if let Some(dup) = parsed.requests.iter().find(|r| !ids.insert(r.id.as_str())) {
        return bad(&format!(
            "Batch request id '{}' is used more than once.",
            dup.id
        ));
    }
    let router = crate::api::router(state.clone());
    let authorization = headers.get("authorization").cloned();
    let answers = join_all(parsed.requests.iter().map(|inner| {
        let router = router.clone();
        let authorization = authorization.clone();
        async move {
            let path = format!("/v1.0/{}", inner.url.trim_start_matches('/'));
            if !inner.method.eq_ignore_ascii_case("GET") || path.contains("$batch") {
                return json!({
                    "id": inner.id, "status": 400, "headers": {"Content-Type": "application/json"},
                    "body": {"error": {"code": "BadRequest", "message": "The simulator batches GET requests to /v1.0 resources only."}},
                });
            }
            let mut request = Request::builder().method("GET").uri(&path);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let Ok(request) = request.body(Body::empty()) else {
                return json!({"id": inner.id, "status": 400, "body": {"error": {"code": "BadRequest", "message": "Invalid request URL."}}});
            };
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let mut inner_headers = Map::new();
            for name in [
                "retry-after",
                "location",
                "content-type",
                "x-ms-throttle-limit-percentage",
                "x-ms-resource-unit",
            ] {
                if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
                    inner_headers.insert(header_case(name), json!(value));
                }
            }
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            json!({"id": inner.id, "status": status, "headers": inner_headers, "body": body})
        }
    }))
    .await;
    graph_ok(
        &state,
        &headers,
        json!({ "responses": answers }).to_string(),
    )
}

fn header_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}
