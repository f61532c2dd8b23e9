//! The control API under `/_sim`: read the tenants' credentials, change tenants between syncs,
//! and inject faults. Unauthenticated by design; the simulator listens on loopback.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::USER_DEFAULT_FIELDS;
use crate::catalog::SKUS;
use crate::state::Tenant;
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
            "/_sim/tenants/{tenant}/users/{index}/restore",
            post(restore_user),
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
        .route(
            "/_sim/tenants/{tenant}/users/{index}/revoke-sessions",
            post(revoke_sessions),
        )
        .route(
            "/_sim/tenants/{tenant}/users/{index}/consents",
            axum::routing::delete(withdraw_consent),
        )
        .route("/_sim/identity/advance", post(advance_identity_clock))
        .route("/_sim/delegated", get(delegated_stats))
        .route("/_sim/partner", get(partner))
        .route(
            "/_sim/tenants/{tenant}/partner-consent",
            put(set_partner_consent),
        )
        .route(
            "/_sim/tenants/{tenant}/partner-relationship",
            put(add_partner_relationship).delete(end_partner_relationship),
        )
}

/// The partner tenant, its app's credentials and its customers; 404 without a partner.
async fn partner(State(state): State<Arc<SimState>>) -> Response {
    match state.partner_tenant() {
        Some(partner) => Json(json!({
            "tenant_id": partner.id.to_string(), "display_name": partner.display_name,
            "client_id": partner.client_id.to_string(), "client_secret": partner.client_secret,
            "customers": state.customers(),
        }))
        .into_response(),
        None => refused(
            "the simulator has no partner tenant: start it with `m365sync simulate --partner`"
                .into(),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Consent {
    consented: bool,
}

/// Whether the customer's admin has consented the partner's app.
async fn set_partner_consent(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Json(body): Json<Consent>,
) -> Response {
    answered(state.set_partner_consent(&tenant, body.consented))
}

async fn add_partner_relationship(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
) -> Response {
    answered(state.set_partner_relationship(&tenant, true))
}

async fn end_partner_relationship(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
) -> Response {
    answered(state.set_partner_relationship(&tenant, false))
}

fn answered(outcome: Result<(), String>) -> Response {
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(message) => refused(message),
    }
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

/// The fields `POST /_sim/tenants/T/users` takes, by Graph's names: those a PATCH takes.
const USER_FIELDS: &[&str] = &[
    "displayName",
    "jobTitle",
    "department",
    "accountEnabled",
    "mail",
    "proxyAddresses",
    "mobilePhone",
    "licenses",
];

/// Reads the body of a new user: a JSON object of [`USER_FIELDS`], or nothing at all for a
/// generated user. A refusal names the field and what it takes.
fn new_user_fields(body: &[u8], tenant: &Tenant) -> Result<UserPatch, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(UserPatch::default());
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(format!(
            "the body must be a JSON object of a user's fields ({}), or empty",
            USER_FIELDS.join(", ")
        ));
    };
    let mut user = UserPatch::default();
    for (name, value) in fields {
        let text = || match &value {
            Value::String(text) => Ok(Some(text.clone())),
            Value::Null => Ok(None),
            _ => Err(format!("{name} must be a string")),
        };
        match name.as_str() {
            "displayName" => {
                user.display_name = match &value {
                    Value::String(text) if !text.trim().is_empty() => Some(text.clone()),
                    _ => return Err("displayName must be a string that is not blank".into()),
                }
            }
            "jobTitle" => user.job_title = text()?,
            "department" => user.department = text()?,
            "mobilePhone" => user.mobile_phone = text()?,
            "mail" => user.mail = text()?,
            "accountEnabled" => {
                user.account_enabled = match value {
                    Value::Bool(enabled) => Some(enabled),
                    _ => return Err("accountEnabled must be true or false".into()),
                }
            }
            "proxyAddresses" => user.proxy_addresses = Some(proxy_addresses(&value)?),
            "licenses" => {
                let held: Vec<&str> = tenant
                    .population
                    .licensing
                    .skus()
                    .iter()
                    .map(|&sku| SKUS[sku].part_number)
                    .collect();
                let Value::Array(parts) = value else {
                    return Err("licenses must be a list of SKU part numbers".into());
                };
                let mut licenses = Vec::new();
                for part in parts {
                    let Some(known) = part
                        .as_str()
                        .and_then(|p| held.iter().find(|h| h.eq_ignore_ascii_case(p.trim())))
                    else {
                        return Err(format!(
                            "licenses: the tenant holds no SKU {part}; it holds {}",
                            held.join(", ")
                        ));
                    };
                    licenses.push(known.to_string());
                }
                user.licenses = Some(licenses);
            }
            other => {
                return Err(format!(
                    "unknown field '{other}': a user takes {}",
                    USER_FIELDS.join(", ")
                ));
            }
        }
    }
    if let (Some(mail), Some(addresses)) = (&user.mail, &user.proxy_addresses)
        && let Some(primary) = addresses.iter().find_map(|a| a.strip_prefix("SMTP:"))
        && !primary.eq_ignore_ascii_case(mail)
    {
        return Err(format!(
            "mail '{mail}' differs from the primary address SMTP:{primary} of proxyAddresses: give one of them, or the same address in both"
        ));
    }
    Ok(user)
}

/// A user's `proxyAddresses`: strings of `type:address`, with at most one primary `SMTP:`.
fn proxy_addresses(value: &Value) -> Result<Vec<String>, String> {
    let take = "proxyAddresses must be a list of addresses such as \"SMTP:ann@contoso.example\" (the primary) and \"smtp:ann@contoso.onmicrosoft.com\" (an alias)";
    let Value::Array(items) = value else {
        return Err(take.into());
    };
    let mut addresses: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = item.as_str().map(str::trim) else {
            return Err(take.into());
        };
        let well_formed = text.split_once(':').is_some_and(|(kind, address)| {
            !kind.is_empty()
                && kind.chars().all(|c| c.is_ascii_alphanumeric())
                && !address.trim().is_empty()
                && (!kind.eq_ignore_ascii_case("smtp")
                    || address
                        .split_once('@')
                        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.')))
        });
        if !well_formed {
            return Err(format!(
                "proxyAddresses: '{text}' is not an address: {take}"
            ));
        }
        if addresses.iter().any(|a| a.eq_ignore_ascii_case(text)) {
            return Err(format!(
                "proxyAddresses: '{text}' is given twice; give each address once"
            ));
        }
        addresses.push(text.to_string());
    }
    if addresses.iter().filter(|a| a.starts_with("SMTP:")).count() > 1 {
        return Err(
            "proxyAddresses may hold only one primary address in capitals (SMTP:); write the others smtp:".into(),
        );
    }
    Ok(addresses)
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// Adds a user, generated and then given the body's fields, and answers with the user as Graph
/// shows a new one (its default properties and those given), beside its `index` for later
/// PATCH and DELETE.
async fn add_user(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let Some(t) = state.tenant(&tenant) else {
        return no_tenant(&tenant);
    };
    let fields = match new_user_fields(&body, t) {
        Ok(fields) => fields,
        Err(message) => return bad_request(message),
    };
    let mut shown: Vec<&str> = USER_DEFAULT_FIELDS.to_vec();
    if fields.department.is_some() {
        shown.push("department");
    }
    if fields.account_enabled.is_some() {
        shown.push("accountEnabled");
    }
    if fields.licenses.is_some() {
        shown.push("assignedLicenses");
    }
    if fields.proxy_addresses.is_some() {
        shown.push("proxyAddresses");
    }
    match state.add_user_with(&tenant, fields) {
        Some((index, user)) => {
            let mut answer = user.select(&shown);
            answer["@odata.context"] =
                json!(format!("{}/v1.0/$metadata#users/$entity", state.base_url));
            answer["index"] = json!(index);
            (StatusCode::CREATED, Json(answer)).into_response()
        }
        None => no_tenant(&tenant),
    }
}

/// Changes a user: a JSON object of [`USER_FIELDS`], checked as a new user's are.
async fn patch_user(
    State(state): State<Arc<SimState>>,
    Path((tenant, index)): Path<(String, u64)>,
    body: Bytes,
) -> Response {
    let Some(t) = state.tenant(&tenant) else {
        return no_tenant(&tenant);
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return bad_request(format!(
            "the body must be a JSON object of the fields to change ({})",
            USER_FIELDS.join(", ")
        ));
    }
    let patch = match new_user_fields(&body, t) {
        Ok(patch) => patch,
        Err(message) => return bad_request(message),
    };
    if state.patch_user(&tenant, index, patch) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no user at index {index}")})),
        )
            .into_response()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Removal {
    /// Deleted for good (a hard delete, or emptied from the recycle bin), not only soft-deleted.
    #[serde(default)]
    permanent: bool,
}

/// Deletes a user: to the recycle bin (delta says `changed`), or with `?permanent=true` for good
/// (delta says `deleted`).
async fn remove_user(
    State(state): State<Arc<SimState>>,
    Path((tenant, index)): Path<(String, u64)>,
    Query(removal): Query<Removal>,
) -> Response {
    if state.tenant(&tenant).is_none() {
        return no_tenant(&tenant);
    }
    if removal.permanent {
        return match state.purge_user(&tenant, index) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(message) => refused(message),
        };
    }
    if state.remove_user(&tenant, index) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        refused(format!(
            "no user at index {index} (a deleted one is restored with POST …/users/{index}/restore, or deleted for good with ?permanent=true)"
        ))
    }
}

/// Restores a user from the recycle bin.
async fn restore_user(
    State(state): State<Arc<SimState>>,
    Path((tenant, index)): Path<(String, u64)>,
) -> Response {
    if state.tenant(&tenant).is_none() {
        return no_tenant(&tenant);
    }
    match state.restore_user(&tenant, index) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(message) => refused(message),
    }
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::{SimConfig, TenantSpec};

    async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post_user(router: &Router, body: &str) -> (StatusCode, Value) {
        let request = Request::post("/_sim/tenants/0/users")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        send(router, request).await
    }

    /// Every user Graph's `/v1.0/users` lists for tenant 0, with the fields asked for.
    async fn graph_users(router: &Router, state: &SimState) -> Vec<Value> {
        let tenant = &state.tenant_infos()[0];
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
            tenant.client_id,
            url::form_urlencoded::byte_serialize(tenant.client_secret.as_bytes())
                .collect::<String>()
        );
        let (status, token) = send(
            router,
            Request::post(format!("/{}/oauth2/v2.0/token", tenant.tenant_id))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{token}");
        let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
        let (status, page) = send(
            router,
            Request::get(
                "/v1.0/users?$select=id,displayName,jobTitle,department,accountEnabled,mobilePhone,assignedLicenses",
            )
            .header("authorization", bearer)
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["value"].as_array().unwrap().clone()
    }

    #[tokio::test]
    async fn a_posted_user_takes_its_fields_and_graph_lists_it_so() {
        let config = SimConfig {
            tenants: vec![TenantSpec::with_users(3)],
            ..SimConfig::default()
        };
        let state = Arc::new(SimState::new(
            &config,
            "http://sim.test".into(),
            "http://download.sim.test".into(),
        ));
        let router = crate::api::router(state.clone());
        let held = state.tenant("0").unwrap().subscribed_skus()[0].0.clone();

        let body = json!({
            "displayName": "Zoë Quartermaine",
            "jobTitle": "Harbour master",
            "department": "Docks",
            "accountEnabled": false,
            "mobilePhone": "+44 7700 900123",
            "licenses": [held.to_lowercase()],
        });
        let (status, added) = post_user(&router, &body.to_string()).await;
        assert_eq!(status, StatusCode::CREATED, "{added}");
        assert_eq!(added["index"], 3);
        assert_eq!(added["displayName"], "Zoë Quartermaine");
        assert_eq!(added["jobTitle"], "Harbour master");
        assert_eq!(added["department"], "Docks");
        assert_eq!(added["accountEnabled"], false);
        assert_eq!(added["mobilePhone"], "+44 7700 900123");
        assert!(added["userPrincipalName"].as_str().unwrap().contains('@'));
        let id = added["id"].as_str().unwrap().to_string();

        let users = graph_users(&router, &state).await;
        assert_eq!(users.len(), 4);
        let listed = users.iter().find(|u| u["id"] == id.as_str()).unwrap();
        assert_eq!(listed["displayName"], "Zoë Quartermaine");
        assert_eq!(listed["jobTitle"], "Harbour master");
        assert_eq!(listed["department"], "Docks");
        assert_eq!(listed["accountEnabled"], false);
        assert_eq!(listed["mobilePhone"], "+44 7700 900123");
        let sku_id = crate::catalog::SKUS
            .iter()
            .find(|s| s.part_number == held)
            .unwrap()
            .sku_id;
        assert_eq!(listed["assignedLicenses"][0]["skuId"], sku_id);
        assert_eq!(listed["assignedLicenses"].as_array().unwrap().len(), 1);

        // An empty body still adds a generated user.
        let (status, generated) = post_user(&router, "").await;
        assert_eq!(status, StatusCode::CREATED, "{generated}");
        assert_eq!(generated["index"], 4);
        assert!(
            generated["displayName"]
                .as_str()
                .is_some_and(|n| !n.is_empty())
        );
    }

    #[tokio::test]
    async fn a_posted_user_with_an_unknown_field_or_a_bad_value_is_refused_by_name() {
        let state = Arc::new(SimState::new(
            &SimConfig {
                tenants: vec![TenantSpec::with_users(2)],
                ..SimConfig::default()
            },
            "http://sim.test".into(),
            "http://download.sim.test".into(),
        ));
        let router = crate::api::router(state.clone());
        for (body, named) in [
            (r#"{"displayName": "Ann", "nickname": "an"}"#, "nickname"),
            (r#"{"displayName": ""}"#, "displayName"),
            (r#"{"displayName": 7}"#, "displayName"),
            (r#"{"accountEnabled": "yes"}"#, "accountEnabled"),
            (r#"{"jobTitle": ["a"]}"#, "jobTitle"),
            (r#"{"mobilePhone": 447700900123}"#, "mobilePhone"),
            (r#"{"licenses": "SPE_E3"}"#, "licenses"),
            (r#"{"licenses": ["NOT_A_SKU"]}"#, "licenses"),
            (r#"{"licenses": [3]}"#, "licenses"),
            (r#"["displayName"]"#, "JSON object"),
            (r#"{"displayName": "#, "JSON object"),
        ] {
            let (status, answer) = post_user(&router, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(message.contains(named), "{body}: {message}");
        }
        assert_eq!(state.tenant("0").unwrap().user_count(), 2, "nothing added");
    }
}

/// Revokes every refresh token of a user, as an admin's "revoke sessions" or a password reset.
async fn revoke_sessions(
    State(state): State<Arc<SimState>>,
    Path((tenant, index)): Path<(String, u64)>,
) -> Response {
    let Some(t) = state.tenant(&tenant) else {
        return no_tenant(&tenant);
    };
    let revoked = state.delegated.revoke_user(t.index, index);
    Json(json!({ "revoked": revoked })).into_response()
}

/// Withdraws a user's consent to every app, as removing the app from "My apps" does.
async fn withdraw_consent(
    State(state): State<Arc<SimState>>,
    Path((tenant, index)): Path<(String, u64)>,
) -> Response {
    let Some(t) = state.tenant(&tenant) else {
        return no_tenant(&tenant);
    };
    state.delegated.withdraw_consent(t.index, index);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    days: i64,
}

/// Moves the identity platform's clock on by whole days, so that refresh tokens go idle.
async fn advance_identity_clock(
    State(state): State<Arc<SimState>>,
    Json(advance): Json<Advance>,
) -> Response {
    if !(0..=3650).contains(&advance.days) {
        return refused("days must be from 0 to 3650".to_string());
    }
    crate::delegated::advance_clock(&state, advance.days);
    StatusCode::NO_CONTENT.into_response()
}

/// What the delegated side holds: live refresh tokens and events created.
async fn delegated_stats(State(state): State<Arc<SimState>>) -> Response {
    Json(json!({
        "live_refresh_tokens": state.delegated.live_refresh_tokens(),
        "events_created": state.calendars.created.load(std::sync::atomic::Ordering::SeqCst),
    }))
    .into_response()
}
