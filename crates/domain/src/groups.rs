//! Groups and their memberships: the group as a typed row, its members as rows of a join table,
//! and the plan of a groups delta round. A whole round names every group with its complete
//! member list, which replaces the stored one; a changes round names only the groups that
//! changed, with the members who joined and (marked removed) those who left, which are applied
//! to the stored list without rewriting the rest of it.
//!
//! A membership is not a record: it has no properties of its own and nobody edits it, so a member
//! who leaves is deleted from the join table, not archived. A deleted group is archived like any
//! typed row and keeps its last members, so that it is shown as it was; readers of current
//! memberships only follow active groups.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::rows::{Keyed, RowPlan, StoredRow, plan_not_listed, plan_page};

/// A group as kept: keyed by its object id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupRecord {
    pub object_id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub mail: Option<String>,
    pub mail_enabled: Option<bool>,
    pub security_enabled: Option<bool>,
    /// Sorted, so that the order Microsoft sends them in never reads as a change.
    pub group_types: Vec<String>,
    pub visibility: Option<String>,
    pub created: Option<String>,
}

impl Keyed for GroupRecord {
    fn key(&self) -> &str {
        &self.object_id
    }
}

impl GroupRecord {
    /// A group known only by its id (a change that named members but no properties, of a group
    /// the store never saw).
    pub fn bare(object_id: &str) -> Self {
        Self {
            object_id: object_id.to_string(),
            ..Self::default()
        }
    }

    /// Microsoft 365 groups carry "Unified"; mail-enabled security groups and distribution
    /// lists are told apart by their two flags.
    pub fn kind(&self) -> &'static str {
        if self.group_types.iter().any(|t| t == "Unified") {
            "microsoft365"
        } else if self.security_enabled == Some(true) && self.mail_enabled == Some(true) {
            "mail_enabled_security"
        } else if self.security_enabled == Some(true) {
            "security"
        } else {
            "distribution"
        }
    }

    /// The display name, or the object id when the group has none.
    pub fn name(&self) -> &str {
        self.display_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.object_id)
    }
}

/// One membership: a member (user, group, device, service principal, …) of a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Membership {
    pub group_id: String,
    pub member_id: String,
    /// `user`, `group`, `device`, …; unknown when Microsoft did not say.
    pub member_type: Option<String>,
}

/// A group's members as stored: member id → member type.
pub type Members = BTreeMap<String, Option<String>>;

/// What one delta round said of one group, its entries merged: a group's members can arrive
/// over several entries, on several pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupChange {
    /// The group's properties, when an entry named them (one carrying only member changes
    /// names none).
    pub properties: Option<GroupRecord>,
    /// Members who joined, with their type.
    pub joined: Members,
    /// Members who left.
    pub left: BTreeSet<String>,
    /// The group itself was deleted.
    pub removed: bool,
}

impl GroupChange {
    pub fn group_removed(&mut self) {
        self.removed = true;
    }

    /// An entry naming the group again: a group deleted earlier in the round came back.
    pub fn group_seen(&mut self, properties: Option<GroupRecord>) {
        self.removed = false;
        if properties.is_some() {
            self.properties = properties;
        }
    }

    pub fn member_joined(&mut self, member_id: String, member_type: Option<String>) {
        self.left.remove(&member_id);
        self.joined.insert(member_id, member_type);
    }

    pub fn member_left(&mut self, member_id: String) {
        self.joined.remove(&member_id);
        self.left.insert(member_id);
    }
}

/// How much of the tenant's groups a round names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRound {
    /// Every group with all its members: what it lacks is gone.
    Whole,
    /// Only what changed since the last round.
    Changes,
}

/// What to write for a groups round.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupPlan {
    /// The group rows. A group whose properties did not change but whose members did is counted
    /// updated, not unchanged.
    pub groups: RowPlan<GroupRecord>,
    /// Memberships to add, or whose member type changed.
    pub join: Vec<Membership>,
    /// Memberships to delete: (group id, member id).
    pub leave: Vec<(String, String)>,
}

impl GroupPlan {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.join.is_empty() && self.leave.is_empty()
    }
}

/// Plans a round against the store.
///
/// `stored` holds the stored rows of every group the round names (archived ones included) and,
/// for a whole round, every row of the tenant; `stored_members` the stored members of the same
/// groups. A whole round replaces each named group's members and archives the groups it did not
/// name; a changes round applies the members who joined and left, and archives the groups it
/// says were deleted.
pub fn plan_groups(
    round: GroupRound,
    stored: &HashMap<String, StoredRow<GroupRecord>>,
    stored_members: &HashMap<String, Members>,
    changes: &BTreeMap<String, GroupChange>,
) -> GroupPlan {
    let no_members = Members::new();
    let mut records = Vec::new();
    let mut join = Vec::new();
    let mut leave = Vec::new();
    let mut members_changed: HashSet<&str> = HashSet::new();
    for (id, change) in changes {
        if change.removed {
            continue;
        }
        let record = change
            .properties
            .clone()
            .or_else(|| stored.get(id).map(|row| row.record.clone()))
            .unwrap_or_else(|| GroupRecord::bare(id));
        records.push(record);
        let before = stored_members.get(id).unwrap_or(&no_members);
        let mut after: Members = match round {
            GroupRound::Whole => Members::new(),
            GroupRound::Changes => before
                .iter()
                .filter(|(member, _)| !change.left.contains(*member))
                .map(|(member, kind)| (member.clone(), kind.clone()))
                .collect(),
        };
        for (member, kind) in &change.joined {
            // A change that does not say what the member is keeps what the store knew.
            let kind = kind
                .clone()
                .or_else(|| before.get(member).cloned().flatten());
            after.insert(member.clone(), kind);
        }
        for (member, kind) in &after {
            if before.get(member) != Some(kind) {
                join.push(Membership {
                    group_id: id.clone(),
                    member_id: member.clone(),
                    member_type: kind.clone(),
                });
                members_changed.insert(id);
            }
        }
        for member in before.keys() {
            if !after.contains_key(member) {
                leave.push((id.clone(), member.clone()));
                members_changed.insert(id);
            }
        }
    }
    let mut groups = plan_page(stored, records);
    let rewritten: HashSet<&str> = groups.write.iter().map(|r| r.object_id.as_str()).collect();
    let moved = members_changed
        .iter()
        .filter(|id| !rewritten.contains(**id))
        .count() as u64;
    groups.unchanged -= moved;
    groups.updated += moved;
    groups.archive = match round {
        GroupRound::Whole => {
            let active: HashSet<String> = stored
                .iter()
                .filter(|(_, row)| !row.archived)
                .map(|(key, _)| key.clone())
                .collect();
            let named: HashSet<String> = changes
                .iter()
                .filter(|(_, change)| !change.removed)
                .map(|(key, _)| key.clone())
                .collect();
            plan_not_listed::<GroupRecord>(&active, &named).archive
        }
        GroupRound::Changes => changes
            .iter()
            .filter(|(id, change)| {
                change.removed && stored.get(*id).is_some_and(|row| !row.archived)
            })
            .map(|(id, _)| id.clone())
            .collect(),
    };
    GroupPlan {
        groups,
        join,
        leave,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, name: &str) -> GroupRecord {
        GroupRecord {
            object_id: id.into(),
            display_name: Some(name.into()),
            ..GroupRecord::default()
        }
    }

    fn user(id: &str) -> (String, Option<String>) {
        (id.to_string(), Some("user".to_string()))
    }

    fn stored_rows(rows: &[(GroupRecord, bool)]) -> HashMap<String, StoredRow<GroupRecord>> {
        rows.iter()
            .map(|(record, archived)| {
                (
                    record.object_id.clone(),
                    StoredRow {
                        record: record.clone(),
                        archived: *archived,
                    },
                )
            })
            .collect()
    }

    fn members(list: &[(&str, &[&str])]) -> HashMap<String, Members> {
        list.iter()
            .map(|(group, ids)| (group.to_string(), ids.iter().map(|id| user(id)).collect()))
            .collect()
    }

    fn whole(name: &str, ids: &[&str]) -> GroupChange {
        GroupChange {
            properties: Some(group("g", name)),
            joined: ids.iter().map(|id| user(id)).collect(),
            ..GroupChange::default()
        }
    }

    fn membership(group: &str, member: &str) -> Membership {
        Membership {
            group_id: group.into(),
            member_id: member.into(),
            member_type: Some("user".into()),
        }
    }

    #[test]
    fn a_first_whole_round_creates_the_group_and_all_its_members() {
        let changes = BTreeMap::from([("g".to_string(), whole("Staff", &["a", "b"]))]);
        let plan = plan_groups(
            GroupRound::Whole,
            &HashMap::new(),
            &HashMap::new(),
            &changes,
        );
        assert_eq!(plan.groups.created, 1);
        assert_eq!(plan.join, vec![membership("g", "a"), membership("g", "b")]);
        assert!(plan.leave.is_empty());
    }

    #[test]
    fn a_whole_round_replaces_the_member_list_and_writes_only_the_difference() {
        let stored = stored_rows(&[(group("g", "Staff"), false)]);
        let changes = BTreeMap::from([("g".to_string(), whole("Staff", &["b", "c"]))]);
        let plan = plan_groups(
            GroupRound::Whole,
            &stored,
            &members(&[("g", &["a", "b"])]),
            &changes,
        );
        assert_eq!(plan.join, vec![membership("g", "c")]);
        assert_eq!(plan.leave, vec![("g".to_string(), "a".to_string())]);
        assert_eq!((plan.groups.updated, plan.groups.unchanged), (1, 0));
        assert!(plan.groups.write.is_empty(), "the group's own row is equal");
    }

    #[test]
    fn a_whole_round_that_says_the_same_plans_nothing() {
        let stored = stored_rows(&[(group("g", "Staff"), false)]);
        let changes = BTreeMap::from([("g".to_string(), whole("Staff", &["a", "b"]))]);
        let plan = plan_groups(
            GroupRound::Whole,
            &stored,
            &members(&[("g", &["a", "b"])]),
            &changes,
        );
        assert!(plan.is_empty(), "{plan:?}");
        assert_eq!(plan.groups.unchanged, 1);
    }

    #[test]
    fn a_whole_round_archives_the_groups_it_did_not_name() {
        let stored = stored_rows(&[
            (group("g", "Staff"), false),
            (group("old", "Gone"), false),
            (group("older", "Long gone"), true),
        ]);
        let changes = BTreeMap::from([("g".to_string(), whole("Staff", &[]))]);
        let plan = plan_groups(GroupRound::Whole, &stored, &HashMap::new(), &changes);
        assert_eq!(plan.groups.archive, vec!["old".to_string()]);
    }

    #[test]
    fn a_changes_round_applies_who_joined_and_who_left_and_keeps_the_rest() {
        let stored = stored_rows(&[(group("g", "Staff"), false), (group("h", "Other"), false)]);
        let mut change = GroupChange::default();
        change.member_joined("c".into(), Some("user".into()));
        change.member_left("a".into());
        // Leaving someone who was never there writes nothing.
        change.member_left("z".into());
        let changes = BTreeMap::from([("g".to_string(), change)]);
        let plan = plan_groups(
            GroupRound::Changes,
            &stored,
            &members(&[("g", &["a", "b"])]),
            &changes,
        );
        assert_eq!(plan.join, vec![membership("g", "c")]);
        assert_eq!(plan.leave, vec![("g".to_string(), "a".to_string())]);
        assert_eq!(plan.groups.updated, 1, "its members changed");
        assert!(plan.groups.write.is_empty(), "its properties did not");
        assert!(plan.groups.archive.is_empty(), "h was not named, not gone");
    }

    #[test]
    fn a_member_whose_type_is_not_said_keeps_the_stored_type() {
        let stored = stored_rows(&[(group("g", "Staff"), false)]);
        let mut change = GroupChange::default();
        change.member_joined("a".into(), None);
        let plan = plan_groups(
            GroupRound::Changes,
            &stored,
            &members(&[("g", &["a"])]),
            &BTreeMap::from([("g".to_string(), change)]),
        );
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_changes_round_archives_a_deleted_group_once() {
        let stored = stored_rows(&[(group("g", "Staff"), false), (group("h", "Old"), true)]);
        let mut deleted = GroupChange::default();
        deleted.group_removed();
        let changes = BTreeMap::from([("g".to_string(), deleted.clone()), ("h".into(), deleted)]);
        let plan = plan_groups(
            GroupRound::Changes,
            &stored,
            &members(&[("g", &["a"])]),
            &changes,
        );
        assert_eq!(plan.groups.archive, vec!["g".to_string()]);
        assert!(
            plan.leave.is_empty(),
            "a deleted group keeps its last members"
        );
    }

    #[test]
    fn a_change_without_properties_keeps_the_stored_ones() {
        let stored = stored_rows(&[(group("g", "Staff"), false)]);
        let mut change = GroupChange::default();
        change.group_seen(None);
        change.member_joined("a".into(), Some("user".into()));
        let plan = plan_groups(
            GroupRound::Changes,
            &stored,
            &HashMap::new(),
            &BTreeMap::from([("g".to_string(), change)]),
        );
        assert!(plan.groups.write.is_empty());
        assert_eq!(plan.join, vec![membership("g", "a")]);
    }

    #[test]
    fn a_group_deleted_and_named_again_in_one_round_stays() {
        let mut change = GroupChange::default();
        change.group_removed();
        change.group_seen(Some(group("g", "Staff")));
        let plan = plan_groups(
            GroupRound::Changes,
            &stored_rows(&[(group("g", "Staff"), false)]),
            &HashMap::new(),
            &BTreeMap::from([("g".to_string(), change)]),
        );
        assert!(plan.groups.archive.is_empty());
        assert_eq!(plan.groups.unchanged, 1);
    }

    #[test]
    fn a_member_who_left_and_came_back_in_one_round_is_a_member() {
        let mut change = GroupChange::default();
        change.member_left("a".into());
        change.member_joined("a".into(), Some("user".into()));
        assert_eq!(change.joined, Members::from([user("a")]));
        assert!(change.left.is_empty());
    }

    #[test]
    fn the_kind_follows_types_and_flags() {
        let mut g = group("g", "x");
        assert_eq!(g.kind(), "distribution");
        g.security_enabled = Some(true);
        assert_eq!(g.kind(), "security");
        g.mail_enabled = Some(true);
        assert_eq!(g.kind(), "mail_enabled_security");
        g.group_types = vec!["Unified".into()];
        assert_eq!(g.kind(), "microsoft365");
    }
}
