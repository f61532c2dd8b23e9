//! Pacing to Microsoft's documented throttling limits, so that a sync slows down before Graph
//! answers 429 rather than after.
//!
//! Owns: the budgets Microsoft documents per app and tenant (graph-api.md §4.2: directory reads
//! in resource units by tenant size, identity and access reports, usage reports per report API,
//! Intune, service communications, multi-tenant management), which budget a request spends and
//! how much, and one [`Pacer`] per client that keeps its own count over a sliding window. Before
//! a request it reserves the earliest moment the request fits in every budget it spends and
//! waits until then; after the answer it reads what Graph says of the count
//! (`x-ms-throttle-limit-percentage` past 80 %, `Retry-After` on a 429) and, where Graph counts
//! more than it did (another process of the same app, a tenant larger than assumed), takes
//! Graph's word. `$batch` requests spend one each, as Graph counts them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A number of units (requests, or resource units for the directory) per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub units: u64,
    pub window: Duration,
}

impl Budget {
    pub const fn per(units: u64, seconds: u64) -> Self {
        Self {
            units,
            window: Duration::from_secs(seconds),
        }
    }
}

/// What one app may spend in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budgets {
    /// Directory reads in resource units, by tenant size: under 50 users, 50 to 500, over 500.
    pub directory: [Budget; 3],
    /// Identity and access reports, which users' sign-in activity is.
    pub identity_reports: Budget,
    /// Usage reports as CSV, per report API.
    pub usage_reports: Budget,
    pub intune: Budget,
    /// Service communications: per minute and per hour.
    pub service_communications: [Budget; 2],
    /// Multi-tenant management (`tenantRelationships`).
    pub multi_tenant: Budget,
}

impl Budgets {
    /// Microsoft's documented limits per app and tenant.
    pub fn microsoft() -> Self {
        Self {
            directory: [
                Budget::per(3_500, 10),
                Budget::per(5_000, 10),
                Budget::per(8_000, 10),
            ],
            identity_reports: Budget::per(5, 10),
            usage_reports: Budget::per(14, 600),
            intune: Budget::per(2_000, 20),
            service_communications: [Budget::per(240, 60), Budget::per(800, 3_600)],
            multi_tenant: Budget::per(1_000, 20),
        }
    }

    /// The directory budget of a tenant of `users` users; the smallest while the size is not
    /// known, which is never too much.
    fn directory_for(&self, users: Option<u64>) -> Budget {
        match users {
            None | Some(0..50) => self.directory[0],
            Some(50..=500) => self.directory[1],
            Some(_) => self.directory[2],
        }
    }
}

/// Which count a request spends from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Spend {
    Directory,
    IdentityReports,
    UsageReport(String),
    Intune,
    ServiceCommunications(usize),
    MultiTenant,
}

/// Which count, and how much of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cost {
    pub spend: Spend,
    pub units: u64,
}

/// What a Graph request costs, from its path under the version root (`users`,
/// `groups/{id}/members`) and its query (`$select=…`). Nothing for what no budget covers.
pub(crate) fn costs(path: &str, query: &str) -> Vec<Cost> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(&first) = segments.first() else {
        return Vec::new();
    };
    let one = |spend| Cost { spend, units: 1 };
    match first {
        "reports" => segments
            .get(1)
            .map(|function| {
                let api = function.split('(').next().unwrap_or(function);
                vec![one(Spend::UsageReport(api.to_ascii_lowercase()))]
            })
            .unwrap_or_default(),
        "deviceManagement" => vec![one(Spend::Intune)],
        "admin" if segments.get(1) == Some(&"serviceAnnouncement") => vec![
            one(Spend::ServiceCommunications(0)),
            one(Spend::ServiceCommunications(1)),
        ],
        "tenantRelationships" => vec![one(Spend::MultiTenant)],
        _ if DIRECTORY.contains(&first) => {
            let query = Query::of(query);
            let mut costs = vec![Cost {
                spend: Spend::Directory,
                units: resource_units(&segments, &query),
            }];
            if first == "users" && query.selects("signInActivity") {
                costs.push(one(Spend::IdentityReports));
            }
            costs
        }
        _ => Vec::new(),
    }
}

/// What a request costs, from its URL under the version root (`users?$select=id`).
pub(crate) fn costs_of_relative(relative: &str) -> Vec<Cost> {
    let relative = relative.trim_start_matches('/');
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    costs(path, query)
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

struct Query {
    select: Option<String>,
    expand: bool,
    top: Option<u64>,
}

impl Query {
    fn of(raw: &str) -> Self {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        Self {
            select: get("$select"),
            expand: get("$expand").is_some(),
            top: get("$top").and_then(|t| t.parse().ok()),
        }
    }

    fn selects(&self, field: &str) -> bool {
        self.select
            .as_deref()
            .is_some_and(|s| s.split(',').any(|f| f.trim().eq_ignore_ascii_case(field)))
    }
}

/// Microsoft's resource units for a directory GET: the base cost of the path, one less with
/// `$select`, one more with `$expand`, one less with `$top` under 20, and never under one.
fn resource_units(segments: &[&str], query: &Query) -> u64 {
    let last = segments.last().copied().unwrap_or_default();
    let base: i64 = match (
        segments.first().copied().unwrap_or_default(),
        segments.len(),
    ) {
        ("users", 1) => 2,
        ("users", 2) => 2,
        ("users" | "me", _)
            if matches!(
                last,
                "licenseDetails" | "memberOf" | "transitiveMemberOf" | "ownedObjects"
            ) =>
        {
            2
        }
        ("subscribedSkus" | "contracts", _) => 3,
        ("applications" | "oauth2PermissionGrants", _) => 2,
        ("groups", 3) if last == "members" => 3,
        ("groups", 3) if last == "transitiveMembers" => 5,
        ("servicePrincipals", 3) if last == "appRoleAssignments" => 2,
        ("domains", 3) if last == "domainNameReferences" => 4,
        _ => 1,
    };
    let mut units = base;
    if query.select.is_some() {
        units -= 1;
    }
    if query.expand {
        units += 1;
    }
    if query.top.is_some_and(|t| t < 20) {
        units -= 1;
    }
    units.max(1) as u64
}

/// One client's count against its budgets; shared by every request the client sends.
#[derive(Debug)]
pub(crate) struct Pacer {
    budgets: Option<Budgets>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<Spend, Window>,
    /// Graph asked for a wait (`Retry-After`) before anything more of this count.
    held_until: HashMap<Spend, Instant>,
    tenant_users: Option<u64>,
}

/// One count: what was spent when, oldest first, and its sum.
#[derive(Debug, Default)]
struct Window {
    spent: VecDeque<(Instant, u64)>,
    sum: u64,
}

/// The margin on every window: Graph counts a request when it arrives, which is a little after
/// it was sent, and a request sent late (a busy machine, steps of a run sending side by side)
/// leaves Graph's window late too. A second is little against windows of 10 s and more.
fn margin(window: Duration) -> Duration {
    (window / 20).max(Duration::from_secs(1))
}

impl Window {
    fn forget_before(&mut self, now: Instant, window: Duration) {
        while let Some(&(at, units)) = self.spent.front() {
            if at + window > now {
                break;
            }
            self.sum -= units;
            self.spent.pop_front();
        }
    }

    /// The earliest moment from `now` at which `units` more stay within `budget`.
    fn fits_at(&self, now: Instant, budget: Budget, units: u64) -> Instant {
        let allowed = budget.units.saturating_sub(units);
        let mut sum = self.sum;
        let mut at = now;
        for &(spent_at, spent) in &self.spent {
            if sum <= allowed {
                break;
            }
            sum -= spent;
            at = spent_at + budget.window + margin(budget.window);
        }
        // Spending stays in order, so that the window's oldest is always at its front.
        let last = self.spent.back().map_or(now, |(at, _)| *at);
        at.max(now).max(last)
    }
}

impl Pacer {
    pub(crate) fn new(budgets: Option<Budgets>) -> Self {
        Self {
            budgets,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn budget(&self, budgets: &Budgets, spend: &Spend, users: Option<u64>) -> Budget {
        match spend {
            Spend::Directory => budgets.directory_for(users),
            Spend::IdentityReports => budgets.identity_reports,
            Spend::UsageReport(_) => budgets.usage_reports,
            Spend::Intune => budgets.intune,
            Spend::ServiceCommunications(i) => {
                budgets.service_communications[(*i).min(budgets.service_communications.len() - 1)]
            }
            Spend::MultiTenant => budgets.multi_tenant,
        }
    }

    /// The tenant's size, which sets its directory budget.
    pub(crate) fn set_tenant_users(&self, users: u64) {
        self.state().tenant_users = Some(users);
    }

    /// Books `costs` (of one request, or of every request in a batch) at the earliest moment
    /// they fit, and says how long to wait until then. A `retry` has already waited what Graph
    /// asked for, so Graph's hold does not delay it twice.
    pub(crate) fn reserve(&self, costs: &[Cost], now: Instant, retry: bool) -> Duration {
        if costs.is_empty() {
            return Duration::ZERO;
        }
        let mut state = self.state();
        let Some(budgets) = &self.budgets else {
            // Without budgets, Graph's own word still holds every request of a count it
            // throttled, not only the one it answered: steps side by side would otherwise
            // keep the count over its limit between each other's retries.
            let held = costs
                .iter()
                .filter_map(|cost| state.held_until.get(&cost.spend))
                .filter(|_| !retry)
                .max()
                .copied()
                .unwrap_or(now);
            return held.saturating_duration_since(now);
        };
        let users = state.tenant_users;
        let mut totals: Vec<(Spend, u64)> = Vec::new();
        for cost in costs {
            match totals.iter_mut().find(|(s, _)| *s == cost.spend) {
                Some((_, units)) => *units += cost.units,
                None => totals.push((cost.spend.clone(), cost.units)),
            }
        }
        let mut at = now;
        for (spend, units) in &totals {
            let budget = self.budget(budgets, spend, users);
            if let Some(held) = state.held_until.get(spend).filter(|_| !retry) {
                at = at.max(*held);
            }
            let window = state.windows.entry(spend.clone()).or_default();
            window.forget_before(now, budget.window + margin(budget.window));
            at = at.max(window.fits_at(now, budget, *units));
        }
        for (spend, units) in totals {
            let window = state.windows.entry(spend).or_default();
            window.sum += units;
            window.spent.push_back((at, units));
        }
        at.saturating_duration_since(now)
    }

    /// Whether `costs` together stay within every budget they spend, so that they can go at
    /// once (in one batch) at all.
    pub(crate) fn fits_at_once(&self, costs: &[Cost]) -> bool {
        let Some(budgets) = &self.budgets else {
            return true;
        };
        let users = self.state().tenant_users;
        let mut totals: HashMap<&Spend, u64> = HashMap::new();
        for cost in costs {
            *totals.entry(&cost.spend).or_default() += cost.units;
        }
        totals
            .into_iter()
            .all(|(spend, units)| units <= self.budget(budgets, spend, users).units)
    }

    /// Takes what Graph said of the count after a request that spent `costs` was answered
    /// `status`: the share of the budget it sees used (`x-ms-throttle-limit-percentage`, sent
    /// past 80 %) and, on a 429, how long to hold every request of those counts
    /// (`Retry-After`). A request that went through ends the hold: Graph let it in.
    pub(crate) fn observe(
        &self,
        costs: &[Cost],
        status: u16,
        used_share: Option<f64>,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let mut state = self.state();
        let users = state.tenant_users;
        for cost in costs {
            match (status, retry_after) {
                (429, Some(wait)) => {
                    let until = now + wait;
                    let held = state.held_until.entry(cost.spend.clone()).or_insert(until);
                    *held = (*held).max(until);
                }
                (200..=399, _) => {
                    state.held_until.remove(&cost.spend);
                }
                _ => {}
            }
        }
        let Some(budgets) = &self.budgets else {
            return;
        };
        let Some(share) = used_share.filter(|s| s.is_finite() && *s > 0.0) else {
            return;
        };
        // Graph names the share of one limit, not which: it is taken as the one this client
        // has used most of, the likeliest to be it.
        let mut likeliest: Option<(f64, &Spend, Budget)> = None;
        for cost in costs {
            let budget = self.budget(budgets, &cost.spend, users);
            let window = state.windows.entry(cost.spend.clone()).or_default();
            window.forget_before(now, budget.window + margin(budget.window));
            let used = window.sum as f64 / budget.units.max(1) as f64;
            if likeliest.as_ref().is_none_or(|(most, _, _)| used > *most) {
                likeliest = Some((used, &cost.spend, budget));
            }
        }
        let Some((_, spend, budget)) = likeliest else {
            return;
        };
        let seen = (share.min(2.0) * budget.units as f64).round() as u64;
        let window = state.windows.entry(spend.clone()).or_default();
        if seen > window.sum {
            // Spent elsewhere, as far as this client knows: counted from now, so it leaves the
            // window no sooner than Graph's does.
            let unseen = seen - window.sum;
            let last = window.spent.back().map_or(now, |(at, _)| *at);
            window.sum += unseen;
            window.spent.push_back((last.max(now), unseen));
        }
    }

    /// How long `requests` requests like `costs` take within the budgets, from empty counts:
    /// for saying before a long read how long it will take.
    pub(crate) fn duration_of(&self, costs: &[Cost], requests: u64) -> Option<(Duration, Budget)> {
        let budgets = self.budgets.as_ref()?;
        let users = self.state().tenant_users;
        costs
            .iter()
            .map(|cost| {
                let budget = self.budget(budgets, &cost.spend, users);
                let total = cost.units.saturating_mul(requests);
                let windows = total.saturating_sub(1) / budget.units.max(1);
                (budget.window.saturating_mul(windows as u32), budget)
            })
            .max_by_key(|(duration, _)| *duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(budgets: Budgets) -> Pacer {
        Pacer::new(Some(budgets))
    }

    fn small() -> Budgets {
        Budgets {
            directory: [Budget::per(10, 10); 3],
            identity_reports: Budget::per(2, 10),
            ..Budgets::microsoft()
        }
    }

    fn sign_ins() -> Vec<Cost> {
        costs("users", "$select=id,signInActivity&$top=120")
    }

    #[test]
    fn requests_cost_what_microsoft_documents() {
        let units = |path: &str, query: &str| {
            costs(path, query)
                .into_iter()
                .find(|c| c.spend == Spend::Directory)
                .map(|c| c.units)
        };
        assert_eq!(units("users", ""), Some(2));
        assert_eq!(units("users", "$select=id"), Some(1));
        assert_eq!(units("users/delta", ""), Some(2));
        assert_eq!(units("subscribedSkus", ""), Some(3));
        assert_eq!(units("groups/g/members", "$select=id"), Some(2));
        assert_eq!(units("groups/g/transitiveMembers", ""), Some(5));
        assert_eq!(units("users/u/licenseDetails", ""), Some(2));
        assert_eq!(units("organization", "$top=1"), Some(1));
        assert_eq!(units("applications", "$top=999"), Some(2));
        assert_eq!(
            sign_ins().into_iter().map(|c| c.spend).collect::<Vec<_>>(),
            vec![Spend::Directory, Spend::IdentityReports]
        );
        assert_eq!(
            costs("reports/getMailboxUsageDetail(period='D7')", "")[0].spend,
            Spend::UsageReport("getmailboxusagedetail".into())
        );
        assert_eq!(
            costs("deviceManagement/managedDevices", "")[0].spend,
            Spend::Intune
        );
        assert_eq!(costs("admin/serviceAnnouncement/issues", "").len(), 2);
        assert!(costs("$batch", "").is_empty());
        assert!(costs("admin/reportSettings", "").is_empty());
    }

    #[test]
    fn requests_within_the_budget_go_at_once_and_the_next_waits_for_the_oldest_to_leave() {
        let pacer = only(small());
        let start = Instant::now();
        assert_eq!(pacer.reserve(&sign_ins(), start, false), Duration::ZERO);
        let second = start + Duration::from_secs(1);
        assert_eq!(pacer.reserve(&sign_ins(), second, false), Duration::ZERO);
        // Two sign-in pages per 10 s: the third waits for the first to leave, with the margin.
        let third = start + Duration::from_secs(2);
        assert_eq!(
            pacer.reserve(&sign_ins(), third, false),
            Duration::from_secs(8) + margin(Duration::from_secs(10))
        );
        // A fourth, asked for at once, queues behind the third.
        let fourth = pacer.reserve(&sign_ins(), third, false);
        assert_eq!(
            fourth,
            Duration::from_secs(9) + margin(Duration::from_secs(10))
        );
    }

    #[test]
    fn resource_units_are_spent_by_cost_and_a_batch_spends_one_per_request() {
        let pacer = only(small());
        let now = Instant::now();
        let members = costs("groups/g/members", "");
        let batch: Vec<Cost> = (0..3).flat_map(|_| members.clone()).collect();
        assert_eq!(
            pacer.reserve(&batch, now, false),
            Duration::ZERO,
            "9 of 10 units"
        );
        assert!(pacer.reserve(&members, now, false) > Duration::from_secs(9));
    }

    #[test]
    fn the_tenant_size_sets_the_directory_budget() {
        let budgets = Budgets {
            directory: [Budget::per(1, 10), Budget::per(2, 10), Budget::per(3, 10)],
            ..Budgets::microsoft()
        };
        let organization = costs("organization", "");
        for (users, fit) in [(None, 1), (Some(49), 1), (Some(50), 2), (Some(501), 3)] {
            let pacer = only(budgets.clone());
            if let Some(users) = users {
                pacer.set_tenant_users(users);
            }
            let now = Instant::now();
            let free = (0..4)
                .take_while(|_| pacer.reserve(&organization, now, false).is_zero())
                .count();
            assert_eq!(free, fit, "{users:?}");
        }
    }

    #[test]
    fn graph_counting_more_than_the_client_slows_it_down() {
        let pacer = only(small());
        let now = Instant::now();
        let organization = costs("organization", "");
        assert!(pacer.reserve(&organization, now, false).is_zero());
        // Graph says 90 % of the 10 units are used, though this client spent one.
        pacer.observe(&organization, 200, Some(0.9), None, now);
        assert!(
            pacer.reserve(&organization, now, false).is_zero(),
            "the tenth"
        );
        assert!(pacer.reserve(&organization, now, false) > Duration::from_secs(9));
        // A share below what the client counted changes nothing.
        let other = only(small());
        for _ in 0..5 {
            assert!(other.reserve(&organization, now, false).is_zero());
        }
        other.observe(&organization, 200, Some(0.1), None, now);
        for _ in 0..5 {
            assert!(other.reserve(&organization, now, false).is_zero());
        }
    }

    #[test]
    fn graphs_share_is_taken_as_the_budget_the_client_used_most_of() {
        let budgets = Budgets {
            service_communications: [Budget::per(2, 10), Budget::per(800, 3_600)],
            ..Budgets::microsoft()
        };
        let pacer = only(budgets);
        let now = Instant::now();
        let health = costs("admin/serviceAnnouncement/issues", "");
        assert!(pacer.reserve(&health, now, false).is_zero());
        // The per-minute budget is full; the hourly one is nowhere near.
        pacer.observe(&health, 200, Some(1.0), None, now);
        let wait = pacer.reserve(&health, now, false);
        assert!(wait > Duration::from_secs(9), "{wait:?}");
        assert!(
            wait <= Duration::from_secs(10) + margin(Duration::from_secs(10)),
            "{wait:?}"
        );
    }

    #[test]
    fn a_retry_after_holds_every_request_of_that_count() {
        let pacer = only(small());
        let now = Instant::now();
        pacer.observe(&sign_ins(), 429, None, Some(Duration::from_secs(3)), now);
        // The retry itself has waited already; anything else of that count waits.
        assert!(pacer.reserve(&sign_ins(), now, true).is_zero());
        assert_eq!(
            pacer.reserve(&sign_ins(), now, false),
            Duration::from_secs(3)
        );
        // Other counts are not held.
        assert!(
            pacer
                .reserve(&costs("deviceManagement/managedDevices", ""), now, false)
                .is_zero()
        );
        // Once Graph lets a request of that count through, the hold is over.
        let pacer = only(Budgets::microsoft());
        pacer.observe(&sign_ins(), 429, None, Some(Duration::from_secs(3)), now);
        pacer.observe(&sign_ins(), 200, None, None, now);
        assert!(pacer.reserve(&sign_ins(), now, false).is_zero());
    }

    #[test]
    fn without_budgets_nothing_waits_but_for_graphs_word() {
        let pacer = Pacer::new(None);
        let now = Instant::now();
        for _ in 0..100 {
            assert!(pacer.reserve(&sign_ins(), now, false).is_zero());
        }
        assert_eq!(pacer.duration_of(&sign_ins(), 1_000), None);
        // A 429's Retry-After holds every request of that count, not only its own retry.
        pacer.observe(&sign_ins(), 429, None, Some(Duration::from_secs(3)), now);
        assert_eq!(
            pacer.reserve(&sign_ins(), now, false),
            Duration::from_secs(3)
        );
        assert!(pacer.reserve(&sign_ins(), now, true).is_zero());
        pacer.observe(&sign_ins(), 200, None, None, now);
        assert!(pacer.reserve(&sign_ins(), now, false).is_zero());
    }

    #[test]
    fn the_time_a_long_read_takes_is_known_before_it_starts() {
        let pacer = only(Budgets::microsoft());
        // 100,000 users at 120 a page: 834 pages, 5 every 10 s.
        let (duration, budget) = pacer.duration_of(&sign_ins(), 834).unwrap();
        assert_eq!(budget, Budget::per(5, 10));
        assert_eq!(duration, Duration::from_secs(1_660));
        let (few, _) = pacer.duration_of(&sign_ins(), 5).unwrap();
        assert!(few.is_zero());
    }
}
