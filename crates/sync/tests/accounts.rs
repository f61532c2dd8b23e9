//! Delegated accounts and calendars against the simulator, on both stores: connect (driving the
//! simulator's sign-in page over HTTP as a browser would) → list → free slots → book → move →
//! cancel → remove, and every refusal the issue names, each with the right words.

use chrono::{Duration, Utc};
use domain::accounts::AccountState;
use domain::calendar::{SlotRequest, Span};
use graph::delegated::{Callback, DelegatedApp, PendingSignIn};
use graph_sim::{SimConfig, TenantSpec};
use store::{Connection, Store};
use sync::accounts::{self as flows, AccountError, BookingRequest};
use testkit::{StoreKind, TestApp, on_both_stores};

const REDIRECT: &str = "http://localhost:8765/integrations/office365/callback";

async fn app_on(kind: StoreKind) -> TestApp {
    let mut spec = TenantSpec::with_users(12);
    spec.roles.push("Calendars.ReadWrite".into());
    TestApp::new_on(
        kind,
        SimConfig {
            seed: 31,
            tenants: vec![spec],
            ..SimConfig::default()
        },
    )
    .await
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The hidden fields of the sign-in page's form, as a browser would post them back.
fn form_fields(page: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for part in page.split("<input type=\"hidden\" ").skip(1) {
        let value_of = |attr: &str| {
            let start = part.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
            let end = start + part[start..].find('"').unwrap();
            part[start..end]
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        };
        fields.push((value_of("name"), value_of("value")));
    }
    fields
}

/// Opens the sign-in address, signs in as `login` and presses `button` (accept or cancel):
/// returns the query Microsoft sends back to the redirect URI.
async fn sign_in(sim_url: &str, pending: &PendingSignIn, login: &str, button: &str) -> String {
    let browser = browser();
    let page = browser.get(&pending.url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Calendars.ReadWrite"),
        "the page lists the permissions"
    );
    let action = {
        let start = html.find("action=\"").unwrap() + 8;
        let end = start + html[start..].find('"').unwrap();
        html[start..end].to_string()
    };
    let mut fields = form_fields(&html);
    fields.push(("login".into(), login.into()));
    fields.push(("consent".into(), button.into()));
    let answer = browser
        .post(format!("{sim_url}{action}"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302, "the sign-in sends the browser back");
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    location.split_once('?').unwrap().1.to_string()
}

async fn app_for(store: &Store, connection: &Connection) -> DelegatedApp {
    flows::delegated_app(store, connection, REDIRECT, None)
        .await
        .unwrap()
}

/// Two people of the tenant, by user principal name: ones with a mailbox.
fn people(app: &TestApp) -> Vec<String> {
    let tenant = app.sim.state.tenant("0").unwrap();
    (0..12)
        .filter_map(|i| tenant.user(i))
        .filter(|u| u.has_mailbox && u.account_enabled)
        .map(|u| u.upn)
        .take(2)
        .collect()
}

async fn connect(app: &TestApp, connection: &Connection, login: &str) -> store::DelegatedAccount {
    let delegated = app_for(&app.store, connection).await;
    let pending = delegated.start(None, Some(login)).unwrap();
    let query = sign_in(&app.sim.url, &pending, login, "accept").await;
    flows::complete_sign_in(
        &app.store,
        connection,
        &delegated,
        pending,
        &Callback::from_query(&query),
        None,
    )
    .await
    .unwrap()
}

/// Every secret the store holds for the accounts, for checking that none leaks.
async fn tokens_of(store: &Store) -> Vec<String> {
    let mut tokens = Vec::new();
    for account in store.accounts().await.unwrap() {
        let (token, _) = store.account_refresh_token(&account).await.unwrap();
        tokens.push(token.expose().to_string());
    }
    tokens
}

fn assert_no_token(text: &str, tokens: &[String]) {
    for token in tokens {
        assert!(
            !text.contains(token.as_str()),
            "a token leaked into: {text}"
        );
    }
    assert!(
        !text.contains("1.AR"),
        "a refresh token leaked into: {text}"
    );
    assert!(!text.contains("eyJ"), "a JWT leaked into: {text}");
}

async fn connect_list_free_book_move_cancel_remove(kind: StoreKind) {
    let app = app_on(kind).await;
    let connection = app.add_connection("contoso", 0).await;
    let people = people(&app);
    assert_eq!(people.len(), 2);

    let first = connect(&app, &connection, &people[0]).await;
    let second = connect(&app, &connection, &people[1]).await;
    assert_eq!(first.username, people[0]);
    assert_eq!(first.tenant_id, app.tenant(0).tenant_id);
    assert!(
        first
            .scopes
            .iter()
            .any(|s| s.ends_with("Calendars.ReadWrite"))
    );
    assert_eq!(first.state, AccountState::Active);
    let listed = app.store.accounts().await.unwrap();
    assert_eq!(listed.len(), 2);

    // Reconnecting the same person replaces the token rather than adding an account.
    let again = connect(&app, &connection, &people[0]).await;
    assert_eq!(again.id, first.id);
    assert_eq!(app.store.accounts().await.unwrap().len(), 2);

    for account in [&first, &second] {
        let access = flows::account_calendar(&app.store, account, None)
            .await
            .unwrap();
        // The next three working days, 30-minute slots.
        let now = Utc::now();
        let window = Span::new(now, now + Duration::days(5)).unwrap();
        let request = SlotRequest {
            length: Duration::minutes(30),
            step: Duration::minutes(15),
        };
        let free = flows::free_slots(&access, window, request, &[])
            .await
            .unwrap();
        assert!(!free.slots.is_empty(), "{} has free time", account.username);
        // The daily stand-up (a recurring event, 09:30–09:45 local) is never offered as free.
        for slot in &free.slots {
            let local = slot.start.with_timezone(&free.hours.zone);
            let end = slot.end.with_timezone(&free.hours.zone);
            let standup_start = local.date_naive().and_hms_opt(9, 30, 0).unwrap();
            let standup_end = local.date_naive().and_hms_opt(9, 45, 0).unwrap();
            assert!(
                !(local.naive_local() < standup_end && end.naive_local() > standup_start),
                "the stand-up at {local} was offered as free"
            );
        }

        let slot = free.slots[free.slots.len() / 2];
        let booking = flows::book(
            &app.store,
            &access,
            &BookingRequest {
                slot,
                subject: "Housing appointment".into(),
                attendees: vec!["resident@example.org".into()],
                location: Some("Civic centre".into()),
                online_meeting: true,
                transaction_id: format!("test-{}", account.id),
                zone: free.hours.zone,
            },
        )
        .await
        .unwrap();
        assert_eq!(booking.state, "booked");
        assert!(booking.event_id.is_some());

        // The slot is busy now: it is no longer offered.
        let after = flows::free_slots(&access, window, request, &[])
            .await
            .unwrap();
        assert!(!after.slots.iter().any(|s| s.overlaps(&slot)));

        // A retry of the same booking (same transaction id, same request) books nothing more;
        // the same id asking for something else is refused.
        let retried = flows::book(
            &app.store,
            &access,
            &BookingRequest {
                slot,
                subject: "Housing appointment".into(),
                attendees: vec!["resident@example.org".into()],
                location: Some("Civic centre".into()),
                online_meeting: true,
                transaction_id: format!("test-{}", account.id),
                zone: free.hours.zone,
            },
        )
        .await
        .unwrap();
        assert_eq!(retried.id, booking.id);
        assert_eq!(retried.event_id, booking.event_id);
        let reused = flows::book(
            &app.store,
            &access,
            &BookingRequest {
                slot,
                subject: "Housing appointment".into(),
                attendees: vec![],
                location: None,
                online_meeting: false,
                transaction_id: format!("test-{}", account.id),
                zone: free.hours.zone,
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(reused, AccountError::RequestIdReused { .. }),
            "{reused}"
        );

        // Moving onto a busy slot is refused; onto a free one it works.
        let busy_target = free.slots[0];
        let other = flows::book(
            &app.store,
            &access,
            &BookingRequest {
                slot: busy_target,
                subject: "Blocker".into(),
                attendees: vec![],
                location: None,
                online_meeting: false,
                transaction_id: format!("blocker-{}", account.id),
                zone: free.hours.zone,
            },
        )
        .await
        .unwrap();
        let refused = flows::move_booking(&app.store, &access, &booking, busy_target)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, AccountError::SlotTaken { .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains("Blocker"), "{refused}");
        let target = *after.slots.last().unwrap();
        let moved = flows::move_booking(&app.store, &access, &booking, target)
            .await
            .unwrap();
        assert_eq!(moved.start_at, target.start.timestamp_millis());

        let cancelled = flows::cancel_booking(&app.store, &access, &moved, "Sorry")
            .await
            .unwrap();
        assert_eq!(cancelled.state, "cancelled");
        let again = flows::cancel_booking(&app.store, &access, &cancelled, "Sorry")
            .await
            .unwrap_err();
        assert!(
            matches!(again, AccountError::BookingState { .. }),
            "{again}"
        );
        flows::cancel_booking(&app.store, &access, &other, "x")
            .await
            .unwrap();
        let used = app.store.account_by_id(account.id).await.unwrap().unwrap();
        assert!(used.last_used_at.is_some());
    }

    let tokens = tokens_of(&app.store).await;
    let listed = serde_json::to_string(&app.store.accounts().await.unwrap()).unwrap();
    assert_no_token(&listed, &tokens);
    assert_no_token(
        &format!("{:?}", app.store.accounts().await.unwrap()),
        &tokens,
    );

    app.store.remove_account(second.id).await.unwrap();
    let left = app.store.accounts().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].username, people[0]);
}

async fn two_concurrent_bookings_of_one_slot_never_both_succeed(kind: StoreKind) {
    let app = app_on(kind).await;
    let connection = app.add_connection("contoso", 0).await;
    let person = people(&app)[0].clone();
    let account = connect(&app, &connection, &person).await;
    let access = flows::account_calendar(&app.store, &account, None)
        .await
        .unwrap();
    let now = Utc::now();
    let window = Span::new(now, now + Duration::days(5)).unwrap();
    let request = SlotRequest {
        length: Duration::minutes(30),
        step: Duration::minutes(30),
    };
    let free = flows::free_slots(&access, window, request, &[])
        .await
        .unwrap();
    let slot = free.slots[1];
    // Requests are held a moment, so that the two bookings overlap at Outlook.
    browser()
        .put(format!("{}/_sim/calendars/hold", app.sim.url))
        .json(&serde_json::json!({ "millis": 150 }))
        .send()
        .await
        .unwrap();
    let book = |n: u32| {
        let store = app.store.clone();
        let access = &access;
        async move {
            flows::book(
                &store,
                access,
                &BookingRequest {
                    slot,
                    subject: format!("Booking {n}"),
                    attendees: vec![],
                    location: None,
                    online_meeting: false,
                    transaction_id: format!("race-{n}"),
                    zone: free.hours.zone,
                },
            )
            .await
        }
    };
    let (a, b) = tokio::join!(book(1), book(2));
    let succeeded = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(succeeded, 1, "{a:?} / {b:?}");
    let refused = if a.is_err() { a } else { b }.unwrap_err();
    assert!(
        matches!(refused, AccountError::SlotTaken { .. }),
        "{refused}"
    );
    let bookings = app.store.bookings().await.unwrap();
    assert_eq!(bookings.iter().filter(|b| b.state == "booked").count(), 1);
}

async fn tampered_state_replayed_code_and_wrong_verifier_are_refused(kind: StoreKind) {
    let app = app_on(kind).await;
    let connection = app.add_connection("contoso", 0).await;
    let person = people(&app)[0].clone();
    let delegated = app_for(&app.store, &connection).await;

    // A callback whose state is not the sign-in's.
    let pending = delegated.start(None, None).unwrap();
    let query = sign_in(&app.sim.url, &pending, &person, "accept").await;
    let mut tampered = Callback::from_query(&query);
    tampered.state = Some("someone-elses-state".into());
    let error = flows::complete_sign_in(
        &app.store,
        &connection,
        &delegated,
        pending,
        &tampered,
        None,
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("state does not match"),
        "{error}"
    );
    assert!(app.store.accounts().await.unwrap().is_empty());

    // A code redeemed twice.
    let pending = delegated.start(None, None).unwrap();
    let state = pending.state().to_string();
    let query = sign_in(&app.sim.url, &pending, &person, "accept").await;
    flows::complete_sign_in(
        &app.store,
        &connection,
        &delegated,
        pending,
        &Callback::from_query(&query),
        None,
    )
    .await
    .unwrap();
    let replay = delegated.start(None, None).unwrap();
    let mut replayed = Callback::from_query(&query);
    replayed.state = Some(replay.state().to_string());
    assert_ne!(replay.state(), state);
    let error =
        flows::complete_sign_in(&app.store, &connection, &delegated, replay, &replayed, None)
            .await
            .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("already used") && text.contains("AADSTS54005"),
        "{text}"
    );

    // A code redeemed with another sign-in's PKCE verifier.
    let first = delegated.start(None, None).unwrap();
    let second = delegated.start(None, None).unwrap();
    let query = sign_in(&app.sim.url, &first, &person, "accept").await;
    let mut crossed = Callback::from_query(&query);
    crossed.state = Some(second.state().to_string());
    let error =
        flows::complete_sign_in(&app.store, &connection, &delegated, second, &crossed, None)
            .await
            .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("PKCE") && text.contains("AADSTS501481"),
        "{text}"
    );

    // The person declines.
    let pending = delegated.start(None, None).unwrap();
    let query = sign_in(&app.sim.url, &pending, &person, "cancel").await;
    let error = flows::complete_sign_in(
        &app.store,
        &connection,
        &delegated,
        pending,
        &Callback::from_query(&query),
        None,
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("declined") && text.contains("access_denied"),
        "{text}"
    );

    // `prompt=none` for someone who never consented comes back with consent_required.
    let stranger = {
        let tenant = app.sim.state.tenant("0").unwrap();
        (0..12)
            .filter_map(|i| tenant.user(i))
            .find(|u| u.upn != person && u.account_enabled)
            .unwrap()
            .upn
    };
    let pending = delegated.start(Some("none"), Some(&stranger)).unwrap();
    let answer = browser().get(&pending.url).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    let error = flows::complete_sign_in(
        &app.store,
        &connection,
        &delegated,
        pending,
        &Callback::from_query(location.split_once('?').unwrap().1),
        None,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("AADSTS65001"), "{error}");
    assert_eq!(app.store.accounts().await.unwrap().len(), 1);
}

async fn revoked_and_idle_refresh_tokens_turn_the_account_to_needs_reconnect(kind: StoreKind) {
    let app = app_on(kind).await;
    let connection = app.add_connection("contoso", 0).await;
    let people = people(&app);
    let first = connect(&app, &connection, &people[0]).await;
    let second = connect(&app, &connection, &people[1]).await;

    // The scheduler's pass refreshes accounts idle for a week, rotating their tokens.
    let (before, generation) = app.store.account_refresh_token(&first).await.unwrap();
    let outcomes = flows::refresh_idle_accounts(&app.store, store::now_millis() + 8 * 86_400_000)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let (after, next_generation) = app.store.account_refresh_token(&first).await.unwrap();
    assert_ne!(before, after, "the refresh token rotated");
    assert!(next_generation > generation);
    // A refresh that lost the race to another keeps the winner's token.
    assert!(
        !app.store
            .rotate_account_token(first.id, generation, &before, store::now_millis())
            .await
            .unwrap()
    );
    // Nothing is due a moment later.
    assert!(
        flows::refresh_idle_accounts(&app.store, store::now_millis())
            .await
            .unwrap()
            .is_empty()
    );

    // An administrator revokes the first person's sessions.
    let tenant = app.sim.state.tenant("0").unwrap();
    let index = (0..12)
        .find(|i| tenant.user(*i).is_some_and(|u| u.upn == people[0]))
        .unwrap();
    let revoked = browser()
        .post(format!(
            "{}/_sim/tenants/0/users/{index}/revoke-sessions",
            app.sim.url
        ))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    let account = app.store.account_by_id(first.id).await.unwrap().unwrap();
    let error = flows::refresh_account(&app.store, &account)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, AccountError::NeedsReconnect { .. }),
        "{text}"
    );
    assert!(
        text.contains("revoked") && text.contains("AADSTS50173"),
        "{text}"
    );
    assert!(text.contains("m365sync account connect"), "{text}");
    let account = app.store.account_by_id(first.id).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::NeedsReconnect);
    assert!(account.problem.as_deref().unwrap().contains("revoked"));
    // It is not tried again by the scheduler, and says why when used.
    let used = flows::account_calendar(&app.store, &account, None).await;
    assert!(matches!(used, Err(AccountError::NeedsReconnect { .. })));

    // The second person's token goes unused past Microsoft's 90 days.
    browser()
        .post(format!("{}/_sim/identity/advance", app.sim.url))
        .json(&serde_json::json!({ "days": 91 }))
        .send()
        .await
        .unwrap();
    let account = app.store.account_by_id(second.id).await.unwrap().unwrap();
    let error = flows::refresh_account(&app.store, &account)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("90-day") && text.contains("AADSTS700082"),
        "{text}"
    );
    let tokens = tokens_of(&app.store).await;
    assert_no_token(&text, &tokens);

    // Reconnecting brings the account back.
    let back = connect(&app, &connection, &people[0]).await;
    assert_eq!(back.id, first.id);
    assert_eq!(back.state, AccountState::Active);
    assert!(back.problem.is_none());
}

async fn mailboxes_reached_with_application_permissions_book_for_several_people(kind: StoreKind) {
    let app = app_on(kind).await;
    let connection = app.add_connection("contoso", 0).await;
    let people = people(&app);
    let access = flows::app_calendar(&app.store, &connection, &people[0])
        .await
        .unwrap();
    let now = Utc::now();
    let window = Span::new(now, now + Duration::days(5)).unwrap();
    let request = SlotRequest {
        length: Duration::minutes(60),
        step: Duration::minutes(30),
    };
    let alone = flows::free_slots(&access, window, request, &[])
        .await
        .unwrap();
    // Free for both: never more slots than for one, and none that the other has busy.
    let together = flows::free_slots(&access, window, request, &[people[1].clone()])
        .await
        .unwrap();
    assert!(together.unknown.is_empty());
    assert!(together.slots.len() <= alone.slots.len());
    let other = flows::app_calendar(&app.store, &connection, &people[1])
        .await
        .unwrap();
    let booked = flows::book(
        &app.store,
        &other,
        &BookingRequest {
            slot: together.slots[0],
            subject: "Held for the second person".into(),
            attendees: vec![],
            location: None,
            online_meeting: false,
            transaction_id: "app-1".into(),
            zone: together.hours.zone,
        },
    )
    .await
    .unwrap();
    assert_eq!(booked.account_id, None);
    let after = flows::free_slots(&access, window, request, &[people[1].clone()])
        .await
        .unwrap();
    assert!(!after.slots.iter().any(|s| s.overlaps(&together.slots[0])));
    // Someone unknown is said to be unknown rather than taken as free.
    let unknown = flows::free_slots(&access, window, request, &["nobody@nowhere.example".into()])
        .await
        .unwrap();
    assert_eq!(unknown.unknown.len(), 1);
}

on_both_stores!(
    mailboxes_reached_with_application_permissions_book_for_several_people,
    connect_list_free_book_move_cancel_remove,
    two_concurrent_bookings_of_one_slot_never_both_succeed,
    tampered_state_replayed_code_and_wrong_verifier_are_refused,
    revoked_and_idle_refresh_tokens_turn_the_account_to_needs_reconnect,
);
