//! The planner: what the store holds + what Microsoft sent → what to do with each record, and
//! why. Pure: the store reads what the plan needs and writes what it says, deciding nothing.
//!
//! For people (users → contacts) a plan says, per user: create a contact; update one, field by
//! field (old → new); link a contact that existed before the first sync (by user principal name
//! or mail, the rule kept); leave it unchanged; hold it for review when two contacts could be
//! theirs (never a second contact); and, per removal, archive with the reason.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::filter::SkipReason;
use crate::mapping::{FieldMapping, Placement};
use crate::records::{ContactRecord, fingerprint};
use crate::{ObjectId, Upn};

/// A field as the plan compares it: its Graph name and its value written as text (lists as
/// sorted JSON arrays, flags as `true`/`false`), `None` when empty.
pub type Fields = BTreeMap<&'static str, Option<String>>;

/// One field that a sync changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl ContactRecord {
    /// The fields a sync owns, by Graph name, as the plan compares them.
    pub fn fields(&self) -> Fields {
        let list = |items: &[String]| {
            (!items.is_empty()).then(|| serde_json::to_string(items).unwrap_or_default())
        };
        BTreeMap::from([
            (
                "userPrincipalName",
                Some(self.user_principal_name.as_str().to_string()),
            ),
            ("displayName", Some(self.display_name.clone())),
            ("givenName", self.given_name.clone()),
            ("surname", self.surname.clone()),
            ("mail", self.email.clone()),
            ("proxyAddresses", list(&self.aliases)),
            ("jobTitle", self.job_title.clone()),
            ("department", self.department.clone()),
            ("officeLocation", self.office_location.clone()),
            ("mobilePhone", self.mobile_phone.clone()),
            ("businessPhones", list(&self.business_phones)),
            ("accountEnabled", Some(self.account_enabled.to_string())),
            ("userType", Some(self.user_type.clone())),
            ("assignedLicenses", list(&self.license_sku_ids)),
            ("disabledPlans", list(&self.disabled_plans)),
        ])
    }

    /// The content fingerprint the store keeps beside a contact, so that an unchanged user is
    /// recognised without comparing every field.
    pub fn fingerprint(&self) -> String {
        fingerprint(self)
    }
}

/// The fields that differ, in field order. A field the stored side lacks counts as empty.
pub fn field_changes(stored: &Fields, fetched: &Fields) -> Vec<FieldChange> {
    fetched
        .iter()
        .filter_map(|(field, new)| {
            let old = stored.get(field).cloned().flatten();
            (old != *new).then(|| FieldChange {
                field,
                old,
                new: new.clone(),
            })
        })
        .collect()
}

/// A custom field of a contact that a sync changes (Microsoft 365 fills it under the mapping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomChange {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A contact as the store holds it, as far as a plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContact {
    pub id: i64,
    /// The directory object it is linked to; `None` for a contact made by hand or imported.
    pub object_id: Option<ObjectId>,
    pub archived: bool,
    /// Until when the user, deleted in Microsoft 365, can be restored; set while the contact is
    /// marked deleted.
    pub restorable_until: Option<i64>,
    /// The fingerprint saved with it by the last sync that wrote it.
    pub fingerprint: Option<String>,
    pub fields: Fields,
    /// Its custom fields, by name.
    pub custom: BTreeMap<String, String>,
    /// Lower-cased user principal name and mail, for linking a contact not yet linked.
    pub upn_key: Option<String>,
    pub email_key: Option<String>,
}

/// What the store holds that bears on one page of users.
#[derive(Debug, Clone, Default)]
pub struct StoredContacts {
    /// The tenant's contacts linked to the page's users, by object id.
    pub linked: HashMap<ObjectId, StoredContact>,
    /// The organisation's contacts not linked to any user whose user principal name or mail is
    /// one of the page's users' (or their aliases).
    pub unlinked: Vec<StoredContact>,
    /// Contacts a person unlinked from a user: that user is never put back on them unasked.
    pub refused: HashSet<(i64, ObjectId)>,
}

/// How a user was found to be an existing contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRule {
    /// Linked before, by object id.
    ObjectId,
    /// A contact not yet linked with the same user principal name (case-insensitive).
    UserPrincipalName,
    /// A contact not yet linked whose mail is the user's mail or user principal name.
    Mail,
    /// A contact not yet linked whose mail (or user principal name) is one of the user's other
    /// addresses (`smtp:` proxy addresses).
    ProxyAddress,
    /// A person chose the contact for a user held for review.
    Person,
}

impl LinkRule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ObjectId => "object_id",
            Self::UserPrincipalName => "user_principal_name",
            Self::Mail => "mail",
            Self::ProxyAddress => "proxy_address",
            Self::Person => "review",
        }
    }
}

/// How long Entra keeps a deleted user restorable.
pub const RESTORABLE_FOR_MILLIS: i64 = 30 * 24 * 60 * 60 * 1000;

/// A user a delta round says has left the directory, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    pub object_id: ObjectId,
    /// `true` for Graph's `"reason": "deleted"`: gone for good. `false` for `"changed"`: in the
    /// recycle bin, restorable for 30 days.
    pub permanent: bool,
}

impl Removal {
    /// Reads Graph's `@removed` annotation: anything but `"deleted"` is taken as restorable.
    pub fn from_reason(object_id: ObjectId, reason: Option<&str>) -> Self {
        Self {
            object_id,
            permanent: reason.is_some_and(|r| r.eq_ignore_ascii_case("deleted")),
        }
    }
}

/// Why a contact is archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveReason {
    /// A delta round said the user is deleted for good.
    RemovedInTenant,
    /// The user was deleted in Microsoft 365 and not restored within 30 days.
    RestoreWindowPassed,
    /// A complete listing no longer had the user.
    NotListed,
    /// The user left the connection's filters.
    OutOfScope(SkipReason),
}

impl ArchiveReason {
    /// The reason as the history keeps it: a code, and for a filter the rule's code too.
    pub fn note(&self) -> String {
        match self {
            Self::OutOfScope(reason) => format!("out_of_scope: {}", reason.code()),
            other => other.as_str().to_string(),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RemovedInTenant => "removed_in_tenant",
            Self::RestoreWindowPassed => "restore_window_passed",
            Self::NotListed => "not_listed",
            Self::OutOfScope(_) => "out_of_scope",
        }
    }
}

/// What to do with one user, or one contact.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactAction {
    /// A new contact: the record as the mapping lets it land (a field sent to a custom field
    /// leaves its own field empty), the custom fields Microsoft 365 fills, and the fingerprint
    /// to keep.
    Create {
        record: ContactRecord,
        custom: Vec<(String, String)>,
        fingerprint: String,
    },
    /// Write the identity fields, the changed fields Microsoft 365 owns (never one the
    /// technician owns) and the changed custom fields, with the fingerprint to keep.
    Update {
        contact_id: i64,
        record: ContactRecord,
        changes: Vec<FieldChange>,
        custom: Vec<CustomChange>,
        fingerprint: String,
        /// Set when this user is linked to the contact now, with the rule that found it.
        linked_by: Option<LinkRule>,
        /// The contact was archived and comes back.
        restored: bool,
    },
    Unchanged {
        contact_id: i64,
    },
    Archive {
        contact_id: i64,
        reason: ArchiveReason,
    },
    /// The user is in Microsoft 365's recycle bin: the contact is marked deleted, restorable
    /// until then, and archived only after.
    MarkDeleted {
        contact_id: i64,
        restorable_until: i64,
    },
    /// Two or more contacts could be this user: nothing is written until someone decides.
    Hold {
        record: ContactRecord,
        candidates: Vec<i64>,
        rule: LinkRule,
    },
}

/// A page's plan, in the order the users came.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactPlan {
    pub actions: Vec<ContactAction>,
}

impl ContactPlan {
    /// How many of each action: created, updated, unchanged, archived, held.
    pub fn tally(&self) -> PlanTally {
        let mut tally = PlanTally::default();
        for action in &self.actions {
            match action {
                ContactAction::Create { .. } => tally.created += 1,
                ContactAction::Update { .. } => tally.updated += 1,
                ContactAction::Unchanged { .. } => tally.unchanged += 1,
                ContactAction::Archive { .. } => tally.archived += 1,
                ContactAction::MarkDeleted { .. } => tally.deleted += 1,
                ContactAction::Hold { .. } => tally.held += 1,
            }
        }
        tally
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanTally {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub archived: u64,
    pub deleted: u64,
    pub held: u64,
}

/// Plans one page of users and removals against what the store holds, at time `now`.
///
/// - A user linked before is compared with its contact: unchanged when the fingerprint (or,
///   failing that, every field) is the same and it is neither archived nor marked deleted;
///   otherwise updated with the fields that differ, and restored if it was archived or deleted.
/// - A user not linked yet links the one unlinked contact with the same user principal name, or
///   else whose mail is the user's mail or user principal name, or else one of the user's other
///   addresses; with two or more such contacts it is held for review; with none a contact is
///   created. A contact is linked to one user only, also within a page, and never to a user a
///   person unlinked from it.
/// - A removal for good archives the linked contact; a restorable one marks it deleted, until
///   30 days from `now` (kept from the first time it was seen, if marked already).
/// - The connection's `mapping` decides which fields are compared and written: a field the
///   technician owns is neither (filled only on creation, or when linking a contact that has it
///   empty), and a field sent to a custom field is compared with and written to that one.
pub fn plan_contacts(
    users: &[ContactRecord],
    removed: &[Removal],
    stored: &StoredContacts,
    mapping: &FieldMapping,
    now: i64,
) -> ContactPlan {
    let mut actions = Vec::with_capacity(users.len() + removed.len());
    // Where two users of the page could take the same contact, the stronger rule takes it and
    // the other is not linked to it; two as strong both wait for a person.
    let mut claims: HashMap<i64, Vec<(usize, LinkRule)>> = HashMap::new();
    for (index, record) in users.iter().enumerate() {
        if stored.linked.contains_key(&record.object_id) {
            continue;
        }
        let (rule, candidates) = link_candidates(record, stored, &HashSet::new());
        for contact in candidates {
            claims.entry(contact.id).or_default().push((index, rule));
        }
    }
    let mut claimed: HashSet<i64> = HashSet::new();
    let mut contested: HashSet<i64> = HashSet::new();
    for (contact, claimants) in &claims {
        let best = claimants.iter().map(|(_, rule)| strength(*rule)).max();
        let winners = claimants
            .iter()
            .filter(|(_, rule)| Some(strength(*rule)) == best)
            .count();
        if claimants.len() > 1 && winners > 1 {
            contested.insert(*contact);
        }
    }
    for (index, record) in users.iter().enumerate() {
        if let Some(contact) = stored.linked.get(&record.object_id) {
            actions.push(compare(contact, record, None, mapping));
            continue;
        }
        // Contacts a stronger claim of another user of the page takes are not this user's.
        let mut taken: HashSet<i64> = claimed.clone();
        for (contact, claimants) in &claims {
            let mine = claimants
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, r)| strength(*r));
            let stronger = claimants
                .iter()
                .any(|(i, r)| *i != index && Some(strength(*r)) > mine);
            if stronger {
                taken.insert(*contact);
            }
        }
        let (rule, candidates) = link_candidates(record, stored, &taken);
        if let [contact] = candidates.as_slice()
            && contested.contains(&contact.id)
        {
            actions.push(ContactAction::Hold {
                record: record.clone(),
                candidates: vec![contact.id],
                rule,
            });
            continue;
        }
        match candidates.as_slice() {
            [] => actions.push(create(record, mapping)),
            [contact] => {
                claimed.insert(contact.id);
                actions.push(compare(contact, record, Some(rule), mapping));
            }
            several => actions.push(ContactAction::Hold {
                record: record.clone(),
                candidates: several.iter().map(|c| c.id).collect(),
                rule,
            }),
        }
    }
    for removal in removed {
        let Some(contact) = stored
            .linked
            .get(&removal.object_id)
            .filter(|c| !c.archived)
        else {
            continue;
        };
        if removal.permanent {
            actions.push(ContactAction::Archive {
                contact_id: contact.id,
                reason: ArchiveReason::RemovedInTenant,
            });
        } else if contact.restorable_until.is_none() {
            actions.push(ContactAction::MarkDeleted {
                contact_id: contact.id,
                restorable_until: now.saturating_add(RESTORABLE_FOR_MILLIS),
            });
        }
    }
    ContactPlan { actions }
}

/// A person settled a held user: the user is this contact. Planned as any link is, so that the
/// mapping decides what is written (local fields keep their hand edits) and every change is
/// kept field by field.
pub fn plan_chosen_link(
    record: &ContactRecord,
    contact: &StoredContact,
    mapping: &FieldMapping,
) -> ContactPlan {
    ContactPlan {
        actions: vec![compare(contact, record, Some(LinkRule::Person), mapping)],
    }
}

/// How strongly a rule ties a user to a contact: the name first, then the mail, then an alias.
fn strength(rule: LinkRule) -> u8 {
    match rule {
        LinkRule::ObjectId => 4,
        LinkRule::UserPrincipalName => 3,
        LinkRule::Mail => 2,
        LinkRule::ProxyAddress => 1,
        LinkRule::Person => 5,
    }
}

/// Archives, with the rule's reason, the linked contacts of users the connection's filters now
/// leave out; users left out who have no contact are simply not written.
pub fn plan_out_of_scope(out: &[(ObjectId, SkipReason)], stored: &StoredContacts) -> ContactPlan {
    ContactPlan {
        actions: out
            .iter()
            .filter_map(|(object_id, reason)| {
                let contact = stored.linked.get(object_id).filter(|c| !c.archived)?;
                Some(ContactAction::Archive {
                    contact_id: contact.id,
                    reason: ArchiveReason::OutOfScope(reason.clone()),
                })
            })
            .collect(),
    }
}

/// How much of a tenant's contacts one run may take away (archive, or mark deleted) before the
/// run is held for a person: a listing that finds nobody where there were people, a filter that
/// matches nobody, or a directory that answered nearly empty look like that, and so do real
/// mass departures, which a person confirms with `sync --accept-drop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropGuard {
    /// The share of the active contacts, in percent, one run may take away; 100 never holds.
    pub max_share_percent: u8,
}

impl Default for DropGuard {
    fn default() -> Self {
        Self {
            max_share_percent: 20,
        }
    }
}

impl DropGuard {
    /// Below this many a drop is churn, not a mistake, unless it takes everyone.
    pub const SMALL: usize = 5;

    /// Why taking `losing` of `active` contacts away at once is held, or `None` when it is not.
    pub fn suspicious(&self, losing: usize, active: usize) -> Option<String> {
        if losing == 0 || active == 0 || self.max_share_percent >= 100 {
            return None;
        }
        if losing >= active {
            return Some(format!(
                "it would leave none of the tenant's {active} contacts, as if Microsoft 365 had answered with nobody"
            ));
        }
        let over_share =
            losing.saturating_mul(100) > active.saturating_mul(usize::from(self.max_share_percent));
        (over_share && losing >= Self::SMALL).then(|| {
            format!(
                "it would take away {losing} of the tenant's {active} contacts ({}%), more than the {}% one run may",
                losing * 100 / active,
                self.max_share_percent
            )
        })
    }
}

/// Whether an action takes a contact away from the active ones.
pub fn takes_away(action: &ContactAction) -> bool {
    matches!(
        action,
        ContactAction::Archive { .. } | ContactAction::MarkDeleted { .. }
    )
}

/// Archives the contacts marked deleted whose restore window has passed by `now`.
pub fn plan_expired_deletions(marked: &[(i64, i64)], now: i64) -> ContactPlan {
    ContactPlan {
        actions: marked
            .iter()
            .filter(|(_, until)| *until <= now)
            .map(|(contact_id, _)| ContactAction::Archive {
                contact_id: *contact_id,
                reason: ArchiveReason::RestoreWindowPassed,
            })
            .collect(),
    }
}

/// A linked contact that is not archived, as a complete listing is weighed against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveContact {
    pub contact_id: i64,
    pub object_id: ObjectId,
    /// Set while the user sits in Microsoft 365's recycle bin.
    pub restorable_until: Option<i64>,
}

/// After a complete listing: archives each linked, active contact whose user it did not list.
/// A contact marked deleted is left to its restore window (a listing never shows users in the
/// recycle bin). Only a listing that ran to its last page may be planned so (invariant 3).
pub fn plan_not_listed(active: &[ActiveContact], listed: &HashSet<ObjectId>) -> ContactPlan {
    ContactPlan {
        actions: active
            .iter()
            .filter(|c| c.restorable_until.is_none() && !listed.contains(&c.object_id))
            .map(|c| ContactAction::Archive {
                contact_id: c.contact_id,
                reason: ArchiveReason::NotListed,
            })
            .collect(),
    }
}

/// A new contact for this user, as the mapping lets it land.
fn create(record: &ContactRecord, mapping: &FieldMapping) -> ContactAction {
    ContactAction::Create {
        record: mapping.for_creation(record),
        custom: mapping
            .custom_values(record)
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect(),
        fingerprint: mapping.fingerprint(record),
    }
}

fn compare(
    contact: &StoredContact,
    record: &ContactRecord,
    linked_by: Option<LinkRule>,
    mapping: &FieldMapping,
) -> ContactAction {
    let print = mapping.fingerprint(record);
    let same_print = contact.fingerprint.as_deref() == Some(print.as_str());
    let away = contact.archived || contact.restorable_until.is_some();
    if linked_by.is_none() && !away && same_print {
        return ContactAction::Unchanged {
            contact_id: contact.id,
        };
    }
    let mut owned = mapping.owned_fields(record);
    if linked_by.is_some() {
        // A contact the sync takes over gets its empty local fields filled, as a new one would.
        for (field, value) in record.fields() {
            let empty = contact.fields.get(field).cloned().flatten().is_none();
            if empty && mapping.placement(field) == Some(&Placement::Local) {
                owned.insert(field, value);
            }
        }
    }
    let changes = field_changes(&contact.fields, &owned);
    let custom = mapping
        .custom_values(record)
        .into_iter()
        .filter_map(|(name, new)| {
            let old = contact.custom.get(&name).cloned();
            (old != new).then_some(CustomChange { name, old, new })
        })
        .collect();
    ContactAction::Update {
        contact_id: contact.id,
        record: record.clone(),
        changes,
        custom,
        fingerprint: print,
        linked_by,
        restored: away,
    }
}

/// The unlinked contacts that could be this user, and the rule that found them: by user
/// principal name first; by mail only when no contact has the name; by another of the user's
/// addresses only when neither found one. A contact a person unlinked from this user, or one
/// claimed by another user of the page, is never a candidate.
fn link_candidates<'a>(
    record: &ContactRecord,
    stored: &'a StoredContacts,
    claimed: &HashSet<i64>,
) -> (LinkRule, Vec<&'a StoredContact>) {
    let free = |c: &&StoredContact| {
        !c.archived
            && c.object_id.is_none()
            && !claimed.contains(&c.id)
            && !stored.refused.contains(&(c.id, record.object_id))
    };
    let matching = |keys: &[&str], by_upn: bool| -> Vec<&'a StoredContact> {
        stored
            .unlinked
            .iter()
            .filter(free)
            .filter(|c| {
                let key = if by_upn { &c.upn_key } else { &c.email_key };
                key.as_deref().is_some_and(|k| keys.contains(&k))
            })
            .collect()
    };
    let upn = record.user_principal_name.key();
    let by_upn = matching(&[upn], true);
    if !by_upn.is_empty() {
        return (LinkRule::UserPrincipalName, by_upn);
    }
    let mail = record.email.as_deref().map(str::to_lowercase);
    let keys: Vec<&str> = [Some(upn), mail.as_deref()].into_iter().flatten().collect();
    let by_mail = matching(&keys, false);
    if !by_mail.is_empty() {
        return (LinkRule::Mail, by_mail);
    }
    let aliases: Vec<&str> = record.aliases.iter().map(String::as_str).collect();
    let mut by_alias = matching(&aliases, false);
    for contact in matching(&aliases, true) {
        if !by_alias.iter().any(|c| c.id == contact.id) {
            by_alias.push(contact);
        }
    }
    (LinkRule::ProxyAddress, by_alias)
}

/// The keys under which a page's users may find unlinked contacts: their user principal names
/// and mail addresses, lower-cased.
pub fn link_keys(users: &[ContactRecord]) -> Vec<String> {
    let mut keys: Vec<String> = users
        .iter()
        .flat_map(|u| {
            [
                Some(u.user_principal_name.key().to_string()),
                u.email.as_deref().map(str::to_lowercase),
            ]
            .into_iter()
            .flatten()
            .chain(u.aliases.iter().cloned())
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Parses a stored user principal name for a contact's fields; a contact made by hand may hold
/// text that is not one.
pub fn upn_key_of(text: &str) -> Option<String> {
    Upn::parse(text).ok().map(|u| u.key().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TenantId;

    const NOW: i64 = 1_800_000_000_000;

    fn user(n: u8, name: &str) -> ContactRecord {
        ContactRecord {
            tenant_id: TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            object_id: ObjectId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02}"))
                .unwrap(),
            user_principal_name: Upn::parse(&format!("User{n}@Contoso.com")).unwrap(),
            display_name: name.into(),
            given_name: None,
            surname: None,
            email: Some(format!("user{n}@contoso.com")),
            aliases: vec![],
            job_title: Some("Engineer".into()),
            department: None,
            office_location: None,
            mobile_phone: None,
            business_phones: vec![],
            account_enabled: true,
            user_type: "Member".into(),
            license_sku_ids: vec!["sku-a".into()],
            disabled_plans: vec![],
        }
    }

    fn stored_from(id: i64, record: &ContactRecord, linked: bool) -> StoredContact {
        StoredContact {
            id,
            object_id: linked.then_some(record.object_id),
            archived: false,
            restorable_until: None,
            fingerprint: linked.then(|| record.fingerprint()),
            fields: record.fields(),
            custom: BTreeMap::new(),
            upn_key: Some(record.user_principal_name.key().to_string()),
            email_key: record.email.as_deref().map(str::to_lowercase),
        }
    }

    fn created(record: &ContactRecord) -> ContactAction {
        create(record, &FieldMapping::default())
    }

    fn linked(contacts: &[StoredContact]) -> StoredContacts {
        StoredContacts {
            linked: contacts
                .iter()
                .map(|c| (c.object_id.unwrap(), c.clone()))
                .collect(),
            unlinked: vec![],
            refused: HashSet::new(),
        }
    }

    #[test]
    fn a_new_user_is_created_and_a_known_one_is_unchanged() {
        let ann = user(1, "Ann");
        let bob = user(2, "Bob");
        let stored = linked(&[stored_from(10, &ann, true)]);
        let plan = plan_contacts(
            &[ann.clone(), bob.clone()],
            &[],
            &stored,
            &FieldMapping::default(),
            NOW,
        );
        assert_eq!(
            plan.actions,
            vec![ContactAction::Unchanged { contact_id: 10 }, created(&bob)]
        );
        assert_eq!(plan.tally().created, 1);
    }

    #[test]
    fn a_change_names_each_field_old_and_new() {
        let ann = user(1, "Ann");
        let stored = linked(&[stored_from(10, &ann, true)]);
        let mut renamed = ann.clone();
        renamed.display_name = "Ann Lee".into();
        renamed.job_title = None;
        renamed.license_sku_ids = vec!["sku-a".into(), "sku-b".into()];
        let plan = plan_contacts(
            std::slice::from_ref(&renamed),
            &[],
            &stored,
            &FieldMapping::default(),
            NOW,
        );
        let ContactAction::Update {
            contact_id,
            changes,
            linked_by,
            restored,
            ..
        } = &plan.actions[0]
        else {
            panic!("{plan:?}");
        };
        assert_eq!((*contact_id, *linked_by, *restored), (10, None, false));
        assert_eq!(
            changes,
            &vec![
                FieldChange {
                    field: "assignedLicenses",
                    old: Some(r#"["sku-a"]"#.into()),
                    new: Some(r#"["sku-a","sku-b"]"#.into()),
                },
                FieldChange {
                    field: "displayName",
                    old: Some("Ann".into()),
                    new: Some("Ann Lee".into()),
                },
                FieldChange {
                    field: "jobTitle",
                    old: Some("Engineer".into()),
                    new: None,
                },
            ]
        );
    }

    #[test]
    fn an_archived_contact_comes_back_restored() {
        let ann = user(1, "Ann");
        let mut contact = stored_from(10, &ann, true);
        contact.archived = true;
        let plan = plan_contacts(
            std::slice::from_ref(&ann),
            &[],
            &linked(&[contact]),
            &FieldMapping::default(),
            NOW,
        );
        assert!(matches!(
            plan.actions[0],
            ContactAction::Update {
                restored: true,
                ref changes,
                ..
            } if changes.is_empty()
        ));
    }

    #[test]
    fn a_hand_made_contact_is_linked_by_name_then_by_mail_and_only_once() {
        let ann = user(1, "Ann");
        let mut by_mail = stored_from(20, &user(2, "Bob"), false);
        by_mail.upn_key = None;
        let mut bob = user(2, "Bob");
        bob.user_principal_name = Upn::parse("robert@contoso.com").unwrap();
        let stored = StoredContacts {
            linked: HashMap::new(),
            unlinked: vec![stored_from(10, &ann, false), by_mail],
            refused: HashSet::new(),
        };
        // A second user whose mail is Ann's name claims contact 10 less strongly than Ann.
        let mut twin = user(3, "Ann again");
        twin.email = Some("USER1@contoso.com".into());
        let plan = plan_contacts(
            &[ann, bob, twin.clone()],
            &[],
            &stored,
            &FieldMapping::default(),
            NOW,
        );
        assert!(matches!(
            plan.actions[0],
            ContactAction::Update {
                contact_id: 10,
                linked_by: Some(LinkRule::UserPrincipalName),
                ..
            }
        ));
        assert!(matches!(
            plan.actions[1],
            ContactAction::Update {
                contact_id: 20,
                linked_by: Some(LinkRule::Mail),
                ..
            }
        ));
        // The contact is Ann's: the weaker claim gets a contact of its own.
        assert_eq!(plan.actions[2], created(&twin));
    }

    #[test]
    fn two_possible_contacts_hold_the_user_for_review() {
        let ann = user(1, "Ann");
        let stored = StoredContacts {
            linked: HashMap::new(),
            unlinked: vec![stored_from(10, &ann, false), stored_from(11, &ann, false)],
            refused: HashSet::new(),
        };
        let plan = plan_contacts(
            std::slice::from_ref(&ann),
            &[],
            &stored,
            &FieldMapping::default(),
            NOW,
        );
        assert_eq!(
            plan.actions,
            vec![ContactAction::Hold {
                record: ann,
                candidates: vec![10, 11],
                rule: LinkRule::UserPrincipalName
            }]
        );
        assert_eq!(plan.tally().held, 1);
    }

    #[test]
    fn a_removal_for_good_archives_and_a_restorable_one_marks_deleted_once() {
        let ann = user(1, "Ann");
        let bob = user(2, "Bob");
        let cy = user(3, "Cy");
        let mut gone = stored_from(11, &bob, true);
        gone.archived = true;
        let mut marked = stored_from(12, &cy, true);
        marked.restorable_until = Some(NOW + 5);
        let stored = linked(&[stored_from(10, &ann, true), gone, marked]);
        let stranger = user(4, "Di").object_id;
        let removals = [
            Removal::from_reason(ann.object_id, Some("deleted")),
            Removal::from_reason(bob.object_id, Some("deleted")),
            Removal::from_reason(cy.object_id, Some("changed")),
            Removal::from_reason(stranger, Some("changed")),
        ];
        let plan = plan_contacts(&[], &removals, &stored, &FieldMapping::default(), NOW);
        assert_eq!(
            plan.actions,
            vec![ContactAction::Archive {
                contact_id: 10,
                reason: ArchiveReason::RemovedInTenant
            }]
        );
        let soft = [Removal::from_reason(ann.object_id, Some("changed"))];
        let plan = plan_contacts(&[], &soft, &stored, &FieldMapping::default(), NOW);
        assert_eq!(
            plan.actions,
            vec![ContactAction::MarkDeleted {
                contact_id: 10,
                restorable_until: NOW + RESTORABLE_FOR_MILLIS
            }]
        );
    }

    #[test]
    fn a_restored_user_is_the_same_contact_and_a_passed_window_archives() {
        let cy = user(3, "Cy");
        let mut marked = stored_from(12, &cy, true);
        marked.restorable_until = Some(NOW + 5);
        let plan = plan_contacts(
            std::slice::from_ref(&cy),
            &[],
            &linked(&[marked]),
            &FieldMapping::default(),
            NOW,
        );
        assert!(matches!(
            plan.actions[0],
            ContactAction::Update { contact_id: 12, restored: true, ref changes, .. } if changes.is_empty()
        ));
        let expired = plan_expired_deletions(&[(12, NOW), (13, NOW + 1)], NOW);
        assert_eq!(
            expired.actions,
            vec![ContactAction::Archive {
                contact_id: 12,
                reason: ArchiveReason::RestoreWindowPassed
            }]
        );
    }

    #[test]
    fn a_complete_listing_archives_only_who_it_did_not_list() {
        let (ann, bob, cy) = (
            user(1, "Ann").object_id,
            user(2, "Bob").object_id,
            user(3, "Cy").object_id,
        );
        let active = |contact_id, object_id, restorable_until| ActiveContact {
            contact_id,
            object_id,
            restorable_until,
        };
        let plan = plan_not_listed(
            &[
                active(10, ann, None),
                active(11, bob, None),
                active(12, cy, Some(NOW)),
            ],
            &HashSet::from([ann]),
        );
        // Cy is in the recycle bin: the restore window decides, not the listing.
        assert_eq!(
            plan.actions,
            vec![ContactAction::Archive {
                contact_id: 11,
                reason: ArchiveReason::NotListed
            }]
        );
        assert!(plan_not_listed(&[], &HashSet::new()).actions.is_empty());
    }

    #[test]
    fn an_alias_links_only_when_name_and_mail_found_nobody_and_an_unlink_is_kept() {
        let mut ann = user(1, "Ann");
        ann.aliases = vec!["ann.old@fabrikam.example".into()];
        let mut kept_elsewhere = stored_from(30, &user(9, "Ann (old firm)"), false);
        kept_elsewhere.upn_key = None;
        kept_elsewhere.email_key = Some("ann.old@fabrikam.example".into());
        let mut stored = StoredContacts {
            linked: HashMap::new(),
            unlinked: vec![kept_elsewhere],
            refused: HashSet::new(),
        };
        let plan = plan_contacts(
            std::slice::from_ref(&ann),
            &[],
            &stored,
            &FieldMapping::default(),
            NOW,
        );
        assert!(matches!(
            plan.actions[0],
            ContactAction::Update {
                contact_id: 30,
                linked_by: Some(LinkRule::ProxyAddress),
                ..
            }
        ));
        // A person said contact 30 is not Ann: she gets one of her own.
        stored.refused.insert((30, ann.object_id));
        let plan = plan_contacts(
            std::slice::from_ref(&ann),
            &[],
            &stored,
            &FieldMapping::default(),
            NOW,
        );
        assert_eq!(plan.actions, vec![created(&ann)]);
    }

    #[test]
    fn a_user_who_leaves_the_filters_is_archived_with_the_reason() {
        let ann = user(1, "Ann");
        let bob = user(2, "Bob");
        let stored = linked(&[stored_from(10, &ann, true)]);
        let plan = plan_out_of_scope(
            &[
                (ann.object_id, SkipReason::Disabled),
                (bob.object_id, SkipReason::Guest),
            ],
            &stored,
        );
        assert_eq!(
            plan.actions,
            vec![ContactAction::Archive {
                contact_id: 10,
                reason: ArchiveReason::OutOfScope(SkipReason::Disabled)
            }]
        );
        assert_eq!(
            ArchiveReason::OutOfScope(SkipReason::Disabled).note(),
            "out_of_scope: disabled"
        );
    }

    #[test]
    fn taking_more_than_the_share_at_once_is_held() {
        let guard = DropGuard::default();
        assert_eq!(guard.suspicious(20, 100), None, "20% is allowed");
        assert!(
            guard
                .suspicious(21, 100)
                .unwrap()
                .contains("21 of the tenant's 100")
        );
        assert_eq!(guard.suspicious(4, 10), None, "a few leaving is churn");
        assert!(guard.suspicious(5, 10).is_some());
        // Nobody left where there were people: held, however few.
        assert!(
            guard
                .suspicious(3, 3)
                .unwrap()
                .contains("none of the tenant's 3")
        );
        assert!(guard.suspicious(1, 1).is_some());
        assert_eq!(guard.suspicious(0, 0), None);
        assert_eq!(guard.suspicious(0, 50), None);
        let lenient = DropGuard {
            max_share_percent: 100,
        };
        assert_eq!(lenient.suspicious(50, 50), None);
        let strict = DropGuard {
            max_share_percent: 0,
        };
        assert!(strict.suspicious(5, 1000).is_some());
    }

    #[test]
    fn within_a_page_the_stronger_rule_takes_a_contact_and_a_tie_waits_for_a_person() {
        // Eve's alias is the contact's mail; user 11's name is the contact's name: user 11
        // takes it, whichever comes first, and Eve gets a contact of her own.
        let mut eve = user(1, "Eve");
        eve.aliases = vec!["shared@contoso.com".into()];
        let eleven = user(11, "Eleven");
        let mut contact = stored_from(30, &user(9, "Kept elsewhere"), false);
        contact.upn_key = Some(eleven.user_principal_name.key().to_string());
        contact.email_key = Some("shared@contoso.com".into());
        let stored = StoredContacts {
            linked: HashMap::new(),
            unlinked: vec![contact.clone()],
            refused: HashSet::new(),
        };
        let plan = plan_contacts(
            &[eve.clone(), eleven.clone()],
            &[],
            &stored,
            &FieldMapping::default(),
            NOW,
        );
        assert!(
            matches!(plan.actions[0], ContactAction::Create { .. }),
            "{plan:?}"
        );
        assert!(matches!(
            plan.actions[1],
            ContactAction::Update {
                contact_id: 30,
                linked_by: Some(LinkRule::UserPrincipalName),
                ..
            }
        ));
        // Two users with the same alias: neither takes the contact alone.
        let mut other = user(12, "Other");
        other.aliases = vec!["shared@contoso.com".into()];
        let mut by_alias = contact;
        by_alias.upn_key = None;
        let stored = StoredContacts {
            linked: HashMap::new(),
            unlinked: vec![by_alias],
            refused: HashSet::new(),
        };
        let plan = plan_contacts(&[eve, other], &[], &stored, &FieldMapping::default(), NOW);
        assert!(
            plan.actions.iter().all(
                |a| matches!(a, ContactAction::Hold { candidates, .. } if candidates == &vec![30])
            ),
            "{plan:?}"
        );
    }

    #[test]
    fn link_keys_are_lower_cased_and_unique() {
        let mut ann = user(1, "Ann");
        ann.email = Some("USER1@contoso.com".into());
        assert_eq!(link_keys(&[ann]), vec!["user1@contoso.com".to_string()]);
    }

    fn job_title_local_department_to_cost_centre() -> FieldMapping {
        let mut mapping = FieldMapping::default();
        mapping.set_local("jobTitle").unwrap();
        mapping.set_custom("department", "Cost centre").unwrap();
        mapping
    }

    /// The contact as a sync under `mapping` leaves it, with a hand edit of its job title.
    fn synced_under(mapping: &FieldMapping, record: &ContactRecord) -> StoredContact {
        let ContactAction::Create {
            record: landed,
            custom,
            fingerprint,
        } = create(record, mapping)
        else {
            unreachable!()
        };
        let mut contact = stored_from(10, &landed, true);
        contact.fingerprint = Some(fingerprint);
        contact.custom = custom.into_iter().collect();
        contact
            .fields
            .insert("jobTitle", Some("Head of fun (by hand)".into()));
        contact
    }

    #[test]
    fn a_local_field_is_filled_on_creation_then_never_compared_or_written() {
        let mapping = job_title_local_department_to_cost_centre();
        let mut ann = user(1, "Ann");
        ann.department = Some("Finance".into());
        let ContactAction::Create { record, custom, .. } = create(&ann, &mapping) else {
            unreachable!()
        };
        assert_eq!(record.job_title.as_deref(), Some("Engineer"));
        assert_eq!(record.department, None);
        assert_eq!(
            custom,
            vec![("Cost centre".to_string(), "Finance".to_string())]
        );

        let stored = linked(&[synced_under(&mapping, &ann)]);
        // Nothing changed at Microsoft: the hand edit is no change.
        let plan = plan_contacts(std::slice::from_ref(&ann), &[], &stored, &mapping, NOW);
        assert_eq!(
            plan.actions,
            vec![ContactAction::Unchanged { contact_id: 10 }]
        );
        // Microsoft changes the job title only: still nothing to write.
        let mut promoted = ann.clone();
        promoted.job_title = Some("Director".into());
        let plan = plan_contacts(std::slice::from_ref(&promoted), &[], &stored, &mapping, NOW);
        assert_eq!(
            plan.actions,
            vec![ContactAction::Unchanged { contact_id: 10 }]
        );
        // And the name too: only the name is written.
        promoted.display_name = "Ann Lee".into();
        let plan = plan_contacts(std::slice::from_ref(&promoted), &[], &stored, &mapping, NOW);
        let ContactAction::Update {
            changes, custom, ..
        } = &plan.actions[0]
        else {
            panic!("{plan:?}");
        };
        assert_eq!(
            changes.iter().map(|c| c.field).collect::<Vec<_>>(),
            vec!["displayName"]
        );
        assert!(custom.is_empty());
    }

    #[test]
    fn a_field_mapped_to_a_custom_field_is_compared_and_written_there() {
        let mapping = job_title_local_department_to_cost_centre();
        let mut ann = user(1, "Ann");
        ann.department = Some("Finance".into());
        let stored = linked(&[synced_under(&mapping, &ann)]);
        let mut moved = ann.clone();
        moved.department = Some("Sales".into());
        let plan = plan_contacts(std::slice::from_ref(&moved), &[], &stored, &mapping, NOW);
        let ContactAction::Update {
            changes, custom, ..
        } = &plan.actions[0]
        else {
            panic!("{plan:?}");
        };
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(
            custom,
            &vec![CustomChange {
                name: "Cost centre".into(),
                old: Some("Finance".into()),
                new: Some("Sales".into()),
            }]
        );
    }

    #[test]
    fn the_default_mapping_writes_a_hand_edit_over_and_a_new_mapping_is_weighed_once() {
        let ann = user(1, "Ann");
        let mut contact = stored_from(10, &ann, true);
        contact.fields.insert("jobTitle", Some("By hand".into()));
        let mut promoted = ann.clone();
        promoted.job_title = Some("Director".into());
        let stored = linked(&[contact]);
        let plan = plan_contacts(
            std::slice::from_ref(&promoted),
            &[],
            &stored,
            &FieldMapping::default(),
            NOW,
        );
        assert!(matches!(
            &plan.actions[0],
            ContactAction::Update { changes, .. } if changes.len() == 1 && changes[0].field == "jobTitle"
        ));
        // The technician takes the job title: the first sync under the new mapping writes no
        // field, only the fingerprint it keeps from now on.
        let mapping = job_title_local_department_to_cost_centre();
        let plan = plan_contacts(std::slice::from_ref(&promoted), &[], &stored, &mapping, NOW);
        assert!(matches!(
            &plan.actions[0],
            ContactAction::Update { changes, custom, .. } if changes.is_empty() && custom.is_empty()
        ));
    }

    #[test]
    fn linking_fills_only_the_empty_local_fields() {
        let mut mapping = FieldMapping::default();
        mapping.set_local("jobTitle").unwrap();
        mapping.set_local("mobilePhone").unwrap();
        let mut ann = user(1, "Ann");
        ann.mobile_phone = Some("+44 20 7946 0000".into());
        let mut kept = stored_from(10, &ann, false);
        kept.fields.insert("jobTitle", Some("Our own title".into()));
        kept.fields.insert("mobilePhone", None);
        let stored = StoredContacts {
            linked: HashMap::new(),
            unlinked: vec![kept],
            refused: HashSet::new(),
        };
        let plan = plan_contacts(std::slice::from_ref(&ann), &[], &stored, &mapping, NOW);
        let ContactAction::Update { changes, .. } = &plan.actions[0] else {
            panic!("{plan:?}");
        };
        assert_eq!(
            changes.iter().map(|c| c.field).collect::<Vec<_>>(),
            vec!["mobilePhone"]
        );
    }
}
