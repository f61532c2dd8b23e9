//! Licences: the tenant's subscribed SKUs with their counts, named from the bundled catalogue.

use std::collections::HashSet;

use domain::Dataset;
use graph::models::{SUBSCRIBED_SKU_SELECT, SubscribedSku};
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
