//! Software Intune detected on managed devices, with the devices each was found on.

use domain::{Dataset, InventoryItem};
use graph::models::{DetectedApp, DirectoryObject};
use graph::{GraphClient, GraphError};

use super::small::{fetch_all, write_listing};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;

/// Detected apps (`DeviceManagementManagedDevices.Read.All`).
pub(super) struct DetectedApps;

impl DatasetSync for DetectedApps {
    fn dataset(&self) -> Dataset {
        Dataset::DetectedApps
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/deviceManagement/detectedApps?$top=1")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let listed = list(&run.client).await;
        write_listing(run, Dataset::DetectedApps, listed).await
    }
}

async fn list(client: &GraphClient) -> Result<Vec<InventoryItem>, GraphError> {
    let apps =
        fetch_all::<DetectedApp>(client, "v1.0/deviceManagement/detectedApps?$top=999").await?;
    let paths: Vec<String> = apps
        .iter()
        .map(|a| {
            format!(
                "/deviceManagement/detectedApps/{}/managedDevices?$select=id&$top=999",
                a.id
            )
        })
        .collect();
    let devices = client
        .batch_collections::<DirectoryObject>("v1.0", &paths)
        .await?;
    Ok(apps
        .iter()
        .zip(devices)
        .map(|(app, devices)| {
            inventory::detected_app_item(app, devices.into_iter().map(|d| d.id).collect())
        })
        .collect())
}
