//! Usage: the active-user, app and email-activity reports, one item per user per report.

use domain::keys::KeyList;
use domain::rows::{Keyed, RowPlan};
use domain::usage::UsageRecord;
use domain::{Dataset, StepStatus};
use graph::GraphError;
use serde::de::DeserializeOwned;
use store::{RunWarning, StepCounts};

use super::mailboxes::CONCEALED_SETTING;
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;
/// Usage reports (`Reports.Read.All`).
pub(super) struct Usage;

impl DatasetSync for Usage {
    fn dataset(&self) -> Dataset {
        Dataset::Usage
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/reports/getOffice365ActiveUserDetail(period='D7')")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        usage(run).await
    }
}

/// What the usage reports delivered, across the three.
#[derive(Default)]
struct UsageTally {
    counts: StepCounts,
    /// Keys of the rows read, across the three reports: what a complete reading may keep.
    seen: KeyList,
    rows: u64,
    concealed: u64,
    unnamed: u64,
}

/// Usage: the active-user, app and email-activity reports, one row per user per report, so
/// that one report never rewrites another's columns. Rows are planned and written a thousand
/// at a time as the reports stream in; what none of the three names is archived only once all
/// three were read whole. Like mailboxes, rows with concealed names are attached to nobody, and
/// then nothing is archived either: such a listing cannot prove anyone gone.
async fn usage(run: &mut Run<'_>) -> Result<Outcome> {
    let mut tally = UsageTally::default();
    for function in [
        "getOffice365ActiveUserDetail(period='D30')",
        "getM365AppUserDetail(period='D30')",
        "getEmailActivityUserDetail(period='D30')",
    ] {
        if let Some(stopped) = run.stopped(tally.counts) {
            return Ok(stopped);
        }
        let file = match run
            .client
            .download_report(&format!("reports/{function}"))
            .await
        {
            Ok(f) => f,
            Err(e) => return Ok(Outcome::from_graph(tally.counts, &e)),
        };
        let read = match function.split('(').next() {
            Some("getOffice365ActiveUserDetail") => {
                usage_rows(run, &file, inventory::usage::activity, &mut tally).await?
            }
            Some("getM365AppUserDetail") => {
                usage_rows(run, &file, inventory::usage::apps, &mut tally).await?
            }
            _ => usage_rows(run, &file, inventory::usage::email, &mut tally).await?,
        };
        if let Err(e) = read {
            return Ok(Outcome::from_graph(tally.counts, &e));
        }
    }
    if tally.concealed > 0 {
        run.warnings.push(RunWarning {
            code: "report_names_concealed".into(),
            message: format!(
                "{} of {} usage report rows have concealed user names, so they were attached to nobody. To fix it, a global administrator turns off {CONCEALED_SETTING}",
                tally.concealed, tally.rows
            ),
        });
        let status = if tally.seen.is_empty() {
            StepStatus::Skipped
        } else {
            StepStatus::Succeeded
        };
        return Ok(Outcome {
            status,
            counts: tally.counts,
            message: Some(format!(
                "{} rows with concealed names were not attached",
                tally.concealed
            )),
        });
    }
    let mut batch = run
        .store
        .row_batch::<UsageRecord>(run.organization_id.unwrap_or_default(), &run.tenant_id)
        .await?;
    let listed = std::mem::take(&mut tally.seen).finish();
    let unlisted = batch.active_keys_where(|key| !listed.contains(key)).await?;
    let plan: RowPlan<UsageRecord> = domain::rows::plan_unlisted(unlisted, &listed);
    tally.counts.archived = batch.apply(&plan, None).await?.archived;
    batch.commit().await?;
    let message = (tally.unnamed > 0).then(|| {
        format!(
            "{} rows without a user principal name were skipped",
            tally.unnamed
        )
    });
    Ok(Outcome::done(tally.counts, message))
}

/// Rows of a usage report planned and written per transaction.
const USAGE_BATCH: usize = 1_000;

/// Streams one downloaded report into the usage table a thousand rows at a time, each
/// thousand planned against the stored rows of its keys and written in one transaction. The outer error
/// is the store's; the inner one the report's.
async fn usage_rows<R: DeserializeOwned>(
    run: &mut Run<'_>,
    file: &graph::ReportFile,
    to_record: fn(&R) -> Result<UsageRecord, inventory::usage::Skip>,
    tally: &mut UsageTally,
) -> Result<Result<(), GraphError>> {
    let mut rows = match file.rows::<R>() {
        Ok(rows) => rows,
        Err(e) => return Ok(Err(e)),
    };
    let organization_id = run.organization_id.unwrap_or_default();
    let mut records: Vec<UsageRecord> = Vec::with_capacity(USAGE_BATCH);
    loop {
        let row = match rows.next_row() {
            Ok(Some(row)) => Some(row),
            Ok(None) => None,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(row) = &row {
            tally.rows += 1;
            match to_record(row) {
                Ok(record) => {
                    tally.seen.push(record.key());
                    records.push(record);
                }
                Err(inventory::usage::Skip::Concealed) => tally.concealed += 1,
                Err(inventory::usage::Skip::NoName) => tally.unnamed += 1,
            }
        }
        if records.len() >= USAGE_BATCH || (row.is_none() && !records.is_empty()) {
            let page = std::mem::replace(&mut records, Vec::with_capacity(USAGE_BATCH));
            let mut batch = run
                .store
                .row_batch::<UsageRecord>(organization_id, &run.tenant_id)
                .await?;
            let stored = batch.stored(page.iter().map(|r| r.key())).await?;
            let plan = domain::rows::plan_page(&stored, page);
            tally.counts += batch.apply(&plan, None).await?;
            batch.commit().await?;
            run.progress.items(Dataset::Usage, tally.rows);
        }
        if row.is_none() {
            return Ok(Ok(()));
        }
    }
}
