//! Entra ID devices: as many as Intune's, or more, so read and written a page at a time.

use domain::Dataset;
use graph::models::DEVICE_SELECT;

use super::paged::paged_rows;
use super::{DatasetSync, Outcome, Run};
use crate::Result;

/// Entra ID devices (`Device.Read.All`).
pub(super) struct Devices;

impl DatasetSync for Devices {
    fn dataset(&self) -> Dataset {
        Dataset::Devices
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/devices?$top=1&$select=id")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let path = format!("v1.0/devices?$select={DEVICE_SELECT}&$top=999");
        paged_rows(run, Dataset::Devices, &path, crate::devices::device_records).await
    }
}
