//! Groups and their members, by delta query.

use std::collections::{BTreeMap, HashSet};

use domain::Dataset;
use graph::GraphError;
use graph::models::{GROUP_SELECT, GroupDelta};
use store::StepCounts;

use super::delta::{GROUPS_RESOURCE, Round, by_delta, checkpoint_of};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::inventory;
/// Groups and memberships (`GroupMember.Read.All`).
pub(super) struct Groups;

impl DatasetSync for Groups {
    fn dataset(&self) -> Dataset {
        Dataset::Groups
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/groups?$top=1&$select=id")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        by_delta(run, GROUPS_RESOURCE).await
    }
}

/// A groups round: the entries merged per group (one group's members can span pages), then
/// planned against the stored groups and members they name and written after the last page,
/// memberships as joins and leaves, in one transaction with the link that covers them.
pub(super) async fn groups_round(run: &mut Run<'_>, link: Option<String>) -> Result<Round> {
    let round = if link.is_some() {
        domain::groups::GroupRound::Changes
    } else {
        domain::groups::GroupRound::Whole
    };
    let url = link.unwrap_or_else(|| format!("v1.0/groups/delta?$select={GROUP_SELECT},members"));
    let mut pager = run.client.pages::<GroupDelta>(&url);
    let mut changes: BTreeMap<String, domain::groups::GroupChange> = BTreeMap::new();
    loop {
        if let Some(stopped) = run.stopped(StepCounts::default()) {
            return Ok(Round::Done(stopped));
        }
        let page = match pager.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(GraphError::DeltaExpired { .. })
                if round == domain::groups::GroupRound::Changes =>
            {
                return Ok(Round::Expired);
            }
            Err(e) => {
                return Ok(Round::Done(Outcome::from_graph(StepCounts::default(), &e)));
            }
        };
        for entry in page {
            inventory::merge_group_entry(&mut changes, entry);
        }
    }
    let Some(checkpoint) = checkpoint_of(&pager, GROUPS_RESOURCE) else {
        return Ok(Round::Done(Outcome::failed(
            StepCounts::default(),
            &"the groups delta listing ended without a delta link",
            Some("Run the sync again; if it persists, report it with the run log".into()),
        )));
    };
    let organization_id = run.organization_id.unwrap_or_default();
    let mut batch = run
        .store
        .group_batch(organization_id, &run.tenant_id)
        .await?;
    // A whole round may archive any active group, so it compares against all of them; a
    // changes round reads only the groups it names (none when nothing changed).
    let active = match round {
        domain::groups::GroupRound::Whole => batch.active_keys().await?,
        domain::groups::GroupRound::Changes => HashSet::new(),
    };
    let named: HashSet<&str> = changes
        .keys()
        .map(String::as_str)
        .chain(active.iter().map(String::as_str))
        .collect();
    let stored = batch.stored(named).await?;
    let members = batch.members(changes.keys().map(String::as_str)).await?;
    let plan = domain::groups::plan_groups(round, &stored, &members, &changes);
    let counts = batch.apply(&plan, Some(&checkpoint)).await?;
    batch.commit().await?;
    run.progress.items(Dataset::Groups, changes.len() as u64);
    Ok(Round::Done(Outcome::done(counts, None)))
}
