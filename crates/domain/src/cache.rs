//! How long a dataset's last fetch stays fresh: a run skips a dataset fetched more recently than
//! that. Owns the defaults (Microsoft refreshes its mailbox and usage reports once a day, and
//! service health every few minutes; the directory is read by delta, so every run) and a
//! connection's overrides, and the pure rule deciding whether a run fetches. Lists that cannot be
//! read by delta and change slowly at Microsoft (devices, detected apps, last sign-ins) are kept
//! for hours: re-reading a large tenant's every run would cost most of the run.
//!
//! Times are milliseconds since 1970, as the store keeps them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schedule::{format_duration, parse_duration};
use crate::{Dataset, InputError};

const HOUR: u64 = 3_600;
const DAY: u64 = 24 * HOUR;

/// Longer than this and a cached report would hide a whole month of changes.
pub const LONGEST_LIFETIME_SECS: u64 = 30 * DAY;

/// How long a fetch of `dataset` stays fresh unless a connection says otherwise, in seconds.
pub fn default_lifetime(dataset: Dataset) -> u64 {
    match dataset {
        // Microsoft computes these reports once a day: a second fetch the same day reads the
        // same figures and spends the 14-requests-per-10-minutes report budget.
        Dataset::Mailboxes | Dataset::Usage => DAY,
        // Intune inventories a device's apps about once a day, and listing them costs a
        // request per app.
        Dataset::DetectedApps => DAY,
        // Microsoft updates last sign-ins hours late, and lets an app read them at 5 pages of
        // 120 users every 10 s: every run would spend half an hour on a 100,000-user tenant.
        Dataset::SignInActivity => 6 * HOUR,
        // Devices check in with Intune every few hours; neither list can be read by delta.
        Dataset::ManagedDevices | Dataset::Devices => HOUR,
        Dataset::ServiceHealth | Dataset::ServiceMessages => 15 * 60,
        _ => 0,
    }
}

/// A connection's cache lifetimes that differ from the defaults, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CacheLifetimes(BTreeMap<Dataset, u64>);

impl CacheLifetimes {
    /// How long a fetch of `dataset` stays fresh for this connection, in seconds.
    pub fn lifetime(&self, dataset: Dataset) -> u64 {
        if dataset == Dataset::Organization {
            return 0;
        }
        self.0
            .get(&dataset)
            .copied()
            .unwrap_or_else(|| default_lifetime(dataset))
    }

    /// Sets `dataset`'s lifetime, in seconds as [`parse_lifetime`] read them.
    pub fn set(&mut self, dataset: Dataset, seconds: u64) {
        if dataset == Dataset::Organization || seconds == default_lifetime(dataset) {
            self.0.remove(&dataset);
        } else {
            self.0.insert(dataset, seconds.min(LONGEST_LIFETIME_SECS));
        }
    }

    /// Every dataset's lifetime in seconds, and whether it is the default.
    pub fn all(&self) -> Vec<(Dataset, u64, bool)> {
        Dataset::ALL
            .into_iter()
            .map(|d| (d, self.lifetime(d), !self.0.contains_key(&d)))
            .collect()
    }
}

/// A lifetime for `dataset` as a person typed it (`12h`; `0` for every run), in seconds. The
/// organisation is read every run: everything else is filed under what it finds.
pub fn parse_lifetime(dataset: Dataset, raw: &str) -> Result<u64, InputError> {
    if dataset == Dataset::Organization {
        return Err(InputError::new(
            "dataset",
            "the organization dataset is read on every run and has no cache",
            "Every other dataset is filed under the organisation it finds; choose another dataset",
        ));
    }
    let seconds = parse_duration("lifetime", raw)?;
    if seconds > LONGEST_LIFETIME_SECS {
        return Err(InputError::new(
            "lifetime",
            format!("'{}' is longer than 30 days", raw.trim()),
            "Choose 30d or less; 0 fetches on every run",
        ));
    }
    Ok(seconds)
}

/// Whether a run fetches a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fetch,
    /// Fetched at `fetched_at`, still fresh until `refreshes_at`.
    Fresh {
        fetched_at: i64,
        refreshes_at: i64,
    },
}

/// A dataset last fetched at `fetched_at` (never, when `None`), kept `lifetime_secs`, seen at
/// `now`. A fetch time in the future (a clock set back) is not trusted to be fresh.
pub fn freshness(lifetime_secs: u64, fetched_at: Option<i64>, now: i64) -> Freshness {
    let Some(fetched_at) = fetched_at else {
        return Freshness::Fetch;
    };
    let lifetime = i64::try_from(lifetime_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let refreshes_at = fetched_at.saturating_add(lifetime);
    if lifetime == 0 || fetched_at > now || refreshes_at <= now {
        Freshness::Fetch
    } else {
        Freshness::Fresh {
            fetched_at,
            refreshes_at,
        }
    }
}

/// A lifetime as `connection cache` shows it: `24h` rather than `1d`, as Microsoft speaks of
/// daily reports; `every run` for none.
pub fn describe_lifetime(seconds: u64) -> String {
    match seconds {
        0 => "every run".into(),
        s if s % 3600 == 0 && s <= 2 * DAY => format!("{}h", s / 3600),
        s => format_duration(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn defaults_follow_how_often_microsoft_refreshes() {
        let lifetimes = CacheLifetimes::default();
        assert_eq!(lifetimes.lifetime(Dataset::Mailboxes), 86_400);
        assert_eq!(lifetimes.lifetime(Dataset::Usage), 86_400);
        assert_eq!(lifetimes.lifetime(Dataset::ServiceHealth), 900);
        assert_eq!(lifetimes.lifetime(Dataset::ServiceMessages), 900);
        for every_run in [Dataset::Users, Dataset::Groups, Dataset::Organization] {
            assert_eq!(lifetimes.lifetime(every_run), 0, "{every_run}");
        }
    }

    #[test]
    fn overrides_replace_a_default_and_the_default_clears_them() {
        let mut lifetimes = CacheLifetimes::default();
        lifetimes.set(Dataset::Mailboxes, 43_200);
        lifetimes.set(Dataset::Users, 3600);
        assert_eq!(lifetimes.lifetime(Dataset::Mailboxes), 43_200);
        assert_eq!(lifetimes.lifetime(Dataset::Users), 3600);
        let stored = serde_json::to_string(&lifetimes).unwrap();
        assert_eq!(stored, r#"{"users":3600,"mailboxes":43200}"#);
        assert_eq!(
            serde_json::from_str::<CacheLifetimes>(&stored).unwrap(),
            lifetimes
        );
        lifetimes.set(Dataset::Mailboxes, 86_400);
        lifetimes.set(Dataset::Users, 0);
        assert_eq!(lifetimes, CacheLifetimes::default());
        let all = lifetimes.all();
        assert_eq!(all.len(), Dataset::ALL.len());
        assert!(all.iter().all(|(_, _, default)| *default));
    }

    #[test]
    fn the_organization_and_long_or_bad_lifetimes_are_refused() {
        let error = parse_lifetime(Dataset::Organization, "1h").unwrap_err();
        assert!(error.problem.contains("no cache"), "{error:?}");
        assert!(parse_lifetime(Dataset::Usage, "31d").is_err());
        assert!(parse_lifetime(Dataset::Usage, "soon").is_err());
        assert_eq!(parse_lifetime(Dataset::Usage, "12h").unwrap(), 43_200);
        assert_eq!(parse_lifetime(Dataset::Usage, "30d").unwrap(), 30 * 86_400);
        let mut lifetimes = CacheLifetimes::default();
        lifetimes.set(Dataset::Organization, 3600);
        assert_eq!(lifetimes.lifetime(Dataset::Organization), 0);
    }

    #[test]
    fn a_fetch_is_fresh_for_its_lifetime_only() {
        let fetched = 1_000 * HOUR;
        assert_eq!(freshness(86_400, None, fetched), Freshness::Fetch);
        assert_eq!(
            freshness(86_400, Some(fetched), fetched + 23 * HOUR),
            Freshness::Fresh {
                fetched_at: fetched,
                refreshes_at: fetched + 24 * HOUR
            }
        );
        assert_eq!(
            freshness(86_400, Some(fetched), fetched + 24 * HOUR),
            Freshness::Fetch
        );
        assert_eq!(freshness(0, Some(fetched), fetched), Freshness::Fetch);
        // A clock set back: the fetch looks as if from the future and is not trusted.
        assert_eq!(
            freshness(86_400, Some(fetched), fetched - HOUR),
            Freshness::Fetch
        );
    }

    #[test]
    fn lifetimes_read_as_a_person_says_them() {
        assert_eq!(describe_lifetime(0), "every run");
        assert_eq!(describe_lifetime(86_400), "24h");
        assert_eq!(describe_lifetime(900), "15m");
        assert_eq!(describe_lifetime(7 * 86_400), "7d");
    }
}
