//! A tenant over time: after each successful run, its headline figures (users by state,
//! licences by SKU, mailbox storage, devices by compliance, software products, admins, secrets
//! near expiry) are kept as one dated snapshot; the same figures as last time only extend the
//! last snapshot's "seen until", so that a tenant synced every hour costs a row per change,
//! not per run. Trends read the snapshots back as one series per figure.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A tenant's headline figures, by name: `users.enabled`, `licenses.SPE_E3.assigned`,
/// `devices.compliant`, `mailboxes.storage_bytes`, …, as `Figures::names` lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Figures(pub BTreeMap<String, i64>);

impl Figures {
    pub fn set(&mut self, name: impl Into<String>, value: i64) {
        self.0.insert(name.into(), value);
    }
    pub fn get(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }
}

/// What a figure's name means, for people: the part before the first dot is its group.
pub fn describe(name: &str) -> String {
    let mut parts = name.splitn(3, '.');
    let group = parts.next().unwrap_or_default();
    let second = parts.next().unwrap_or_default();
    let third = parts.next();
    match (group, second, third) {
        ("licenses", sku, Some(what)) => format!("{sku} seats {what}"),
        ("devices", state, None) => format!("devices {}", state.replace('_', " ")),
        (group, what, None) => format!("{group} {}", what.replace('_', " ")),
        _ => name.replace(['.', '_'], " "),
    }
}

/// One kept snapshot: figures first seen at `taken_at` and unchanged until `seen_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub taken_at: DateTime<Utc>,
    pub seen_until: DateTime<Utc>,
    pub figures: Figures,
}

/// What to keep after a run, given the tenant's latest snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotWrite {
    /// The figures are those of the latest snapshot: it is now seen until this time.
    Extend,
    /// The figures changed (or this is the first): a new snapshot.
    Insert,
}

pub fn decide(latest: Option<&Snapshot>, figures: &Figures) -> SnapshotWrite {
    match latest {
        Some(last) if last.figures == *figures => SnapshotWrite::Extend,
        _ => SnapshotWrite::Insert,
    }
}

/// One figure over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trend {
    pub name: String,
    pub label: String,
    /// The value at the first point; `None` when the figure did not exist yet.
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub change: i64,
    /// (when, value) at each snapshot, oldest first; a snapshot without the figure is left out.
    pub points: Vec<(DateTime<Utc>, i64)>,
}

/// Every figure's series over the snapshots (oldest first), from `since` on: the latest
/// snapshot before `since` is the starting point, as that is how the tenant looked then.
/// From a day after the latest snapshot was last seen (a day in the future among them) there
/// is nothing known, and nothing is shown: a point is never put where no run saw the tenant.
pub fn trends(snapshots: &[Snapshot], since: Option<DateTime<Utc>>) -> Vec<Trend> {
    let mut ordered: Vec<&Snapshot> = snapshots.iter().collect();
    ordered.sort_by_key(|s| s.taken_at);
    if let Some(since) = since
        && ordered.iter().all(|s| s.seen_until < since)
    {
        return Vec::new();
    }
    let start = since
        .and_then(|since| ordered.iter().rposition(|s| s.taken_at <= since))
        .unwrap_or(0);
    let window = &ordered[start.min(ordered.len())..];
    let names: BTreeSet<&String> = window.iter().flat_map(|s| s.figures.0.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let mut points: Vec<(DateTime<Utc>, i64)> = Vec::new();
            for s in window {
                if let Some(v) = s.figures.get(name) {
                    // A snapshot seen for a while shows as two points, so that a chart keeps
                    // the level flat until it changed.
                    let at = since.map_or(s.taken_at, |since| s.taken_at.max(since));
                    points.push((at, v));
                    if s.seen_until > at {
                        points.push((s.seen_until, v));
                    }
                }
            }
            points.dedup();
            let first = window.first().and_then(|s| s.figures.get(name));
            let last = window.last().and_then(|s| s.figures.get(name));
            Trend {
                name: name.clone(),
                label: describe(name),
                first,
                last,
                change: last.unwrap_or(0) - first.unwrap_or(0),
                points,
            }
        })
        .collect()
}

/// Why `trends` shows nothing, in words for the person who asked; none when it shows figures.
pub fn nothing_to_show(
    snapshots: &[Snapshot],
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(latest) = snapshots.iter().map(|s| s.seen_until).max() else {
        return Some("No snapshot yet: one is kept after each successful sync.".into());
    };
    let since = since.filter(|since| *since > latest)?;
    let day = since.format("%Y-%m-%d");
    Some(if since > now {
        format!(
            "{day} is in the future: nothing is known from then on (the latest snapshot was seen until {}). Give a past day to --since",
            latest.format("%Y-%m-%d %H:%M")
        )
    } else {
        format!(
            "No snapshot from {day} on: the latest was seen until {}; a sync keeps a new one",
            latest.format("%Y-%m-%d %H:%M")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 6, 0, 0).unwrap()
    }

    fn figures(pairs: &[(&str, i64)]) -> Figures {
        Figures(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }

    #[test]
    fn unchanged_figures_extend_the_last_snapshot_and_changed_ones_make_a_new_one() {
        let last = Snapshot {
            taken_at: at(1),
            seen_until: at(2),
            figures: figures(&[("users.enabled", 10)]),
        };
        assert_eq!(
            decide(Some(&last), &figures(&[("users.enabled", 10)])),
            SnapshotWrite::Extend
        );
        assert_eq!(
            decide(Some(&last), &figures(&[("users.enabled", 11)])),
            SnapshotWrite::Insert
        );
        assert_eq!(decide(None, &figures(&[])), SnapshotWrite::Insert);
    }

    #[test]
    fn trends_start_from_how_the_tenant_looked_at_the_date_asked() {
        let snapshots = vec![
            Snapshot {
                taken_at: at(1),
                seen_until: at(3),
                figures: figures(&[("users.enabled", 10), ("licenses.SPB.assigned", 4)]),
            },
            Snapshot {
                taken_at: at(10),
                seen_until: at(10),
                figures: figures(&[("users.enabled", 12)]),
            },
            Snapshot {
                taken_at: at(20),
                seen_until: at(25),
                figures: figures(&[("users.enabled", 9), ("devices.compliant", 3)]),
            },
        ];
        let all = trends(&snapshots, None);
        let users = all.iter().find(|t| t.name == "users.enabled").unwrap();
        assert_eq!(
            (users.first, users.last, users.change),
            (Some(10), Some(9), -1)
        );
        assert_eq!(users.points.len(), 5);
        assert_eq!(users.label, "users enabled");
        let devices = all.iter().find(|t| t.name == "devices.compliant").unwrap();
        assert_eq!((devices.first, devices.change), (None, 3));
        let sku = all
            .iter()
            .find(|t| t.name == "licenses.SPB.assigned")
            .unwrap();
        assert_eq!(sku.label, "SPB seats assigned");

        let since = trends(&snapshots, Some(at(12)));
        let users = since.iter().find(|t| t.name == "users.enabled").unwrap();
        assert_eq!(
            (users.first, users.last, users.change),
            (Some(12), Some(9), -3)
        );
        assert_eq!(users.points[0], (at(12), 12));
        assert!(since.iter().all(|t| t.name != "licenses.SPB.assigned"));
        assert!(trends(&[], None).is_empty());
    }

    #[test]
    fn a_day_after_every_snapshot_shows_nothing_and_says_why() {
        let snapshots = vec![Snapshot {
            taken_at: at(1),
            seen_until: at(3),
            figures: figures(&[("users.enabled", 10)]),
        }];
        let now = at(5);
        let future = Some(at(28));
        assert!(trends(&snapshots, future).is_empty());
        let said = nothing_to_show(&snapshots, future, now).unwrap();
        assert!(
            said.starts_with("2026-11-28 is in the future") && said.contains("2026-11-03 06:00"),
            "{said}"
        );
        // Past, but after the latest run saw the tenant: nothing known then either.
        assert!(trends(&snapshots, Some(at(4))).is_empty());
        assert!(
            nothing_to_show(&snapshots, Some(at(4)), now)
                .unwrap()
                .starts_with("No snapshot from 2026-11-04 on")
        );
        // While the snapshot was seen, it is the starting point.
        assert_eq!(trends(&snapshots, Some(at(2)))[0].points[0], (at(2), 10));
        assert_eq!(nothing_to_show(&snapshots, Some(at(2)), now), None);
        assert!(
            nothing_to_show(&[], None, now)
                .unwrap()
                .contains("No snapshot yet")
        );
    }
}
