//! The Office 365 Management Activity API: subscriptions per content type, content blobs made
//! available hour by hour over the last seven days (paged by a `NextPageUri` header), and the
//! audit records in each blob, with the API's AF error codes.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::SimState;
use crate::api::{param, query_pairs};
use crate::identity;
use crate::people::{guid, hash3};
use crate::state::{Tenant, civil_date, lock, parse_utc};

/// The roles of the Office 365 Management APIs (its tokens carry these, Graph's do not).
pub const MANAGEMENT_ROLES: &[&str] = &[
    "ActivityFeed.Read",
    "ActivityFeed.ReadDlp",
    "ServiceHealth.Read",
];
const CONTENT_TYPES: &[&str] = &[
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
];
const BLOBS_PER_PAGE: usize = 10;
const RECORDS_PER_BLOB: u64 = 3;

fn af_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({ "error": { "code": code, "message": message } }).to_string(),
    )
        .into_response()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn iso(seconds: i64) -> String {
    let rem = seconds.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}",
        civil_date(seconds.div_euclid(86_400)),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Checks the bearer token: for this API, of the tenant in the URL, with ActivityFeed.Read.
fn authorize<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    tenant_key: &str,
) -> Result<&'a Tenant, Response> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Ok(token) = identity::verify(&state.signing_key, bearer) else {
        return Err(af_error(
            StatusCode::UNAUTHORIZED,
            "AF10001",
            "The permission set in the access token is empty or invalid.",
        ));
    };
    let Some(tenant) = state.tenant(tenant_key) else {
        return Err(af_error(
            StatusCode::BAD_REQUEST,
            "AF20011",
            &format!("The tenant {tenant_key} does not exist or has been deleted."),
        ));
    };
    if token.tenant_id != tenant.id.to_string() {
        return Err(af_error(
            StatusCode::FORBIDDEN,
            "AF20010",
            "The tenant ID in the URL does not match the tenant of the access token.",
        ));
    }
    if !token.roles.iter().any(|r| r == "ActivityFeed.Read") {
        return Err(af_error(
            StatusCode::UNAUTHORIZED,
            "AF10001",
            "The permission set (ActivityFeed.Read) sent in the request does not include the expected permission.",
        ));
    }
    if let Some(throttled) = crate::api::take_fault_response(state, headers, tenant) {
        return Err(throttled);
    }
    Ok(tenant)
}

fn content_type(raw: Option<&str>) -> Result<&'static str, Response> {
    let raw = raw.unwrap_or_default();
    CONTENT_TYPES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(raw))
        .copied()
        .ok_or_else(|| {
            af_error(
                StatusCode::BAD_REQUEST,
                "AF20020",
                &format!("The content type '{raw}' is not valid."),
            )
        })
}

pub(crate) async fn list(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    let tenant = match authorize(&state, &headers, &tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut started: Vec<String> = lock(&tenant.subscriptions).iter().cloned().collect();
    started.sort();
    let list: Vec<Value> = started
        .iter()
        .map(|c| json!({ "contentType": c, "status": "enabled", "webhook": null }))
        .collect();
    (StatusCode::OK, axum::Json(list)).into_response()
}

pub(crate) async fn start(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let tenant = match authorize(&state, &headers, &tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let pairs = query_pairs(raw.as_deref());
    let content_type = match content_type(param(&pairs, "contentType")) {
        Ok(c) => c,
        Err(r) => return r,
    };
    lock(&tenant.subscriptions).insert(content_type.to_string());
    (
        StatusCode::OK,
        axum::Json(json!({ "contentType": content_type, "status": "enabled", "webhook": null })),
    )
        .into_response()
}

/// When blobs became available in a window: hourly, counted from the simulator's start (so a
/// test that runs for less than an hour sees no new blob appear between two syncs), never in
/// the future. Returned as the blob's hour mark; it became available 30 minutes after it.
fn blob_hours(anchor: i64, start: i64, end: i64, now: i64) -> Vec<i64> {
    let first = anchor - 1800 + (start - (anchor - 1800)).div_euclid(3600) * 3600;
    (0..)
        .map(|n| first + n * 3600)
        .take_while(|h| *h < end)
        .filter(|h| {
            let created = h + 1800;
            created >= start && created < end && created <= now
        })
        .collect()
}

pub(crate) async fn content(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(tenant_key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let tenant = match authorize(&state, &headers, &tenant_key) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let pairs = query_pairs(raw.as_deref());
    let content_type = match content_type(param(&pairs, "contentType")) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !lock(&tenant.subscriptions).contains(content_type) {
        return af_error(
            StatusCode::BAD_REQUEST,
            "AF20022",
            &format!("No subscription found for the specified content type {content_type}."),
        );
    }
    let now = now_secs();
    let (start, end) = match (
        param(&pairs, "startTime").map(parse_utc),
        param(&pairs, "endTime").map(parse_utc),
    ) {
        (None, None) => (now - 86_400, now),
        (Some(Some(s)), Some(Some(e))) => (s, e),
        _ => {
            return af_error(
                StatusCode::BAD_REQUEST,
                "AF20030",
                "Start time and end time must both be present (or both absent) and be valid times.",
            );
        }
    };
    if end <= start || end - start > 86_400 || start < now - 7 * 86_400 {
        return af_error(
            StatusCode::BAD_REQUEST,
            "AF20030",
            "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.",
        );
    }
    let hours = blob_hours(state.started_at, start, end, now);
    let page: usize = param(&pairs, "nextPage")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let blobs: Vec<Value> = hours
        .iter()
        .skip(page * BLOBS_PER_PAGE)
        .take(BLOBS_PER_PAGE)
        .map(|hour| {
            let content_id = format!("{}${}${}", hour, content_type.replace('.', ""), tenant.index);
            json!({
                "contentType": content_type,
                "contentId": content_id,
                "contentUri": format!("{}/api/v1.0/{}/activity/feed/audit/{content_id}", state.base_url, tenant.id),
                "contentCreated": format!("{}.000Z", iso(hour + 1800)),
                "contentExpiration": format!("{}.000Z", iso(hour + 1800 + 7 * 86_400)),
            })
        })
        .collect();
    let mut response = (StatusCode::OK, axum::Json(blobs)).into_response();
    if (page + 1) * BLOBS_PER_PAGE < hours.len() {
        let next = format!(
            "{}/api/v1.0/{}/activity/feed/subscriptions/content?contentType={content_type}&startTime={}&endTime={}&nextPage={}",
            state.base_url,
            tenant.id,
            iso(start),
            iso(end),
            page + 1
        );
        if let Ok(v) = HeaderValue::from_str(&next) {
            response.headers_mut().insert("NextPageUri", v);
        }
    }
    response
}

pub(crate) async fn blob(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path((tenant_key, content_id)): Path<(String, String)>,
) -> Response {
    let tenant = match authorize(&state, &headers, &tenant_key) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut parts = content_id.split('$');
    let (Some(hour), Some(kind), Some(owner)) = (
        parts.next().and_then(|h| h.parse::<i64>().ok()),
        parts.next(),
        parts.next(),
    ) else {
        return af_error(
            StatusCode::BAD_REQUEST,
            "AF20052",
            "The content ID in the URL is invalid.",
        );
    };
    if owner != tenant.index.to_string() {
        return af_error(
            StatusCode::BAD_REQUEST,
            "AF20052",
            "The content ID in the URL is invalid.",
        );
    }
    if hour + 1800 < now_secs() - 7 * 86_400 {
        return af_error(
            StatusCode::BAD_REQUEST,
            "AF20051",
            "The content requested has expired; content is kept for 7 days.",
        );
    }
    let (record_type, workload, operation) = match kind {
        "AuditAzureActiveDirectory" => (15, "AzureActiveDirectory", "UserLoggedIn"),
        "AuditExchange" => (1, "Exchange", "Set-Mailbox"),
        "AuditSharePoint" => (6, "SharePoint", "FileAccessed"),
        _ => (25, "MicrosoftTeams", "TeamCreated"),
    };
    let records: Vec<Value> = (0..RECORDS_PER_BLOB)
        .map(|n| {
            let h = hash3(hour as u64, n, kind.len() as u64 ^ tenant.index);
            let user = tenant.user(h % tenant.index_space().max(1));
            let upn = user.as_ref().map(|u| u.upn.clone()).unwrap_or_else(|| format!("former.staff@{}", tenant.custom_domain));
            // Exchange writes the client's port after its address, and its mailbox auditing
            // names the field ClientIPAddress; the other workloads write a bare ClientIP.
            let (ip_field, ip) = match kind {
                "AuditExchange" => ("ClientIPAddress", format!("[2001:db8::{:x}]:{}", h % 250, 49_152 + h % 16_000)),
                _ => ("ClientIP", format!("203.0.113.{}", h % 250)),
            };
            let mut record = json!({
                "Id": guid(h, hash3(h, n, 0x1d)).to_string(),
                "RecordType": record_type,
                // The common schema writes times without a zone: they are UTC.
                "CreationTime": iso(hour + (h % 3600) as i64),
                "Operation": operation,
                "OrganizationId": tenant.id.to_string(),
                "UserType": 0,
                "UserKey": format!("1003{:012X}", h % 0xFFFF_FFFF_FFFF),
                "Workload": workload,
                "ResultStatus": "Succeeded",
                "ObjectId": format!("https://{}/sites/intranet/Shared Documents/report-{}.docx", tenant.custom_domain, h % 100),
                "UserId": upn,
            });
            record[ip_field] = json!(ip);
            record
        })
        .collect();
    (StatusCode::OK, axum::Json(records)).into_response()
}
