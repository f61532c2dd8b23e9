//! Schedules and caches on every backend: a due schedule queues one run however many schedulers
//! tick at once, and a dataset's fetch time is kept per tenant until cleared.

use domain::{
    ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, Schedule, TenantId,
};
use store::{NewConnection, RunOptions, RunTrigger, Store};
use testkit::StoreKind;

const HOUR: i64 = 3_600_000;
/// 2026-11-30 10:00 UTC.
const T0: i64 = 1_796_032_800_000;

async fn add(store: &Store, name: &str, tenant: &str) -> store::Connection {
    store
        .add_connection(NewConnection {
            name: ConnectionName::parse(name).unwrap(),
            tenant_id: TenantId::parse(tenant).unwrap(),
            client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
            credential: Credential::Secret(ClientSecret::parse("Abc8Q~secret-value-1234").unwrap()),
            cloud: Cloud::Global,
            datasets: vec![Dataset::Users],
        })
        .await
        .unwrap()
}

fn tenant(n: u8) -> String {
    format!("72f988bf-86f1-41af-91ab-2d7cd011db{n:02}")
}

async fn a_due_schedule_queues_one_run_however_many_schedulers_tick(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let hourly = Schedule::every("1h").unwrap();
    let mut names = Vec::new();
    for n in 0..4 {
        let name = format!("tenant{n}");
        add(&store, &name, &tenant(n)).await;
        let next = store.set_schedule(&name, Some(&hourly), T0).await.unwrap();
        assert_eq!(next, Some(T0 + HOUR));
        names.push(name);
    }
    add(&store, "unscheduled", &tenant(9)).await;
    let rows = store.schedules().await.unwrap();
    assert_eq!(rows.len(), 5);
    let first = rows
        .iter()
        .find(|r| r.connection_name == "tenant0")
        .unwrap();
    assert_eq!(first.schedule.as_deref(), Some("every 1h"));
    assert_eq!(first.next_run_at, Some(T0 + HOUR));
    let none = rows
        .iter()
        .find(|r| r.connection_name == "unscheduled")
        .unwrap();
    assert_eq!((none.schedule.as_deref(), none.next_run_at), (None, None));

    // Not due yet: nothing queued, nothing moved.
    assert!(
        store
            .queue_due_runs(T0 + HOUR - 1)
            .await
            .unwrap()
            .is_empty()
    );
    // Due: one run each, and a second tick at the same time queues nothing more.
    let due = store.queue_due_runs(T0 + HOUR + 5_000).await.unwrap();
    assert_eq!(due.len(), 4);
    assert!(due.iter().all(|d| !d.queued.joined));
    assert!(
        store
            .queue_due_runs(T0 + HOUR + 5_000)
            .await
            .unwrap()
            .is_empty()
    );
    let queue = store.queued_runs().await.unwrap();
    assert_eq!(queue.len(), 4);
    assert!(queue.iter().all(|(_, _, kind)| kind == "scheduled"));
    let moved = store.schedules().await.unwrap();
    assert!(
        moved
            .iter()
            .filter(|r| r.schedule.is_some())
            .all(|r| r.next_run_at == Some(T0 + 2 * HOUR))
    );

    // Six schedulers ticking at once at the next due time: each schedule is taken by one.
    let ticks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.queue_due_runs(T0 + 2 * HOUR).await })
        })
        .collect();
    let mut taken = Vec::new();
    for tick in ticks {
        taken.extend(tick.await.unwrap().unwrap());
    }
    let mut connections: Vec<&str> = taken.iter().map(|d| d.connection_name.as_str()).collect();
    connections.sort();
    assert_eq!(
        connections, names,
        "each due schedule was taken exactly once"
    );
    // The runs still queued were joined, not doubled.
    assert!(taken.iter().all(|d| d.queued.joined));
    assert_eq!(store.queued_runs().await.unwrap().len(), 4);

    // Turned off, a schedule never comes due.
    assert_eq!(store.set_schedule("tenant0", None, T0).await.unwrap(), None);
    assert!(
        store
            .queue_due_runs(T0 + 100 * HOUR)
            .await
            .unwrap()
            .iter()
            .all(|d| d.connection_name != "tenant0")
    );
    assert!(
        store
            .set_schedule("nosuch", Some(&hourly), T0)
            .await
            .is_err()
    );
    store.close().await;
}

async fn a_person_s_run_joined_by_a_schedule_stays_the_person_s(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let contoso = add(&store, "contoso", &tenant(1)).await;
    let asked = store
        .enqueue_run(
            contoso.id,
            "contoso",
            RunTrigger::Manual,
            RunOptions::default(),
        )
        .await
        .unwrap();
    store
        .set_schedule("contoso", Some(&Schedule::every("1h").unwrap()), T0)
        .await
        .unwrap();
    let due = store.queue_due_runs(T0 + HOUR).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].queued.run_id, asked.run_id);
    assert!(due[0].queued.joined);
    let queue = store.queued_runs().await.unwrap();
    assert_eq!(
        queue,
        vec![(asked.run_id, "contoso".into(), "manual".into())]
    );
    store.close().await;
}

async fn fetch_times_are_kept_per_tenant_until_cleared(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let contoso = add(&store, "contoso", &tenant(1)).await;
    let fabrikam = add(&store, "fabrikam", &tenant(2)).await;

    let lifetimes = store.cache_lifetimes(contoso.id).await.unwrap();
    assert_eq!(lifetimes.lifetime(Dataset::Mailboxes), 86_400);
    store
        .set_cache_lifetime("contoso", Dataset::Mailboxes, 12 * 3600)
        .await
        .unwrap();
    assert_eq!(
        store
            .cache_lifetimes(contoso.id)
            .await
            .unwrap()
            .lifetime(Dataset::Mailboxes),
        43_200
    );
    assert_eq!(
        store
            .cache_lifetimes(fabrikam.id)
            .await
            .unwrap()
            .lifetime(Dataset::Mailboxes),
        86_400,
        "another connection keeps the default"
    );
    assert!(
        store
            .set_cache_lifetime("nosuch", Dataset::Usage, 60)
            .await
            .is_err()
    );

    let (one, two) = (tenant(1), tenant(2));
    assert_eq!(
        store
            .dataset_fetched_at(&one, Dataset::Mailboxes)
            .await
            .unwrap(),
        None
    );
    store
        .record_fetch(&one, Dataset::Mailboxes, T0)
        .await
        .unwrap();
    store
        .record_fetch(&one, Dataset::Mailboxes, T0 + HOUR)
        .await
        .unwrap();
    store.record_fetch(&one, Dataset::Usage, T0).await.unwrap();
    store
        .record_fetch(&two, Dataset::Mailboxes, T0)
        .await
        .unwrap();
    assert_eq!(
        store
            .dataset_fetched_at(&one, Dataset::Mailboxes)
            .await
            .unwrap(),
        Some(T0 + HOUR)
    );

    // One dataset of one connection, then all of it; the other connection's stays.
    assert_eq!(
        store
            .clear_cache(&contoso, Some(Dataset::Mailboxes))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .dataset_fetched_at(&one, Dataset::Mailboxes)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .dataset_fetched_at(&one, Dataset::Usage)
            .await
            .unwrap(),
        Some(T0)
    );
    assert_eq!(store.clear_cache(&contoso, None).await.unwrap(), 1);
    assert_eq!(
        store
            .dataset_fetched_at(&one, Dataset::Usage)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .dataset_fetched_at(&two, Dataset::Mailboxes)
            .await
            .unwrap(),
        Some(T0)
    );
    store.close().await;
}

testkit::on_both_stores!(
    a_due_schedule_queues_one_run_however_many_schedulers_tick,
    a_person_s_run_joined_by_a_schedule_stays_the_person_s,
    fetch_times_are_kept_per_tenant_until_cleared,
);
