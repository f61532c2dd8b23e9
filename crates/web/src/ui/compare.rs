//! A contact beside its user in Microsoft 365 now, field by field: the comparison
//! `m365sync compare contact` prints, read live through the contact's connection by the same
//! `sync::compare_contact`, with what differs marked.

use super::PagePath as Path;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use graph::RetryPolicy;
use sync::{CompareError, Comparison};

use super::format::time;
use super::{Frame, UiState, Viewer, not_found, page, store_failure};

struct FieldRow {
    field: &'static str,
    stored: String,
    microsoft: String,
    differs: bool,
    run: Option<i64>,
    changed: String,
}

struct LicenseRow {
    name: String,
    part_number: String,
    stored: &'static str,
    microsoft: &'static str,
    differs: bool,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    frame: Frame,
    contact_id: i64,
    name: String,
    /// Why there is nothing to compare, or why Microsoft 365 could not be read.
    problem: Option<String>,
    comparison: Option<Comparison>,
    summary: String,
    fields: Vec<FieldRow>,
    licenses: Vec<LicenseRow>,
}

fn shown(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "—".into())
}

fn held(yes: bool) -> &'static str {
    if yes { "held" } else { "—" }
}

fn summary(c: &Comparison) -> String {
    match c.differences {
        0 => "The store holds what Microsoft 365 says now.".into(),
        1 => format!(
            "1 field differs; the next sync of connection '{}' brings in Microsoft 365's value.",
            c.connection
        ),
        n => format!(
            "{n} fields differ; the next sync of connection '{}' brings in Microsoft 365's values.",
            c.connection
        ),
    }
}

/// What a failed comparison means on the page, and the status it is sent with: Microsoft 365
/// out of reach is a bad gateway; a contact with nothing to compare is a plain answer.
fn explain(error: &CompareError) -> (StatusCode, String) {
    let message = super::upper_first(&error.to_string());
    match error {
        CompareError::Credential { .. } | CompareError::Graph { .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "Microsoft 365 could not be reached to read this user, so nothing is compared. {message}"
            ),
        ),
        CompareError::NotLinked(_)
        | CompareError::Deleted { .. }
        | CompareError::NoConnection { .. }
        | CompareError::Unstorable { .. } => (StatusCode::OK, message),
        CompareError::NoContact(_) | CompareError::Store(_) | CompareError::Sync(_) => {
            tracing::error!("comparing a contact: {error}");
            (StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

/// `GET /contacts/{id}/compare`: reads the user live (it writes nothing, so viewers may ask).
pub(crate) async fn show(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found(&viewer, "contact");
    };
    let contact = match ui.store.contact(id).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(&viewer, "contact"),
        Err(e) => return store_failure(&viewer, e),
    };
    // A page waits for the answer: a few quick attempts, not a sync's patience.
    let retry = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    let mut body = ComparePage {
        frame: viewer.frame(
            format!("Compare {} with Microsoft 365", contact.display_name),
            "organizations",
        ),
        contact_id: id,
        name: contact.display_name.clone(),
        problem: None,
        comparison: None,
        summary: String::new(),
        fields: Vec::new(),
        licenses: Vec::new(),
    };
    let status = match sync::compare_contact(&ui.store, id, retry).await {
        Ok(comparison) => {
            body.summary = summary(&comparison);
            body.fields = comparison
                .fields
                .iter()
                .map(|f| FieldRow {
                    field: f.field,
                    stored: shown(&f.stored),
                    microsoft: shown(&f.microsoft),
                    differs: f.differs,
                    run: f.last_change.and_then(|c| c.run_id),
                    changed: match f.last_change {
                        Some(c) if c.run_id.is_some() => time(c.changed_at),
                        Some(c) => format!("by hand, {}", time(c.changed_at)),
                        None => String::new(),
                    },
                })
                .collect();
            body.licenses = comparison
                .licenses
                .iter()
                .map(|l| LicenseRow {
                    name: l.name.clone(),
                    part_number: l.part_number.clone(),
                    stored: held(l.stored),
                    microsoft: held(l.microsoft),
                    differs: l.stored != l.microsoft,
                })
                .collect();
            body.comparison = Some(comparison);
            StatusCode::OK
        }
        Err(error) => {
            let (status, message) = explain(&error);
            body.problem = Some(message);
            status
        }
    };
    (status, page(&body)).into_response()
}
