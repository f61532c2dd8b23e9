//! A good citizen: a full sync of every dataset against a simulator enforcing Microsoft's
//! limits meets no 429, because the client paces itself; the same sync without pacing meets
//! them. The budgets are Microsoft's in shape (resource units for the directory, a few reads of
//! sign-in activity, Intune and service communications by requests) but small and over two
//! seconds, so that a tenant of a few hundred users crosses them in a test's time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{Dataset, RunStatus, StepStatus};
use graph::{Budget, Budgets, RetryPolicy, TokioSleeper};
use graph_sim::{Limits, Quota, SimConfig, TenantSpec};
use sync::{SyncEngine, SyncReport};
use testkit::{StoreKind, TestApp};

const WINDOW: Duration = Duration::from_secs(2);
const USERS: u64 = 600;

/// (directory resource units, sign-in reads, Intune requests, service communications requests)
/// per window.
const DIRECTORY: u64 = 20;
const SIGN_INS: u64 = 2;
// Intune is asked once per detected app for its devices: the simulator's few dozen apps need a
// budget an unpaced client can still get through within its retries.
const INTUNE: u64 = 12;
const SERVICE_COMMUNICATIONS: u64 = 2;

fn quota(units: u64) -> Quota {
    Quota {
        units,
        window: WINDOW,
    }
}

fn budget(units: u64) -> Budget {
    Budget {
        units,
        window: WINDOW,
    }
}

/// The simulator's side; the client's budgets are written out on their own below, as the two
/// share no code.
fn limits() -> Limits {
    Limits {
        directory: [quota(DIRECTORY); 3],
        identity_reports: quota(SIGN_INS),
        intune: quota(INTUNE),
        service_communications: [quota(SERVICE_COMMUNICATIONS), Quota::per(800, 3_600)],
        ..Limits::microsoft()
    }
}

fn budgets() -> Budgets {
    Budgets {
        directory: [budget(DIRECTORY); 3],
        identity_reports: budget(SIGN_INS),
        intune: budget(INTUNE),
        service_communications: [budget(SERVICE_COMMUNICATIONS), Budget::per(800, 3_600)],
        ..Budgets::microsoft()
    }
}

/// A full sync of every dataset of a tenant of `USERS` users against a simulator enforcing
/// `limits()`, the client pacing itself to `pacing` and waiting for real: the report, the 429s
/// the simulator sent, and how long it took.
async fn full_sync(store: StoreKind, pacing: Option<Budgets>) -> (SyncReport, u64, Duration) {
    let mut app = TestApp::new_on(
        store,
        SimConfig {
            seed: 5,
            tenants: vec![TenantSpec::with_users(USERS)],
            limits: Some(limits()),
            ..SimConfig::default()
        },
    )
    .await;
    // Unpaced requests race one another for each window of the budgets: on a busy machine one
    // of them can lose eight races in a row. More attempts let honouring Retry-After show that
    // it gets the sync done, which is what the unpaced run is for.
    let max_attempts = if pacing.is_some() {
        RetryPolicy::default().max_attempts
    } else {
        24
    };
    let retry = RetryPolicy {
        sleeper: Arc::new(TokioSleeper),
        pacing,
        max_attempts,
        ..RetryPolicy::default()
    };
    app.engine = SyncEngine::new(app.store.clone())
        .with_retry(retry)
        .with_page_size(100);
    app.add_connection("contoso", 0).await;
    let started = Instant::now();
    let report = app.sync("contoso").await;
    let took = started.elapsed();
    (report, app.sim.state.stats().over_limit, took)
}

fn assert_complete(report: &SyncReport) {
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    for dataset in Dataset::ALL {
        let step = report.step(dataset).unwrap();
        assert_eq!(step.status, StepStatus::Succeeded, "{step:?}");
    }
    assert_eq!(
        report.step(Dataset::Users).unwrap().counts.created,
        USERS,
        "{report:?}"
    );
}

async fn a_paced_full_sync_meets_no_429(store: StoreKind) {
    let (report, throttled, took) = full_sync(store, Some(budgets())).await;
    assert_complete(&report);
    assert_eq!(throttled, 0, "the simulator answered 429: {report:?}");
    // The budgets were crossed: keeping to them took several windows.
    assert!(took > WINDOW * 3, "{took:?}");
    // Sign-in activity comes 120 users a read, 2 reads every 2 s: the log says how long.
    let paced: Vec<&str> = report
        .warnings
        .iter()
        .filter(|w| w.code == "sign_in_activity_paced")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(paced.len(), 1, "{:?}", report.warnings);
    assert!(
        paced[0].contains("600 users takes about 4 seconds"),
        "{}",
        paced[0]
    );
    assert!(
        paced[0].contains("2 reads of it every 2 seconds"),
        "{}",
        paced[0]
    );
}

testkit::on_both_stores!(a_paced_full_sync_meets_no_429);

/// Without pacing the same sync meets 429s (and, honouring each Retry-After, still completes):
/// the test above could fail.
#[tokio::test(flavor = "multi_thread")]
async fn without_pacing_the_same_sync_meets_429s() {
    let (report, throttled, _) = full_sync(StoreKind::Sqlite, None).await;
    assert!(throttled > 0, "no 429 without pacing: {report:?}");
    assert_complete(&report);
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.code == "sign_in_activity_paced"),
        "an unpaced client has no pace to announce"
    );
}
