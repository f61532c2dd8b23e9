//! Large tenant-wide collections read and written a page at a time.

use domain::keys::KeyList;
use domain::{Dataset, StepStatus};
use serde::de::DeserializeOwned;
use store::{RunWarning, StepCounts};

use super::{Outcome, Run};
use crate::Result;

/// A large tenant-wide collection kept in a typed table: each page planned against the
/// stored rows of its keys and applied in one transaction, then whatever the complete
/// listing lacks archived. A tenant without Entra ID P1/P2 skips the step with a note.
pub(super) async fn paged_rows<
    T: DeserializeOwned + Send + 'static,
    R: store::typed::TypedTable,
>(
    run: &mut Run<'_>,
    dataset: Dataset,
    path: &str,
    to_records: impl Fn(Vec<T>) -> Vec<R>,
) -> Result<Outcome> {
    let mut pager = run.client.pages::<T>(path);
    let mut counts = StepCounts::default();
    let mut seen = KeyList::new();
    let organization_id = run.organization_id.unwrap_or_default();
    loop {
        // Stopped between pages: what the listing lacked so far proves nothing gone.
        if let Some(stopped) = run.stopped(counts) {
            return Ok(stopped);
        }
        let page = match pager.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(e) if e.needs_premium() => {
                run.warnings.push(RunWarning {
                    code: format!("{dataset}_needs_premium"),
                    message: format!("{dataset} was not read: the tenant has no Microsoft Entra ID P1 or P2 licence, which Microsoft requires for it"),
                });
                return Ok(Outcome {
                    status: StepStatus::Skipped,
                    counts,
                    message: Some(e.fix()),
                });
            }
            Err(e) => return Ok(Outcome::from_graph(counts, &e)),
        };
        let records = to_records(page);
        for record in &records {
            seen.push(record.key());
        }
        let mut batch = run
            .store
            .row_batch::<R>(organization_id, &run.tenant_id)
            .await?;
        let stored = batch.stored(records.iter().map(|r| r.key())).await?;
        let plan = domain::rows::plan_page(&stored, records);
        counts += batch.apply(&plan, None).await?;
        batch.commit().await?;
        run.progress.items(dataset, seen.pushed() as u64);
    }
    let mut batch = run
        .store
        .row_batch::<R>(organization_id, &run.tenant_id)
        .await?;
    let listed = seen.finish();
    let unlisted = batch.active_keys_where(|key| !listed.contains(key)).await?;
    let plan: domain::rows::RowPlan<R> = domain::rows::plan_unlisted(unlisted, &listed);
    counts.archived = batch.apply(&plan, None).await?.archived;
    batch.commit().await?;
    Ok(Outcome::done(counts, None))
}
