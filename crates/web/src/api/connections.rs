//! Connections: list, read, create (the secret written, never read back), update, delete, test,
//! and queue a sync or a clean sync.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::{ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, TenantId};
use serde::{Deserialize, Serialize};
use store::{Connection, ConnectionMode, NewConnection, OrganizationSetup, Store};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, PageParams, maybe_time, time};

/// A connection as the API shows it. Its secret or private key is never part of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub name: String,
    pub tenant_id: String,
    pub client_id: String,
    /// `global`, `usgov`, `usgov-dod`, `china`, or `custom`.
    pub cloud: String,
    pub login_url: String,
    pub graph_url: String,
    /// `direct` (its own tenant) or `partner` (a partner's customers).
    pub mode: String,
    pub datasets: Vec<String>,
    pub create_organization: bool,
    pub credential: CredentialView,
    /// Which users it keeps, in words.
    pub user_filter: String,
    /// The share of a tenant's contacts one run may take away before it is held.
    pub max_drop_percent: u8,
    pub audit_retention_days: u32,
    /// `every 1h`, `cron "0 */4 * * *" Europe/Paris`; none when it syncs only when asked.
    pub schedule: Option<String>,
    pub next_run_at: Option<String>,
    pub last_test: Option<LastTest>,
    pub created_at: String,
}

/// What may be shown of a connection's credential: its kind, and a certificate's facts.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// `secret` or `certificate`.
    pub kind: String,
    /// Always true: a connection cannot be saved without one. The secret itself is write-only.
    pub set: bool,
    pub certificate_thumbprint: Option<String>,
    pub certificate_expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastTest {
    pub at: String,
    pub passed: bool,
}

fn view(connection: &Connection, schedules: &HashMap<i64, store::ScheduleRow>) -> ConnectionView {
    let endpoints = connection.cloud.endpoints();
    let schedule = schedules.get(&connection.id);
    ConnectionView {
        name: connection.name.to_string(),
        tenant_id: connection.tenant_id.to_string(),
        client_id: connection.client_id.to_string(),
        cloud: connection.cloud.name().to_string(),
        login_url: endpoints.login,
        graph_url: endpoints.graph,
        mode: connection.mode.as_str().to_string(),
        datasets: connection
            .datasets
            .iter()
            .map(|d| d.name().to_string())
            .collect(),
        create_organization: connection.create_organization,
        credential: match &connection.certificate {
            None => CredentialView {
                kind: "secret".into(),
                set: true,
                certificate_thumbprint: None,
                certificate_expires_at: None,
            },
            Some(certificate) => CredentialView {
                kind: "certificate".into(),
                set: true,
                certificate_thumbprint: Some(certificate.thumbprint.clone()),
                certificate_expires_at: Some(time(certificate.expires_at.saturating_mul(1000))),
            },
        },
        user_filter: connection.user_filter.describe(),
        max_drop_percent: connection.drop_guard.max_share_percent,
        audit_retention_days: connection.audit_retention.days(),
        schedule: schedule.and_then(|s| s.schedule.clone()),
        next_run_at: maybe_time(schedule.and_then(|s| s.next_run_at)),
        last_test: connection.last_tested_at.map(|at| LastTest {
            at: time(at),
            passed: connection.last_test_passed == Some(true),
        }),
        created_at: time(connection.created_at),
    }
}

async fn schedules(store: &Store) -> ApiResult<HashMap<i64, store::ScheduleRow>> {
    Ok(store
        .schedules()
        .await?
        .into_iter()
        .map(|row| (row.connection_id, row))
        .collect())
}

pub(crate) async fn find(store: &Store, name: &str) -> ApiResult<Connection> {
    store
        .connection(name)
        .await?
        .ok_or_else(|| ApiError::from(sync::SyncError::NoConnection(name.to_string())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    /// By name.
    pub items: Vec<ConnectionView>,
    /// Pass it as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<String>,
}

/// Every saved connection.
#[utoipa::path(get, path = "/connections", tag = "connections", params(PageParams),
    responses((status = 200, body = ConnectionList)))]
pub async fn list_connections(
    State(store): State<Store>,
    ApiQuery(query): ApiQuery<PageParams>,
) -> ApiResult<Json<ConnectionList>> {
    let schedules = schedules(&store).await?;
    let (connections, next_cursor) = query.page(store.connections().await?)?;
    let items = connections.iter().map(|c| view(c, &schedules)).collect();
    Ok(Json(ConnectionList { items, next_cursor }))
}

/// One connection.
#[utoipa::path(get, path = "/connections/{name}", tag = "connections",
    params(("name" = String, Path, description = "The connection's name")),
    responses((status = 200, body = ConnectionView), (status = 404, body = super::ErrorBody)))]
pub async fn get_connection(
    State(store): State<Store>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ConnectionView>> {
    let connection = find(&store, &name).await?;
    Ok(Json(view(&connection, &schedules(&store).await?)))
}

/// A new connection. The secret is written here and never shown again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnectionBody {
    /// 1 to 64 letters, digits, '-', '_' or '.', e.g. contoso-prod.
    pub name: String,
    /// The Directory (tenant) ID.
    pub tenant_id: String,
    /// The Application (client) ID of the app registration.
    pub client_id: String,
    /// The client secret's Value (write-only).
    pub client_secret: String,
    /// `global` (the default), `usgov`, `usgov-dod` or `china`.
    pub cloud: Option<String>,
    /// A custom login base URL (a simulator or a proxy); needs `graph_url` too.
    pub login_url: Option<String>,
    /// A custom Microsoft Graph base URL; needs `login_url` too.
    pub graph_url: Option<String>,
    /// Datasets to sync, or `all`; organization, licenses, users and mailboxes unless given.
    pub datasets: Option<Vec<String>>,
    /// The organisation the tenant belongs to, by exact name (an existing one or a new one).
    pub organization: Option<String>,
    /// Whether a sync may create an organisation for a tenant that fits none (direct: yes
    /// unless false; partner: no unless true).
    pub create_organization: Option<bool>,
    /// The tenant is a Microsoft partner's: sync each of its customers.
    #[serde(default)]
    pub partner: bool,
}

const DEFAULT_DATASETS: [Dataset; 4] = [
    Dataset::Organization,
    Dataset::Licenses,
    Dataset::Users,
    Dataset::Mailboxes,
];

fn datasets_of(asked: Option<&[String]>) -> ApiResult<Vec<Dataset>> {
    let Some(asked) = asked else {
        return Ok(DEFAULT_DATASETS.to_vec());
    };
    let mut datasets = Vec::new();
    for raw in asked.iter().filter(|d| !d.trim().is_empty()) {
        let chosen = if raw.trim().eq_ignore_ascii_case("all") {
            Dataset::ALL.to_vec()
        } else {
            vec![Dataset::parse(raw)?]
        };
        for dataset in chosen {
            if !datasets.contains(&dataset) {
                datasets.push(dataset);
            }
        }
    }
    if datasets.is_empty() {
        return Err(ApiError::invalid(
            "datasets: the list is empty; name at least one dataset, or leave datasets out for the defaults",
        ));
    }
    Ok(datasets)
}

/// Saves a connection. Test it next (`POST /connections/{name}/test`).
#[utoipa::path(post, path = "/connections", tag = "connections",
    request_body = NewConnectionBody,
    responses((status = 201, body = ConnectionView), (status = 409, body = super::ErrorBody)))]
pub async fn create_connection(
    State(store): State<Store>,
    ApiJson(body): ApiJson<NewConnectionBody>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    let name = ConnectionName::parse(&body.name)?;
    let tenant_id = TenantId::parse(&body.tenant_id)?;
    let client_id = ClientId::parse(&body.client_id)?;
    let cloud = match (&body.login_url, &body.graph_url) {
        (Some(login), Some(graph)) => {
            if body.cloud.is_some() {
                return Err(ApiError::invalid(
                    "cloud: give either cloud or login_url with graph_url, not both",
                ));
            }
            Cloud::custom(login, graph)?
        }
        (None, None) => Cloud::parse(body.cloud.as_deref().unwrap_or("global"))?,
        _ => {
            return Err(ApiError::invalid(
                "login_url and graph_url go together: give both for a custom endpoint, or neither",
            ));
        }
    };
    let datasets = datasets_of(body.datasets.as_deref())?;
    let secret = ClientSecret::parse(&body.client_secret)?;
    let organization = match body.organization.as_deref().map(str::trim) {
        Some("") => {
            return Err(ApiError::invalid(
                "organization is empty: give the organisation's name, or leave it out to let the first sync find it",
            ));
        }
        other => other.map(str::to_string),
    };
    if body.partner && organization.is_some() {
        return Err(ApiError::invalid(
            "organization: a partner connection reads many customers; file each with POST /tenants/{tenant_id}/decision instead",
        ));
    }
    let (mode, create_organization) = if body.partner {
        (
            ConnectionMode::Partner,
            body.create_organization.unwrap_or(false),
        )
    } else {
        (
            ConnectionMode::Direct,
            body.create_organization.unwrap_or(true),
        )
    };
    if store.connection(name.as_str()).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "a connection named '{name}' exists already; choose another name, or change that one with PATCH /connections/{name}"
            ),
        ));
    }
    let connection = store
        .add_connection_in(
            NewConnection {
                name,
                tenant_id,
                client_id,
                credential: Credential::Secret(secret),
                cloud,
                datasets,
            },
            mode,
            OrganizationSetup {
                create_organization,
                organization,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&connection, &schedules(&store).await?)),
    ))
}

/// What to change of a connection; what is left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionUpdate {
    /// A new client secret's Value (write-only), replacing the credential.
    pub client_secret: Option<String>,
    /// The share of a tenant's contacts, in percent (0–100; 100 never holds), one run may take
    /// away before it is held.
    pub max_drop_percent: Option<u8>,
    /// How many days audit records are kept (1–3650).
    pub audit_retention_days: Option<u32>,
    /// When it syncs on its own.
    pub schedule: Option<ScheduleBody>,
}

/// Exactly one of: `every` (an interval such as 1h, 5m at least), `cron` (five fields, with an
/// optional IANA `time_zone`), or `off: true` (only when asked).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    pub every: Option<String>,
    pub cron: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub off: bool,
}

fn schedule_of(body: &ScheduleBody, now: i64) -> ApiResult<Option<domain::Schedule>> {
    match (&body.every, &body.cron, body.off) {
        (Some(every), None, false) if body.time_zone.is_none() => {
            Ok(Some(domain::Schedule::every(every)?))
        }
        (None, Some(pattern), false) => Ok(Some(domain::Schedule::cron(
            pattern,
            body.time_zone.as_deref(),
            now,
        )?)),
        (None, None, true) if body.time_zone.is_none() => Ok(None),
        _ => Err(ApiError::invalid(
            "schedule: give exactly one of every (e.g. \"1h\"), cron (e.g. \"0 */4 * * *\", with time_zone if not UTC) or off: true",
        )),
    }
}

/// Changes a connection: its secret, guard, audit retention or schedule.
#[utoipa::path(patch, path = "/connections/{name}", tag = "connections",
    params(("name" = String, Path, description = "The connection's name")),
    request_body = ConnectionUpdate,
    responses((status = 200, body = ConnectionView), (status = 404, body = super::ErrorBody)))]
pub async fn update_connection(
    State(store): State<Store>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ConnectionUpdate>,
) -> ApiResult<Json<ConnectionView>> {
    let connection = find(&store, &name).await?;
    // Everything is checked before anything is saved, so that a bad field changes nothing.
    let secret = body
        .client_secret
        .as_deref()
        .map(ClientSecret::parse)
        .transpose()?;
    if let Some(percent) = body.max_drop_percent
        && percent > 100
    {
        return Err(ApiError::invalid(format!(
            "max_drop_percent: {percent} is over 100; give a share from 0 to 100 (100 never holds a run)"
        )));
    }
    let retention = body
        .audit_retention_days
        .map(|days| {
            domain::AuditRetention::from_days(days).ok_or_else(|| {
                ApiError::invalid(format!(
                    "audit_retention_days: {days} is out of range; give a whole number of days from 1 to 3650"
                ))
            })
        })
        .transpose()?;
    let now = store::now_millis();
    let schedule = body
        .schedule
        .as_ref()
        .map(|s| schedule_of(s, now))
        .transpose()?;
    if let Some(secret) = secret {
        store
            .set_connection_credential(&connection, &Credential::Secret(secret))
            .await?;
    }
    if let Some(max_share_percent) = body.max_drop_percent {
        store
            .set_drop_guard(&name, domain::plan::DropGuard { max_share_percent })
            .await?;
    }
    if let Some(retention) = retention {
        store.set_audit_retention(&name, retention).await?;
    }
    if let Some(schedule) = schedule {
        store.set_schedule(&name, schedule.as_ref(), now).await?;
    }
    let connection = find(&store, &name).await?;
    Ok(Json(view(&connection, &schedules(&store).await?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    pub removed: String,
    /// What removing it here does not do.
    pub note: String,
}

/// Removes a connection. What it synced stays in the store; nothing changes at Microsoft.
#[utoipa::path(delete, path = "/connections/{name}", tag = "connections",
    params(("name" = String, Path, description = "The connection's name")),
    responses((status = 200, body = Removed), (status = 404, body = super::ErrorBody)))]
pub async fn delete_connection(
    State(store): State<Store>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Removed>> {
    let connection = find(&store, &name).await?;
    store.remove_connection(connection.name.as_str()).await?;
    Ok(Json(Removed {
        removed: connection.name.to_string(),
        note: format!(
            "Its organisations and contacts stay in the store. Nothing was revoked at Microsoft: delete the client secret (or certificate) of app {} in Entra ID › App registrations › Certificates & secrets, or the app itself, if nothing else uses it.",
            connection.client_id
        ),
    }))
}

/// What the connection test found, problem by problem with the fix.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestReport {
    pub ok: bool,
    pub problems: Vec<Finding>,
    /// What works today but will not for long.
    pub warnings: Vec<Finding>,
    pub granted_permissions: Vec<String>,
    pub missing_permissions: Vec<String>,
    pub datasets: Vec<DatasetProbe>,
    /// A partner connection's customers.
    pub customers: Vec<CustomerView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Finding {
    pub code: String,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetProbe {
    pub dataset: String,
    /// `ok`, or the problem's code.
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub tenant_id: String,
    pub display_name: String,
    pub state: String,
    pub consent_url: Option<String>,
    pub missing_permissions: Vec<String>,
}

fn finding(problem: &sync::Problem) -> Finding {
    Finding {
        code: problem.code.clone(),
        message: problem.message.clone(),
        fix: problem.fix.clone(),
    }
}

/// Tests a connection now: token, permissions, and a probe of each dataset. The result is kept
/// as the connection's last test.
#[utoipa::path(post, path = "/connections/{name}/test", tag = "connections",
    params(("name" = String, Path, description = "The connection's name")),
    responses((status = 200, body = TestReport), (status = 404, body = super::ErrorBody)))]
pub async fn test_connection(
    State(store): State<Store>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<TestReport>> {
    let connection = find(&store, &name).await?;
    // As few attempts as the command line makes: a person is waiting for the answer.
    let retry = sync::RetryPolicy {
        max_attempts: 3,
        ..sync::RetryPolicy::default()
    };
    let report = sync::test_connection(&store, &connection, retry).await?;
    Ok(Json(TestReport {
        ok: report.ok,
        problems: report.problems.iter().map(finding).collect(),
        warnings: report.warnings.iter().map(finding).collect(),
        granted_permissions: report.granted_permissions,
        missing_permissions: report.missing_permissions,
        datasets: report
            .datasets
            .iter()
            .map(|(dataset, state)| DatasetProbe {
                dataset: dataset.name().to_string(),
                state: state.clone(),
            })
            .collect(),
        customers: report
            .customers
            .into_iter()
            .map(|c| CustomerView {
                tenant_id: c.tenant_id,
                display_name: c.display_name,
                state: c.state,
                consent_url: c.consent_url,
                missing_permissions: c.missing_permissions,
            })
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// List every user again instead of reading only the changes (a clean sync).
    #[serde(default)]
    pub clean: bool,
    /// Let this run take away more of the tenant's contacts than the connection's guard allows.
    #[serde(default)]
    pub accept_drop: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedRun {
    pub run_id: i64,
    /// Always `queued`: a worker (`m365sync serve` or `m365sync worker`) runs it.
    pub status: String,
    /// The request joined a run already queued for the connection.
    pub joined: bool,
}

/// Queues a sync (or, with `clean`, a clean sync) for a worker to run.
#[utoipa::path(post, path = "/connections/{name}/sync", tag = "connections",
    params(("name" = String, Path, description = "The connection's name")),
    request_body(content = Option<SyncBody>, description = "Leave it out for an ordinary sync"),
    responses((status = 202, body = QueuedRun), (status = 404, body = super::ErrorBody)))]
pub async fn sync_connection(
    State(store): State<Store>,
    ApiPath(name): ApiPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<QueuedRun>)> {
    // The body is optional: none at all is an ordinary sync.
    let body: SyncBody = if body.iter().all(u8::is_ascii_whitespace) {
        SyncBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("the body is not a sync request: {e}; send {{\"clean\": true}}, {{\"accept_drop\": true}}, or nothing"),
            )
        })?
    };
    let connection = find(&store, &name).await?;
    let queued = sync::SyncEngine::new(store)
        .confirming_archive(body.accept_drop)
        .queue(&connection, store::RunTrigger::Manual, body.clean)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedRun {
            run_id: queued.run_id,
            status: "queued".into(),
            joined: queued.joined,
        }),
    ))
}
