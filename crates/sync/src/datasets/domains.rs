//! The tenant's domains.

use domain::{Dataset, InventoryItem};
use graph::models::Domain;
use graph::{GraphClient, GraphError};

use super::small::{fetch_all, write_listing};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;

/// Domains (`Domain.Read.All`).
pub(super) struct Domains;

impl DatasetSync for Domains {
    fn dataset(&self) -> Dataset {
        Dataset::Domains
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/domains")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let listed = list(&run.client).await;
        write_listing(run, Dataset::Domains, listed).await
    }
}

async fn list(client: &GraphClient) -> Result<Vec<InventoryItem>, GraphError> {
    let domains = fetch_all::<Domain>(client, "v1.0/domains").await?;
    Ok(domains.iter().map(inventory::domain_item).collect())
}
