//! Mailbox storage from the mailbox usage report, attached to contacts by user principal name.

use domain::keys::KeyList;
use domain::{Dataset, StepStatus};
use graph::models::MailboxUsageRow;
use store::{RunWarning, StepCounts};

use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::normalise::{self, NormaliseError};
/// Mailbox usage (`Reports.Read.All`).
pub(super) struct Mailboxes;

impl DatasetSync for Mailboxes {
    fn dataset(&self) -> Dataset {
        Dataset::Mailboxes
    }
    fn probe(&self) -> Option<&'static str> {
        // Answers 302 without a download: enough to learn that the permission works.
        Some("v1.0/reports/getMailboxUsageDetail(period='D7')")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        mailboxes(run).await
    }
}

/// Rows of the mailbox report written per transaction: each transaction rewrites the index
/// pages its random keys touch, so fewer, larger ones write far less (a few MB of rows in
/// memory at a time).
const MAILBOX_BATCH: usize = 10_000;

pub const CONCEALED_SETTING: &str = "Microsoft 365 admin center › Settings › Org settings › Services › Reports › \"Display concealed user, group, and site names in all reports\"";

const REPORT: &str = "reports/getMailboxUsageDetail(period='D7')";

async fn mailboxes(run: &mut Run<'_>) -> Result<Outcome> {
    let mut counts = StepCounts::default();
    let file = match run.client.download_report(REPORT).await {
        Ok(f) => f,
        Err(e) => return Ok(Outcome::from_graph(counts, &e)),
    };
    let mut rows = match file.rows::<MailboxUsageRow>() {
        Ok(rows) => rows,
        Err(e) => return Ok(Outcome::from_graph(counts, &e)),
    };
    if !rows.headers().iter().any(|h| h == "User Principal Name") {
        return Ok(Outcome::failed(
            counts,
            &format!(
                "the mailbox usage report has no 'User Principal Name' column (columns: {})",
                rows.headers().join(", ")
            ),
            None,
        ));
    }
    let mut stored_since = run.store.mailboxes_stored_since().await?;
    let mut read = ReadRows::default();
    let mut batch = Vec::with_capacity(MAILBOX_BATCH);
    let mut more = match read.fill(&mut rows, &mut batch, run.tenant_id) {
        Ok(more) => more,
        Err(e) => return Ok(Outcome::from_graph(counts, &e)),
    };
    // Each batch is written while the next is read: the store works on its own thread.
    while more {
        let mut next = Vec::with_capacity(MAILBOX_BATCH);
        let (applied, filled) =
            tokio::join!(run.store.apply_mailboxes(&run.tenant_id, &batch), async {
                read.fill(&mut rows, &mut next, run.tenant_id)
            });
        let applied = applied?;
        stored_since.created(applied.created);
        counts += applied;
        run.progress.items(Dataset::Mailboxes, read.rows);
        more = match filled {
            Ok(more) => more,
            Err(e) => return Ok(Outcome::from_graph(counts, &e)),
        };
        batch = next;
    }
    let applied = run.store.apply_mailboxes(&run.tenant_id, &batch).await?;
    stored_since.created(applied.created);
    counts += applied;
    let ReadRows {
        seen,
        concealed,
        unreadable,
        rows: read,
    } = read;
    run.progress.items(Dataset::Mailboxes, read);
    if concealed > 0 {
        // Rows that cannot be told apart cannot prove a mailbox gone: nothing is archived.
        run.warnings.push(RunWarning {
            code: "report_names_concealed".into(),
            message: format!(
                "{concealed} of {read} mailbox report rows have concealed user names, so their figures were attached to nobody. \
                 To fix it, a global administrator turns off {CONCEALED_SETTING}, or runs `m365sync connection report-names NAME --show` (needs ReportSettings.ReadWrite.All)"
            ),
        });
        let message = format!("{concealed} rows with concealed names were not attached");
        return Ok(Outcome {
            status: if seen.is_empty() {
                StepStatus::Skipped
            } else {
                StepStatus::Succeeded
            },
            counts,
            message: Some(message),
        });
    }
    counts.archived = run
        .store
        .archive_mailboxes_not_in(&run.tenant_id, &seen.finish(), Some(&stored_since))
        .await?;
    let message = (unreadable > 0)
        .then(|| format!("{unreadable} rows without a usable user principal name were skipped"));
    Ok(Outcome::done(counts, message))
}

/// What the rows of the report read so far came to.
#[derive(Default)]
struct ReadRows {
    /// The user principal names the report lists.
    seen: KeyList,
    /// Rows whose names the tenant conceals, and rows without a usable name.
    concealed: u64,
    unreadable: u64,
    rows: u64,
}

impl ReadRows {
    /// Reads rows into `batch` until it holds a transaction's worth; false once the report
    /// has no more rows.
    fn fill(
        &mut self,
        rows: &mut graph::ReportRows<MailboxUsageRow>,
        batch: &mut Vec<domain::MailboxRecord>,
        tenant_id: domain::TenantId,
    ) -> graph::Result<bool> {
        while batch.len() < MAILBOX_BATCH {
            let Some(row) = rows.next_row()? else {
                return Ok(false);
            };
            self.rows += 1;
            match normalise::mailbox_from_row(tenant_id, &row) {
                Ok(record) => {
                    self.seen.push(record.user_principal_name.key());
                    batch.push(record);
                }
                Err(NormaliseError::Concealed) => self.concealed += 1,
                Err(_) => self.unreadable += 1,
            }
        }
        Ok(true)
    }
}
