//! Terms-of-use agreements.

use domain::{Dataset, InventoryItem};
use graph::models::Agreement;
use graph::{GraphClient, GraphError};

use super::small::{fetch_all, write_listing};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;

/// Terms of use (`Agreement.Read.All`).
pub(super) struct TermsOfUse;

impl DatasetSync for TermsOfUse {
    fn dataset(&self) -> Dataset {
        Dataset::TermsOfUse
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/identityGovernance/termsOfUse/agreements")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let listed = list(&run.client).await;
        write_listing(run, Dataset::TermsOfUse, listed).await
    }
}

async fn list(client: &GraphClient) -> Result<Vec<InventoryItem>, GraphError> {
    let agreements =
        fetch_all::<Agreement>(client, "v1.0/identityGovernance/termsOfUse/agreements").await?;
    Ok(agreements.iter().map(inventory::agreement_item).collect())
}
