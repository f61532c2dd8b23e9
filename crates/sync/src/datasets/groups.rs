//! Groups and their members, by delta query.

use std::collections::{BTreeMap, HashMap, HashSet};

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

/// A groups round: the entries merged per group (one group's members can span pages),
/// written after the last page, the link saved after the data it covers.
pub(super) async fn groups_round(run: &mut Run<'_>, link: Option<String>) -> Result<Round> {
    let incremental = link.is_some();
    let url = link.unwrap_or_else(|| format!("v1.0/groups/delta?$select={GROUP_SELECT},members"));
    let mut pager = run.client.pages::<GroupDelta>(&url);
    let mut changes: BTreeMap<String, inventory::GroupChange> = BTreeMap::new();
    loop {
        if let Some(stopped) = run.stopped(StepCounts::default()) {
            return Ok(Round::Done(stopped));
        }
        let page = match pager.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(GraphError::DeltaExpired { .. }) if incremental => return Ok(Round::Expired),
            Err(e) => {
                return Ok(Round::Done(Outcome::from_graph(StepCounts::default(), &e)));
            }
        };
        for entry in page {
            changes
                .entry(entry.group.id.clone())
                .or_default()
                .merge(entry);
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
    if incremental && changes.is_empty() {
        // Nothing changed: no need to read the stored groups, only to move the link on.
        run.store
            .apply_inventory(
                organization_id,
                &run.tenant_id,
                Dataset::Groups,
                &[],
                Some(&checkpoint),
            )
            .await?;
        return Ok(Round::Done(Outcome::done(StepCounts::default(), None)));
    }
    let stored: HashMap<String, serde_json::Value> = if incremental {
        run.store
            .inventory_as_stored(Some(&run.tenant_id), Dataset::Groups, false)
            .await?
            .into_iter()
            .map(|row| (row.key, row.document))
            .collect()
    } else {
        HashMap::new()
    };
    let mut items = Vec::new();
    let mut deleted = HashSet::new();
    for (id, change) in &changes {
        if change.removed {
            deleted.insert(id.clone());
        } else {
            items.push(inventory::group_from_delta(id, change, stored.get(id)));
        }
    }
    let mut counts = run
        .store
        .apply_inventory(
            organization_id,
            &run.tenant_id,
            Dataset::Groups,
            &items,
            None,
        )
        .await?;
    run.progress.items(Dataset::Groups, items.len() as u64);
    // A whole round names every group; a changes round only the changed ones and the deleted.
    let mut seen: HashSet<String> = items.into_iter().map(|i| i.key).collect();
    if incremental {
        seen.extend(stored.into_keys());
    }
    seen.retain(|key| !deleted.contains(key));
    counts.archived = run
        .store
        .archive_inventory_not_in(&run.tenant_id, Dataset::Groups, &seen)
        .await?;
    run.store
        .apply_inventory(
            organization_id,
            &run.tenant_id,
            Dataset::Groups,
            &[],
            Some(&checkpoint),
        )
        .await?;
    Ok(Round::Done(Outcome::done(counts, None)))
}
