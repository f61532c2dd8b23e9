//! Connections: the list with each one's last test and runs, add and edit (the secret
//! write-only), the connection test with its diagnosis, sync now, clean sync, cancel, and delete
//! with what to remove in Entra ID.

use super::PagePath as Path;
use super::PageQuery as Query;
use askama::Template;
use axum::Extension;
use axum::extract::State;
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
    problem: Option<String>,
    /// Each field's problem, by its form name, shown beside it.
    errors: Errors,
    form: FormValues,
    clouds: Vec<&'static str>,
    datasets: Vec<DatasetChoice>,
}

impl ConnectionForm {
    fn error(&self, key: &str) -> Option<&String> {
        self.errors.get(key)
    }
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
        problem: None,
        errors: Errors::new(),
        form: FormValues {
            cloud: "global".into(),
            create_organization: true,
            ..FormValues::default()
        },
        clouds: clouds(),
        datasets: dataset_choices(&[]),
    })
}

/// The credential a form gives: a certificate (PEM, key included) or a secret; neither when
/// both fields are empty.
fn credential_of(fields: &Fields) -> Result<Option<Credential>, String> {
    let certificate = fields.get("certificate").trim();
    let key = fields.get("private_key").trim();
    if certificate.is_empty() && !key.is_empty() {
        return Err(
            "A private key was given without its certificate; give the certificate (PEM) too."
                .into(),
        );
    }
    if !certificate.is_empty() {
        // As `--private-key` does: the key, then the certificate, in one PEM document.
        let pem = if key.is_empty() {
            certificate.to_string()
        } else {
            format!("{key}\n{certificate}")
        };
        let pem = pem.as_str();
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

/// Reads the new-connection form, checking every field: all the mistakes come back at once,
/// by form field name, to be shown beside their fields.
fn new_connection(
    fields: &Fields,
) -> Result<(NewConnection, ConnectionMode, OrganizationSetup), Errors> {
    let mut errors = Errors::new();
    let mut check = |key: &str, result: Result<(), String>| {
        if let Err(problem) = result {
            errors.insert(key.to_string(), page_words(&problem));
        }
    };
    let name = ConnectionName::parse(fields.get("name"));
    check(
        "name",
        parsed(name.as_ref().map(|_| ()).map_err(|e| e.to_string())),
    );
    let tenant_id = TenantId::parse(fields.get("tenant_id"));
    check(
        "tenant_id",
        parsed(tenant_id.as_ref().map(|_| ()).map_err(|e| e.to_string())),
    );
    let client_id = ClientId::parse(fields.get("client_id"));
    check(
        "client_id",
        parsed(client_id.as_ref().map(|_| ()).map_err(|e| e.to_string())),
    );
    let cloud = match fields.get("cloud") {
        "custom" => parsed(Cloud::custom(
            fields.get("login_url"),
            fields.get("graph_url"),
        )),
        other => parsed(Cloud::parse(other)),
    };
    check("cloud", cloud.as_ref().map(|_| ()).map_err(Clone::clone));
    let mut datasets = Vec::new();
    for raw in fields.all("datasets") {
        match parsed(Dataset::parse(raw)) {
            Ok(d) => datasets.push(d),
            Err(problem) => check("datasets", Err(problem)),
        }
    }
    if fields.all("datasets").is_empty() {
        check(
            "datasets",
            Err("Choose at least one dataset to sync.".into()),
        );
    }
    let credential = credential_of(fields).and_then(|c| {
        c.ok_or_else(|| {
            "Give the client secret's Value, or a certificate with its private key.".to_string()
        })
    });
    check(
        "secret",
        credential.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    check(
        "schedule",
        parse_schedule(fields.get("schedule")).map(|_| ()),
    );
    let partner = fields.flag("partner");
    let organization =
        Some(fields.get("organization").trim().to_string()).filter(|o| !o.is_empty());
    match (name, tenant_id, client_id, cloud, credential) {
        (Ok(name), Ok(tenant_id), Ok(client_id), Ok(cloud), Ok(credential))
            if errors.is_empty() =>
        {
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
        _ => Err(errors),
    }
}

/// A problem in the words of the page: the shared checks name the command line's flags,
/// which mean nothing on a form.
fn page_words(problem: &str) -> String {
    problem
        .replace("--login-url", "the custom login URL")
        .replace("--graph-url", "the custom Graph URL")
        .replace("--tenant-id", "the directory (tenant) ID")
        .replace("--client-id", "the application (client) ID")
        .replace("--private-key", "the private key")
        .replace("--certificate", "the certificate")
        .replace("--secret", "the client secret")
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
    let again = |problem: String, errors: Errors| {
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
                problem: Some(problem),
                errors,
                form: values_of(&fields),
                clouds: clouds(),
                datasets,
            }),
        )
            .into_response()
    };
    let (new, mode, setup) = match new_connection(&fields) {
        Ok(parts) => parts,
        Err(errors) => {
            let summary = format!(
                "Nothing was saved: fix the {} field(s) marked below.",
                errors.len()
            );
            return again(summary, errors);
        }
    };
    // Checked with the other fields above; read again for its value.
    let schedule = parse_schedule(fields.get("schedule")).unwrap_or_default();
    let name = new.name.to_string();
    if let Err(e) = ui.store.add_connection_in(new, mode, setup).await {
        return again(
            page_words(&super::upper_first(&e.to_string())),
            Errors::new(),
        );
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
                .map(|c| {
                    (
                        c.display_name.clone(),
                        c.tenant_id.clone(),
                        c.state.to_string(),
                    )
                })
                .collect(),
            problems: report.problems,
            warnings: report.warnings,
        },
        Err(e) => Diagnosis {
            ok: false,
            problems: vec![sync::Problem {
                code: "test_failed".into(),
                message: super::upper_first(&e.to_string()),
                fix: super::or_on_the_server(
                    "Check the connection's details and that this server reaches Microsoft; then test again",
                    &format!("m365sync connection test {}", super::shell_word(&name)),
                ),
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
            super::or_on_the_server(
                &format!("The sync of {name} could not be queued: {e}"),
                &format!("m365sync sync {}", super::shell_word(&name)),
            ),
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
    let saved = async {
        let schedule = ui
            .store
            .schedules()
            .await?
            .into_iter()
            .find(|s| s.connection_id == connection.id)
            .and_then(|s| s.schedule);
        let lifetimes = ui.store.cache_lifetimes(connection.id).await?;
        store::Result::Ok((schedule, lifetimes))
    };
    let (schedule, lifetimes) = match saved.await {
        Ok(saved) => saved,
        Err(e) => return store_failure(&viewer, e),
    };
    let form = EditValues::saved(&connection, schedule, &lifetimes);
    edit_page(&viewer, &connection, form, Errors::new())
}

/// The owners a mapped field may have, as the edit form sends them.
const OWNERS: [&str; 2] = ["microsoft_365", "local"];

/// A field's problem, by the form field's name.
type Errors = std::collections::HashMap<String, String>;

struct MappingRow {
    field: &'static str,
    local: bool,
    /// The owner as submitted (empty when the row shows what is saved), checked on save.
    owner: String,
    custom: String,
    owner_error: Option<String>,
    error: Option<String>,
}

struct LifetimeRow {
    dataset: &'static str,
    value: String,
    default: String,
    error: Option<String>,
}

/// The edit form's values: as saved, or as typed when a submit is sent back.
struct EditValues {
    cloud: String,
    login_url: String,
    graph_url: String,
    datasets: Vec<DatasetChoice>,
    enabled_only: bool,
    licensed_only: bool,
    exclude_guests: bool,
    exclude_resource_mailboxes: bool,
    skus: String,
    include_domains: String,
    exclude_domains: String,
    groups: String,
    mapping: Vec<MappingRow>,
    lifetimes: Vec<LifetimeRow>,
    schedule: String,
}

/// The datasets a cache lifetime applies to (the organisation is read on every run).
fn cached_datasets() -> impl Iterator<Item = Dataset> {
    Dataset::ALL
        .into_iter()
        .filter(|d| *d != Dataset::Organization)
}

fn lifetime_text(seconds: u64) -> String {
    match seconds {
        0 => "0".into(),
        s => domain::cache::describe_lifetime(s),
    }
}

impl EditValues {
    fn saved(
        c: &Connection,
        schedule: Option<String>,
        lifetimes: &domain::cache::CacheLifetimes,
    ) -> Self {
        let (login_url, graph_url) = match &c.cloud {
            Cloud::Custom {
                login_url,
                graph_url,
            } => (login_url.clone(), graph_url.clone()),
            _ => (String::new(), String::new()),
        };
        let chosen: Vec<&str> = c.datasets.iter().map(|d| d.name()).collect();
        let f = &c.user_filter;
        Self {
            cloud: c.cloud.name().to_string(),
            login_url,
            graph_url,
            datasets: Dataset::ALL
                .iter()
                .map(|d| DatasetChoice {
                    name: d.name(),
                    permission: d.permission(),
                    checked: chosen.contains(&d.name()),
                })
                .collect(),
            enabled_only: f.enabled_only,
            licensed_only: f.licensed_only,
            exclude_guests: f.exclude_guests,
            exclude_resource_mailboxes: f.exclude_resource_mailboxes,
            skus: f.skus.join(", "),
            include_domains: f.include_domains.join(", "),
            exclude_domains: f.exclude_domains.join(", "),
            groups: f.groups.join(", "),
            mapping: domain::mapping::MAPPABLE
                .iter()
                .map(|&field| MappingRow {
                    field,
                    // `is_local` is also true for a custom field, which Microsoft 365 still
                    // fills: only a truly local field shows as the technician's.
                    local: c.field_mapping.placement(field)
                        == Some(&domain::mapping::Placement::Local),
                    owner: String::new(),
                    custom: match c.field_mapping.placement(field) {
                        Some(domain::mapping::Placement::Custom(name)) => name.clone(),
                        _ => String::new(),
                    },
                    owner_error: None,
                    error: None,
                })
                .collect(),
            lifetimes: cached_datasets()
                .map(|d| LifetimeRow {
                    dataset: d.name(),
                    value: lifetime_text(lifetimes.lifetime(d)),
                    default: domain::cache::describe_lifetime(domain::cache::default_lifetime(d)),
                    error: None,
                })
                .collect(),
            schedule: schedule.unwrap_or_default(),
        }
    }

    fn typed(fields: &Fields) -> Self {
        let chosen = fields.all("datasets");
        Self {
            cloud: fields.get("cloud").into(),
            login_url: fields.get("login_url").into(),
            graph_url: fields.get("graph_url").into(),
            datasets: Dataset::ALL
                .iter()
                .map(|d| DatasetChoice {
                    name: d.name(),
                    permission: d.permission(),
                    checked: chosen.contains(&d.name()),
                })
                .collect(),
            enabled_only: fields.flag("enabled_only"),
            licensed_only: fields.flag("licensed_only"),
            exclude_guests: fields.flag("exclude_guests"),
            exclude_resource_mailboxes: fields.flag("exclude_resource_mailboxes"),
            skus: fields.get("skus").into(),
            include_domains: fields.get("include_domains").into(),
            exclude_domains: fields.get("exclude_domains").into(),
            groups: fields.get("groups").into(),
            mapping: domain::mapping::MAPPABLE
                .iter()
                .map(|&field| MappingRow {
                    field,
                    local: fields.get(&format!("owner.{field}")) == "local",
                    owner: fields.get(&format!("owner.{field}")).into(),
                    custom: fields.get(&format!("custom.{field}")).into(),
                    owner_error: None,
                    error: None,
                })
                .collect(),
            lifetimes: cached_datasets()
                .map(|d| LifetimeRow {
                    dataset: d.name(),
                    value: fields.get(&format!("lifetime.{}", d.name())).into(),
                    default: domain::cache::describe_lifetime(domain::cache::default_lifetime(d)),
                    error: None,
                })
                .collect(),
            schedule: fields.get("schedule").into(),
        }
    }
}

#[derive(Template)]
#[template(path = "connection_edit.html")]
struct EditPage {
    frame: Frame,
    name: String,
    tenant_id: String,
    client_id: String,
    mode: &'static str,
    credential_state: String,
    clouds: Vec<&'static str>,
    form: EditValues,
    errors: Errors,
    /// The fields with a problem, as the form labels them, for the summary at the top.
    error_fields: String,
}

/// How the edit form names a field, for the summary of what to fix.
fn field_label(key: &str) -> String {
    if let Some(field) = key.strip_prefix("custom.") {
        return format!("the custom field for {field}");
    }
    if let Some(field) = key.strip_prefix("owner.") {
        return format!("the owner of {field}");
    }
    if let Some(dataset) = key.strip_prefix("lifetime.") {
        return format!("the cache lifetime of {dataset}");
    }
    match key {
        "secret" => "the client secret",
        "certificate" => "the certificate",
        "cloud" => "the cloud",
        "datasets" => "the datasets",
        "include_domains" => "the domains to keep",
        "exclude_domains" => "the domains to leave out",
        "filter" => "the users kept",
        "schedule" => "the schedule",
        other => other,
    }
    .to_string()
}

fn edit_page(
    viewer: &Viewer,
    connection: &Connection,
    form: EditValues,
    errors: Errors,
) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = EditPage {
        frame: viewer.frame(format!("Edit {}", connection.name), "connections"),
        name: connection.name.to_string(),
        tenant_id: connection.tenant_id.to_string(),
        client_id: connection.client_id.to_string(),
        mode: connection.mode.as_str(),
        credential_state: credential_state(connection),
        clouds: clouds(),
        form,
        error_fields: {
            let mut keys: Vec<&String> = errors.keys().collect();
            keys.sort();
            keys.iter()
                .map(|k| field_label(k))
                .collect::<Vec<_>>()
                .join(", ")
        },
        errors,
    };
    (status, page(&body)).into_response()
}

/// A list typed into one field: separated by commas or new lines, blanks dropped.
fn list_of(raw: &str) -> Vec<String> {
    raw.split([',', '\n'])
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

fn input_problem(e: &domain::InputError) -> String {
    super::upper_first(&format!("{}; {}", e.problem, e.fix))
}

/// Everything the edit form asks to save, checked before anything is written; each problem is
/// kept beside its field (and in the typed values, for the mapping and the lifetimes).
struct Edit {
    credential: Option<Credential>,
    settings: store::ConnectionSettings,
    schedule: Option<domain::schedule::Schedule>,
}

fn read_edit(fields: &Fields, form: &mut EditValues, errors: &mut Errors) -> Option<Edit> {
    let credential = match credential_of(fields) {
        Ok(c) => c,
        Err(problem) => {
            let key = if fields.get("certificate").trim().is_empty()
                && fields.get("private_key").trim().is_empty()
            {
                "secret"
            } else {
                "certificate"
            };
            errors.insert(key.into(), problem);
            None
        }
    };
    let cloud = match fields.get("cloud") {
        "custom" => parsed(Cloud::custom(
            fields.get("login_url"),
            fields.get("graph_url"),
        )),
        other => parsed(Cloud::parse(other)),
    }
    .map_err(|problem| errors.insert("cloud".into(), problem))
    .ok();
    let mut datasets = Vec::new();
    for raw in fields.all("datasets") {
        match Dataset::parse(raw) {
            Ok(d) if !datasets.contains(&d) => datasets.push(d),
            Ok(_) => {}
            Err(e) => {
                errors.insert("datasets".into(), input_problem(&e));
            }
        }
    }
    if datasets.is_empty() {
        errors.insert(
            "datasets".into(),
            "Choose at least one dataset to sync.".into(),
        );
    }
    let mut domains = |key: &'static str, label: &'static str| -> Vec<String> {
        let mut kept = Vec::new();
        for raw in list_of(fields.get(key)) {
            match domain::filter::filter_domain(label, &raw) {
                Ok(d) => kept.push(d),
                Err(e) => {
                    errors.insert(key.into(), input_problem(&e));
                }
            }
        }
        kept
    };
    let include_domains = domains("include_domains", "domain");
    let exclude_domains = domains("exclude_domains", "domain");
    let user_filter = domain::filter::UserFilter {
        enabled_only: fields.flag("enabled_only"),
        licensed_only: fields.flag("licensed_only"),
        skus: list_of(fields.get("skus")),
        exclude_guests: fields.flag("exclude_guests"),
        exclude_resource_mailboxes: fields.flag("exclude_resource_mailboxes"),
        include_domains,
        exclude_domains,
        groups: list_of(fields.get("groups")),
    };
    let mut field_mapping = domain::FieldMapping::default();
    for row in &mut form.mapping {
        // A form without the owner (an older page) leaves Microsoft 365 the owner, as before.
        if !row.owner.is_empty() && !OWNERS.contains(&row.owner.as_str()) {
            let problem = format!(
                "'{}' is not an owner of {}; choose Microsoft 365 or local",
                row.owner, row.field
            );
            errors.insert(format!("owner.{}", row.field), problem.clone());
            row.owner_error = Some(problem);
            continue;
        }
        let placed = if row.local {
            field_mapping.set_local(row.field)
        } else if !row.custom.trim().is_empty() {
            field_mapping.set_custom(row.field, &row.custom)
        } else {
            Ok(())
        };
        if let Err(e) = placed {
            errors.insert(format!("custom.{}", row.field), input_problem(&e));
            row.error = Some(input_problem(&e));
        }
    }
    let mut cache_lifetimes = domain::cache::CacheLifetimes::default();
    for (row, dataset) in form.lifetimes.iter_mut().zip(cached_datasets()) {
        let raw = row.value.trim();
        let seconds = if raw.is_empty() {
            Ok(domain::cache::default_lifetime(dataset))
        } else {
            domain::cache::parse_lifetime(dataset, raw)
        };
        match seconds {
            Ok(seconds) => cache_lifetimes.set(dataset, seconds),
            Err(e) => {
                errors.insert(format!("lifetime.{}", row.dataset), input_problem(&e));
                row.error = Some(input_problem(&e));
            }
        }
    }
    let schedule = parse_schedule(fields.get("schedule"))
        .map_err(|problem| errors.insert("schedule".into(), problem))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return None;
    }
    Some(Edit {
        credential,
        settings: store::ConnectionSettings {
            cloud: cloud?,
            datasets,
            user_filter,
            field_mapping,
            cache_lifetimes,
        },
        schedule,
    })
}

/// Saves the edit form only when every field reads well; otherwise nothing is written and the
/// form comes back with what was typed and each problem beside its field.
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
    let mut form = EditValues::typed(&fields);
    let mut errors = Errors::new();
    let Some(edit) = read_edit(&fields, &mut form, &mut errors) else {
        return edit_page(&viewer, &connection, form, errors);
    };
    // The filters name licences and groups of the tenant: checked as `connection filter` checks
    // them, against the datasets the form chose.
    let as_edited = Connection {
        datasets: edit.settings.datasets.clone(),
        ..connection.clone()
    };
    match sync::filter_problem(&ui.store, &as_edited, &edit.settings.user_filter).await {
        Ok(None) => {}
        Ok(Some(problem)) => {
            errors.insert("filter".into(), super::upper_first(&problem));
            return edit_page(&viewer, &connection, form, errors);
        }
        Err(e) => {
            return error_page(
                Some(&viewer),
                StatusCode::INTERNAL_SERVER_ERROR,
                super::upper_first(&e.to_string()),
            );
        }
    }
    if let Some(credential) = &edit.credential
        && let Err(e) = ui
            .store
            .set_connection_credential(&connection, credential)
            .await
    {
        return store_failure(&viewer, e);
    }
    if let Err(e) = ui
        .store
        .set_connection_settings(&name, &edit.settings)
        .await
    {
        return store_failure(&viewer, e);
    }
    if let Err(e) = ui
        .store
        .set_schedule(&name, edit.schedule.as_ref(), store::now_millis())
        .await
    {
        return store_failure(&viewer, e);
    }
    done(
        &format!("/connections/{name}"),
        if edit.credential.is_some() {
            "Connection saved with its new credential. Test it to be sure Microsoft accepts it."
        } else {
            "Connection saved."
        },
    )
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
