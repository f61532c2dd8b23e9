//! The Graph resources: authorisation from the bearer token, faults, `$select`, paging.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::catalog::SKUS;
use crate::identity::{self, TokenRejection};
use crate::people::mix;
use crate::state::{Tenant, lock};
use crate::{SimState, activity, control, delta, inventory, partner, reports};

pub(crate) const USER_ROLES: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ORGANIZATION_ROLES: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub(crate) const REPORT_ROLES: &[&str] = &["Reports.Read.All"];

pub(crate) use crate::schema::USER_FIELDS;
pub(crate) const USER_DEFAULT_FIELDS: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];
const ORGANIZATION_FIELDS: &[&str] = &[
    "id",
    "displayName",
    "verifiedDomains",
    "countryLetterCode",
    "tenantType",
    "createdDateTime",
    "city",
    "country",
    "preferredLanguage",
    "technicalNotificationMails",
    "assignedPlans",
    "onPremisesSyncEnabled",
];
const SKU_FIELDS: &[&str] = &[
    "id",
    "skuId",
    "skuPartNumber",
    "appliesTo",
    "capabilityStatus",
    "consumedUnits",
    "prepaidUnits",
    "servicePlans",
    "accountId",
    "accountName",
    "subscriptionIds",
];

pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(identity::token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(identity::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(identity::signing_keys))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(crate::delegated::authorize_page).post(crate::delegated::authorize_answer),
        )
        .merge(calendar_routes())
        .route("/v1.0/organization", get(organization))
        .route("/v1.0/$batch", post(crate::batch::batch))
        .route("/v1.0/users", get(users))
        .route("/v1.0/users/delta", get(delta::users_delta))
        .route("/v1.0/users/$count", get(users_count))
        .route("/v1.0/users/{id}", get(user_by_id))
        .route("/v1.0/subscribedSkus", get(subscribed_skus))
        .route(
            "/v1.0/directory/subscriptions",
            get(inventory::company_subscriptions),
        )
        .route("/v1.0/reports/{function}", get(reports::report))
        .route(
            "/v1.0/admin/reportSettings",
            get(reports::report_settings).patch(reports::update_report_settings),
        )
        .route(
            "/api/v1.0/{tenant}/activity/feed/subscriptions/list",
            get(activity::list),
        )
        .route(
            "/api/v1.0/{tenant}/activity/feed/subscriptions/start",
            post(activity::start),
        )
        .route(
            "/api/v1.0/{tenant}/activity/feed/subscriptions/content",
            get(activity::content),
        )
        .route(
            "/api/v1.0/{tenant}/activity/feed/audit/{content_id}",
            get(activity::blob),
        )
        .route("/v1.0/domains", get(inventory::domains))
        .route("/v1.0/devices", get(inventory::devices))
        .route(
            "/v1.0/deviceManagement/managedDevices",
            get(inventory::managed_devices),
        )
        .route(
            "/v1.0/deviceManagement/detectedApps",
            get(inventory::detected_apps),
        )
        .route(
            "/v1.0/deviceManagement/detectedApps/{id}/managedDevices",
            get(inventory::detected_app_devices),
        )
        .route("/v1.0/groups", get(inventory::groups))
        .route("/v1.0/groups/delta", get(delta::groups_delta))
        .route("/v1.0/groups/{id}/members", get(inventory::group_members))
        .route("/v1.0/directoryRoles", get(inventory::directory_roles))
        .route(
            "/v1.0/directoryRoles/{id}/members",
            get(inventory::role_members),
        )
        .route(
            "/v1.0/admin/serviceAnnouncement/healthOverviews",
            get(inventory::health_overviews),
        )
        .route(
            "/v1.0/admin/serviceAnnouncement/issues",
            get(inventory::issues),
        )
        .route(
            "/v1.0/admin/serviceAnnouncement/messages",
            get(inventory::messages),
        )
        .route("/v1.0/applications", get(inventory::applications))
        .route(
            "/v1.0/tenantRelationships/delegatedAdminCustomers",
            get(partner::delegated_admin_customers),
        )
        .route("/v1.0/contracts", get(partner::contracts))
        .route(
            "/v1.0/identityGovernance/termsOfUse/agreements",
            get(inventory::agreements),
        )
        .route(
            "/v1.0/identity/apiConnectors",
            get(inventory::api_connectors),
        )
        .merge(control::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), limits))
        .layer(middleware::from_fn_with_state(state.clone(), latency))
        .with_state(state)
}

/// Outlook's calendar resources, for the signed-in user (`/me`) and for any mailbox.
fn calendar_routes() -> Router<Arc<SimState>> {
    use crate::calendar as c;
    Router::new()
        .route("/v1.0/me", get(c::me))
        .route("/v1.0/me/mailboxSettings", get(c::my_settings))
        .route("/v1.0/users/{id}/mailboxSettings", get(c::user_settings))
        .route("/v1.0/me/calendarView", get(c::my_calendar_view))
        .route("/v1.0/me/calendar/calendarView", get(c::my_calendar_view))
        .route("/v1.0/users/{id}/calendarView", get(c::user_calendar_view))
        .route(
            "/v1.0/users/{id}/calendar/calendarView",
            get(c::user_calendar_view),
        )
        .route("/v1.0/me/calendar/getSchedule", post(c::my_schedule))
        .route(
            "/v1.0/users/{id}/calendar/getSchedule",
            post(c::user_schedule),
        )
        .route("/v1.0/me/events", post(c::my_create))
        .route("/v1.0/me/calendar/events", post(c::my_create))
        .route("/v1.0/users/{id}/events", post(c::user_create))
        .route("/v1.0/users/{id}/calendar/events", post(c::user_create))
        .route(
            "/v1.0/me/events/{event}",
            get(c::my_event_get)
                .patch(c::my_event_patch)
                .delete(c::my_event_delete),
        )
        .route("/v1.0/me/events/{event}/cancel", post(c::my_event_cancel))
        .route(
            "/v1.0/users/{id}/events/{event}",
            get(c::user_event_get)
                .patch(c::user_event_patch)
                .delete(c::user_event_delete),
        )
        .route(
            "/v1.0/users/{id}/events/{event}/cancel",
            post(c::user_event_cancel),
        )
        .route("/_sim/calendars/hold", axum::routing::put(c::set_hold))
}

/// The simulator's own latency, then the connection-level faults injected for the caller's
/// tenant (known from its bearer token): a slow answer, or a connection dropped mid-answer.
async fn latency(State(state): State<Arc<SimState>>, request: Request, next: Next) -> Response {
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    // Checking the token costs a signature per request: only when such a fault is pending.
    let pending = state.tenants.iter().any(|t| {
        let faults = lock(&t.faults);
        faults.slow > 0 || faults.resets > 0 || faults.foreign_base.is_some()
    });
    let tenant = pending
        .then(|| identity::verify(&state.signing_key, bearer_of(request.headers())).ok())
        .flatten()
        .and_then(|token| state.tenant(&token.tenant_id));
    let foreign = tenant.and_then(|tenant| lock(&tenant.faults).foreign_base.clone());
    let (slow, reset) = tenant.map_or((None, false), |tenant| {
        let mut faults = lock(&tenant.faults);
        let slow = (faults.slow > 0).then(|| {
            faults.slow -= 1;
            std::time::Duration::from_millis(faults.slow_millis)
        });
        let reset = faults.resets > 0;
        if reset {
            faults.resets -= 1;
        }
        (slow, reset)
    });
    if let Some(wait) = slow {
        tokio::time::sleep(wait).await;
    }
    if reset {
        // Headers go out, then the body fails: hyper drops the connection under the client.
        let broken = futures_util::stream::once(async {
            Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by the simulator",
            ))
        });
        return (StatusCode::OK, axum::body::Body::from_stream(broken)).into_response();
    }
    let response = next.run(request).await;
    match foreign {
        Some(base) => rewrite_links(response, &state.base_url, &base).await,
        None => response,
    }
}

/// An answer whose links name `base` instead of the simulator, as a proxy rewriting them sends.
async fn rewrite_links(response: Response, own: &str, base: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_GATEWAY, "the answer could not be read").into_response();
    };
    let text = String::from_utf8_lossy(&bytes).replace(own, base);
    parts.headers.remove("content-length");
    Response::from_parts(parts, axum::body::Body::from(text))
}

/// Microsoft's documented limits, when the simulator enforces them: the request is counted
/// for its app and tenant (known from its bearer token) and refused with 429 past its quota;
/// past 80 % of a quota the answer says how much is used, as Graph's does.
async fn limits(State(state): State<Arc<SimState>>, request: Request, next: Next) -> Response {
    let Some((limits, limiter)) = &state.limits else {
        return next.run(request).await;
    };
    // A request without a valid token is refused by its handler, uncounted.
    let Ok(token) = identity::verify(&state.signing_key, bearer_of(request.headers())) else {
        return next.run(request).await;
    };
    let Some(tenant) = state.tenant(&token.tenant_id) else {
        return next.run(request).await;
    };
    let charges = crate::limits::charges(
        limits,
        request.uri().path(),
        request.uri().query().unwrap_or_default(),
        tenant.user_count(),
    );
    if charges.is_empty() {
        return next.run(request).await;
    }
    let verdict = limiter.admit(
        &token.app_id,
        &tenant.id.to_string(),
        &charges,
        state.elapsed(),
    );
    let mut response = match &verdict.refused {
        Some((wait, counter)) => {
            state.count(|s| s.over_limit += 1);
            let mut refused = graph_error(
                &state,
                request.headers(),
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.",
            );
            let headers = refused.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&crate::limits::retry_after(*wait)) {
                headers.insert("retry-after", v);
            }
            let scope = format!(
                "Tenant_Application/ReadWrite/{}/{}",
                token.app_id, tenant.id
            );
            if let Ok(v) = HeaderValue::from_str(&scope) {
                headers.insert("x-ms-throttle-scope", v);
            }
            headers.insert(
                "x-ms-throttle-information",
                HeaderValue::from_static(crate::limits::information(counter)),
            );
            refused
        }
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    if verdict.used > 0.8 {
        // Graph reports 0.8 to 1.8.
        let share = format!("{:.3}", verdict.used.min(1.8));
        if let Ok(v) = HeaderValue::from_str(&share) {
            headers.insert("x-ms-throttle-limit-percentage", v);
        }
    }
    if let Some(units) = verdict.resource_units {
        headers.insert("x-ms-resource-unit", HeaderValue::from(units));
    }
    response
}

async fn not_found(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let segment = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    graph_error(
        &state,
        &headers,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
    )
}

/// A Graph error body with its inner request id and date, as Graph sends them.
pub(crate) fn graph_error(
    state: &SimState,
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let request_id = state.request_id();
    let date = now_iso();
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id(headers).unwrap_or_else(|| request_id.clone()),
            }
        }
    });
    let mut response = (status, body.to_string()).into_response();
    decorate(&mut response, &request_id, headers);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static(r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#),
        );
    }
    response
}

fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let day = crate::state::civil_date((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{day}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn client_request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn decorate(response: &mut Response, request_id: &str, headers: &HeaderMap) {
    let h = response.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"),
    );
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
    if let Some(v) = client_request_id(headers).and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert("client-request-id", v);
    }
}

pub(crate) fn graph_ok(state: &SimState, headers: &HeaderMap, body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    decorate(&mut response, &state.request_id(), headers);
    response
}

/// Checks the bearer token and the permission, then applies any fault injected for the tenant.
pub(crate) fn authorize<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    accepted: &[&str],
) -> Result<&'a Tenant, Response> {
    state.count(|s| s.graph_requests += 1);
    let bearer = bearer_of(headers);
    let verified = identity::verify(&state.signing_key, bearer).map_err(|rejection| {
        let message = match rejection {
            TokenRejection::Missing => "Access token is empty.",
            TokenRejection::Invalid => "Access token validation failure. Invalid audience.",
            TokenRejection::Expired => "Lifetime validation failed, the token is expired.",
        };
        graph_error(
            state,
            headers,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    })?;
    let Some(tenant) = state.tenant(&verified.tenant_id) else {
        return Err(graph_error(
            state,
            headers,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        ));
    };
    if tenant.token_expired(verified.generation) {
        return Err(graph_error(
            state,
            headers,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        ));
    }
    if let Some(response) = take_fault_response(state, headers, tenant) {
        return Err(response);
    }
    if !accepted
        .iter()
        .any(|a| verified.roles.iter().any(|r| r == a))
    {
        return Err(graph_error(
            state,
            headers,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    Ok(tenant)
}

type FaultAnswer = (StatusCode, &'static str, &'static str, Option<String>);

/// A throttling or unavailability fault injected for the tenant, as a ready response.
pub(crate) fn take_fault_response(
    state: &SimState,
    headers: &HeaderMap,
    tenant: &Tenant,
) -> Option<Response> {
    let (status, code, message, retry_after) = take_fault(tenant)?;
    state.count(|s| s.throttled += 1);
    let mut response = graph_error(state, headers, status, code, message);
    if let Some(v) = retry_after.and_then(|r| HeaderValue::from_str(&r).ok()) {
        response.headers_mut().insert("retry-after", v);
    }
    Some(response)
}

fn take_fault(tenant: &Tenant) -> Option<FaultAnswer> {
    let mut faults = lock(&tenant.faults);
    if faults.throttle > 0 {
        faults.throttle -= 1;
        return Some((
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
            faults.throttle_retry_after.clone(),
        ));
    }
    if let Some((every, retry_after)) = faults.throttle_every.clone() {
        faults.requests_seen += 1;
        if faults.requests_seen.is_multiple_of(every) {
            return Some((
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.",
                retry_after,
            ));
        }
    }
    if faults.unavailable > 0 {
        faults.unavailable -= 1;
        return Some((
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
            faults.unavailable_retry_after.clone(),
        ));
    }
    None
}

pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The `$select` fields, checked against the type's properties; `id` always comes back.
fn selection(
    state: &SimState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    known: &[&'static str],
    type_name: &str,
) -> Result<Option<Vec<&'static str>>, Response> {
    let Some(raw) = param(pairs, "$select") else {
        return Ok(None);
    };
    let mut fields = vec!["id"];
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(found) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) else {
            return Err(graph_error(
                state,
                headers,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!(
                    "Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
                ),
            ));
        };
        if !fields.contains(found) {
            fields.push(found);
        }
    }
    Ok(Some(fields))
}

pub(crate) fn project(full: Value, fields: &[&str]) -> Value {
    let Value::Object(map) = full else {
        return full;
    };
    Value::Object(
        map.into_iter()
            .filter(|(k, _)| fields.contains(&k.as_str()))
            .collect(),
    )
}

pub(crate) fn context(state: &SimState, set: &str, fields: Option<&[&str]>) -> String {
    match fields {
        Some(f) => format!("{}/v1.0/$metadata#{set}({})", state.base_url, f.join(",")),
        None => format!("{}/v1.0/$metadata#{set}", state.base_url),
    }
}

fn unsupported_options(
    state: &SimState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    allowed: &[&str],
) -> Result<(), Response> {
    match pairs
        .iter()
        .find(|(k, _)| k.starts_with('$') && !allowed.iter().any(|a| a.eq_ignore_ascii_case(k)))
    {
        Some((k, _)) => Err(graph_error(
            state,
            headers,
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            &format!(
                "The query option '{k}' is not supported by this endpoint of the m365sync simulator."
            ),
        )),
        None => Ok(()),
    }
}

/// What a collection endpoint accepts: who may read it, which query options, which properties.
pub(crate) struct Resource {
    pub(crate) roles: &'static [&'static str],
    pub(crate) options: &'static [&'static str],
    pub(crate) fields: &'static [&'static str],
    pub(crate) type_name: &'static str,
}

/// A checked request: the caller's tenant, the query pairs, and the `$select` fields if any.
pub(crate) type Opened<'a> = (&'a Tenant, Vec<(String, String)>, Option<Vec<&'static str>>);

pub(crate) fn open<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    raw: Option<&str>,
    resource: &Resource,
) -> Result<Opened<'a>, Response> {
    let tenant = authorize(state, headers, resource.roles)?;
    let pairs = query_pairs(raw);
    unsupported_options(state, headers, &pairs, resource.options)?;
    let fields = selection(state, headers, &pairs, resource.fields, resource.type_name)?;
    Ok((tenant, pairs, fields))
}

const ORGANIZATION: Resource = Resource {
    roles: ORGANIZATION_ROLES,
    options: &["$select"],
    fields: ORGANIZATION_FIELDS,
    type_name: "organization",
};
const SUBSCRIBED_SKUS: Resource = Resource {
    roles: ORGANIZATION_ROLES,
    options: &["$select"],
    fields: SKU_FIELDS,
    type_name: "subscribedSku",
};
const USERS: Resource = Resource {
    roles: USER_ROLES,
    options: &["$select", "$top", "$skiptoken"],
    fields: &USER_FIELDS,
    type_name: "user",
};
const USER: Resource = Resource {
    roles: USER_ROLES,
    options: &["$select"],
    fields: &USER_FIELDS,
    type_name: "user",
};

async fn organization(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _pairs, fields) = match open(&state, &headers, raw.as_deref(), &ORGANIZATION) {
        Ok(opened) => opened,
        Err(r) => return r,
    };
    let full = json!({
        "id": tenant.id.to_string(),
        "displayName": tenant.display_name,
        "countryLetterCode": "GB",
        "country": null,
        "city": "London",
        "preferredLanguage": "en",
        "tenantType": "AAD",
        "createdDateTime": "2016-03-01T09:12:44Z",
        "onPremisesSyncEnabled": null,
        "technicalNotificationMails": [format!("it@{}", tenant.custom_domain)],
        "assignedPlans": [],
        "verifiedDomains": [
            {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": false, "isInitial": true, "name": tenant.initial_domain, "type": "Managed"},
            {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": true, "isInitial": false, "name": tenant.custom_domain, "type": "Managed"},
        ],
    });
    let item = match &fields {
        Some(f) => project(full, f),
        None => full,
    };
    let body = json!({ "@odata.context": context(&state, "organization", fields.as_deref()), "value": [item] });
    graph_ok(&state, &headers, body.to_string())
}

async fn subscribed_skus(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _pairs, fields) = match open(&state, &headers, raw.as_deref(), &SUBSCRIBED_SKUS) {
        Ok(opened) => opened,
        Err(r) => return r,
    };
    let items: Vec<Value> = tenant
        .seats()
        .into_iter()
        .map(|(i, used, enabled)| {
            let sku = &SKUS[i];
            let full = json!({
                "id": format!("{}_{}", tenant.id, sku.sku_id),
                "accountId": tenant.id.to_string(),
                "accountName": tenant.display_name,
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": used,
                "skuId": sku.sku_id,
                "skuPartNumber": sku.part_number,
                "subscriptionIds": [crate::people::guid(mix(i as u64 ^ tenant.id.as_u128() as u64), 77).to_string()],
                "prepaidUnits": {"enabled": enabled, "suspended": 0, "warning": 0, "lockedOut": 0},
                "servicePlans": sku.plans.iter().map(|p| json!({
                    "servicePlanId": p.id, "servicePlanName": p.name, "provisioningStatus": "Success", "appliesTo": "User",
                })).collect::<Vec<_>>(),
            });
            match &fields {
                Some(f) => project(full, f),
                None => full,
            }
        })
        .collect();
    let body = json!({ "@odata.context": context(&state, "subscribedSkus", fields.as_deref()), "value": items });
    graph_ok(&state, &headers, body.to_string())
}

/// Skip tokens are opaque to clients; inside they carry the tenant, the next index and the page.
pub(crate) fn encode_skiptoken(tenant: u64, start: u64, page: u32) -> String {
    let check = mix(tenant ^ start.rotate_left(17) ^ u64::from(page)) % 1_000_000;
    URL_SAFE_NO_PAD.encode(format!("{tenant}:{start}:{page}:{check}"))
}

pub(crate) fn decode_skiptoken(token: &str, tenant: u64) -> Option<(u64, u32)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = text.split(':').map(|p| p.parse::<u64>().ok());
    let (t, start, page, check) = (
        parts.next()??,
        parts.next()??,
        parts.next()??,
        parts.next()??,
    );
    let expected = mix(t ^ start.rotate_left(17) ^ page) % 1_000_000;
    (t == tenant && check == expected).then_some((start, page as u32))
}

async fn users(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields) = match open(&state, &headers, raw.as_deref(), &USERS) {
        Ok(opened) => opened,
        Err(r) => return r,
    };
    if let Err(refusal) = listable(&state, &headers, fields.as_deref()) {
        return refusal;
    }
    let top = match param(&pairs, "$top") {
        None => 100,
        Some(raw_top) => match raw_top.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return graph_error(
                    &state,
                    &headers,
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    &format!(
                        "Invalid page size specified: '{raw_top}'. Must be between 1 and 999 inclusive."
                    ),
                );
            }
        },
    };
    let (start, page) = match param(&pairs, "$skiptoken") {
        None => (0, 1),
        Some(token) => match decode_skiptoken(token, tenant.index) {
            Some(position) => position,
            None => {
                return graph_error(
                    &state,
                    &headers,
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Invalid or expired skip token.",
                );
            }
        },
    };
    let sign_ins = fields
        .as_deref()
        .is_some_and(|f| f.contains(&"signInActivity"));
    // Pages of the user listing proper; a read of sign-in activity is another dataset's.
    if !sign_ins {
        state.count(|s| s.users_pages += 1);
    }
    if let Some(refusal) = users_page_refusal(&state, &headers, tenant, page) {
        return refusal;
    }
    if sign_ins && let Err(refusal) = sign_in_activity_allowed(&state, &headers, tenant, top) {
        return refusal;
    }
    let (found, next) = tenant.users_from(start, top);
    let effective = fields.as_deref().unwrap_or(USER_DEFAULT_FIELDS);
    let value: Vec<Value> = found
        .iter()
        .map(|u| {
            let mut json = u.select(effective);
            if sign_ins {
                json["signInActivity"] = sign_in_activity(&state, u);
            }
            json
        })
        .collect();
    let mut body =
        json!({ "@odata.context": context(&state, "users", fields.as_deref()), "value": value });
    if let Some(next_index) = next {
        let mut link = format!("{}/v1.0/users?", state.base_url);
        if let Some(select) = param(&pairs, "$select") {
            link.push_str(&format!(
                "$select={}&",
                url::form_urlencoded::byte_serialize(select.as_bytes()).collect::<String>()
            ));
        }
        if param(&pairs, "$top").is_some() {
            link.push_str(&format!("$top={top}&"));
        }
        link.push_str(&format!(
            "$skiptoken={}",
            encode_skiptoken(tenant.index, next_index, page + 1)
        ));
        body["@odata.nextLink"] = json!(link);
    }
    users_page_answer(&state, &headers, tenant, page, body.to_string())
}

/// What a users page answers instead of itself while a fault aims at it: a failure that lasts
/// until cleared, or a storm that passes.
pub(crate) fn users_page_refusal(
    state: &SimState,
    headers: &HeaderMap,
    tenant: &Tenant,
    page: u32,
) -> Option<Response> {
    let mut faults = lock(&tenant.faults);
    if let Some((fail_page, status)) = faults.fail_users_page
        && fail_page == page
    {
        drop(faults);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(graph_error(
            state,
            headers,
            status,
            "generalException",
            "An internal server error occurred.",
        ));
    }
    let (storm_page, status, left, retry_after) = faults.users_page_storm.clone()?;
    if storm_page != page || left == 0 {
        return None;
    }
    faults.users_page_storm = Some((storm_page, status, left - 1, retry_after.clone()));
    drop(faults);
    state.count(|s| s.throttled += 1);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (code, message) = match status {
        StatusCode::TOO_MANY_REQUESTS => ("TooManyRequests", "Please retry again later."),
        StatusCode::GATEWAY_TIMEOUT => ("gatewayTimeout", "The gateway timed out."),
        _ => (
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ),
    };
    let mut response = graph_error(state, headers, status, code, message);
    if let Some(v) = retry_after.and_then(|r| HeaderValue::from_str(&r).ok()) {
        response.headers_mut().insert("retry-after", v);
    }
    Some(response)
}

/// A users page as sent, spoiled by whichever fault aims at it: cut off mid-JSON in a whole
/// answer, padded to an enormous size, or cut off mid-body on the wire.
pub(crate) fn users_page_answer(
    state: &SimState,
    headers: &HeaderMap,
    tenant: &Tenant,
    page: u32,
    mut text: String,
) -> Response {
    let (malformed, huge, cut) = {
        let mut faults = lock(&tenant.faults);
        let cut = match faults.cut_users_page {
            Some((cut_page, left)) if cut_page == page && left > 0 => {
                faults.cut_users_page = Some((cut_page, left - 1));
                true
            }
            _ => false,
        };
        (
            faults.malformed_users_page == Some(page),
            faults
                .huge_users_page
                .filter(|(huge_page, _)| *huge_page == page)
                .map(|(_, megabytes)| megabytes as usize * 1_000_000),
            cut,
        )
    };
    if malformed {
        text.truncate(text.len() / 2);
    }
    if let Some(size) = huge
        && let Some(at) = text.find('[')
    {
        // Whitespace is valid JSON between tokens: the page means the same, only larger.
        let padding = " ".repeat(size.saturating_sub(text.len()));
        text.insert_str(at + 1, &padding);
    }
    let mut response = graph_ok(state, headers, String::new());
    if cut {
        // The headers promise the whole page; half of it comes, then the connection drops.
        let length = text.len();
        let mut half = text.into_bytes();
        half.truncate(length / 2);
        use futures_util::StreamExt as _;
        let body = futures_util::stream::once(async { Ok(axum::body::Bytes::from(half)) }).chain(
            futures_util::stream::once(async {
                // Long enough for the headers and the first half to reach the client.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection dropped by the simulator mid-body",
                ))
            }),
        );
        *response.body_mut() = axum::body::Body::from_stream(body);
        if let Ok(v) = HeaderValue::from_str(&length.to_string()) {
            response.headers_mut().insert("content-length", v);
        }
    } else {
        *response.body_mut() = axum::body::Body::from(text);
    }
    response
}

/// A listing of users refuses, as Graph does with 501, the properties it serves only on a single
/// user.
pub(crate) fn listable(
    state: &SimState,
    headers: &HeaderMap,
    fields: Option<&[&str]>,
) -> Result<(), Response> {
    if fields.is_some_and(|f| {
        f.iter()
            .any(|n| crate::schema::SINGLE_USER_ONLY.contains(n))
    }) {
        return Err(graph_error(
            state,
            headers,
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "This operation target is not yet supported.",
        ));
    }
    Ok(())
}

/// Sign-in activity needs AuditLog.Read.All beside the users permission, a tenant with Entra ID
/// P1 or P2, and pages of at most 120 users.
fn sign_in_activity_allowed(
    state: &SimState,
    headers: &HeaderMap,
    tenant: &Tenant,
    top: usize,
) -> Result<(), Response> {
    let roles = granted_roles(state, headers);
    // Directory.Read.All does not cover it: sign-in activity is audit data.
    if !roles.iter().any(|r| r == "AuditLog.Read.All") {
        return Err(graph_error(
            state,
            headers,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    if !tenant.premium.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(graph_error(
            state,
            headers,
            StatusCode::FORBIDDEN,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license",
        ));
    }
    if top > 120 {
        return Err(graph_error(
            state,
            headers,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "When signInActivity is selected the page size ($top) must be 120 or less.",
        ));
    }
    Ok(())
}

/// When a user last signed in, interactively or not; never for about one user in eight.
fn sign_in_activity(state: &SimState, user: &crate::people::SimUser) -> Value {
    let h = mix(user.id.as_u128() as u64 ^ 0x5161);
    if h.is_multiple_of(8) {
        return json!({
            "lastSignInDateTime": null, "lastSignInRequestId": null,
            "lastNonInteractiveSignInDateTime": null, "lastNonInteractiveSignInRequestId": null,
            "lastSuccessfulSignInDateTime": null, "lastSuccessfulSignInRequestId": null,
        });
    }
    let at = |days_ago: u64, salt: u64| {
        let seconds = (state.report_day + 1) * 86_400
            - (days_ago * 86_400) as i64
            - (mix(h ^ salt) % 86_400) as i64;
        format!("{}Z", crate::activity::iso(seconds))
    };
    let request = |salt: u64| crate::people::guid(h, salt).to_string();
    let interactive = h % 90;
    let non_interactive = (h >> 8) % 7;
    json!({
        "lastSignInDateTime": at(interactive, 1), "lastSignInRequestId": request(1),
        "lastNonInteractiveSignInDateTime": at(non_interactive, 2), "lastNonInteractiveSignInRequestId": request(2),
        "lastSuccessfulSignInDateTime": at(interactive, 1), "lastSuccessfulSignInRequestId": request(1),
    })
}

pub(crate) fn bearer_of(headers: &HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or_default()
}

/// The application permissions in the request's token (already checked by `authorize`).
pub(crate) fn granted_roles(state: &SimState, headers: &HeaderMap) -> Vec<String> {
    let bearer = bearer_of(headers);
    identity::verify(&state.signing_key, bearer)
        .map(|t| t.roles)
        .unwrap_or_default()
}

/// `/users/$count`: an advanced query, answered only with `ConsistencyLevel: eventual`.
async fn users_count(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let tenant = match authorize(&state, &headers, USER_ROLES) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let eventual = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    if !eventual {
        return graph_error(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Count is not currently supported without the ConsistencyLevel header set to eventual.",
        );
    }
    let mut response = graph_ok(&state, &headers, tenant.user_count().to_string());
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain;charset=utf-8"),
    );
    response
}

async fn user_by_id(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _pairs, fields) = match open(&state, &headers, raw.as_deref(), &USER) {
        Ok(opened) => opened,
        Err(r) => return r,
    };
    let found = uuid::Uuid::parse_str(&id)
        .ok()
        .and_then(|uuid| tenant.population.index_of(&uuid))
        .and_then(|index| tenant.user(index));
    let Some(user) = found else {
        return graph_error(
            &state,
            &headers,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let mut item = user.select(fields.as_deref().unwrap_or(USER_DEFAULT_FIELDS));
    item["@odata.context"] = json!(format!("{}/v1.0/$metadata#users/$entity", state.base_url));
    graph_ok(&state, &headers, item.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptokens_round_trip_and_reject_tampering() {
        let token = encode_skiptoken(3, 12_345, 7);
        assert_eq!(decode_skiptoken(&token, 3), Some((12_345, 7)));
        assert_eq!(decode_skiptoken(&token, 4), None);
        let forged = URL_SAFE_NO_PAD.encode("3:99:7:1");
        assert_eq!(decode_skiptoken(&forged, 3), None);
        assert_eq!(decode_skiptoken("%%%", 3), None);
    }
}
