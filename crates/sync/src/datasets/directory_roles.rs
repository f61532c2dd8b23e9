//! Activated directory roles and their members (fetched twenty roles to a `$batch`).

use domain::{Dataset, InventoryItem};
use graph::models::{DirectoryObject, DirectoryRole};
use graph::{GraphClient, GraphError};

use super::small::{fetch_all, write_listing};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;

/// Directory roles (`RoleManagement.Read.Directory`).
pub(super) struct DirectoryRoles;

impl DatasetSync for DirectoryRoles {
    fn dataset(&self) -> Dataset {
        Dataset::DirectoryRoles
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/directoryRoles")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let listed = list(&run.client).await;
        write_listing(run, Dataset::DirectoryRoles, listed).await
    }
}

async fn list(client: &GraphClient) -> Result<Vec<InventoryItem>, GraphError> {
    let roles = fetch_all::<DirectoryRole>(client, "v1.0/directoryRoles").await?;
    let paths: Vec<String> = roles
        .iter()
        .map(|r| format!("/directoryRoles/{}/members", r.id))
        .collect();
    let members = client
        .batch_collections::<DirectoryObject>("v1.0", &paths)
        .await?;
    Ok(roles
        .iter()
        .zip(&members)
        .map(|(role, members)| inventory::directory_role_item(role, members))
        .collect())
}
