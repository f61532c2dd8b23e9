//! Message-centre posts: planned changes announced by Microsoft.

use domain::{Dataset, InventoryItem};
use graph::models::ServiceUpdateMessage;
use graph::{GraphClient, GraphError};

use super::small::{fetch_all, write_listing};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;

/// Message-centre posts (`ServiceMessage.Read.All`).
pub(super) struct ServiceMessages;

impl DatasetSync for ServiceMessages {
    fn dataset(&self) -> Dataset {
        Dataset::ServiceMessages
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/admin/serviceAnnouncement/messages")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let listed = list(&run.client).await;
        write_listing(run, Dataset::ServiceMessages, listed).await
    }
}

async fn list(client: &GraphClient) -> Result<Vec<InventoryItem>, GraphError> {
    let messages =
        fetch_all::<ServiceUpdateMessage>(client, "v1.0/admin/serviceAnnouncement/messages")
            .await?;
    Ok(messages
        .iter()
        .map(inventory::service_message_item)
        .collect())
}
