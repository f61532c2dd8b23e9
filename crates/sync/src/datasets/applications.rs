//! App registrations, and warnings for their secrets and certificates about to expire.

use domain::{Dataset, InventoryItem};
use graph::GraphError;
use graph::models::{APPLICATION_SELECT, Application};

use super::small::{fetch_all, write_listing};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;

/// App registrations (`Application.Read.All`).
pub(super) struct Applications;

impl DatasetSync for Applications {
    fn dataset(&self) -> Dataset {
        Dataset::Applications
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/applications?$top=1&$select=id")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let listed = list(run).await;
        write_listing(run, Dataset::Applications, listed).await
    }
}

async fn list(run: &mut Run<'_>) -> Result<Vec<InventoryItem>, GraphError> {
    let apps = fetch_all::<Application>(
        &run.client,
        &format!("v1.0/applications?$select={APPLICATION_SELECT}"),
    )
    .await?;
    let now = chrono::Utc::now();
    for app in &apps {
        run.warnings
            .extend(inventory::credential_warnings(app, &run.client_id, now));
    }
    Ok(apps.iter().map(inventory::application_item).collect())
}
