//! Connections: the list with each one's last test and runs, add and edit (the secret
//! write-only), the connection test with its diagnosis, sync now, clean sync, cancel, and delete
//! with what to remove in Entra ID.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use domain::{ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, TenantId};
use graph::RetryPolicy;
use serde::Deserialize;
use store::{Connection, ConnectionMode, NewConnection, OrganizationSetup, RunRow};
use sync::SyncEngine;

use super::format::{Cell, Table, TablePage, time, time_or};
use super::{Fields, Frame, UiState, Viewer, done, error_page, not_found, page, store_failure};

#[derive(Deserialize)]
pub(crate) struct NoticeQuery {
    pub(crate) notice: Option<String>,
}

/// What a person reads of a credential: its kind and, for a certificate, when it expires; never
/// the secret.
fn credential_state(connection: &Connection) -> String {
    match &connection.certificate {
        None => {
            "a client secret is set (write-only; its expiry is on the app registration in Entra ID)"
                .into()
        }
        Some(cert) => format!(
            "certificate {} is set, valid until {}",
            cert.thumbprint,
            super::format::day(cert.expires_at * 1000)
        ),
    }
}

fn last_test(connection: &Connection) -> String {
    match (connection.last_tested_at, connection.last_test_passed) {
        (Some(at), Some(true)) => format!("passed, {}", time(at)),
        (Some(at), _) => format!("failed, {}", time(at)),
        (None, _) => "never tested".into(),
    }
}

fn run_summary(run: &RunRow) -> String {
    let when = run
        .started_at
        .or(run.queued_at)
        .map(time)
        .unwrap_or_default();
    format!("run {} {} ({when})", run.id, run.status)
}

pub(crate) async fn list(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let connections = match ui.store.connections().await {
        Ok(c) => c,
        Err(e) => return store_failure(&viewer, e),
    };
    let schedules = match ui.store.schedules().await {
        Ok(s) => s,
        Err(e) => return store_failure(&viewer, e),
    };
    let runs = match ui.store.runs(None, 200).await {
        Ok(r) => r,
        Err(e) => return store_failure(&viewer, e),
    };
    let mut table = Table::new(
        "connections",
        &[
            "Name",
            "Tenant",
            "Mode",
            "Credential",
            "Last test",
            "Last run",
            "Next run",
        ],
        "No connections yet. Add one to start syncing a tenant.",
    );
    for c in &connections {
        let schedule = schedules.iter().find(|s| s.connection_id == c.id);
        let last = runs.iter().find(|r| r.connection_name == c.name.as_str());
        let test = match c.last_test_passed {
            Some(true) => Cell::text(last_test(c)).badge("passed", "good"),
            Some(false) => Cell::text(last_test(c)).badge("failed", "bad"),
            None => Cell::text(last_test(c)),
        };
        table.row(vec![
            Cell::link(c.name.as_str(), format!("/connections/{}", c.name)),
            Cell::text(c.tenant_id.to_string()),
            Cell::text(c.mode.as_str()),
            Cell::text(match &c.certificate {
                None => "secret set".to_string(),
                Some(cert) => format!(
                    "certificate until {}",
                    super::format::day(cert.expires_at * 1000)
                ),
            }),
            test,
            match last {
                Some(run) => Cell::link(run_summary(run), format!("/runs/{}", run.id)),
                None => Cell::text("none yet"),
            },
            Cell::text(match schedule {
                Some(s) if s.schedule.is_some() => time_or(s.next_run_at, "not due again"),
                _ => "when asked".into(),
            }),
        ]);
    }
    let mut body = TablePage::new(
        viewer
            .frame("Connections", "connections")
            .with_notice(query.notice),
        vec![table],
    );
    if viewer.is_admin() {
        body.tabs = vec![super::format::Link {
            key: "add".into(),
            label: "Add a connection".into(),
            href: "/connections/new".into(),
            active: false,
        }];
    }
    page(&body)
}

#[derive(Default)]
struct FormValues {
    name: String,
    tenant_id: String,
    client_id: String,
    cloud: String,
    login_url: String,
    graph_url: String,
    organization: String,
    schedule: String,
    partner: bool,
    create_organization: bool,
}

struct DatasetChoice {
    name: &'static str,
    permission: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "connection_form.html")]
struct ConnectionForm {
    frame: Frame,
    action: String,
    editing: bool,
    problem: Option<String>,
    form: FormValues,
    credential_state: String,
    clouds: Vec<&'static str>,
    datasets: Vec<DatasetChoice>,
}

fn clouds() -> Vec<&'static str> {
    let mut names = Cloud::NAMES.to_vec();
    names.push("custom");
    names
}

fn dataset_choices(chosen: &[&str]) -> Vec<DatasetChoice> {
    Dataset::ALL
        .iter()
        .map(|d| DatasetChoice {
            name: d.name(),
            permission: d.permission(),
            checked: chosen.is_empty() || chosen.contains(&d.name()),
        })
        .collect()
}

fn only_admins(viewer: &Viewer) -> Option<Response> {
    (!viewer.is_admin()).then(|| {
        error_page(
            Some(viewer),
            StatusCode::FORBIDDEN,
            "Only admins add, edit or delete connections. Ask an admin, or read the connection's page.",
        )
    })
}

pub(crate) async fn new_form(Extension(viewer): Extension<Viewer>) -> Response {
    if let Some(refusal) = only_admins(&viewer) {
        return refusal;
    }
    page(&ConnectionForm {
        frame: viewer.frame("Add a connection", "connections"),
        action: "/connections".into(),
        editing: false,
        problem: None,
        form: FormValues {
            cloud: "global".into(),
            create_organization: true,
            ..FormValues::default()
        },
        credential_state: String::new(),
        clouds: clouds(),
        datasets: dataset_choices(&[]),
    })
}

/// The credential a form gives: a certificate (PEM, key included) or a secret; neither when
/// both fields are empty.
fn credential_of(fields: &Fields) -> Result<Option<Credential>, String> {
    let pem = fields.get("certificate").trim();
    if !pem.is_empty() {
        let parsed =
            graph::ClientCertificate::from_pem(pem).map_err(|e| format!("The certificate: {e}"))?;
        let facts = parsed.facts();
        if facts.not_after <= chrono::Utc::now().timestamp() {
            return Err(format!(
                "The certificate (thumbprint {}) has expired; make a new one and upload it to the app registration.",
                facts.thumbprint
            ));
        }
        return Ok(Some(Credential::Certificate(
            domain::CertificateCredential::new(
                pem.to_string(),
                facts.thumbprint.clone(),
                facts.not_after,
            ),
        )));
    }
    let secret = fields.get("secret");
    if secret.trim().is_empty() {
        return Ok(None);
    }
    ClientSecret::parse(secret)
        .map(|s| Some(Credential::Secret(s)))
        .map_err(|e| super::upper_first(&e.to_string()))
}

fn parsed<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, String> {
    result.map_err(|e| super::upper_first(&e.to_string()))
}

fn new_connection(
    fields: &Fields,
) -> Result<(NewConnection, ConnectionMode, OrganizationSetup), String> {
    let name = parsed(ConnectionName::parse(fields.get("name")))?;
    let tenant_id = parsed(TenantId::parse(fields.get("tenant_id")))?;
    let client_id = parsed(ClientId::parse(fields.get("client_id")))?;
    let cloud = match fields.get("cloud") {
        "custom" => parsed(Cloud::custom(
            fields.get("login_url"),
            fields.get("graph_url"),
        ))?,
        other => parsed(Cloud::parse(other))?,
    };
    let mut datasets = Vec::new();
    for raw in fields.all("datasets") {
        datasets.push(parsed(Dataset::parse(raw))?);
    }
    if datasets.is_empty() {
        return Err("Choose at least one dataset to sync.".into());
    }
    let credential = credential_of(fields)?.ok_or_else(|| {
        "Give the client secret's Value, or a certificate with its private key.".to_string()
    })?;
    let partner = fields.flag("partner");
    let organization =
        Some(fields.get("organization").trim().to_string()).filter(|o| !o.is_empty());
    Ok((
        NewConnection {
            name,
            tenant_id,
            client_id,
            credential,
            cloud,
            datasets,
        },
        if partner {
            ConnectionMode::Partner
        } else {
            ConnectionMode::Direct
        },
        OrganizationSetup {
            create_organization: fields.flag("create_organization"),
            organization,
        },
    ))
}

fn values_of(fields: &Fields) -> FormValues {
    FormValues {
        name: fields.get("name").into(),
        tenant_id: fields.get("tenant_id").into(),
        client_id: fields.get("client_id").into(),
        cloud: fields.get("cloud").into(),
        login_url: fields.get("login_url").into(),
        graph_url: fields.get("graph_url").into(),
        organization: fields.get("organization").into(),
        schedule: fields.get("schedule").into(),
        partner: fields.flag("partner"),
        create_organization: fields.flag("create_organization"),
    }
}

pub(crate) async fn create(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    fields: Fields,
) -> Response {
    let again = |problem: String| {
        let chosen = fields.all("datasets");
        let mut datasets = dataset_choices(&chosen);
        if chosen.is_empty() {
            datasets.iter_mut().for_each(|d| d.checked = false);
        }
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            page(&ConnectionForm {
                frame: viewer.frame("Add a connection", "connections"),
                action: "/connections".into(),
                editing: false,
                problem: Some(problem),
                form: values_of(&fields),
                credential_state: String::new(),
                clouds: clouds(),
                datasets,
            }),
        )
            .into_response()
    };
    let (new, mode, setup) = match new_connection(&fields) {
        Ok(parts) => parts,
        Err(problem) => return again(problem),
    };
    let schedule = match parse_schedule(fields.get("schedule")) {
        Ok(s) => s,
        Err(problem) => return again(problem),
    };
    let name = new.name.to_string();
    if let Err(e) = ui.store.add_connection_in(new, mode, setup).await {
        return again(super::upper_first(&e.to_string()));
    }
    if let Some(schedule) = schedule
        && let Err(e) = ui
            .store
            .set_schedule(&name, Some(&schedule), store::now_millis())
            .await
    {
        return store_failure(&viewer, e);
    }
    done(
        &format!("/connections/{name}"),
        "Connection saved. Next: test it.",
    )
}

fn parse_schedule(raw: &str) -> Result<Option<domain::schedule::Schedule>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    domain::schedule::Schedule::parse(raw, store::now_millis())
        .map(Some)
        .map_err(|e| super::upper_first(&e.to_string()))
}

#[derive(Template)]
#[template(path = "connection.html")]
struct ConnectionPage {
    frame: Frame,
    c: ConnectionView,
    diagnosis: Option<String>,
}

struct ConnectionView {
    name: String,
    tenant_id: String,
    client_id: String,
    mode: &'static str,
    cloud: String,
    credential: String,
    datasets: String,
    filter: String,
    last_test: String,
    last_run: String,
    last_run_href: Option<String>,
    schedule: String,
    next_run: String,
    active_run: Option<i64>,
}

async fn find(ui: &UiState, viewer: &Viewer, name: &str) -> Result<Connection, Response> {
    match ui.store.connection(name).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(not_found(viewer, "connection")),
        Err(e) => Err(store_failure(viewer, e)),
    }
}

pub(crate) async fn show(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let connection = match find(&ui, &viewer, &name).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    page(&ConnectionPage {
        frame: viewer
            .frame(connection.name.to_string(), "connections")
            .with_notice(query.notice),
        c: match view(&ui, &connection).await {
            Ok(v) => v,
            Err(e) => return store_failure(&viewer, e),
        },
        diagnosis: None,
    })
}

async fn view(ui: &UiState, c: &Connection) -> store::Result<ConnectionView> {
    let runs = ui.store.runs(Some(c.name.as_str()), 20).await?;
    let schedule = ui
        .store
        .schedules()
        .await?
        .into_iter()
        .find(|s| s.connection_id == c.id);
    let last = runs.first();
    let active = runs.iter().find(|r| {
        matches!(
            r.status,
            domain::RunStatus::Queued | domain::RunStatus::Running
        )
    });
    Ok(ConnectionView {
        name: c.name.to_string(),
        tenant_id: c.tenant_id.to_string(),
        client_id: c.client_id.to_string(),
        mode: c.mode.as_str(),
        cloud: c.cloud.to_string(),
        credential: credential_state(c),
        datasets: c
            .datasets
            .iter()
            .map(|d| d.name())
            .collect::<Vec<_>>()
            .join(", "),
        filter: c.user_filter.describe(),
        last_test: last_test(c),
        last_run: last.map(run_summary).unwrap_or_else(|| "none yet".into()),
        last_run_href: last.map(|r| format!("/runs/{}", r.id)),
        schedule: schedule
            .as_ref()
            .and_then(|s| s.schedule.clone())
            .unwrap_or_else(|| "syncs when asked".into()),
        next_run: schedule
            .and_then(|s| s.next_run_at)
            .map(time)
            .unwrap_or_else(|| "—".into()),
        active_run: active.map(|r| r.id),
    })
}

#[derive(Template)]
#[template(path = "diagnosis.html")]
struct Diagnosis {
    ok: bool,
    problems: Vec<sync::Problem>,
    warnings: Vec<sync::Problem>,
    granted: String,
    missing: String,
    datasets: Vec<(String, String)>,
    customers: Vec<(String, String, String)>,
}

/// Runs the connection test (the one `m365sync connection test` runs) and shows its diagnosis:
/// as a fragment for htmx, else on the connection's page.
pub(crate) async fn test(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let connection = match find(&ui, &viewer, &name).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let diagnosis = match sync::test_connection(&ui.store, &connection, retry).await {
        Ok(report) => Diagnosis {
            ok: report.ok,
            granted: report.granted_permissions.join(", "),
            missing: report.missing_permissions.join(", "),
            datasets: report
                .datasets
                .iter()
                .map(|(d, state)| (d.name().to_string(), state.clone()))
                .collect(),
            customers: report
                .customers
                .iter()
                .map(|c| (c.display_name.clone(), c.tenant_id.clone(), c.state.to_string()))
                .collect(),
            problems: report.problems,
            warnings: report.warnings,
        },
        Err(e) => Diagnosis {
            ok: false,
            problems: vec![sync::Problem {
                code: "test_failed".into(),
                message: super::upper_first(&e.to_string()),
                fix: "Check the connection's details and that this server reaches Microsoft; then test again.".into(),
            }],
            warnings: Vec::new(),
            granted: String::new(),
            missing: String::new(),
            datasets: Vec::new(),
            customers: Vec::new(),
        },
    };
    let fragment = match diagnosis.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!("rendering a diagnosis: {e}");
            return error_page(
                Some(&viewer),
                StatusCode::INTERNAL_SERVER_ERROR,
                "The diagnosis could not be drawn.",
            );
        }
    };
    if headers.contains_key("hx-request") {
        return Html(fragment).into_response();
    }
    // The test recorded its outcome: read the connection again for its page.
    let connection = match find(&ui, &viewer, &name).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    page(&ConnectionPage {
        frame: viewer.frame(connection.name.to_string(), "connections"),
        c: match view(&ui, &connection).await {
            Ok(v) => v,
            Err(e) => return store_failure(&viewer, e),
        },
        diagnosis: Some(fragment),
    })
}

/// Queues a run for serve's worker (the queue `m365sync sync --queue` uses); a clean sync lists
/// every user again.
pub(crate) async fn sync_now(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    fields: Fields,
) -> Response {
    let connection = match find(&ui, &viewer, &name).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let clean = fields.flag("clean");
    match SyncEngine::new(ui.store.clone())
        .queue(&connection, store::RunTrigger::Manual, clean)
        .await
    {
        Ok(queued) => done(
            &format!("/runs/{}", queued.run_id),
            &if queued.joined {
                format!(
                    "Run {} was already queued; this request joined it.",
                    queued.run_id
                )
            } else if clean {
                format!("Clean sync queued as run {}.", queued.run_id)
            } else {
                format!("Sync queued as run {}.", queued.run_id)
            },
        ),
        Err(e) => error_page(
            Some(&viewer),
            StatusCode::CONFLICT,
            super::upper_first(&e.to_string()),
        ),
    }
}

pub(crate) async fn edit_form(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    if let Some(refusal) = only_admins(&viewer) {
        return refusal;
    }
    let connection = match find(&ui, &viewer, &name).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    edit_page(&ui, &viewer, &connection, None, None).await
}

async fn edit_page(
    ui: &UiState,
    viewer: &Viewer,
    connection: &Connection,
    problem: Option<String>,
    schedule: Option<String>,
) -> Response {
    let saved = ui
        .store
        .schedules()
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.connection_id == connection.id))
        .and_then(|s| s.schedule);
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = ConnectionForm {
        frame: viewer.frame(format!("Edit {}", connection.name), "connections"),
        action: format!("/connections/{}/edit", connection.name),
        editing: true,
        problem,
        form: FormValues {
            name: connection.name.to_string(),
            tenant_id: connection.tenant_id.to_string(),
            client_id: connection.client_id.to_string(),
            schedule: schedule.or(saved).unwrap_or_default(),
            ..FormValues::default()
        },
        credential_state: credential_state(connection),
        clouds: clouds(),
        datasets: Vec::new(),
    };
    (status, page(&body)).into_response()
}

pub(crate) async fn update(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    fields: Fields,
) -> Response {
    let connection = match find(&ui, &viewer, &name).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let typed_schedule = fields.get("schedule").to_string();
    let credential = match credential_of(&fields) {
        Ok(c) => c,
        Err(problem) => {
            return edit_page(
                &ui,
                &viewer,
                &connection,
                Some(problem),
                Some(typed_schedule),
            )
            .await;
        }
    };
    let schedule = match parse_schedule(&typed_schedule) {
        Ok(s) => s,
        Err(problem) => {
            return edit_page(
                &ui,
                &viewer,
                &connection,
                Some(problem),
                Some(typed_schedule),
            )
            .await;
        }
    };
    if let Some(credential) = credential
        && let Err(e) = ui
            .store
            .set_connection_credential(&connection, &credential)
            .await
    {
        return store_failure(&viewer, e);
    }
    if let Err(e) = ui
        .store
        .set_schedule(&name, schedule.as_ref(), store::now_millis())
        .await
    {
        return store_failure(&viewer, e);
    }
    done(&format!("/connections/{name}"), "Connection saved.")
}

#[derive(Template)]
#[template(path = "connection_delete.html")]
struct DeletePage {
    frame: Frame,
    name: String,
    tenant_id: String,
    client_id: String,
}

pub(crate) async fn delete_form(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    if let Some(refusal) = only_admins(&viewer) {
        return refusal;
    }
    let connection = match find(&ui, &viewer, &name).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    page(&DeletePage {
        frame: viewer.frame(format!("Delete {name}"), "connections"),
        name: connection.name.to_string(),
        tenant_id: connection.tenant_id.to_string(),
        client_id: connection.client_id.to_string(),
    })
}

pub(crate) async fn delete(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    match ui.store.remove_connection(&name).await {
        Ok(()) => done(
            "/connections",
            &format!(
                "Connection '{name}' deleted. Its organisations and contacts stay. Remember to remove its secret and consent in Entra ID."
            ),
        ),
        Err(e) => store_failure(&viewer, e),
    }
}
