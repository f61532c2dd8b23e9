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
        .route("/_sim/tenants/{tenant}/users", post(add_user))
        .route(
            "/_sim/tenants/{tenant}/users/{index}",
            patch(patch_user).delete(remove_user),
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
