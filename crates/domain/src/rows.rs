//! Plans for the typed tables of tenant-wide datasets (devices, sign-in activity, usage, …):
//! rows keyed within their tenant by a key Microsoft gives them (a device id, an object id, a
//! user principal name). Unlike contacts they have no matching and no field ownership: a row is
//! created, rewritten when any column differs, left alone when equal, and archived when a
//! complete listing no longer names it.

use std::collections::{HashMap, HashSet};

/// A record of a typed table, identified within its tenant by `key`.
pub trait Keyed {
    fn key(&self) -> &str;
}

/// A row as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow<R> {
    pub record: R,
    pub archived: bool,
}

/// What to do with one page of a dataset (or, for `archive`, with what a listing lacked).
#[derive(Debug, Clone, PartialEq)]
pub struct RowPlan<R> {
    /// New rows, and rows whose columns changed or that come back from the archive.
    pub write: Vec<R>,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Keys of rows to archive.
    pub archive: Vec<String>,
}

impl<R> Default for RowPlan<R> {
    fn default() -> Self {
        Self {
            write: Vec::new(),
            created: 0,
            updated: 0,
            unchanged: 0,
            archive: Vec::new(),
        }
    }
}

impl<R> RowPlan<R> {
    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.archive.is_empty()
    }
}

/// Plans a fetched page against the stored rows of its keys. A key given twice in one page is
/// written once, as last given (Graph may repeat an item across a page boundary).
pub fn plan_page<R: Keyed + PartialEq>(
    stored: &HashMap<String, StoredRow<R>>,
    fetched: Vec<R>,
) -> RowPlan<R> {
    let mut latest: HashMap<String, R> = HashMap::with_capacity(fetched.len());
    let mut order: Vec<String> = Vec::with_capacity(fetched.len());
    for record in fetched {
        let key = record.key().to_string();
        if latest.insert(key.clone(), record).is_none() {
            order.push(key);
        }
    }
    let mut plan = RowPlan::default();
    for key in order {
        let Some(record) = latest.remove(&key) else {
            continue;
        };
        match stored.get(&key) {
            Some(row) if !row.archived && row.record == record => plan.unchanged += 1,
            Some(_) => {
                plan.updated += 1;
                plan.write.push(record);
            }
            None => {
                plan.created += 1;
                plan.write.push(record);
            }
        }
    }
    plan
}

/// After a complete listing: every active row it did not name is archived. Only a complete
/// listing may call this (DESIGN invariant 3).
pub fn plan_not_listed<R>(active: &HashSet<String>, seen: &HashSet<String>) -> RowPlan<R> {
    let mut archive: Vec<String> = active.difference(seen).cloned().collect();
    archive.sort();
    RowPlan {
        archive,
        ..RowPlan::default()
    }
}

/// After a complete listing, from the tenant's active keys as the store reads them out one by
/// one: every key the listing did not name is archived. The same plan as `plan_not_listed`,
/// without holding every active key at once.
pub fn plan_unlisted<R>(
    active: impl IntoIterator<Item = String>,
    listed: &crate::keys::ListedKeys,
) -> RowPlan<R> {
    let mut archive: Vec<String> = active
        .into_iter()
        .filter(|key| !listed.contains(key))
        .collect();
    archive.sort();
    archive.dedup();
    RowPlan {
        archive,
        ..RowPlan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Device {
        id: String,
        name: String,
    }

    impl Keyed for Device {
        fn key(&self) -> &str {
            &self.id
        }
    }

    fn device(id: &str, name: &str) -> Device {
        Device {
            id: id.into(),
            name: name.into(),
        }
    }

    fn stored(rows: &[(&Device, bool)]) -> HashMap<String, StoredRow<Device>> {
        rows.iter()
            .map(|(d, archived)| {
                (
                    d.id.clone(),
                    StoredRow {
                        record: (*d).clone(),
                        archived: *archived,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn equal_rows_are_left_alone_and_changed_ones_rewritten() {
        let a = device("a", "laptop");
        let b = device("b", "phone");
        let plan = plan_page(
            &stored(&[(&a, false), (&b, false)]),
            vec![a.clone(), device("b", "tablet"), device("c", "desktop")],
        );
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.updated, 1);
        assert_eq!(plan.created, 1);
        assert_eq!(
            plan.write,
            vec![device("b", "tablet"), device("c", "desktop")]
        );
        assert!(plan.archive.is_empty());
    }

    #[test]
    fn an_archived_row_seen_again_comes_back_even_when_equal() {
        let a = device("a", "laptop");
        let plan = plan_page(&stored(&[(&a, true)]), vec![a.clone()]);
        assert_eq!((plan.updated, plan.unchanged), (1, 0));
        assert_eq!(plan.write, vec![a]);
    }

    #[test]
    fn a_key_repeated_in_a_page_is_written_once_as_last_given() {
        let plan = plan_page(
            &HashMap::new(),
            vec![device("a", "old"), device("a", "new")],
        );
        assert_eq!(plan.created, 1);
        assert_eq!(plan.write, vec![device("a", "new")]);
    }

    #[test]
    fn a_complete_listing_archives_only_what_it_lacked() {
        let active: HashSet<String> = ["a", "b", "c"].map(String::from).into();
        let seen: HashSet<String> = ["b", "d"].map(String::from).into();
        let plan: RowPlan<Device> = plan_not_listed(&active, &seen);
        assert_eq!(plan.archive, vec!["a".to_string(), "c".to_string()]);
        assert!(plan.write.is_empty());
    }

    #[test]
    fn streamed_active_keys_are_planned_as_a_set_of_them_is() {
        let active = ["c", "a", "b", "a"].map(String::from);
        let seen = ["b", "d"];
        let listed = seen.into_iter().collect::<crate::keys::KeyList>().finish();
        let streamed: RowPlan<Device> = plan_unlisted(active.clone(), &listed);
        let whole: RowPlan<Device> = plan_not_listed(
            &active.into_iter().collect(),
            &seen.map(String::from).into(),
        );
        assert_eq!(streamed, whole);
        assert_eq!(streamed.archive, vec!["a".to_string(), "c".to_string()]);
    }
}
