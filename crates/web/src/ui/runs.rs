//! Sync runs and each run's process log: times, durations, steps and per-record outcomes.

use super::PagePath as Path;
use super::PageQuery as Query;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use domain::{RunStatus, StepStatus};
use serde::Deserialize;
use store::{Cancelled, RecordOutcome, RunRecordRow, RunRow};

use super::format::{
    Cell, Link, PageLink, Table, TablePage, clamped_page, duration, page_number, pager, time_or,
};
use super::{Frame, UiState, Viewer, charts, done, error_page, not_found, page, store_failure};

fn status_class(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Succeeded => "good",
        RunStatus::Failed | RunStatus::Cancelled => "bad",
        RunStatus::Partial | RunStatus::Running => "warn",
        RunStatus::Queued => "",
    }
}

fn took(run: &RunRow) -> String {
    match (run.duration_ms, run.started_at) {
        (Some(ms), _) => duration(ms),
        (None, Some(start)) => format!("running for {}", duration(store::now_millis() - start)),
        (None, None) => "waiting".into(),
    }
}

#[derive(Deserialize)]
pub(crate) struct RunsQuery {
    connection: Option<String>,
    notice: Option<String>,
}

pub(crate) async fn list(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<RunsQuery>,
) -> Response {
    let connection = query.connection.as_deref().filter(|c| !c.is_empty());
    // An unknown name would list nothing, which reads as "no runs yet": say it instead.
    if let Some(name) = connection {
        match ui.store.connection(name).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return error_page(
                    Some(&viewer),
                    StatusCode::NOT_FOUND,
                    format!(
                        "No connection is named '{name}', so it has no runs; the Connections page lists the connections, or leave 'connection' out to see every run."
                    ),
                );
            }
            Err(e) => return store_failure(&viewer, e),
        }
    }
    let runs = match ui.store.runs(connection, 200).await {
        Ok(r) => r,
        Err(e) => return store_failure(&viewer, e),
    };
    let mut table = Table::new(
        "runs",
        &[
            "Run",
            "Connection",
            "Kind",
            "Status",
            "Started",
            "Took",
            "#Created",
            "#Updated",
            "#Archived",
            "Warnings",
        ],
        "No run yet. Sync a connection from its page.",
    );
    for run in &runs {
        let sum =
            |f: fn(&store::StepCounts) -> u64| run.steps.iter().map(|s| f(&s.counts)).sum::<u64>();
        table.row(vec![
            Cell::link(run.id.to_string(), format!("/runs/{}", run.id)),
            Cell::link(
                &run.connection_name,
                format!("/connections/{}", run.connection_name),
            ),
            Cell::text(&run.kind),
            Cell::text("").badge(run.status.to_string(), status_class(run.status)),
            Cell::text(time_or(run.started_at, "not started")),
            Cell::text(took(run)),
            Cell::num(sum(|c| c.created)),
            Cell::num(sum(|c| c.updated)),
            Cell::num(sum(|c| c.archived)),
            Cell::num(run.warnings.len()),
        ]);
    }
    let mut body = TablePage::new(
        viewer.frame("Sync runs", "runs").with_notice(query.notice),
        vec![table],
    );
    if !runs.is_empty() {
        body.chart = Some(charts::runs_over_time(&runs));
    }
    page(&body)
}

struct StepView {
    dataset: String,
    tenant: String,
    status: String,
    status_class: &'static str,
    created: u64,
    updated: u64,
    unchanged: u64,
    archived: u64,
    took: String,
    message: String,
}

struct RecordView {
    outcome: &'static str,
    class: &'static str,
    dataset: String,
    who: String,
    href: Option<String>,
    said: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    frame: Frame,
    id: i64,
    status: String,
    status_class: &'static str,
    live: bool,
    facts: Vec<(String, String)>,
    warnings: Vec<String>,
    steps: Vec<StepView>,
    tabs: Vec<Link>,
    outcome: String,
    records: Vec<RecordView>,
    total: i64,
    number: i64,
    page_size: i64,
    pages: Vec<PageLink>,
}

#[derive(Deserialize)]
pub(crate) struct RunQuery {
    outcome: Option<String>,
    notice: Option<String>,
    page: Option<String>,
}

/// Records on one page; an outcome narrows them.
const RECORDS_PAGE: i64 = 100;

pub(crate) async fn show(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found(&viewer, "run");
    };
    let run = match ui.store.run(id).await {
        Ok(Some(run)) => run,
        Ok(None) => return not_found(&viewer, "run"),
        Err(e) => return store_failure(&viewer, e),
    };
    let outcome = match query.outcome.as_deref().filter(|o| !o.is_empty()) {
        None => None,
        Some(text) => match RecordOutcome::parse(text) {
            Some(outcome) => Some(outcome),
            None => {
                let allowed = RecordOutcome::ALL.map(RecordOutcome::as_str);
                return super::unknown_value(&viewer, "outcome", text, &allowed);
            }
        },
    };
    let asked_page = page_number(query.page.as_deref());
    let loaded = clamped_page(asked_page, RECORDS_PAGE, |offset| {
        ui.store.run_records_page(id, outcome, offset, RECORDS_PAGE)
    })
    .await;
    let (records, total, number) = match loaded {
        Ok(found) => found,
        Err(e) => return store_failure(&viewer, e),
    };
    let mut facts = vec![
        ("Connection".to_string(), run.connection_name.clone()),
        ("Kind".into(), run.kind.clone()),
        ("Queued".into(), time_or(run.queued_at, "—")),
        ("Started".into(), time_or(run.started_at, "not yet")),
        ("Finished".into(), time_or(run.finished_at, "not yet")),
        ("Took".into(), took(&run)),
    ];
    if let Some(message) = &run.message {
        facts.push(("Message".into(), message.clone()));
    }
    let steps = run
        .steps
        .iter()
        .map(|s| StepView {
            dataset: s.dataset.clone(),
            tenant: s
                .tenant_name
                .clone()
                .or(s.tenant_id.clone())
                .unwrap_or_default(),
            status: s.status.to_string(),
            status_class: match s.status {
                StepStatus::Succeeded => "good",
                StepStatus::Failed | StepStatus::Cancelled => "bad",
                StepStatus::Running => "warn",
                StepStatus::Skipped => "",
            },
            created: s.counts.created,
            updated: s.counts.updated,
            unchanged: s.counts.unchanged,
            archived: s.counts.archived,
            took: s
                .finished_at
                .map(|f| duration(f - s.started_at))
                .unwrap_or_else(|| "running".into()),
            message: s.message.clone().unwrap_or_default(),
        })
        .collect();
    let mut tabs = vec![Link {
        key: "all".into(),
        label: "All".into(),
        href: format!("/runs/{id}"),
        active: outcome.is_none(),
    }];
    for o in RecordOutcome::ALL {
        tabs.push(Link {
            key: o.as_str().into(),
            label: super::upper_first(o.as_str()),
            href: format!("/runs/{id}?outcome={o}"),
            active: outcome == Some(o),
        });
    }
    let outcome_query = outcome.map(|o| o.as_str()).unwrap_or_default();
    let pages = pager(number, total, RECORDS_PAGE, |n| {
        format!("/runs/{id}?outcome={outcome_query}&page={n}")
    });
    page(&RunPage {
        frame: viewer
            .frame(format!("Run {id}"), "runs")
            .with_notice(query.notice),
        id,
        status: run.status.to_string(),
        status_class: status_class(run.status),
        live: matches!(run.status, RunStatus::Queued | RunStatus::Running),
        facts,
        warnings: run.warnings.iter().map(|w| w.message.clone()).collect(),
        steps,
        tabs,
        outcome: outcome.map(|o| o.as_str().to_string()).unwrap_or_default(),
        records: records.iter().map(record_view).collect(),
        total,
        number,
        page_size: RECORDS_PAGE,
        pages,
    })
}

/// What one record's line says: who it is, and what happened to it and why.
fn record_view(record: &RunRecordRow) -> RecordView {
    let who = match &record.label {
        Some(label) => format!("{label} ({})", record.key),
        None => record.key.clone(),
    };
    let detail = &record.detail;
    let why = detail["why"].as_str().unwrap_or_default().to_string();
    let shown = |value: &serde_json::Value| match value.as_str() {
        Some(text) => format!("\"{text}\""),
        None => "(empty)".to_string(),
    };
    let said = match record.outcome {
        RecordOutcome::Updated => {
            let mut parts: Vec<String> = Vec::new();
            for change in detail["fields"].as_array().into_iter().flatten() {
                parts.push(format!(
                    "{}: {} → {}",
                    change["field"].as_str().unwrap_or("?"),
                    shown(&change["old"]),
                    shown(&change["new"])
                ));
            }
            for change in detail["custom"].as_array().into_iter().flatten() {
                parts.push(format!(
                    "custom {}: {} → {}",
                    change["name"].as_str().unwrap_or("?"),
                    shown(&change["old"]),
                    shown(&change["new"])
                ));
            }
            if let Some(rule) = detail["linked_by"].as_str() {
                parts.push(format!("linked by {rule}"));
            }
            if detail["restored"].as_bool() == Some(true) {
                parts.push("restored".into());
            }
            parts.join("; ")
        }
        RecordOutcome::Failed => {
            let mut text = why;
            if let Some(code) = detail["graph_code"].as_str() {
                text.push_str(&format!(" [Graph error {code}]"));
            }
            if let Some(id) = detail["request_id"].as_str() {
                text.push_str(&format!(" [request-id {id}]"));
            }
            text
        }
        _ => why,
    };
    RecordView {
        outcome: record.outcome.as_str(),
        class: match record.outcome {
            RecordOutcome::Created | RecordOutcome::Updated => "good",
            RecordOutcome::Failed => "bad",
            RecordOutcome::Held | RecordOutcome::Archived | RecordOutcome::Deleted => "warn",
            RecordOutcome::Skipped => "",
        },
        dataset: record.dataset.clone(),
        who,
        href: record.contact_id.map(|c| format!("/contacts/{c}")),
        said,
    }
}

/// Cancels a run as `m365sync cancel` does: a queued one does not start, a running one stops
/// at its next page boundary.
pub(crate) async fn cancel(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found(&viewer, "run");
    };
    match ui.store.cancel_run(id).await {
        Ok(Cancelled::Dequeued) => done(&format!("/runs/{id}"), "Cancelled before it started."),
        Ok(Cancelled::Stopping) => done(
            &format!("/runs/{id}"),
            "The run stops at its next page boundary, keeping what it committed.",
        ),
        Err(store::StoreError::NotFound(message)) => error_page(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            super::upper_first(&message),
        ),
        Err(e) => store_failure(&viewer, e),
    }
}
