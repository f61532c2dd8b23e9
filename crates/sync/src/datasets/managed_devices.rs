//! Intune managed devices.

use domain::Dataset;
use graph::models::MANAGED_DEVICE_SELECT;

use super::paged::paged_rows;
use super::{DatasetSync, Outcome, Run};
use crate::Result;
/// Intune devices (`DeviceManagementManagedDevices.Read.All`).
pub(super) struct ManagedDevices;

impl DatasetSync for ManagedDevices {
    fn dataset(&self) -> Dataset {
        Dataset::ManagedDevices
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/deviceManagement/managedDevices?$top=1&$select=id")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        managed_devices(run).await
    }
}

/// Intune devices, written page by page (a tenant may have tens of thousands), then those
/// the complete listing lacks archived.
async fn managed_devices(run: &mut Run<'_>) -> Result<Outcome> {
    let path =
        format!("v1.0/deviceManagement/managedDevices?$select={MANAGED_DEVICE_SELECT}&$top=999");
    paged_rows(
        run,
        Dataset::ManagedDevices,
        &path,
        crate::devices::managed_device_records,
    )
    .await
}
