//! Usage: the active-user, app and email-activity reports, one item per user per report.

use std::collections::HashSet;

use domain::{Dataset, InventoryItem, StepStatus};
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
    seen: HashSet<String>,
    rows: u64,
    concealed: u64,
    unnamed: u64,
}

/// Usage: the active-user, app and email-activity reports, one item per user per report.
/// Like mailboxes, rows with concealed names are attached to nobody, and then nothing is
/// archived either: such a listing cannot prove anyone gone.
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
    tally.counts.archived = run
        .store
        .archive_inventory_not_in(&run.tenant_id, Dataset::Usage, &tally.seen)
        .await?;
    let message = (tally.unnamed > 0).then(|| {
        format!(
            "{} rows without a user principal name were skipped",
            tally.unnamed
        )
    });
    Ok(Outcome::done(tally.counts, message))
}

/// Streams one downloaded report into the store a thousand rows at a time. The outer error
/// is the store's; the inner one the report's.
async fn usage_rows<R: DeserializeOwned>(
    run: &mut Run<'_>,
    file: &graph::ReportFile,
    to_item: fn(&R) -> Result<InventoryItem, inventory::usage::Skip>,
    tally: &mut UsageTally,
) -> Result<Result<(), GraphError>> {
    let mut rows = match file.rows::<R>() {
        Ok(rows) => rows,
        Err(e) => return Ok(Err(e)),
    };
    let organization_id = run.organization_id.unwrap_or_default();
    let mut batch = Vec::with_capacity(1_000);
    loop {
        let row = match rows.next_row() {
            Ok(Some(row)) => Some(row),
            Ok(None) => None,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(row) = &row {
            tally.rows += 1;
            match to_item(row) {
                Ok(item) => {
                    tally.seen.insert(item.key.clone());
                    batch.push(item);
                }
                Err(inventory::usage::Skip::Concealed) => tally.concealed += 1,
                Err(inventory::usage::Skip::NoName) => tally.unnamed += 1,
            }
        }
        if batch.len() >= 1_000 || (row.is_none() && !batch.is_empty()) {
            tally.counts += run
                .store
                .apply_inventory(
                    organization_id,
                    &run.tenant_id,
                    Dataset::Usage,
                    &batch,
                    None,
                )
                .await?;
            batch.clear();
            run.progress.items(Dataset::Usage, tally.rows);
        }
        if row.is_none() {
            return Ok(Ok(()));
        }
    }
}
