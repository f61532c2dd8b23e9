//! Datasets read by delta query (users, groups): from the saved link, or whole; a link Graph no
//! longer knows, or one saved against another Graph address, means one more round, whole.

use serde::de::DeserializeOwned;
use store::{RunWarning, StepCounts};

use super::groups::groups_round;
use super::users::users_round;
use super::{Outcome, Run};
use crate::Result;

/// A dataset read by delta: from the saved link, or whole when there is none (or the run is
/// a clean one); a link Graph no longer knows means one more round, whole.
pub(super) async fn by_delta(run: &mut Run<'_>, resource: &'static str) -> Result<Outcome> {
    let mut stored = if run.full {
        None
    } else {
        run.store.delta_link(&run.tenant_id, resource).await?
    };
    // A link saved against another Graph address (the connection was moved, or a demo's
    // simulator came back on another port) is never followed: it would carry our token
    // elsewhere, and Graph here would not know it anyway.
    if let Some(link) = stored.take_if(|link| !run.client.is_own_link(link)) {
        run.store.clear_delta_link(&run.tenant_id, resource).await?;
        let host = url::Url::parse(&link)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_string(),
                })
            })
            .unwrap_or_else(|| "an address that is not a URL".into());
        run.warnings.push(RunWarning {
            code: "delta_link_foreign".into(),
            message: format!(
                "the saved {resource} delta link pointed at {host}, not this connection's Microsoft Graph address; it was dropped and all {resource} were listed again"
            ),
        });
    }
    match delta_round(run, resource, stored).await? {
        Round::Done(outcome) => Ok(outcome),
        Round::Expired => {
            run.store.clear_delta_link(&run.tenant_id, resource).await?;
            run.warnings.push(RunWarning {
                code: "delta_reset".into(),
                message: format!("Microsoft Graph no longer knew the {resource} delta link (links expire after 7 days unused); all {resource} were listed again"),
            });
            match delta_round(run, resource, None).await? {
                Round::Done(outcome) => Ok(outcome),
                Round::Expired => Ok(Outcome::failed(
                    StepCounts::default(),
                    &"a fresh delta listing was refused as expired",
                    None,
                )),
            }
        }
    }
}

pub(super) async fn delta_round(
    run: &mut Run<'_>,
    resource: &str,
    link: Option<String>,
) -> Result<Round> {
    match resource {
        GROUPS_RESOURCE => groups_round(run, link).await,
        _ => users_round(run, link).await,
    }
}

/// The resource name delta links are kept under.
pub(super) const USERS_RESOURCE: &str = "users";
pub(super) const GROUPS_RESOURCE: &str = "groups";

/// How a delta round ended: with an outcome, or with a delta link Graph no longer knows.
pub(super) enum Round {
    Done(Outcome),
    Expired,
}

pub(super) fn checkpoint_of<T: DeserializeOwned + Send + 'static>(
    pager: &graph::Pager<'_, T>,
    resource: &str,
) -> Option<store::Checkpoint> {
    pager.delta_link().map(|link| store::Checkpoint {
        resource: resource.to_string(),
        link: link.to_string(),
    })
}
