//! The audit trail, from the Office 365 Management Activity API.

use chrono::Timelike;
use domain::Dataset;
use graph::GraphError;
use graph::models::{ActivityContent, ActivitySubscription};
use store::StepCounts;

use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;
/// Audit records (`ActivityFeed.Read` of the Management Activity API).
pub(super) struct Audit;

impl DatasetSync for Audit {
    fn dataset(&self) -> Dataset {
        Dataset::Audit
    }
    fn probe(&self) -> Option<&'static str> {
        None
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        audit(run).await
    }
}

/// The content types of the unified audit log that m365sync collects.
pub const AUDIT_CONTENT_TYPES: [&str; 4] = [
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
];

/// The audit trail from the Office 365 Management Activity API: each content type's
/// subscription started where it is not, then the blobs made available since the last run
/// read in windows of at most 24 hours, no further back than 7 days. Each window's records
/// are appended with the window's end in one transaction, so a run resumes where the last
/// stopped; records are keyed by their `Id`, so a blob read twice adds nothing, and a kept
/// record is never rewritten.
///
/// Retention: records older than the connection's audit retention are deleted first, and
/// none that old is written. This is the one place a sync deletes rather than archives:
/// an audit record past its retention is not gone from the tenant but out of its time.
async fn audit(run: &mut Run<'_>) -> Result<Outcome> {
    let mut counts = StepCounts::default();
    let retention = run.connection.audit_retention;
    let expired_before = chrono::Utc::now() - chrono::Duration::days(i64::from(retention.days()));
    let cutoff = expired_before.format("%Y-%m-%dT%H:%M:%S").to_string();
    let expired = run
        .store
        .expire_audit_records(&run.tenant_id, &cutoff, expired_before.timestamp_millis())
        .await?;
    let note = (expired > 0).then(|| {
        format!("{expired} audit records older than {retention} deleted, as the connection's audit retention says")
    });
    let Some(client) = run.management.as_ref() else {
        return Ok(Outcome::failed(
            counts,
            &"the Office 365 Management Activity API is not available in this cloud",
            None,
        ));
    };
    let tenant = run.tenant_id;
    let root = format!("api/v1.0/{tenant}/activity/feed");
    // PublisherIdentifier is the tenant of whoever runs the integration; for a direct
    // connection that is the tenant itself. It apportions the API's quota.
    let publisher = format!("PublisherIdentifier={tenant}");
    let subscriptions: Vec<ActivitySubscription> = match client
        .get_json(&format!("{root}/subscriptions/list?{publisher}"))
        .await
    {
        Ok(list) => list,
        Err(e) => return Ok(Outcome::from_graph(counts, &e)),
    };
    for content_type in AUDIT_CONTENT_TYPES {
        let enabled = subscriptions.iter().any(|s| {
            s.content_type == content_type
                && s.status
                    .as_deref()
                    .is_some_and(|st| st.eq_ignore_ascii_case("enabled"))
        });
        if !enabled {
            let started: Result<serde_json::Value, GraphError> = client
                .post_empty(&format!(
                    "{root}/subscriptions/start?contentType={content_type}&{publisher}"
                ))
                .await;
            if let Err(e) = started {
                return Ok(Outcome::from_graph(counts, &e));
            }
        }
    }
    let now = chrono::Utc::now()
        .with_nanosecond(0)
        .unwrap_or_else(chrono::Utc::now);
    let oldest = now - chrono::Duration::days(7) + chrono::Duration::minutes(5);
    let organization_id = run.organization_id.unwrap_or_default();
    for content_type in AUDIT_CONTENT_TYPES {
        let resource = format!("audit:{content_type}");
        let resume = run
            .store
            .delta_link(&tenant, &resource)
            .await?
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        let mut start = resume.unwrap_or(oldest).max(oldest);
        // The API wants windows of whole seconds with the start before the end; a window of
        // under a minute is left for the next run rather than asked for.
        while now - start >= chrono::Duration::minutes(1) {
            // Each window is saved with its resume point: stopping between windows loses nothing.
            if let Some(stopped) = run.stopped(counts) {
                return Ok(stopped);
            }
            let end = (start + chrono::Duration::hours(24)).min(now);
            let window =
                |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
            let mut next = Some(format!(
                "{root}/subscriptions/content?contentType={content_type}&startTime={}&endTime={}&{publisher}",
                window(start),
                window(end)
            ));
            let mut items = Vec::new();
            while let Some(url) = next.take() {
                let (blobs, next_page): (Vec<ActivityContent>, Option<String>) =
                    match client.get_json_and_header(&url, "NextPageUri").await {
                        Ok(page) => page,
                        Err(e) => return Ok(Outcome::from_graph(counts, &e)),
                    };
                for blob in &blobs {
                    let records: Vec<serde_json::Value> =
                        match client.get_json(&blob.content_uri).await {
                            Ok(records) => records,
                            Err(e) => return Ok(Outcome::from_graph(counts, &e)),
                        };
                    items.extend(
                        records
                            .iter()
                            .filter_map(|r| inventory::audit_record(r, content_type))
                            .filter(|r| !r.created_before(&cutoff)),
                    );
                }
                next = next_page;
            }
            let checkpoint = store::Checkpoint {
                resource: resource.clone(),
                link: end.to_rfc3339(),
            };
            counts += run
                .store
                .append_audit_records(organization_id, &tenant, &items, Some(&checkpoint))
                .await?;
            run.progress
                .items(Dataset::Audit, counts.created + counts.unchanged);
            start = end;
        }
    }
    Ok(Outcome::done(counts, note))
}
