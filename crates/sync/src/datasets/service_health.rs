//! Service health: each service's status and its open issues.

use domain::{Dataset, InventoryItem};
use graph::models::{ServiceHealth as Health, ServiceHealthIssue};
use graph::{GraphClient, GraphError};

use super::small::{fetch_all, write_listing};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;

/// Service health (`ServiceHealth.Read.All`).
pub(super) struct ServiceHealth;

impl DatasetSync for ServiceHealth {
    fn dataset(&self) -> Dataset {
        Dataset::ServiceHealth
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/admin/serviceAnnouncement/healthOverviews")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let listed = list(&run.client).await;
        write_listing(run, Dataset::ServiceHealth, listed).await
    }
}

async fn list(client: &GraphClient) -> Result<Vec<InventoryItem>, GraphError> {
    let services =
        fetch_all::<Health>(client, "v1.0/admin/serviceAnnouncement/healthOverviews").await?;
    let issues =
        fetch_all::<ServiceHealthIssue>(client, "v1.0/admin/serviceAnnouncement/issues").await?;
    let mut items: Vec<InventoryItem> = services
        .iter()
        .map(inventory::service_health_item)
        .collect();
    items.extend(issues.iter().map(inventory::service_issue_item));
    Ok(items)
}
