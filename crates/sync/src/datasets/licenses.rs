//! Licences: the tenant's subscribed SKUs with their counts, named from the bundled catalogue,
//! and from the tenant's subscriptions which of them are trials and when each next changes.

use std::collections::HashSet;

use domain::{Dataset, LicenseRecord};
use graph::models::{
    COMPANY_SUBSCRIPTION_SELECT, CompanySubscription, SUBSCRIBED_SKU_SELECT, SubscribedSku,
};
use store::{RunWarning, StepCounts};

use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::normalise;
/// The tenant's subscribed SKUs.
pub(super) struct Licenses;

impl DatasetSync for Licenses {
    fn dataset(&self) -> Dataset {
        Dataset::Licenses
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/subscribedSkus?$select=skuId")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        licenses(run).await
    }
}

async fn licenses(run: &mut Run<'_>) -> Result<Outcome> {
    let url = format!("v1.0/subscribedSkus?$select={SUBSCRIBED_SKU_SELECT}");
    let mut pager = run.client.pages::<SubscribedSku>(&url);
    let mut records = Vec::new();
    loop {
        match pager.next_page().await {
            Ok(Some(page)) => {
                for sku in &page {
                    match normalise::license_from_sku(run.tenant_id, sku) {
                        Ok(r) => records.push(r),
                        Err(e) => return Ok(Outcome::failed(StepCounts::default(), &e, None)),
                    }
                }
            }
            Ok(None) => break,
            Err(e) => return Ok(Outcome::from_graph(StepCounts::default(), &e)),
        }
    }
    drop(pager);
    trials(run, &mut records).await;
    let organization_id = run.organization_id.unwrap_or_default();
    // A SKU the bundled catalogue does not know is reported once, when it first appears.
    let known: HashSet<String> = run
        .store
        .licenses(Some(&run.tenant_id), true)
        .await?
        .into_iter()
        .map(|l| l.sku_id)
        .collect();
    for record in records.iter().filter(|r| !known.contains(&r.sku_id)) {
        if domain::catalog::product_name(&record.sku_id, record.sku_part_number.as_str()).is_none()
        {
            run.warnings.push(RunWarning {
                code: "sku_unknown".into(),
                message: format!(
                    "new licence {} (SKU {}) is not in m365sync's catalogue of product names; it is shown by its part number",
                    record.sku_part_number, record.sku_id
                ),
            });
        }
    }
    let counts = run
        .store
        .apply_licenses(organization_id, &run.tenant_id, &records)
        .await?;
    run.progress.items(Dataset::Licenses, records.len() as u64);
    Ok(Outcome::done(counts, None))
}

/// Marks the SKUs whose subscriptions are trials, with when they end. A subscribed SKU does
/// not say whether it is a trial; its subscriptions do. Without the permission to read them
/// (LicenseAssignment.Read.All or Directory.Read.All), or when Graph fails, the SKUs are kept
/// with their trial state unknown and the run says why: the seats matter more than the flag.
async fn trials(run: &mut Run<'_>, records: &mut [LicenseRecord]) {
    let url = format!("v1.0/directory/subscriptions?$select={COMPANY_SUBSCRIPTION_SELECT}");
    let mut pager = run.client.pages::<CompanySubscription>(&url);
    let mut subscriptions = Vec::new();
    loop {
        match pager.next_page().await {
            Ok(Some(page)) => subscriptions.extend(page),
            Ok(None) => break,
            Err(e) => {
                run.warnings.push(RunWarning {
                    code: "subscriptions_unread".into(),
                    message: format!(
                        "which licences are trials cannot be told: the tenant's subscriptions could not be read ({}): {e}. {}",
                        e.code(),
                        if e.status() == Some(403) {
                            "Grant the app LicenseAssignment.Read.All (or Directory.Read.All) with admin consent".to_string()
                        } else {
                            e.fix()
                        }
                    ),
                });
                return;
            }
        }
    }
    for record in records.iter_mut() {
        let of_sku: Vec<&CompanySubscription> = subscriptions
            .iter()
            .filter(|s| {
                s.sku_id
                    .as_deref()
                    .is_some_and(|id| id.trim().eq_ignore_ascii_case(&record.sku_id))
            })
            .collect();
        if of_sku.is_empty() {
            continue;
        }
        let trial = of_sku.iter().any(|s| s.is_trial == Some(true));
        // A trial's end is the date that matters; otherwise the earliest renewal or lapse.
        record.next_lifecycle = of_sku
            .iter()
            .filter(|s| !trial || s.is_trial == Some(true))
            .filter_map(|s| {
                chrono::DateTime::parse_from_rfc3339(s.next_lifecycle_date_time.as_deref()?.trim())
                    .ok()
            })
            .min()
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            });
        record.trial = Some(trial);
    }
}
