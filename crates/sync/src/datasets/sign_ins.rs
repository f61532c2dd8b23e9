//! When each user last signed in.

use domain::Dataset;
use graph::models::{SIGN_IN_PAGE, UserSignIns};

use super::paged::paged_rows;
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;
/// Sign-in activity (`AuditLog.Read.All`, Entra ID P1/P2).
pub(super) struct SignInActivity;

impl DatasetSync for SignInActivity {
    fn dataset(&self) -> Dataset {
        Dataset::SignInActivity
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/users?$top=1&$select=id,signInActivity")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        sign_in_activity(run).await
    }
}

/// When each user last signed in, one row per user by object id. Needs AuditLog.Read.All and a
/// tenant with Entra ID P1/P2; without the licence the step is skipped with a note, not failed,
/// and nothing is archived.
async fn sign_in_activity(run: &mut Run<'_>) -> Result<Outcome> {
    let path =
        format!("v1.0/users?$select=id,userPrincipalName,signInActivity&$top={SIGN_IN_PAGE}");
    paged_rows(
        run,
        Dataset::SignInActivity,
        &path,
        |page: Vec<UserSignIns>| page.iter().filter_map(inventory::sign_in_record).collect(),
    )
    .await
}
