//! Sync runs: the log of runs, one run with its steps, the process log of what each step did to
//! every record, and cancelling.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::{RecordOutcome, RunRow, StepRow, Store};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, ApiPath, ApiQuery, ApiResult, cursor_of, maybe_time, page_limit, page_of, position_of,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub id: i64,
    pub connection: String,
    /// `manual`, `scheduled`, `clean`…
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `partial`, `failed` or `cancelled`.
    pub status: String,
    pub message: Option<String>,
    pub warnings: Vec<RunWarningView>,
    pub queued_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunWarningView {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    pub id: i64,
    pub dataset: String,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub status: String,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub archived: u64,
    /// Marked deleted: in Microsoft 365's recycle bin, restorable.
    pub deleted: u64,
    pub message: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
}

fn step_view(step: &StepRow) -> StepView {
    StepView {
        id: step.id,
        dataset: step.dataset.clone(),
        tenant_id: step.tenant_id.clone(),
        tenant_name: step.tenant_name.clone(),
        status: step.status.to_string(),
        created: step.counts.created,
        updated: step.counts.updated,
        unchanged: step.counts.unchanged,
        archived: step.counts.archived,
        deleted: step.counts.deleted,
        message: step.message.clone(),
        started_at: maybe_time(Some(step.started_at)),
        finished_at: maybe_time(step.finished_at),
        duration_ms: step
            .finished_at
            .map(|end| end.saturating_sub(step.started_at).max(0)),
    }
}

pub(crate) fn run_view(run: &RunRow) -> RunView {
    RunView {
        id: run.id,
        connection: run.connection_name.clone(),
        kind: run.kind.clone(),
        status: run.status.to_string(),
        message: run.message.clone(),
        warnings: run
            .warnings
            .iter()
            .map(|w| RunWarningView {
                code: w.code.clone(),
                message: w.message.clone(),
            })
            .collect(),
        queued_at: maybe_time(run.queued_at),
        started_at: maybe_time(run.started_at),
        finished_at: maybe_time(run.finished_at),
        duration_ms: run.duration_ms,
        steps: run.steps.iter().map(step_view).collect(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Only this connection's runs.
    pub connection: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Runs per page, 1 to 500 (100 unless given).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// Newest first.
    pub items: Vec<RunView>,
    pub next_cursor: Option<String>,
}

/// The run log, newest first.
#[utoipa::path(get, path = "/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, body = RunPage),
        (status = 404, description = "No connection has the name given as `connection`", body = super::ErrorBody)))]
pub async fn list_runs(
    State(store): State<Store>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> ApiResult<Json<RunPage>> {
    let limit = page_limit(query.limit)?;
    let before = match position_of(query.cursor.as_deref())? {
        0 => None,
        id => Some(id),
    };
    // An unknown name would list nothing, which reads as "no runs yet": say it instead.
    if let Some(name) = query.connection.as_deref()
        && store.connection(name).await?.is_none()
    {
        return Err(ApiError::not_found(format!(
            "no connection is named '{name}'; GET /api/v1/connections lists them"
        )));
    }
    let runs = store
        .runs_before(query.connection.as_deref(), before, limit)
        .await?;
    let next_cursor = (runs.len() as i64 == limit)
        .then(|| runs.last().map(|r| cursor_of(r.id)))
        .flatten();
    Ok(Json(RunPage {
        items: runs.iter().map(run_view).collect(),
        next_cursor,
    }))
}

async fn find(store: &Store, id: i64) -> ApiResult<RunRow> {
    store.run(id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "There is no run {id}; GET /api/v1/runs lists them."
        ))
    })
}

/// One run, with its steps.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs",
    params(("id" = i64, Path, description = "The run's number")),
    responses((status = 200, body = RunView), (status = 404, body = super::ErrorBody)))]
pub async fn get_run(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RunView>> {
    Ok(Json(run_view(&find(&store, id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Only records with this outcome: created, updated, archived, deleted, skipped, held or
    /// failed.
    pub outcome: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// What a run did to one record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub step_id: Option<i64>,
    pub tenant_id: String,
    pub dataset: String,
    /// Its key in Microsoft 365 (a directory object id), or what stands for it.
    pub key: String,
    /// How a person knows it: a user principal name, or a name.
    pub label: Option<String>,
    /// `created`, `updated`, `archived`, `deleted`, `skipped`, `held` or `failed`.
    pub outcome: String,
    /// The fields changed (old → new), the reason, or Microsoft's error.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub contact_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPage {
    /// In the order they were written. Unchanged records are counted in their step, not listed.
    pub items: Vec<RecordView>,
    pub next_cursor: Option<String>,
}

/// The process log of a run: what it did to each record it created, updated, archived, left
/// out, held or could not write.
#[utoipa::path(get, path = "/runs/{id}/records", tag = "runs",
    params(("id" = i64, Path, description = "The run's number"), RecordsQuery),
    responses((status = 200, body = RecordPage), (status = 404, body = super::ErrorBody)))]
pub async fn run_records(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> ApiResult<Json<RecordPage>> {
    let limit = page_limit(query.limit)?;
    let outcome = query
        .outcome
        .as_deref()
        .map(|raw| {
            RecordOutcome::parse(raw.trim()).ok_or_else(|| {
                let known: Vec<&str> = RecordOutcome::ALL.iter().map(|o| o.as_str()).collect();
                ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!(
                        "outcome '{raw}' is not one; give one of {}",
                        known.join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    let run = find(&store, id).await?;
    let records = store.run_records(run.id, outcome).await?;
    let (records, next_cursor) = page_of(records, query.cursor.as_deref(), limit)?;
    Ok(Json(RecordPage {
        items: records
            .into_iter()
            .map(|r| RecordView {
                step_id: r.step_id,
                tenant_id: r.tenant_id,
                dataset: r.dataset,
                key: r.key,
                label: r.label,
                outcome: r.outcome.as_str().to_string(),
                detail: r.detail,
                contact_id: r.contact_id,
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelOutcome {
    pub run_id: i64,
    /// `dequeued` (it had not started and will not) or `stopping` (it stops at its next page
    /// boundary, keeping what it committed).
    pub outcome: String,
}

/// Cancels a run: a queued one does not start, a running one stops at its next page boundary.
#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs",
    params(("id" = i64, Path, description = "The run's number")),
    responses((status = 200, body = CancelOutcome), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody, description = "The run has finished already")))]
pub async fn cancel_run(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<CancelOutcome>> {
    let outcome = match store.cancel_run(id).await? {
        store::Cancelled::Dequeued => "dequeued",
        store::Cancelled::Stopping => "stopping",
    };
    Ok(Json(CancelOutcome {
        run_id: id,
        outcome: outcome.into(),
    }))
}
