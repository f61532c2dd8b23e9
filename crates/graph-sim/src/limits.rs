//! Microsoft's documented throttling limits, enforced when the simulator is started with them.
//!
//! Owns: which documented limit a Graph request falls under (directory reads by resource units,
//! identity and access reports, usage reports per report API, Intune, service communications,
//! multi-tenant management) and what it costs; the count per app, tenant and limit over a
//! sliding window; and the answer Graph gives — `x-ms-throttle-limit-percentage` past 80 % of a
//! limit, 429 with `Retry-After` and Graph's error body beyond it. Each count is kept per
//! (app, tenant) as the documents state the limits, and the window slides: at no instant do the
//! requests of the last window exceed the quota, which is what a client pacing itself must meet
//! whether Microsoft's own counters slide or step.
//!
//! Requests that are refused still count, as Microsoft warns ("usage keeps accruing while
//! throttled"): a client that retries at once only digs deeper, while one that waits the
//! `Retry-After` it was given finds room.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// A number of units (requests, or resource units for the directory) per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub units: u64,
    pub window: Duration,
}

impl Quota {
    pub const fn per(units: u64, seconds: u64) -> Self {
        Self {
            units,
            window: Duration::from_secs(seconds),
        }
    }
}

/// The limits enforced, per app and tenant (graph-api.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Directory reads in resource units, by tenant size: under 50 users, 50 to 500, over 500.
    pub directory: [Quota; 3],
    /// Identity and access reports; reading users' sign-in activity is one.
    pub identity_reports: Quota,
    /// Usage reports as CSV, counted per report API.
    pub usage_reports: Quota,
    /// Intune devices and apps.
    pub intune: Quota,
    /// Service communications: per minute and per hour, both.
    pub service_communications: [Quota; 2],
    /// Multi-tenant management (`tenantRelationships`).
    pub multi_tenant: Quota,
}

impl Limits {
    /// The limits as Microsoft documents them.
    pub fn microsoft() -> Self {
        Self {
            directory: [
                Quota::per(3_500, 10),
                Quota::per(5_000, 10),
                Quota::per(8_000, 10),
            ],
            identity_reports: Quota::per(5, 10),
            usage_reports: Quota::per(14, 600),
            intune: Quota::per(2_000, 20),
            service_communications: [Quota::per(240, 60), Quota::per(800, 3_600)],
            multi_tenant: Quota::per(1_000, 20),
        }
    }

    /// The directory quota of a tenant of `users` users.
    pub fn directory_for(&self, users: u64) -> Quota {
        match users {
            0..50 => self.directory[0],
            50..=500 => self.directory[1],
            _ => self.directory[2],
        }
    }
}

/// Which count a request adds to: the limit, and for usage reports the report API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Counter {
    Directory,
    IdentityReports,
    UsageReport(String),
    Intune,
    ServiceCommunications(usize),
    MultiTenant,
}

impl Counter {
    /// What Graph names in `x-ms-throttle-information` when this count refuses a request.
    fn information(&self) -> &'static str {
        match self {
            Counter::Directory => "ResourceUnitLimitExceeded",
            _ => "RequestLimitExceeded",
        }
    }
}

/// One charge a request makes: to which count, against which quota, how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Charge {
    pub counter: Counter,
    pub quota: Quota,
    pub units: u64,
}

/// What the limits say of a request a Graph request that reached `path` with `query`
/// (`$select=…&$top=…`, undecoded) charges, for a tenant of `users` users. Nothing for a
/// request no documented limit covers here (the control API, the token endpoint, `$batch`
/// itself: its requests are charged one by one as they are answered).
pub(crate) fn charges(limits: &Limits, path: &str, query: &str, users: u64) -> Vec<Charge> {
    let Some(rest) = path
        .strip_prefix("/v1.0/")
        .or_else(|| path.strip_prefix("/beta/"))
    else {
        return Vec::new();
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some(first) = segments.first().copied() else {
        return Vec::new();
    };
    let options = Options::of(query);
    let one = |counter: Counter, quota: Quota| Charge {
        counter,
        quota,
        units: 1,
    };
    match first {
        "reports" => {
            let Some(function) = segments.get(1) else {
                return Vec::new();
            };
            let api = function.split('(').next().unwrap_or(function).to_string();
            vec![one(Counter::UsageReport(api), limits.usage_reports)]
        }
        "deviceManagement" => vec![one(Counter::Intune, limits.intune)],
        "admin" if segments.get(1) == Some(&"serviceAnnouncement") => limits
            .service_communications
            .iter()
            .enumerate()
            .map(|(i, quota)| one(Counter::ServiceCommunications(i), *quota))
            .collect(),
        "tenantRelationships" => vec![one(Counter::MultiTenant, limits.multi_tenant)],
        _ if DIRECTORY.contains(&first) => {
            let mut charged = vec![Charge {
                counter: Counter::Directory,
                quota: limits.directory_for(users),
                units: resource_units(&segments, &options),
            }];
            // Sign-in activity is audit data: it is also an identity and access report.
            if first == "users" && options.selects("signInActivity") {
                charged.push(one(Counter::IdentityReports, limits.identity_reports));
            }
            charged
        }
        _ => Vec::new(),
    }
}

/// The identity and access resources whose reads cost resource units.
const DIRECTORY: &[&str] = &[
    "users",
    "groups",
    "devices",
    "applications",
    "servicePrincipals",
    "organization",
    "domains",
    "subscribedSkus",
    "contracts",
    "directoryRoles",
    "directoryRoleTemplates",
    "directoryObjects",
    "orgContacts",
    "oauth2PermissionGrants",
    "administrativeUnits",
    "me",
];

/// The query options that change a directory read's cost.
struct Options {
    select: Option<String>,
    expand: bool,
    top: Option<u64>,
}

impl Options {
    fn of(query: &str) -> Self {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let find = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        Self {
            select: find("$select"),
            expand: find("$expand").is_some(),
            top: find("$top").and_then(|t| t.parse().ok()),
        }
    }

    fn selects(&self, field: &str) -> bool {
        self.select
            .as_deref()
            .is_some_and(|s| s.split(',').any(|f| f.trim().eq_ignore_ascii_case(field)))
    }
}

/// A directory GET's cost in resource units: the documented base cost of its path, less one
/// for `$select`, more one for `$expand`, less one for `$top` under 20; never under one.
fn resource_units(segments: &[&str], options: &Options) -> u64 {
    let base: i64 = match segments {
        ["users"] | ["users", "delta"] | ["users", _] => 2,
        ["me" | "users", ..] if segments.len() >= 2 => {
            match segments.last().copied().unwrap_or_default() {
                "licenseDetails" | "memberOf" | "transitiveMemberOf" | "ownedObjects" => 2,
                _ => 1,
            }
        }
        ["subscribedSkus", ..] | ["contracts", ..] => 3,
        ["applications", ..] | ["oauth2PermissionGrants", ..] => 2,
        ["groups", _, "members"] => 3,
        ["groups", _, "transitiveMembers"] => 5,
        ["servicePrincipals", _, "appRoleAssignments"] => 2,
        ["domains", _, "domainNameReferences"] => 4,
        _ => 1,
    };
    let mut cost = base;
    if options.select.is_some() {
        cost -= 1;
    }
    if options.expand {
        cost += 1;
    }
    if options.top.is_some_and(|t| t < 20) {
        cost -= 1;
    }
    cost.max(1) as u64
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// The highest share of a quota now used, refused requests included.
    pub used: f64,
    /// When refused: how long until the request would fit, and which count refused it.
    pub refused: Option<(Duration, Counter)>,
    /// Resource units the request cost, for a directory read.
    pub resource_units: Option<u64>,
}

/// The counts of every app and tenant; `now` is given by the caller, so tests drive the clock.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    windows: Mutex<HashMap<(String, String, Counter), Window>>,
}

/// What one count holds: each charge at its time, oldest first, and their sum.
#[derive(Debug, Default)]
struct Window {
    charges: VecDeque<(Duration, u64)>,
    sum: u64,
}

impl Window {
    fn forget_before(&mut self, now: Duration, window: Duration) {
        while let Some(&(at, units)) = self.charges.front() {
            if at + window > now {
                break;
            }
            self.sum -= units;
            self.charges.pop_front();
        }
    }

    /// How long from `now` until `units` more fit under `quota`.
    fn room_in(&self, now: Duration, quota: Quota, units: u64) -> Duration {
        let allowed = quota.units.saturating_sub(units);
        let mut sum = self.sum;
        for &(at, charged) in &self.charges {
            if sum <= allowed {
                break;
            }
            sum -= charged;
            if sum <= allowed {
                return (at + quota.window).saturating_sub(now);
            }
        }
        Duration::ZERO
    }
}

impl Limiter {
    /// Counts a request of `app` in `tenant` at `now` and says whether it goes through.
    pub(crate) fn admit(
        &self,
        app: &str,
        tenant: &str,
        charges: &[Charge],
        now: Duration,
    ) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut verdict = Verdict {
            used: 0.0,
            refused: None,
            resource_units: None,
        };
        for charge in charges {
            if charge.counter == Counter::Directory {
                verdict.resource_units = Some(charge.units);
            }
            let window = windows
                .entry((app.to_string(), tenant.to_string(), charge.counter.clone()))
                .or_default();
            window.forget_before(now, charge.quota.window);
            window.sum += charge.units;
            window.charges.push_back((now, charge.units));
            let quota = charge.quota.units.max(1);
            verdict.used = verdict.used.max(window.sum as f64 / quota as f64);
            if window.sum > quota {
                let wait = window.room_in(now, charge.quota, charge.units);
                if verdict.refused.as_ref().is_none_or(|(w, _)| wait > *w) {
                    verdict.refused = Some((wait, charge.counter.clone()));
                }
            }
        }
        verdict
    }
}

/// The `Retry-After` Graph would send for `wait`: seconds, fractional, never under a
/// millisecond so that a client does not spin.
pub(crate) fn retry_after(wait: Duration) -> String {
    let millis = wait.as_millis().max(1);
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// What `x-ms-throttle-information` says about the count that refused a request.
pub(crate) fn information(counter: &Counter) -> &'static str {
    counter.information()
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "app";
    const TENANT: &str = "tenant";

    fn at(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn directory(limits: &Limits, path: &str, query: &str, users: u64) -> u64 {
        charges(limits, path, query, users)
            .into_iter()
            .find(|c| c.counter == Counter::Directory)
            .map(|c| c.units)
            .unwrap_or(0)
    }

    #[test]
    fn tenant_size_picks_the_directory_quota_by_the_documented_bands() {
        let limits = Limits::microsoft();
        assert_eq!(limits.directory_for(0).units, 3_500);
        assert_eq!(limits.directory_for(49).units, 3_500);
        assert_eq!(limits.directory_for(50).units, 5_000);
        assert_eq!(limits.directory_for(500).units, 5_000);
        assert_eq!(limits.directory_for(501).units, 8_000);
        assert_eq!(
            limits.directory_for(100_000).window,
            Duration::from_secs(10)
        );
    }

    #[test]
    fn directory_reads_cost_the_documented_resource_units() {
        let l = Limits::microsoft();
        assert_eq!(directory(&l, "/v1.0/users", "", 10), 2);
        assert_eq!(directory(&l, "/v1.0/users", "$select=id", 10), 1);
        assert_eq!(directory(&l, "/v1.0/users", "$top=5", 10), 1);
        assert_eq!(directory(&l, "/v1.0/users", "$select=id&$top=5", 10), 1);
        assert_eq!(directory(&l, "/v1.0/users/delta", "", 10), 2);
        assert_eq!(directory(&l, "/v1.0/subscribedSkus", "", 10), 3);
        assert_eq!(
            directory(&l, "/v1.0/subscribedSkus", "$select=skuId", 10),
            2
        );
        assert_eq!(directory(&l, "/v1.0/groups/abc/members", "", 10), 3);
        assert_eq!(
            directory(&l, "/v1.0/groups/abc/transitiveMembers", "", 10),
            5
        );
        assert_eq!(directory(&l, "/v1.0/groups", "$expand=members", 10), 2);
        assert_eq!(directory(&l, "/v1.0/users/abc/licenseDetails", "", 10), 2);
        assert_eq!(directory(&l, "/v1.0/applications", "", 10), 2);
        assert_eq!(directory(&l, "/v1.0/organization", "", 10), 1);
        assert_eq!(directory(&l, "/v1.0/domains", "$select=id", 10), 1);
        assert!(charges(&l, "/v1.0/$batch", "", 10).is_empty());
        assert!(charges(&l, "/_sim/stats", "", 10).is_empty());
        assert!(charges(&l, "/tenant/oauth2/v2.0/token", "", 10).is_empty());
    }

    #[test]
    fn each_service_falls_under_its_own_limit() {
        let l = Limits::microsoft();
        let counters = |path: &str, query: &str| -> Vec<Counter> {
            charges(&l, path, query, 10)
                .into_iter()
                .map(|c| c.counter)
                .collect()
        };
        assert_eq!(
            counters("/v1.0/users", "$select=id,signInActivity&$top=120"),
            vec![Counter::Directory, Counter::IdentityReports]
        );
        assert_eq!(
            counters("/v1.0/reports/getMailboxUsageDetail(period='D7')", ""),
            vec![Counter::UsageReport("getMailboxUsageDetail".into())]
        );
        assert_eq!(
            counters("/v1.0/deviceManagement/detectedApps/x/managedDevices", ""),
            vec![Counter::Intune]
        );
        assert_eq!(
            counters("/v1.0/admin/serviceAnnouncement/messages", ""),
            vec![
                Counter::ServiceCommunications(0),
                Counter::ServiceCommunications(1)
            ]
        );
        assert_eq!(
            counters("/v1.0/tenantRelationships/delegatedAdminCustomers", ""),
            vec![Counter::MultiTenant]
        );
    }

    #[test]
    fn a_quota_admits_exactly_its_units_per_sliding_window_and_says_when_there_is_room() {
        let limiter = Limiter::default();
        let charge = [Charge {
            counter: Counter::IdentityReports,
            quota: Quota::per(5, 10),
            units: 1,
        }];
        for i in 0..5 {
            let verdict = limiter.admit(APP, TENANT, &charge, at(i * 1000));
            assert_eq!(verdict.refused, None, "request {i}");
        }
        // The sixth within 10 s of the first is refused. It counts all the same, so its retry
        // fits once two have left the window: at 11 s.
        let refused = limiter.admit(APP, TENANT, &charge, at(4_500));
        assert_eq!(refused.refused, Some((at(6_500), Counter::IdentityReports)));
        assert!((refused.used - 1.2).abs() < 1e-9);
        // Retrying early digs deeper: at 10 s only the first has gone, and this one counts too.
        let again = limiter.admit(APP, TENANT, &charge, at(10_000));
        assert_eq!(again.refused, Some((at(2_000), Counter::IdentityReports)));
        // Waiting as told finds room.
        let later = limiter.admit(APP, TENANT, &charge, at(12_000));
        assert_eq!(later.refused, None);
    }

    #[test]
    fn counts_are_kept_per_app_and_per_tenant() {
        let limiter = Limiter::default();
        let charge = [Charge {
            counter: Counter::IdentityReports,
            quota: Quota::per(1, 10),
            units: 1,
        }];
        assert_eq!(limiter.admit(APP, TENANT, &charge, at(0)).refused, None);
        assert_eq!(limiter.admit("other", TENANT, &charge, at(1)).refused, None);
        assert_eq!(limiter.admit(APP, "other", &charge, at(2)).refused, None);
        assert!(limiter.admit(APP, TENANT, &charge, at(3)).refused.is_some());
    }

    #[test]
    fn usage_reports_are_counted_per_report_api() {
        let limits = Limits::microsoft();
        let limiter = Limiter::default();
        let mailbox = charges(
            &limits,
            "/v1.0/reports/getMailboxUsageDetail(period='D7')",
            "",
            10,
        );
        let active = charges(
            &limits,
            "/v1.0/reports/getOffice365ActiveUserDetail(period='D7')",
            "",
            10,
        );
        for i in 0..14 {
            assert_eq!(limiter.admit(APP, TENANT, &mailbox, at(i)).refused, None);
        }
        assert_eq!(limiter.admit(APP, TENANT, &active, at(20)).refused, None);
        let refused = limiter.admit(APP, TENANT, &mailbox, at(30)).refused;
        assert_eq!(
            refused.map(|(wait, _)| wait),
            Some(Duration::from_secs(600) + at(1) - at(30))
        );
    }

    #[test]
    fn resource_units_fill_the_directory_quota_by_cost() {
        let limits = Limits::microsoft();
        let limiter = Limiter::default();
        // A small tenant: 3,500 units in 10 s; group members cost 3 each.
        let members = charges(&limits, "/v1.0/groups/g/members", "", 10);
        for i in 0..1_166 {
            let verdict = limiter.admit(APP, TENANT, &members, at(i));
            assert_eq!(verdict.refused, None, "request {i}");
            assert_eq!(verdict.resource_units, Some(3));
        }
        // 3,498 used: one more unit fits, three do not.
        let organization = charges(&limits, "/v1.0/organization", "", 10);
        assert_eq!(
            limiter.admit(APP, TENANT, &organization, at(2_000)).refused,
            None
        );
        let verdict = limiter.admit(APP, TENANT, &members, at(2_001));
        assert!(verdict.refused.is_some());
        assert!(verdict.used > 1.0);
    }

    #[test]
    fn the_share_used_is_reported_as_the_window_fills() {
        let limiter = Limiter::default();
        let charge = [Charge {
            counter: Counter::Intune,
            quota: Quota::per(10, 20),
            units: 1,
        }];
        let used: Vec<f64> = (0..10)
            .map(|i| limiter.admit(APP, TENANT, &charge, at(i)).used)
            .collect();
        assert!((used[7] - 0.8).abs() < 1e-9);
        assert!((used[9] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn retry_after_is_seconds_to_the_millisecond() {
        assert_eq!(retry_after(Duration::from_millis(2_128)), "2.128");
        assert_eq!(retry_after(Duration::ZERO), "0.001");
        assert_eq!(retry_after(Duration::from_secs(600)), "600.000");
    }
}
