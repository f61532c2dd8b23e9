//! Crash safety: a worker running a sync is killed with SIGKILL at random points, and after each
//! kill the store must open, hold one contact per (tenant, object id), have archived nothing the
//! tenant still has, close the interrupted run as failed once (and only once) its lease has
//! expired, and a next run must leave the contacts as a clean sync leaves a fresh store — on
//! SQLite and PostgreSQL.
//!
//! The kill points come from a seeded generator whose seed is printed; `CRASH_SEED=N` replays a
//! sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use graph_sim::{RunningSimulator, SimConfig, TenantSpec};
use serde_json::Value;
use store::{ContactFilter, ContactRow, Store};
use testkit::StoreKind;

use super::jobs::{add, json, run_of, spawn, store_at, sync};
use super::{m365sync, text};

/// Kills per backend: 15 on SQLite and 15 on PostgreSQL.
const KILLS: usize = 15;
/// The worker's lease: short, so that a killed run is freed quickly.
const LEASE: Duration = Duration::from_secs(1);
/// What a contact is made of: the directory, the licences' names, and the mailbox report.
const DATASETS: &str = "organization,licenses,users,mailboxes";

/// A small seeded generator (splitmix64): the kill points of a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

async fn sim(users: u64) -> RunningSimulator {
    testkit::simulator(SimConfig {
        seed: 29,
        tenants: vec![TenantSpec::with_users(users)],
        // Every request waits a little, so that a sync lasts long enough to be killed midway.
        latency: Duration::from_millis(15),
        ..SimConfig::default()
    })
    .await
}

/// Opens the store as any command does; the harness checks that it still opens after a kill.
async fn open(db: &Path) -> Store {
    let location = db.to_str().unwrap();
    Store::open_keyed(
        location,
        None,
        &store::default_key_file(location),
        store::StoreOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("the store no longer opens after a kill: {e}"))
}

/// Every contact, archived ones too.
async fn contacts(db: &Path) -> Vec<ContactRow> {
    let store = open(db).await;
    let mut all = Vec::new();
    store
        .each_contact(
            &ContactFilter {
                include_archived: true,
                ..ContactFilter::default()
            },
            |c| {
                all.push(c);
                Ok(())
            },
        )
        .await
        .unwrap();
    store.close().await;
    all
}

/// A contact's (tenant, object id).
fn key(contact: &ContactRow) -> (String, String) {
    (
        contact.tenant_id.clone().unwrap_or_default(),
        contact.object_id.clone().unwrap_or_default(),
    )
}

/// The contacts by (tenant, object id), each with every field but the store's own ids, which
/// differ from store to store.
fn comparable(contacts: &[ContactRow]) -> BTreeMap<(String, String), Value> {
    contacts
        .iter()
        .map(|c| {
            let mut fields = serde_json::to_value(c).unwrap();
            let object = fields.as_object_mut().unwrap();
            object.remove("id");
            object.remove("organization_id");
            (key(c), fields)
        })
        .collect()
}

/// What a clean sync of the tenant as it is now leaves in a fresh store, and how long it took.
async fn clean_sync(kind: StoreKind, sim: &RunningSimulator) -> (Vec<ContactRow>, Duration) {
    let (db, _home, _dir) = store_at(kind).await;
    add(&db, sim, DATASETS);
    let start = Instant::now();
    let run = sync(&db, &[]);
    let took = start.elapsed();
    assert_eq!(run["status"], "succeeded", "{run}");
    (contacts(&db).await, took)
}

/// What is wrong with the store after a kill, as sentences; empty when it is consistent.
fn inconsistencies(after: &[ContactRow], tenant_has: &BTreeSet<(String, String)>) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen = BTreeMap::new();
    for contact in after {
        let key = key(contact);
        if contact.object_id.is_none() {
            found.push(format!(
                "contact {} ({}) lost its object id",
                contact.id, contact.display_name
            ));
            continue;
        }
        if let Some(first) = seen.insert(key.clone(), contact.id) {
            found.push(format!(
                "user {key:?} has two contacts: {first} and {}",
                contact.id
            ));
        }
        if tenant_has.contains(&key) && (contact.archived || contact.restorable_until.is_some()) {
            found.push(format!(
                "contact {} ({}) is archived or marked deleted though the tenant still has its user",
                contact.id, contact.display_name
            ));
        }
    }
    found
}

/// How the fields of `after` differ from the clean sync's, as sentences.
fn differences(
    after: &BTreeMap<(String, String), Value>,
    clean: &BTreeMap<(String, String), Value>,
) -> Vec<String> {
    let mut found = Vec::new();
    for (key, want) in clean {
        match after.get(key) {
            None => found.push(format!("user {key:?} has no contact")),
            Some(got) => {
                for (field, value) in want.as_object().unwrap() {
                    let stored = &got[field];
                    if stored != value {
                        found.push(format!(
                            "user {key:?}: {field} is {stored}, a clean sync says {value}"
                        ));
                    }
                }
            }
        }
    }
    for key in after.keys().filter(|k| !clean.contains_key(*k)) {
        found.push(format!(
            "user {key:?} has a contact a clean sync does not make"
        ));
    }
    found
}

/// Kills `worker` with SIGKILL. It is not reaped yet: its pid stays in the process table, as a
/// worker's on another host or in a lost container stays out of sight, so that only its lease
/// can free its run.
fn kill(worker: &mut Child) -> Instant {
    let sent = std::process::Command::new("kill")
        .args(["-KILL", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    Instant::now()
}

/// Adds a user and changes a few others' fields in the simulated tenant.
async fn change_tenant(http: &reqwest::Client, sim: &RunningSimulator, rng: &mut Rng, users: u64) {
    let added = http
        .post(format!("{}/_sim/tenants/0/users", sim.url))
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success(), "{:?}", added.text().await);
    for _ in 0..1 + rng.below(5) {
        let index = rng.below(users);
        let title = format!("Title {}", rng.below(1000));
        let department = format!("Department {}", rng.below(50));
        let patched = http
            .patch(format!("{}/_sim/tenants/0/users/{index}", sim.url))
            .header("content-type", "application/json")
            .body(serde_json::json!({"jobTitle": title, "department": department}).to_string())
            .send()
            .await
            .unwrap();
        assert!(patched.status().is_success(), "{:?}", patched.text().await);
    }
}

async fn killed_syncs_leave_the_store_consistent(kind: StoreKind) {
    let seed = seed();
    eprintln!("crash harness on {kind:?}: seed {seed} (replay with CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let sim = sim(60).await;
    let (clean, took) = clean_sync(kind, &sim).await;
    let mut clean_fields = comparable(&clean);
    let mut tenant_has: BTreeSet<_> = clean.iter().map(key).collect();
    assert_eq!(tenant_has.len(), 60, "the clean sync made every contact");
    let http = reqwest::Client::new();

    let (db, _home, _dir) = store_at(kind).await;
    add(&db, &sim, DATASETS);
    // The mailbox report is kept a day by default: a user added since would rightly lack it
    // until then. Fetched on every run, it lets each run be compared with a clean sync.
    let every_run = m365sync(
        &db,
        &[
            "connection",
            "cache",
            "contoso",
            "--dataset",
            "mailboxes",
            "--lifetime",
            "0",
        ],
        &[],
    );
    assert_eq!(every_run.status.code(), Some(0), "{:?}", text(&every_run));
    let window = u64::try_from(took.as_millis()).unwrap() * 11 / 10;
    let mut problems = Vec::new();
    let mut interrupted = 0;
    for kill_number in 1..=KILLS {
        // A third of the runs list everyone again, as a clean sync does, so that kills also land
        // among the writes of a full listing and not only in the short delta runs.
        let full = rng.below(3) == 0;
        // Half the time the tenant changes first, so that the killed run has users to create
        // and fields to update, not only a resync that finds everything unchanged.
        let changed = rng.below(2) == 0;
        if changed {
            change_tenant(&http, &sim, &mut rng, tenant_has.len() as u64).await;
            let (clean, _) = clean_sync(kind, &sim).await;
            clean_fields = comparable(&clean);
            tenant_has = clean.iter().map(key).collect();
        }
        let mut queue = vec!["sync", "contoso", "--queue", "--json"];
        if full {
            queue.push("--full");
        }
        let queued = m365sync(&db, &queue, &[]);
        assert_eq!(queued.status.code(), Some(0), "{:?}", text(&queued));
        let run_id = json(&queued)["run_id"].as_i64().unwrap();
        let mut worker = spawn(
            &db,
            &["worker", "--lease", "1s", "--poll", "1s", "--until-idle"],
        );
        let after = Duration::from_millis(rng.below(window));
        std::thread::sleep(after);
        let killed_at = kill(&mut worker);
        let at = format!(
            "kill {kill_number} ({kind:?}, seed {seed}, run {run_id}, full {full}, {after:?} in)"
        );

        // The store opens, and holds nothing duplicated or wrongly archived.
        let stored = contacts(&db).await;
        for problem in inconsistencies(&stored, &tenant_has) {
            problems.push(format!("{at}: {problem}"));
        }
        // Another command's start does not end a run whose lease is still valid: a renewal
        // came at most a third of the lease before the kill.
        let first_look = run_of(&db, run_id);
        let looked_within = killed_at.elapsed();
        if first_look["status"] == "failed" && looked_within < LEASE * 2 / 3 {
            problems.push(format!(
                "{at}: the run was closed {looked_within:?} after the kill, before its lease expired: {first_look}"
            ));
        }
        // Once the lease has expired, the next command closes the run as interrupted.
        let expiry = killed_at + LEASE + Duration::from_millis(200);
        std::thread::sleep(expiry.saturating_duration_since(Instant::now()));
        let closed = run_of(&db, run_id);
        match closed["status"].as_str() {
            Some("succeeded") => {}
            Some("failed")
                if closed["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("interrupted")) =>
            {
                interrupted += 1
            }
            // Killed before it claimed the run: the next sync takes it.
            Some("queued") => {}
            _ => problems.push(format!(
                "{at}: the run is not closed as interrupted once its lease expired: {closed}"
            )),
        }
        let _ = worker.wait();

        // The next run completes and leaves what a clean sync leaves.
        let next = m365sync(&db, &["sync", "contoso", "--json"], &[]);
        if next.status.code() != Some(0) || json(&next)["status"] != "succeeded" {
            problems.push(format!(
                "{at}: the next run did not succeed: {:?}",
                text(&next)
            ));
            continue;
        }
        let stored = contacts(&db).await;
        for problem in inconsistencies(&stored, &tenant_has) {
            problems.push(format!("{at}, after the next run: {problem}"));
        }
        for difference in differences(&comparable(&stored), &clean_fields) {
            problems.push(format!("{at}, after the next run: {difference}"));
        }
    }
    eprintln!(
        "crash harness on {kind:?}: {KILLS} kills, {interrupted} runs interrupted midway, {} inconsistencies",
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

testkit::on_both_stores!(killed_syncs_leave_the_store_consistent);
