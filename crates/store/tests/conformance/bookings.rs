//! Bookings on both backends: what each asked is kept with it, a failed attempt gives its
//! transaction id to the next attempt (and only a failed one), and why an attempt failed is kept;
//! and the sign-ins waiting for Microsoft's answer: kept for any process, taken once, bounded.

use domain::{ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, TenantId};
use store::{NewBooking, NewConnection, PendingSignInRow};
use testkit::StoreKind;

testkit::on_both_stores!(
    a_failed_booking_gives_its_id_to_the_next_attempt_and_keeps_why,
    waiting_sign_ins_are_taken_once_and_bounded,
);

async fn connection_in(store: &store::Store) -> store::Connection {
    store
        .add_connection(NewConnection {
            name: ConnectionName::parse("contoso").unwrap(),
            tenant_id: TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
            credential: Credential::Secret(ClientSecret::parse("Abc8Q~secret-value-1234").unwrap()),
            cloud: Cloud::Global,
            datasets: vec![Dataset::Users],
        })
        .await
        .unwrap()
}

async fn a_failed_booking_gives_its_id_to_the_next_attempt_and_keeps_why(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let connection = connection_in(&store).await;
    let asked = |request: &'static str, start_at: i64| NewBooking {
        connection_id: connection.id,
        account_id: None,
        mailbox: "Officer@Contoso.com",
        transaction_id: "form-1",
        request,
        subject: "Housing",
        start_at,
        end_at: start_at + 1_800_000,
        time_zone: "Europe/London",
    };
    let first = store.begin_booking(&asked("slot-a", 1_000)).await.unwrap();
    assert_eq!(first.state, "pending");
    assert_eq!(first.mailbox, "officer@contoso.com");
    assert_eq!(first.request.as_deref(), Some("slot-a"));
    assert_eq!(first.time_zone.as_deref(), Some("Europe/London"));
    // A pending booking is not given away: the same id answers with it.
    assert!(
        !store
            .restart_failed_booking(first.id, &asked("slot-b", 9_000))
            .await
            .unwrap()
    );
    let again = store.begin_booking(&asked("slot-b", 9_000)).await.unwrap();
    assert_eq!((again.id, again.start_at), (first.id, 1_000));

    store
        .booking_problem(first.id, "failed", "the slot was taken")
        .await
        .unwrap();
    let failed = store.booking(first.id).await.unwrap();
    assert_eq!(failed.state, "failed");
    assert_eq!(failed.problem.as_deref(), Some("the slot was taken"));
    assert!(
        store
            .restart_failed_booking(first.id, &asked("slot-b", 9_000))
            .await
            .unwrap()
    );
    let restarted = store.booking(first.id).await.unwrap();
    assert_eq!(restarted.state, "pending");
    assert_eq!(restarted.start_at, 9_000);
    assert_eq!(restarted.request.as_deref(), Some("slot-b"));
    assert_eq!(restarted.problem, None);

    store
        .update_booking(first.id, "booked", Some("event-1"), 9_000, 1_809_000)
        .await
        .unwrap();
    let booked = store.booking(first.id).await.unwrap();
    assert_eq!(booked.event_id.as_deref(), Some("event-1"));
    assert_eq!(store.bookings().await.unwrap().len(), 1);
    store.close().await;
}

async fn waiting_sign_ins_are_taken_once_and_bounded(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let connection = connection_in(&store).await;
    let row = |state: &str, started_at: i64| PendingSignInRow {
        state: state.into(),
        session_hash: "session".into(),
        connection_id: connection.id,
        tenant: Some("organizations".into()),
        redirect_uri: "https://m365sync.example/integrations/office365/callback".into(),
        reconnecting: None,
        url: "https://login.example/authorize".into(),
        nonce: format!("nonce-{state}"),
        verifier: format!("verifier-{state}"),
        started_at,
    };
    for (i, state) in ["a", "b", "c"].iter().enumerate() {
        store
            .save_pending_sign_in(&row(state, 1_000 + i as i64), 0, 10)
            .await
            .unwrap();
    }
    let kept = store.pending_sign_in("b").await.unwrap().unwrap();
    assert_eq!(
        (kept.nonce.as_str(), kept.verifier.as_str()),
        ("nonce-b", "verifier-b")
    );
    assert_eq!(kept.tenant.as_deref(), Some("organizations"));
    // At most three waiting: a fourth drops the oldest; one started too long ago is dropped.
    store
        .save_pending_sign_in(&row("d", 1_003), 0, 3)
        .await
        .unwrap();
    assert!(store.pending_sign_in("a").await.unwrap().is_none());
    assert!(store.pending_sign_in("b").await.unwrap().is_some());
    store
        .save_pending_sign_in(&row("e", 5_000), 1_003, 10)
        .await
        .unwrap();
    assert!(store.pending_sign_in("b").await.unwrap().is_none());
    assert!(store.pending_sign_in("d").await.unwrap().is_some());
    // Taken once.
    assert!(store.take_pending_sign_in("d").await.unwrap());
    assert!(!store.take_pending_sign_in("d").await.unwrap());
    assert!(store.pending_sign_in("d").await.unwrap().is_none());
    store.close().await;
}
