//! The control API under `/_sim`: read the tenants' credentials, change tenants between syncs,
//! and inject faults. Unauthenticated by design; the simulator listens on loopback.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::{Fault, SimState, UserPatch};

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/tenants", get(tenants))
        .route("/_sim/stats", get(stats))
        .route("/_sim/tenants/{tenant}/roles", put(set_roles))
        .route("/_sim/tenants/{tenant}/concealment", put(set_concealment))
        .route("/_sim/tenants/{tenant}/premium", put(set_premium))
        .route("/_sim/tenants/{tenant}/users", post(add_user))
        .route(
            "/_sim/tenants/{tenant}/users/{index}",
            patch(patch_user).delete(remove_user),
        )
        .route(
            "/_sim/tenants/{tenant}/licenses/{part_number}",
            put(set_purchased),
        )
        .route(
            "/_sim/tenants/{tenant}/devices/{device_id}",
            patch(change_device),
        )
        .route("/_sim/tenants/{tenant}/certificates", post(add_certificate))
        .route(
            "/_sim/tenants/{tenant}/certificates/{key_id}",
            axum::routing::delete(remove_certificate),
        )
        .route(
            "/_sim/tenants/{tenant}/faults",
            post(inject).delete(clear_faults),
        )
}

fn no_tenant(tenant: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"error": format!("no tenant '{tenant}': use its id, a domain or its position")}),
        ),
    )
        .into_response()
}

fn done(ok: bool, tenant: &str) -> Response {
    if ok {
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_tenant(tenant)
    }
}

async fn tenants(State(state): State<Arc<SimState>>) -> Response {
    Json(state.tenant_infos()).into_response()
}

async fn stats(State(state): State<Arc<SimState>>) -> Response {
    Json(state.stats()).into_response()
}

async fn set_roles(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Json(roles): Json<Vec<String>>,
) -> Response {
    done(state.set_roles(&tenant, roles), &tenant)
}

#[derive(Deserialize)]
struct Concealment {
    concealed: bool,
}

async fn set_concealment(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Json(body): Json<Concealment>,
) -> Response {
    done(state.set_concealed(&tenant, body.concealed), &tenant)
}

#[derive(Deserialize)]
struct Premium {
    premium: bool,
}

async fn set_premium(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Json(body): Json<Premium>,
) -> Response {
    done(state.set_premium(&tenant, body.premium), &tenant)
}

async fn add_user(State(state): State<Arc<SimState>>, Path(tenant): Path<String>) -> Response {
    match state.add_user(&tenant) {
        Some((index, id)) => (
            StatusCode::CREATED,
            Json(json!({"index": index, "id": id.to_string()})),
        )
            .into_response(),
        None => no_tenant(&tenant),
    }
}

async fn patch_user(
    State(state): State<Arc<SimState>>,
    Path((tenant, index)): Path<(String, u64)>,
    Json(body): Json<UserPatch>,
) -> Response {
    if state.tenant(&tenant).is_none() {
        return no_tenant(&tenant);
    }
    if state.patch_user(&tenant, index, body) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no user at index {index}")})),
        )
            .into_response()
    }
}

async fn remove_user(
    State(state): State<Arc<SimState>>,
    Path((tenant, index)): Path<(String, u64)>,
) -> Response {
    done(state.remove_user(&tenant, index), &tenant)
}

async fn inject(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Json(fault): Json<Fault>,
) -> Response {
    done(state.inject(&tenant, fault), &tenant)
}

async fn clear_faults(State(state): State<Arc<SimState>>, Path(tenant): Path<String>) -> Response {
    done(state.clear_faults(&tenant), &tenant)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CertificateRequest {
    /// First day of validity, in days from now (default -1).
    #[serde(default)]
    valid_from_days: Option<i64>,
    /// Last day of validity, in days from now (default 365; negative for an expired one).
    #[serde(default)]
    valid_to_days: Option<i64>,
}

async fn add_certificate(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    body: Option<Json<CertificateRequest>>,
) -> Response {
    let request = body.map(|Json(b)| b).unwrap_or_default();
    let from = request.valid_from_days.unwrap_or(-1);
    let to = request.valid_to_days.unwrap_or(365);
    if to <= from {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "valid_to_days must be after valid_from_days"})),
        )
            .into_response();
    }
    match state.add_certificate(&tenant, from, to) {
        None => no_tenant(&tenant),
        Some(Ok(issued)) => (StatusCode::CREATED, Json(issued)).into_response(),
        Some(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": format!("cannot make a certificate: {e}")})),
        )
            .into_response(),
    }
}

async fn remove_certificate(
    State(state): State<Arc<SimState>>,
    Path((tenant, key_id)): Path<(String, String)>,
) -> Response {
    let Some(t) = state.tenant(&tenant) else {
        return no_tenant(&tenant);
    };
    if state.remove_certificate(t, &key_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no certificate with key id {key_id}")})),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Purchase {
    enabled: i64,
}

fn refused(message: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": message }))).into_response()
}

async fn set_purchased(
    State(state): State<Arc<SimState>>,
    Path((tenant, part_number)): Path<(String, String)>,
    Json(body): Json<Purchase>,
) -> Response {
    match state.set_purchased(&tenant, &part_number, body.enabled) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(message) => refused(message),
    }
}

async fn change_device(
    State(state): State<Arc<SimState>>,
    Path((tenant, device_id)): Path<(String, String)>,
    Json(change): Json<crate::state::DeviceChange>,
) -> Response {
    match state.change_device(&tenant, &device_id, change) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(message) => refused(message),
    }
}
