//! When each user last signed in.

use std::time::Duration;

use domain::Dataset;
use graph::models::{SIGN_IN_PAGE, UserSignIns};
use store::RunWarning;

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
    say_how_long(run, &path).await;
    paged_rows(
        run,
        Dataset::SignInActivity,
        &path,
        |page: Vec<UserSignIns>| page.iter().filter_map(inventory::sign_in_record).collect(),
    )
    .await
}

/// Microsoft allows few reads of sign-in activity (5 every 10 seconds per app and tenant) and a
/// read holds 120 users, so a large tenant's takes long however fast everything else is. The
/// run log says so, with the time it will take, before the step starts, so that a step paced
/// to Microsoft's limits is not taken for one that hangs. Counting the users also gives the
/// client its tenant's directory budget. Nothing is said when the count cannot be had.
async fn say_how_long(run: &mut Run<'_>, path: &str) {
    let Ok(users) = run.client.count("v1.0/users/$count").await else {
        return;
    };
    run.client.set_tenant_users(users);
    let reads = users.div_ceil(u64::from(SIGN_IN_PAGE)).max(1);
    let Some((duration, budget)) = run.client.paced_duration(path, reads) else {
        return;
    };
    if duration <= budget.window {
        return;
    }
    run.warnings.push(RunWarning {
        code: "sign_in_activity_paced".into(),
        message: format!(
            "sign-in activity of {users} users takes about {}: Microsoft allows {} reads of it every {} per app and tenant, and a read holds {SIGN_IN_PAGE} users",
            spoken(duration),
            budget.units,
            spoken(budget.window),
        ),
    });
}

/// A duration as a person says it: "40 seconds", "28 minutes", "2 hours 5 minutes".
fn spoken(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match seconds {
        0..90 => plural(seconds, "second"),
        90..5_400 => plural(seconds.div_ceil(60), "minute"),
        _ => {
            let minutes = seconds.div_ceil(60);
            match minutes % 60 {
                0 => plural(minutes / 60, "hour"),
                rest => format!(
                    "{} {}",
                    plural(minutes / 60, "hour"),
                    plural(rest, "minute")
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_said_as_a_person_says_them() {
        assert_eq!(spoken(Duration::from_secs(1)), "1 second");
        assert_eq!(spoken(Duration::from_secs(10)), "10 seconds");
        assert_eq!(spoken(Duration::from_secs(1_660)), "28 minutes");
        assert_eq!(spoken(Duration::from_secs(7_200)), "2 hours");
        assert_eq!(spoken(Duration::from_secs(7_500)), "2 hours 5 minutes");
    }
}
