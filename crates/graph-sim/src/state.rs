//! The simulator's tenants and everything that can change about them while it runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::SKUS;
use crate::people::{Population, SimUser, UserPatch, guid, hash3, mix};
use crate::{SimConfig, TenantInfo};

const TENANT_NAMES: &[&str] = &[
    "Contoso Ltd",
    "Fabrikam Inc",
    "Northwind Traders",
    "Tailspin Toys",
    "Woodgrove Bank",
    "Adventure Works",
    "Litware Inc",
    "Proseware Inc",
    "Wingtip Toys",
    "Alpine Ski House",
    "Coho Winery",
    "Lamna Healthcare",
];

/// A fault injected through the control API, applied to the tenant's Graph requests.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The next `count` Graph requests answer 429, with `Retry-After` when given (e.g. "0.25").
    Throttle {
        count: u32,
        retry_after: Option<String>,
    },
    /// Every `every`th Graph request answers 429 (with `Retry-After` when given) until cleared:
    /// a tenant under steady throttling.
    ThrottleRate {
        every: u32,
        retry_after: Option<String>,
    },
    /// The next `count` Graph requests answer 503.
    Unavailable {
        count: u32,
        retry_after: Option<String>,
    },
    /// Every request for users page `page` (1-based) answers `status` until cleared.
    FailUsersPage { page: u32, status: u16 },
    /// Users page `page` is cut off mid-JSON until cleared.
    MalformedUsersPage { page: u32 },
    /// Every delta token issued so far is forgotten, as after 7 days unused; Graph then answers
    /// in `shape` (410 Gone by default).
    ExpireDeltaTokens {
        #[serde(default)]
        shape: DeltaExpiry,
    },
    /// The next `count` Graph requests wait `millis` before they are answered.
    Latency { count: u32, millis: u64 },
    /// The next `count` Graph requests have their connection dropped mid-answer, as a proxy or
    /// load balancer resetting it would.
    ConnectionReset { count: u32 },
    /// Users page `page` (1-based) answers `status` (429, 503, 504…) the next `times` times it
    /// is asked for, with `Retry-After` when given, and is served again after: a storm that
    /// passes mid-listing.
    UsersPageStorm {
        page: u32,
        status: u16,
        times: u32,
        retry_after: Option<String>,
    },
    /// Users page `page` is cut off mid-body the next `times` times it is served: the headers
    /// promise the whole page, half of it comes, then the connection drops.
    CutUsersPage { page: u32, times: u32 },
    /// Users page `page` comes padded with whitespace to `megabytes` MB until cleared, as an
    /// oversized answer would.
    HugeUsersPage { page: u32, megabytes: u32 },
    /// After `after` more Graph requests, every access token issued until then is refused as
    /// expired (401 InvalidAuthenticationToken); the token endpoint still issues new ones.
    ExpireAccessTokens { after: u32 },
    /// Every link in Graph's answers (`@odata.nextLink`, `@odata.deltaLink`) names `base`
    /// instead of the simulator until cleared, as a proxy rewriting them would.
    ForeignLinks { base: String },
    /// Every changes round of users starts with the user at `index` sent as removed (to the
    /// recycle bin) until cleared, whatever its later entry in the round says: Graph may replay
    /// an object's earlier state within a round, and the later entry is the one that holds.
    ReplayRemovedUser { index: u64 },
}

/// How Graph says that it no longer knows a delta token: both are documented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeltaExpiry {
    /// 410 Gone with a `Location` header naming a fresh round: a synchronization reset.
    #[default]
    Gone,
    /// 400 with the code `syncStateNotFound` and no `Location`: the token expired.
    SyncStateNotFound,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub throttle: u32,
    pub throttle_retry_after: Option<String>,
    pub unavailable: u32,
    pub unavailable_retry_after: Option<String>,
    pub fail_users_page: Option<(u32, u16)>,
    pub malformed_users_page: Option<u32>,
    pub slow: u32,
    pub slow_millis: u64,
    pub throttle_every: Option<(u32, Option<String>)>,
    pub requests_seen: u32,
    pub resets: u32,
    /// (page, status, times left, Retry-After)
    pub users_page_storm: Option<(u32, u16, u32, Option<String>)>,
    /// (page, times left)
    pub cut_users_page: Option<(u32, u32)>,
    /// (page, megabytes)
    pub huge_users_page: Option<(u32, u32)>,
    /// Graph requests left before the tokens issued so far expire.
    pub expire_tokens_after: Option<u32>,
    pub foreign_base: Option<String>,
    pub replay_removed_user: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Overlay {
    /// Users deleted, whether to the recycle bin or for good.
    pub removed: HashSet<u64>,
    /// Of those, the ones deleted for good: no restore brings them back.
    pub purged: HashSet<u64>,
    pub patches: HashMap<u64, UserPatch>,
    pub extra: u64,
    /// When each user added through the control API was made (seconds since 1970).
    pub created: HashMap<u64, i64>,
    pub version: u64,
    /// The version at which each changed, added or removed user last changed: what a delta
    /// round reports.
    pub changed: std::collections::BTreeMap<u64, u64>,
}

/// Requests served, for tests that assert how a client behaved.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct Stats {
    pub token_requests: u64,
    pub graph_requests: u64,
    pub users_pages: u64,
    pub report_requests: u64,
    pub downloads: u64,
    pub throttled: u64,
    /// 429s sent because a request went past one of Microsoft's documented limits.
    pub over_limit: u64,
}

pub struct Tenant {
    pub index: u64,
    pub id: Uuid,
    pub display_name: String,
    pub initial_domain: String,
    pub custom_domain: String,
    pub client_id: Uuid,
    pub client_secret: String,
    pub expired_client_secret: String,
    pub(crate) population: Population,
    pub(crate) base_users: u64,
    pub(crate) roles: RwLock<Vec<String>>,
    pub(crate) concealed: AtomicBool,
    /// Whether the tenant holds Entra ID P1 or P2, which sign-in activity needs.
    pub(crate) premium: AtomicBool,
    /// Delta tokens issued in an older epoch than this are no longer known.
    pub(crate) delta_epoch: AtomicU64,
    /// How the forgotten delta tokens are refused.
    pub(crate) delta_expiry: Mutex<DeltaExpiry>,
    /// Access tokens issued in an older generation than this are refused as expired.
    pub(crate) token_generation: AtomicU64,
    pub(crate) overlay: RwLock<Overlay>,
    pub(crate) faults: Mutex<Faults>,
    /// Management Activity API content types with a started subscription.
    pub(crate) subscriptions: Mutex<HashSet<String>>,
    /// Seats bought of a SKU (by catalogue index), where changed through the control API.
    pub(crate) purchased: RwLock<HashMap<usize, i64>>,
    /// Intune devices changed through the control API, by device number.
    pub(crate) device_changes: RwLock<HashMap<u64, DeviceChange>>,
    /// Certificates uploaded to the tenant's app registration.
    pub(crate) certificates: RwLock<Vec<crate::assertion::AppCertificate>>,
    consumed_cache: Mutex<Option<(u64, Vec<i64>)>>,
}

pub struct SimState {
    pub base_url: String,
    pub download_url: String,
    pub(crate) tenants: Vec<Tenant>,
    pub(crate) signing_key: [u8; 32],
    pub(crate) latency: Duration,
    pub(crate) token_lifetime: Duration,
    /// Days since 1970-01-01 of the reports' refresh date: fixed for the simulator's life, so two
    /// syncs on one day read the same figures.
    pub(crate) report_day: i64,
    /// Seconds since 1970 when the simulator started.
    pub(crate) started_at: i64,
    pub(crate) downloads: Mutex<HashMap<String, (usize, ReportKind, Instant)>>,
    pub(crate) stats: Mutex<Stats>,
    request_counter: AtomicU64,
    /// Set when tenant 0 is a partner and the others its customers.
    pub(crate) partner: Option<crate::partner::Partner>,
    /// Microsoft's limits and the counts against them, when enforced.
    pub(crate) limits: Option<(crate::limits::Limits, crate::limits::Limiter)>,
    /// Where the limits' clock starts.
    started: Instant,
    /// Delegated sign-ins: codes, refresh tokens, consents, the id tokens' key.
    pub(crate) delegated: crate::delegated::Delegated,
    /// Every mailbox's calendar.
    pub(crate) calendars: crate::calendar::Calendars,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ReportKind {
    pub report: Report,
    pub period_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    MailboxUsage,
    ActiveUser,
    AppUser,
    EmailActivity,
}

fn secret_value(h: u64) -> String {
    // Client secret Values are 40 characters and carry a '~' at position 4.
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.~";
    let mut out = String::with_capacity(40);
    let mut x = h;
    for i in 0..40 {
        x = mix(x ^ i);
        out.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
    }
    out.replace_range(3..5, "8Q");
    out.replace_range(5..6, "~");
    out
}

/// The permissions a tenant's app starts with: a partner's also lists its GDAP customers.
fn roles_of(spec: &crate::TenantSpec, partner: bool) -> Vec<String> {
    let mut roles = spec.roles.clone();
    if partner && !roles.iter().any(|r| r == crate::partner::GDAP_ROLE) {
        roles.push(crate::partner::GDAP_ROLE.to_string());
    }
    roles
}

impl SimState {
    pub(crate) fn new(config: &SimConfig, base_url: String, download_url: String) -> Self {
        let seed = config.seed;
        let tenants = config
            .tenants
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let i = i as u64;
                let base_name = TENANT_NAMES[(i as usize) % TENANT_NAMES.len()];
                let round = i / TENANT_NAMES.len() as u64;
                let display_name = if round == 0 {
                    base_name.to_string()
                } else {
                    format!("{base_name} {}", round + 1)
                };
                let slug: String = crate::people::ascii_alias(
                    base_name.split_whitespace().next().unwrap_or("tenant"),
                );
                let slug = if round == 0 {
                    slug
                } else {
                    format!("{slug}{}", round + 1)
                };
                let initial_domain = format!("{slug}.onmicrosoft.com");
                let custom_domain = format!("{slug}.example");
                Tenant {
                    index: i,
                    id: guid(hash3(seed, i, 1), hash3(seed, i, 2)),
                    display_name,
                    client_id: guid(hash3(seed, i, 3), hash3(seed, i, 4)),
                    client_secret: secret_value(hash3(seed, i, 5)),
                    expired_client_secret: secret_value(hash3(seed, i, 6)),
                    population: Population::new(
                        seed,
                        i,
                        initial_domain.clone(),
                        custom_domain.clone(),
                    ),
                    initial_domain,
                    custom_domain,
                    base_users: spec.users,
                    roles: RwLock::new(roles_of(spec, config.partner && i == 0)),
                    concealed: AtomicBool::new(spec.concealed_names),
                    premium: AtomicBool::new(true),
                    delta_epoch: AtomicU64::new(0),
                    delta_expiry: Mutex::new(DeltaExpiry::Gone),
                    token_generation: AtomicU64::new(0),
                    overlay: RwLock::new(Overlay::default()),
                    faults: Mutex::new(Faults::default()),
                    consumed_cache: Mutex::new(None),
                    subscriptions: Mutex::new(HashSet::new()),
                    certificates: RwLock::new(Vec::new()),
                    purchased: RwLock::new(HashMap::new()),
                    device_changes: RwLock::new(HashMap::new()),
                }
            })
            .collect();
        let mut signing_key = [0u8; 32];
        for (i, chunk) in signing_key.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&hash3(seed, 0x7e4, i as u64 ^ nanos()).to_be_bytes());
        }
        let now_days = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(20_000) as i64;
        Self {
            base_url,
            download_url,
            tenants,
            signing_key,
            latency: config.latency,
            token_lifetime: config.token_lifetime,
            report_day: now_days - 1,
            started_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            downloads: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            request_counter: AtomicU64::new(0),
            partner: config
                .partner
                .then(|| crate::partner::Partner::of(config.tenants.len() as u64)),
            limits: config
                .limits
                .clone()
                .map(|limits| (limits, crate::limits::Limiter::default())),
            started: Instant::now(),
            delegated: Default::default(),
            calendars: Default::default(),
        }
    }

    /// Time since the simulator started, by which the limits count.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn tenant_infos(&self) -> Vec<TenantInfo> {
        self.tenants
            .iter()
            .map(|t| TenantInfo {
                tenant_id: t.id.to_string(),
                display_name: t.display_name.clone(),
                domain: t.custom_domain.clone(),
                initial_domain: t.initial_domain.clone(),
                client_id: t.client_id.to_string(),
                client_secret: t.client_secret.clone(),
                expired_client_secret: t.expired_client_secret.clone(),
                users: t.user_count(),
            })
            .collect()
    }

    pub fn stats(&self) -> Stats {
        *lock(&self.stats)
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
    }

    /// A tenant by id, verified domain or position.
    pub fn tenant(&self, key: &str) -> Option<&Tenant> {
        let key = key.trim().to_ascii_lowercase();
        self.tenants.iter().find(|t| {
            t.id.to_string() == key
                || t.initial_domain == key
                || t.custom_domain == key
                || t.index.to_string() == key
        })
    }

    pub(crate) fn tenant_position(&self, tenant: &Tenant) -> usize {
        tenant.index as usize
    }

    pub(crate) fn request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        guid(mix(n ^ 0x4e9), mix(n ^ nanos())).to_string()
    }

    /// Applies a control-API change. Returns false when the tenant does not exist.
    pub fn set_roles(&self, tenant: &str, roles: Vec<String>) -> bool {
        self.tenant(tenant)
            .map(|t| *write(&t.roles) = roles)
            .is_some()
    }

    /// Gives the tenant Entra ID P1/P2 or takes it away (sign-in activity needs it).
    pub fn set_premium(&self, tenant: &str, premium: bool) -> bool {
        self.tenant(tenant)
            .map(|t| t.premium.store(premium, Ordering::SeqCst))
            .is_some()
    }

    pub fn set_concealed(&self, tenant: &str, concealed: bool) -> bool {
        self.tenant(tenant)
            .map(|t| t.concealed.store(concealed, Ordering::SeqCst))
            .is_some()
    }

    /// Makes a key and certificate and registers the certificate on the tenant's app, as an admin
    /// uploads one; valid from `from_days` to `to_days` days from now (negative: in the past).
    pub fn add_certificate(
        &self,
        tenant: &str,
        from_days: i64,
        to_days: i64,
    ) -> Option<Result<CertificateIssued, String>> {
        let t = self.tenant(tenant)?;
        let now = now_unix();
        let made = crate::assertion::generate(
            &format!("m365sync {}", t.initial_domain),
            now + from_days * 86_400,
            now + to_days * 86_400,
        );
        Some(made.map(|(registered, private_key_pem, certificate_pem)| {
            let issued = CertificateIssued {
                key_id: registered.key_id.to_string(),
                thumbprint: registered.thumbprint(),
                end_date_time: registered.key_credential()["endDateTime"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                private_key_pem,
                certificate_pem,
            };
            write(&t.certificates).push(registered);
            issued
        }))
    }

    /// Sets how many seats of a SKU (by part number) the tenant has bought.
    pub fn set_purchased(
        &self,
        tenant: &str,
        part_number: &str,
        enabled: i64,
    ) -> Result<(), String> {
        let t = self
            .tenant(tenant)
            .ok_or_else(|| format!("no tenant '{tenant}'"))?;
        let index = t
            .population
            .licensing
            .skus()
            .into_iter()
            .find(|i| SKUS[*i].part_number.eq_ignore_ascii_case(part_number))
            .ok_or_else(|| format!("tenant '{tenant}' has no SKU {part_number}"))?;
        if enabled < 0 {
            return Err("enabled must be 0 or more".into());
        }
        write(&t.purchased).insert(index, enabled);
        Ok(())
    }

    /// Retires an Intune device or changes its compliance, by its managed device id.
    pub fn change_device(
        &self,
        tenant: &str,
        device_id: &str,
        change: DeviceChange,
    ) -> Result<(), String> {
        let t = self
            .tenant(tenant)
            .ok_or_else(|| format!("no tenant '{tenant}'"))?;
        let number = crate::inventory::device_number(t, device_id)
            .ok_or_else(|| format!("no managed device {device_id}"))?;
        let mut changes = write(&t.device_changes);
        let entry = changes.entry(number).or_default();
        entry.removed |= change.removed;
        if change.compliance_state.is_some() {
            entry.compliance_state = change.compliance_state;
        }
        Ok(())
    }

    /// Removes a certificate from the tenant's app; false when there is no such key.
    pub fn remove_certificate(&self, tenant: &Tenant, key_id: &str) -> bool {
        let mut certificates = write(&tenant.certificates);
        let before = certificates.len();
        certificates.retain(|c| !c.key_id.to_string().eq_ignore_ascii_case(key_id));
        certificates.len() != before
    }

    /// Deletes a user as an admin does: to Entra's recycle bin, whence it can be restored. False
    /// when there is no such user (or it is already deleted).
    pub fn remove_user(&self, tenant: &str, index: u64) -> bool {
        self.tenant(tenant)
            .is_some_and(|t| t.user(index).is_some() && t.edit(index, |o| o.removed.insert(index)))
    }

    /// Deletes a user for good, or empties it from the recycle bin: it cannot be restored.
    pub fn purge_user(&self, tenant: &str, index: u64) -> Result<(), String> {
        let t = self
            .tenant(tenant)
            .ok_or_else(|| format!("no tenant '{tenant}': use its id, a domain or its position"))?;
        {
            let o = read(&t.overlay);
            if index >= t.base_users + o.extra {
                return Err(format!("no user at index {index}"));
            }
            if o.purged.contains(&index) {
                return Err(format!("user {index} is already deleted for good"));
            }
        }
        t.edit(index, |o| {
            o.removed.insert(index);
            o.purged.insert(index)
        });
        Ok(())
    }

    /// Brings a user back from the recycle bin, with the same id and everything it had.
    pub fn restore_user(&self, tenant: &str, index: u64) -> Result<(), String> {
        let t = self
            .tenant(tenant)
            .ok_or_else(|| format!("no tenant '{tenant}': use its id, a domain or its position"))?;
        {
            let o = read(&t.overlay);
            if index >= t.base_users + o.extra {
                return Err(format!("no user at index {index}"));
            }
            if o.purged.contains(&index) {
                return Err(format!(
                    "user {index} was deleted for good and cannot be restored; add a new user instead"
                ));
            }
            if !o.removed.contains(&index) {
                return Err(format!(
                    "user {index} is not deleted; delete it first to restore it"
                ));
            }
        }
        t.edit(index, |o| o.removed.remove(&index));
        Ok(())
    }

    pub fn patch_user(&self, tenant: &str, index: u64, patch: UserPatch) -> bool {
        self.tenant(tenant).is_some_and(|t| {
            t.user(index).is_some()
                && t.edit(index, |o| {
                    let merged = o.patches.entry(index).or_default();
                    merge_patch(merged, patch);
                    true
                })
        })
    }

    /// Adds a user at the end of the tenant; returns its index and id.
    pub fn add_user(&self, tenant: &str) -> Option<(u64, Uuid)> {
        self.add_user_with(tenant, UserPatch::default())
            .map(|(index, user)| (index, user.id))
    }

    /// Adds a user at the end of the tenant, generated and then changed by `fields` (as a
    /// PATCH would change it); returns its index and the user as Graph shows it.
    pub fn add_user_with(&self, tenant: &str, fields: UserPatch) -> Option<(u64, SimUser)> {
        let t = self.tenant(tenant)?;
        let index = {
            let mut o = write(&t.overlay);
            let index = t.base_users + o.extra;
            o.extra += 1;
            o.version += 1;
            let version = o.version;
            o.changed.insert(index, version);
            o.patches.insert(index, fields);
            o.created.insert(index, now_unix());
            index
        };
        let user = t.user(index)?;
        Some((index, user))
    }

    pub fn inject(&self, tenant: &str, fault: Fault) -> bool {
        let Some(t) = self.tenant(tenant) else {
            return false;
        };
        let mut f = lock(&t.faults);
        match fault {
            Fault::Throttle { count, retry_after } => {
                f.throttle = count;
                f.throttle_retry_after = retry_after;
            }
            Fault::Unavailable { count, retry_after } => {
                f.unavailable = count;
                f.unavailable_retry_after = retry_after;
            }
            Fault::FailUsersPage { page, status } => f.fail_users_page = Some((page, status)),
            Fault::MalformedUsersPage { page } => f.malformed_users_page = Some(page),
            Fault::ExpireDeltaTokens { shape } => {
                *lock(&t.delta_expiry) = shape;
                t.delta_epoch.fetch_add(1, Ordering::SeqCst);
            }
            Fault::ThrottleRate { every, retry_after } => {
                f.throttle_every = (every > 0).then_some((every, retry_after));
                f.requests_seen = 0;
            }
            Fault::Latency { count, millis } => {
                f.slow = count;
                f.slow_millis = millis;
            }
            Fault::ConnectionReset { count } => f.resets = count,
            Fault::UsersPageStorm {
                page,
                status,
                times,
                retry_after,
            } => f.users_page_storm = Some((page, status, times, retry_after)),
            Fault::CutUsersPage { page, times } => f.cut_users_page = Some((page, times)),
            Fault::HugeUsersPage { page, megabytes } => {
                f.huge_users_page = Some((page, megabytes));
            }
            Fault::ExpireAccessTokens { after } => f.expire_tokens_after = Some(after),
            Fault::ForeignLinks { base } => {
                f.foreign_base = Some(base.trim_end_matches('/').to_string());
            }
            Fault::ReplayRemovedUser { index } => f.replay_removed_user = Some(index),
        }
        true
    }

    pub fn clear_faults(&self, tenant: &str) -> bool {
        self.tenant(tenant)
            .map(|t| *lock(&t.faults) = Faults::default())
            .is_some()
    }
}

fn merge_patch(into: &mut UserPatch, patch: UserPatch) {
    into.display_name = patch.display_name.or(into.display_name.take());
    into.job_title = patch.job_title.or(into.job_title.take());
    into.department = patch.department.or(into.department.take());
    into.account_enabled = patch.account_enabled.or(into.account_enabled);
    into.mobile_phone = patch.mobile_phone.or(into.mobile_phone.take());
    // A new primary address brings its own mail: an older patched mail no longer holds.
    let new_primary = patch
        .proxy_addresses
        .as_ref()
        .is_some_and(|a| a.iter().any(|a| a.starts_with("SMTP:")));
    if new_primary && patch.mail.is_none() {
        into.mail = None;
    }
    into.proxy_addresses = patch.proxy_addresses.or(into.proxy_addresses.take());
    into.mail = patch.mail.or(into.mail.take());
    into.licenses = patch.licenses.or(into.licenses.take());
}

impl Tenant {
    /// Counts one Graph request towards an `ExpireAccessTokens` fault, then says whether a token
    /// of `generation` has expired.
    pub(crate) fn token_expired(&self, generation: u64) -> bool {
        {
            let mut faults = lock(&self.faults);
            match faults.expire_tokens_after {
                Some(0) => {
                    faults.expire_tokens_after = None;
                    self.token_generation.fetch_add(1, Ordering::SeqCst);
                }
                Some(left) => faults.expire_tokens_after = Some(left - 1),
                None => {}
            }
        }
        generation < self.token_generation.load(Ordering::SeqCst)
    }

    pub fn user_count(&self) -> u64 {
        let o = read(&self.overlay);
        self.base_users + o.extra
            - o.removed
                .iter()
                .filter(|i| **i < self.base_users + o.extra)
                .count() as u64
    }

    /// How many user positions exist (removed ones included): the range to ask `user` about.
    pub fn index_space(&self) -> u64 {
        self.base_users + read(&self.overlay).extra
    }

    fn edit(&self, index: u64, f: impl FnOnce(&mut Overlay) -> bool) -> bool {
        let mut o = write(&self.overlay);
        let changed = f(&mut o);
        o.version += 1;
        let version = o.version;
        o.changed.insert(index, version);
        changed
    }

    /// Each SKU the tenant holds, as (catalogue index, consumed units, enabled units).
    pub(crate) fn seats(&self) -> Vec<(usize, i64, i64)> {
        let consumed = self.consumed_units();
        self.population
            .licensing
            .skus()
            .into_iter()
            .map(|i| {
                let used = consumed[i];
                let bought = read(&self.purchased).get(&i).copied();
                let enabled = bought.unwrap_or(match SKUS[i].part_number {
                    "FLOW_FREE" => 10_000,
                    "POWER_BI_STANDARD" => 1_000_000,
                    _ => used + 2 + used / 20,
                });
                (i, used, enabled)
            })
            .collect()
    }

    /// What the tenant holds of each SKU, as (part number, consumed, enabled): for tests that
    /// compare a client's reading with the simulator's truth.
    pub fn subscribed_skus(&self) -> Vec<(String, i64, i64)> {
        self.seats()
            .into_iter()
            .map(|(i, used, enabled)| (SKUS[i].part_number.to_string(), used, enabled))
            .collect()
    }

    /// The version at which a user last changed (0 when never).
    pub(crate) fn changed_at(&self, index: u64) -> u64 {
        read(&self.overlay)
            .changed
            .get(&index)
            .copied()
            .unwrap_or(0)
    }

    /// How many Management Activity API subscriptions are started.
    pub fn subscription_count(&self) -> usize {
        lock(&self.subscriptions).len()
    }

    /// The tenant's change counter: a delta token remembers it.
    pub(crate) fn version(&self) -> u64 {
        read(&self.overlay).version
    }

    /// Users changed after `version`, as (index, user or `None` when removed), in index order.
    pub(crate) fn changes_since(&self, version: u64) -> Vec<(u64, Option<SimUser>)> {
        let indexes: Vec<u64> = read(&self.overlay)
            .changed
            .iter()
            .filter(|(_, v)| **v > version)
            .map(|(i, _)| *i)
            .collect();
        indexes.into_iter().map(|i| (i, self.user(i))).collect()
    }

    /// Whether the user at `index` was deleted for good (not only to the recycle bin).
    pub(crate) fn purged(&self, index: u64) -> bool {
        read(&self.overlay).purged.contains(&index)
    }

    /// The user at `index` as it is now, or `None` if it was removed or never existed.
    pub fn user(&self, index: u64) -> Option<SimUser> {
        let o = read(&self.overlay);
        if index >= self.base_users + o.extra || o.removed.contains(&index) {
            return None;
        }
        Some(self.materialise(&o, index))
    }

    /// The generated user at `index` with what the control API changed about it.
    fn materialise(&self, o: &Overlay, index: u64) -> SimUser {
        let mut user = self.population.user(index);
        if let Some(created) = o.created.get(&index) {
            user.created = *created;
        }
        if let Some(patch) = o.patches.get(&index) {
            user.apply(patch);
        }
        user
    }

    /// Users from `start` on, skipping removed ones: up to `limit` of them, and the next index.
    pub(crate) fn users_from(&self, start: u64, limit: usize) -> (Vec<SimUser>, Option<u64>) {
        let o = read(&self.overlay);
        let end = self.base_users + o.extra;
        let mut users = Vec::with_capacity(limit);
        let mut index = start;
        while index < end && users.len() < limit {
            if !o.removed.contains(&index) {
                users.push(self.materialise(&o, index));
            }
            index += 1;
        }
        (users, (index < end).then_some(index))
    }

    /// Consumed units per SKU of the catalogue, counted over every user: cheap enough for a
    /// million users, and cached until the tenant changes.
    pub(crate) fn consumed_units(&self) -> Vec<i64> {
        let o = read(&self.overlay);
        let mut cache = lock(&self.consumed_cache);
        if let Some((version, counts)) = cache.as_ref()
            && *version == o.version
        {
            return counts.clone();
        }
        let mut counts = vec![0i64; SKUS.len()];
        for index in 0..self.base_users + o.extra {
            if o.removed.contains(&index) {
                continue;
            }
            let licenses = match o.patches.get(&index) {
                Some(patch) if patch.licenses.is_some() => {
                    let mut user = self.population.user(index);
                    user.apply(patch);
                    user.licenses
                }
                _ => self.population.licenses_of(index),
            };
            for (sku, _) in licenses {
                counts[sku] += 1;
            }
        }
        *cache = Some((o.version, counts.clone()));
        counts
    }
}

fn nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// A poisoned lock only means another request panicked; the data is still usable for a simulator.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil_date`).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since 1970 of `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (UTC).
pub(crate) fn parse_utc(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.split('.').next().unwrap_or(p).parse().ok())
        .collect::<Option<_>>()?;
    let [year, month, day] = d[..] else {
        return None;
    };
    let (hour, minute, second) = match t[..] {
        [h, m] => (h, m, 0),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
/// What the control API changed about an Intune device.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceChange {
    /// Retired or deleted from Intune: no longer listed.
    #[serde(default)]
    pub removed: bool,
    /// `compliant`, `noncompliant`, `inGracePeriod`, …
    #[serde(default)]
    pub compliance_state: Option<String>,
}

/// A certificate made for a tenant's app, with the key a client signs with.
#[derive(Debug, Serialize)]
pub struct CertificateIssued {
    pub key_id: String,
    /// SHA-1, upper-case hex, as the Entra admin center shows it.
    pub thumbprint: String,
    pub end_date_time: String,
    pub private_key_pem: String,
    pub certificate_pem: String,
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn civil_date(days: i64) -> String {
    let (year, month, day) = civil(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Year, month and day of a count of days since 1970-01-01.
pub(crate) fn civil(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8, day as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form_the_activity_api_takes() {
        assert_eq!(parse_utc("1970-01-02"), Some(86_400));
        assert_eq!(
            parse_utc("2025-11-23T10:30"),
            Some(20_415 * 86_400 + 10 * 3600 + 1800)
        );
        assert_eq!(
            parse_utc("2025-11-23T10:30:15Z"),
            Some(20_415 * 86_400 + 10 * 3600 + 1815)
        );
        assert_eq!(parse_utc("2025-13-01"), None);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_415), "2025-11-23");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }

    #[test]
    fn secrets_look_like_entra_values() {
        let s = secret_value(7);
        assert_eq!(s.len(), 40);
        assert_eq!(&s[3..6], "8Q~");
    }
}
