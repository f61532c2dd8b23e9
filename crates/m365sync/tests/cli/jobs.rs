//! Runs that happen on their own, as a person sets them up: schedules, caches, the queue, a
//! worker, `serve`'s scheduler, and cancelling — on SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use graph_sim::{RunningSimulator, SimConfig, TenantSpec};
use serde_json::Value;
use testkit::{StoreHome, StoreKind};

use super::{add_with, m365sync, text};

pub(super) fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(output)))
}

/// A store of `kind` the binary is pointed at, and where it lives.
pub(super) async fn store_at(kind: StoreKind) -> (PathBuf, StoreHome, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (store, home) = testkit::store_of(kind).await;
    store.close().await;
    let db = match &home {
        StoreHome::Postgres(database) => PathBuf::from(&database.url),
        StoreHome::Sqlite(_) => dir.path().join("store.db"),
    };
    (db, home, dir)
}

async fn sim(users: u64, latency: Duration) -> RunningSimulator {
    testkit::simulator(SimConfig {
        seed: 23,
        tenants: vec![TenantSpec::with_users(users)],
        latency,
        ..SimConfig::default()
    })
    .await
}

pub(super) fn add(db: &Path, sim: &RunningSimulator, datasets: &str) {
    let secret = sim.tenants()[0].client_secret.clone();
    let added = add_with(db, sim, "contoso", &secret, &["--datasets", datasets]);
    assert!(added.status.success(), "{:?}", text(&added));
}

fn step<'a>(run: &'a Value, dataset: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dataset"] == dataset)
        .unwrap_or_else(|| panic!("no {dataset} step: {run}"))
}

pub(super) fn sync(db: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["sync", "contoso", "--json"];
    args.extend_from_slice(extra);
    let synced = m365sync(db, &args, &[]);
    assert_eq!(synced.status.code(), Some(0), "{:?}", text(&synced));
    json(&synced)
}

pub(super) fn run_of(db: &Path, id: i64) -> Value {
    let runs = json(&m365sync(db, &["runs", "--json"], &[]));
    runs.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no run {id}: {runs}"))
}

/// Waits until run `id` satisfies `done`, for at most a minute.
fn wait_for_run(db: &Path, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let run = run_of(db, id);
        if done(&run) {
            return run;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run {id} never became {what}: {run}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(super) fn spawn(db: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("M365SYNC_SECRET_KEY")
        .env_remove("M365SYNC_PUBLIC_NAME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends SIGTERM, as a service manager stopping a process does.
fn signal(child: &Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Sends SIGTERM and waits for the process to end.
fn terminate(child: Child) -> Output {
    signal(&child);
    wait_out(child)
}

/// Waits for a process to end, for at most a minute.
fn wait_out(child: Child) -> Output {
    let start = Instant::now();
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("still running a minute after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

async fn schedules_are_set_shown_and_checked(kind: StoreKind) {
    let (db, _home, _dir) = store_at(kind).await;
    let sim = sim(5, Duration::ZERO).await;
    add(&db, &sim, "organization,users");

    let set = m365sync(
        &db,
        &["connection", "schedule", "contoso", "--every", "1h"],
        &[],
    );
    assert_eq!(set.status.code(), Some(0), "{:?}", text(&set));
    assert!(
        text(&set).0.contains("syncs every 1h; next run"),
        "{:?}",
        text(&set)
    );
    let listed = json(&m365sync(&db, &["connection", "list", "--json"], &[]));
    assert_eq!(listed[0]["schedule"], "every 1h");
    let next = listed[0]["next_run_at"].as_i64().unwrap();
    let in_an_hour = store::now_millis() + 3_600_000;
    assert!((in_an_hour - next).abs() < 60_000, "{listed}");

    let cron = m365sync(
        &db,
        &[
            "connection",
            "schedule",
            "contoso",
            "--cron",
            "0 */4 * * *",
            "--time-zone",
            "Europe/Paris",
        ],
        &[],
    );
    assert_eq!(cron.status.code(), Some(0), "{:?}", text(&cron));
    let listed = m365sync(&db, &["connection", "list"], &[]);
    assert!(
        text(&listed)
            .0
            .contains("syncs cron \"0 */4 * * *\" Europe/Paris, next 20"),
        "{:?}",
        text(&listed)
    );

    for (args, says) in [
        (&["--every", "4m"][..], "shorter than the shortest schedule"),
        (&["--every", "soon"], "not a length of time"),
        (&["--cron", "0 */4 * *"], "five fields"),
        (&["--cron", "* * * * *"], "more often than every 5m"),
        (
            &["--cron", "0 */4 * * *", "--time-zone", "Mars/Olympus"],
            "not a time zone",
        ),
    ] {
        let mut all = vec!["connection", "schedule", "contoso"];
        all.extend_from_slice(args);
        let refused = m365sync(&db, &all, &[]);
        let (_, err) = text(&refused);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let unknown = m365sync(
        &db,
        &["connection", "schedule", "nosuch", "--every", "1h"],
        &[],
    );
    assert_ne!(unknown.status.code(), Some(0));
    assert!(text(&unknown).1.contains("nosuch"));

    let off = m365sync(&db, &["connection", "schedule", "contoso", "--off"], &[]);
    assert_eq!(off.status.code(), Some(0), "{:?}", text(&off));
    let listed = json(&m365sync(&db, &["connection", "list", "--json"], &[]));
    assert_eq!(listed[0]["schedule"], Value::Null);
    assert!(
        text(&m365sync(&db, &["connection", "list"], &[]))
            .0
            .contains("syncs when asked")
    );
}

async fn cached_datasets_are_skipped_until_stale_full_or_cleared(kind: StoreKind) {
    let (db, _home, _dir) = store_at(kind).await;
    let sim = sim(8, Duration::ZERO).await;
    add(&db, &sim, "organization,users,mailboxes,service_health");

    let first = sync(&db, &[]);
    for dataset in ["users", "mailboxes", "service_health"] {
        assert_eq!(step(&first, dataset)["status"], "succeeded", "{first}");
    }
    // Fetched a moment ago: the daily report and service health wait; the directory does not.
    let second = sync(&db, &[]);
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(step(&second, "users")["status"], "succeeded");
    for dataset in ["mailboxes", "service_health"] {
        let skipped = step(&second, dataset);
        assert_eq!(skipped["status"], "skipped", "{second}");
        let message = skipped["message"].as_str().unwrap();
        assert!(message.contains("fetched 20"), "{message}");
        assert!(message.contains("refreshes after"), "{message}");
        assert!(
            message.contains(&format!("m365sync cache clear contoso --dataset {dataset}")),
            "{message}"
        );
    }
    assert!(
        step(&second, "mailboxes")["message"]
            .as_str()
            .unwrap()
            .contains("kept 24h")
    );
    // A clean run fetches everything.
    let full = sync(&db, &["--full"]);
    assert_eq!(step(&full, "mailboxes")["status"], "succeeded", "{full}");
    assert_eq!(step(&full, "service_health")["status"], "succeeded");

    // Cleared for one dataset: that one is fetched, the other still waits.
    let cleared = m365sync(
        &db,
        &["cache", "clear", "contoso", "--dataset", "mailboxes"],
        &[],
    );
    assert_eq!(cleared.status.code(), Some(0), "{:?}", text(&cleared));
    assert!(text(&cleared).0.contains("1 fetch(es) forgotten"));
    let after = sync(&db, &[]);
    assert_eq!(step(&after, "mailboxes")["status"], "succeeded", "{after}");
    assert_eq!(step(&after, "service_health")["status"], "skipped");
    // Cleared whole.
    assert!(
        m365sync(&db, &["cache", "clear", "contoso"], &[])
            .status
            .success()
    );
    let after = sync(&db, &[]);
    assert_eq!(
        step(&after, "service_health")["status"],
        "succeeded",
        "{after}"
    );

    // A lifetime of 0 fetches on every run; the organisation has no cache to set.
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
    assert_eq!(step(&sync(&db, &[]), "mailboxes")["status"], "succeeded");
    let shown = m365sync(&db, &["connection", "cache", "contoso"], &[]);
    let (out, _) = text(&shown);
    assert!(
        out.contains("mailboxes          every run (set for this connection)"),
        "{out}"
    );
    assert!(out.contains("usage              24h"), "{out}");
    for (args, says) in [
        (
            &["--dataset", "organization", "--lifetime", "1h"][..],
            "no cache",
        ),
        (
            &["--dataset", "mailboxes", "--lifetime", "forever"],
            "not a length of time",
        ),
        (
            &["--dataset", "nothing", "--lifetime", "1h"],
            "not a dataset",
        ),
    ] {
        let mut all = vec!["connection", "cache", "contoso"];
        all.extend_from_slice(args);
        let refused = m365sync(&db, &all, &[]);
        let (_, err) = text(&refused);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

async fn a_worker_runs_the_queue_and_cancel_stops_queued_runs(kind: StoreKind) {
    let (db, _home, _dir) = store_at(kind).await;
    let sim = sim(12, Duration::ZERO).await;
    add(&db, &sim, "organization,users");

    let queued = json(&m365sync(
        &db,
        &["sync", "contoso", "--queue", "--json"],
        &[],
    ));
    assert_eq!(queued["joined"], false, "{queued}");
    let run = queued["run_id"].as_i64().unwrap();
    assert_eq!(run_of(&db, run)["status"], "queued");
    let again = m365sync(&db, &["sync", "contoso", "--queue"], &[]);
    assert!(
        text(&again)
            .0
            .contains(&format!("Run {run} was already queued")),
        "{:?}",
        text(&again)
    );

    let worked = m365sync(&db, &["worker", "--until-idle"], &[]);
    assert_eq!(worked.status.code(), Some(0), "{:?}", text(&worked));
    assert!(
        text(&worked).0.contains(&format!("Run {run} succeeded")),
        "{:?}",
        text(&worked)
    );
    let done = run_of(&db, run);
    assert_eq!(done["status"], "succeeded", "{done}");
    let exported = json(&m365sync(&db, &["export", "contacts"], &[]));
    assert_eq!(exported.as_array().unwrap().len(), 12);

    let ended = m365sync(&db, &["cancel", &run.to_string()], &[]);
    assert_eq!(ended.status.code(), Some(1), "{:?}", text(&ended));
    assert!(
        text(&ended).1.contains("already ended"),
        "{:?}",
        text(&ended)
    );
    let missing = m365sync(&db, &["cancel", "9999"], &[]);
    assert_ne!(missing.status.code(), Some(0));
    assert!(text(&missing).1.contains("no run 9999"));

    let queued = json(&m365sync(
        &db,
        &["sync", "contoso", "--queue", "--json"],
        &[],
    ));
    let doomed = queued["run_id"].as_i64().unwrap();
    let cancelled = m365sync(&db, &["cancel", &doomed.to_string()], &[]);
    assert_eq!(cancelled.status.code(), Some(0), "{:?}", text(&cancelled));
    assert!(text(&cancelled).0.contains("had not started"));
    assert_eq!(run_of(&db, doomed)["status"], "cancelled");
    let idle = m365sync(&db, &["worker", "--until-idle"], &[]);
    assert_eq!(idle.status.code(), Some(0));
    assert!(!text(&idle).0.contains("Run "), "{:?}", text(&idle));
}

async fn a_running_run_stops_at_a_page_boundary_when_cancelled(kind: StoreKind) {
    let (db, _home, _dir) = store_at(kind).await;
    // Every Graph request waits, so that the run is still going when it is cancelled.
    let sim = sim(40, Duration::from_millis(300)).await;
    add(
        &db,
        &sim,
        "organization,licenses,users,domains,groups,applications,devices,directory_roles",
    );
    let worker = spawn(&db, &["worker", "--lease", "1s", "--poll", "1s"]);
    let queued = json(&m365sync(
        &db,
        &["sync", "contoso", "--queue", "--json"],
        &[],
    ));
    let run = queued["run_id"].as_i64().unwrap();
    wait_for_run(&db, run, "running", |r| r["status"] == "running");
    let cancel = m365sync(&db, &["cancel", &run.to_string()], &[]);
    assert_eq!(cancel.status.code(), Some(0), "{:?}", text(&cancel));
    assert!(text(&cancel).0.contains("next page boundary"));
    let stopped = wait_for_run(&db, run, "cancelled", |r| r["status"] != "running");
    assert_eq!(stopped["status"], "cancelled", "{stopped}");
    let steps = stopped["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["status"] == "cancelled"),
        "the steps after the cancel did not run: {stopped}"
    );
    // SIGTERM with nothing going stops the worker cleanly.
    let ended = terminate(worker);
    assert_eq!(ended.status.code(), Some(0), "{:?}", text(&ended));
}

async fn serve_queues_scheduled_runs_and_runs_them(kind: StoreKind) {
    let (db, _home, _dir) = store_at(kind).await;
    let sim = sim(6, Duration::ZERO).await;
    add(&db, &sim, "organization,users");
    // An hourly schedule set two hours ago: due at the scheduler's first tick.
    let location = db.to_str().unwrap();
    let store = store::Store::open_keyed(
        location,
        None,
        &store::default_key_file(location),
        store::StoreOptions::default(),
    )
    .await
    .unwrap();
    let hourly = domain::Schedule::every("1h").unwrap();
    store
        .set_schedule("contoso", Some(&hourly), store::now_millis() - 7_200_000)
        .await
        .unwrap();
    store.close().await;

    let serve = spawn(&db, &["serve", "--listen", "127.0.0.1:0"]);
    let start = Instant::now();
    let run = loop {
        let runs = json(&m365sync(&db, &["runs", "--json"], &[]));
        if let Some(run) = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "scheduled" && r["status"] == "succeeded")
        {
            break run.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no scheduled run succeeded: {runs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["connection_name"], "contoso");
    let listed = json(&m365sync(&db, &["connection", "list", "--json"], &[]));
    let next = listed[0]["next_run_at"].as_i64().unwrap();
    assert!(
        next > store::now_millis(),
        "the schedule moved on: {listed}"
    );
    let ended = terminate(serve);
    assert_eq!(ended.status.code(), Some(0), "{:?}", text(&ended));
    let runs = json(&m365sync(&db, &["runs", "--json"], &[]));
    assert_eq!(
        runs.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "scheduled")
            .count(),
        1,
        "one due schedule, one run: {runs}"
    );
}

async fn a_stopped_worker_finishes_its_run_unless_told_twice(kind: StoreKind) {
    let (db, _home, _dir) = store_at(kind).await;
    let sim = sim(30, Duration::from_millis(150)).await;
    add(
        &db,
        &sim,
        "organization,licenses,users,domains,groups,applications",
    );

    // Told once: it claims nothing more and the run going ends as it would have.
    let worker = spawn(&db, &["worker", "--lease", "2s", "--poll", "1s"]);
    let queued = json(&m365sync(
        &db,
        &["sync", "contoso", "--queue", "--json"],
        &[],
    ));
    let run = queued["run_id"].as_i64().unwrap();
    wait_for_run(&db, run, "running", |r| r["status"] == "running");
    signal(&worker);
    let ended = wait_out(worker);
    assert_eq!(ended.status.code(), Some(0), "{:?}", text(&ended));
    assert!(
        text(&ended).1.contains("the run going finishes first"),
        "{:?}",
        text(&ended)
    );
    assert_eq!(run_of(&db, run)["status"], "succeeded");

    // Told twice: it ends at once, and the run it held is taken for interrupted (here at once,
    // as its process is seen gone; elsewhere when its lease expires).
    let worker = spawn(&db, &["worker", "--lease", "2s", "--poll", "1s"]);
    let queued = json(&m365sync(
        &db,
        &["sync", "contoso", "--queue", "--json"],
        &[],
    ));
    let run = queued["run_id"].as_i64().unwrap();
    wait_for_run(&db, run, "running", |r| r["status"] == "running");
    signal(&worker);
    std::thread::sleep(Duration::from_millis(200));
    signal(&worker);
    let ended = wait_out(worker);
    assert_eq!(ended.status.code(), Some(130), "{:?}", text(&ended));
    let closed = wait_for_run(&db, run, "closed", |r| r["status"] != "running");
    assert_eq!(closed["status"], "failed", "{closed}");
    assert!(
        closed["message"].as_str().unwrap().contains("interrupted"),
        "{closed}"
    );
}

testkit::on_both_stores!(
    a_stopped_worker_finishes_its_run_unless_told_twice,
    schedules_are_set_shown_and_checked,
    cached_datasets_are_skipped_until_stale_full_or_cleared,
    a_worker_runs_the_queue_and_cancel_stops_queued_runs,
    a_running_run_stops_at_a_page_boundary_when_cancelled,
    serve_queues_scheduled_runs_and_runs_them,
);
