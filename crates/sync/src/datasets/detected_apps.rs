//! Software Intune detected on managed devices, with the devices each was found on.

use std::collections::HashSet;

use domain::{Dataset, InventoryItem};
use graph::models::{DetectedApp, DirectoryObject};
use store::StepCounts;

use super::small::fetch_all;
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
        let apps = match fetch_all::<DetectedApp>(
            &run.client,
            "v1.0/deviceManagement/detectedApps?$top=999",
        )
        .await
        {
            Ok(apps) => apps,
            Err(e) => return Ok(Outcome::from_graph(StepCounts::default(), &e)),
        };
        let organization_id = run.organization_id.unwrap_or_default();
        let mut counts = StepCounts::default();
        let mut seen: HashSet<String> = HashSet::with_capacity(apps.len());
        // One batch of apps at a time: their device lists are written before the next ones are
        // read, so memory holds one batch's devices whatever the size of the tenant (a large
        // one has tens of thousands of devices under each common app).
        for chunk in apps.chunks(graph::MAX_BATCH) {
            if let Some(stopped) = run.stopped(counts) {
                return Ok(stopped);
            }
            let paths: Vec<String> = chunk
                .iter()
                .map(|a| {
                    format!(
                        "/deviceManagement/detectedApps/{}/managedDevices?$select=id&$top=999",
                        a.id
                    )
                })
                .collect();
            let devices = match run
                .client
                .batch_collections::<DirectoryObject>("v1.0", &paths)
                .await
            {
                Ok(devices) => devices,
                // Nothing archived: only a whole listing proves an app gone.
                Err(e) => return Ok(Outcome::from_graph(counts, &e)),
            };
            let items: Vec<InventoryItem> = chunk
                .iter()
                .zip(devices)
                .map(|(app, devices)| {
                    inventory::detected_app_item(app, devices.into_iter().map(|d| d.id).collect())
                })
                .collect();
            counts += run
                .store
                .apply_inventory(
                    organization_id,
                    &run.tenant_id,
                    Dataset::DetectedApps,
                    &items,
                    None,
                )
                .await?;
            seen.extend(items.into_iter().map(|item| item.key));
            run.progress.items(Dataset::DetectedApps, seen.len() as u64);
        }
        counts.archived = run
            .store
            .archive_inventory_not_in(&run.tenant_id, Dataset::DetectedApps, &seen)
            .await?;
        Ok(Outcome::done(counts, None))
    }
}
