//! Small, display-only tenant collections kept as JSON documents in the inventory: read whole
//! (they are small), written in batches, and whatever the complete listing lacks archived.

use std::collections::HashSet;

use domain::{Dataset, InventoryItem};
use graph::{GraphClient, GraphError};
use serde::de::DeserializeOwned;
use store::StepCounts;

use super::{Outcome, Run};
use crate::Result;

/// Every item of a small tenant-wide collection, all pages read.
pub(super) async fn fetch_all<T: DeserializeOwned + Send + 'static>(
    client: &GraphClient,
    path: &str,
) -> Result<Vec<T>, GraphError> {
    let mut pager = client.pages::<T>(path);
    let mut items = Vec::new();
    while let Some(page) = pager.next_page().await? {
        items.extend(page);
    }
    Ok(items)
}

/// Writes a whole listing, and archives what it lacked; a listing that failed changes nothing.
pub(super) async fn write_listing(
    run: &mut Run<'_>,
    dataset: Dataset,
    listed: Result<Vec<InventoryItem>, GraphError>,
) -> Result<Outcome> {
    let items = match listed {
        Ok(items) => items,
        Err(e) => return Ok(Outcome::from_graph(StepCounts::default(), &e)),
    };
    let organization_id = run.organization_id.unwrap_or_default();
    let mut counts = StepCounts::default();
    for batch in items.chunks(500) {
        counts += run
            .store
            .apply_inventory(organization_id, &run.tenant_id, dataset, batch, None)
            .await?;
    }
    run.progress.items(dataset, items.len() as u64);
    let seen: HashSet<String> = items.into_iter().map(|i| i.key).collect();
    counts.archived = run
        .store
        .archive_inventory_not_in(&run.tenant_id, dataset, &seen)
        .await?;
    Ok(Outcome::done(counts, None))
}
