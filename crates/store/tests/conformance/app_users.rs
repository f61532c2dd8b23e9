//! The people who log in, on both backends: names unique whatever their case, sessions that end
//! when they expire or when their person's password or role changes, the one-time set-up link,
//! and an admin that always remains; and the contact search the pages page through.

use store::{AppRole, ContactKind, ContactSearch, ContactSort, SessionTimes, StoreError};
use testkit::StoreKind;

testkit::on_both_stores!(
    people_sessions_and_the_last_admin,
    the_set_up_link_makes_one_admin_once,
    contacts_are_searched_sorted_and_counted,
);

const TIMES: SessionTimes = SessionTimes {
    idle_millis: 60_000,
    absolute_millis: 3_600_000,
};

async fn people_sessions_and_the_last_admin(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    assert_eq!(store.admin_count().await.unwrap(), 0);
    let ana = store
        .create_app_user(" Ana ", "$argon2id$hash-a", AppRole::Admin)
        .await
        .unwrap();
    assert_eq!(ana.name, "Ana");
    let taken = store
        .create_app_user("ANA", "$argon2id$hash-b", AppRole::Viewer)
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Conflict(_)), "{taken}");
    let bob = store
        .create_app_user("bob", "$argon2id$hash-b", AppRole::Viewer)
        .await
        .unwrap();
    let (found, hash) = store.app_user_credentials("aNa").await.unwrap().unwrap();
    assert_eq!((found.id, hash.as_str()), (ana.id, "$argon2id$hash-a"));
    assert!(store.app_user_credentials("carol").await.unwrap().is_none());

    store
        .create_app_session("token-bob", bob.id, "csrf-bob", TIMES)
        .await
        .unwrap();
    let session = store
        .app_session("token-bob", 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.user.name, "bob");
    assert_eq!(session.csrf_token, "csrf-bob");
    assert!(
        !format!("{session:?}").contains("csrf-bob"),
        "Debug hides the token"
    );
    assert!(
        store
            .app_session("token-unknown", 60_000)
            .await
            .unwrap()
            .is_none()
    );

    // A new role, or a new password, ends the person's sessions.
    store
        .set_app_user_role(bob.id, AppRole::Admin)
        .await
        .unwrap();
    assert!(
        store
            .app_session("token-bob", 60_000)
            .await
            .unwrap()
            .is_none()
    );
    store
        .create_app_session("token-bob-2", bob.id, "csrf", TIMES)
        .await
        .unwrap();
    store
        .set_app_user_password(bob.id, "$argon2id$new")
        .await
        .unwrap();
    assert!(
        store
            .app_session("token-bob-2", 60_000)
            .await
            .unwrap()
            .is_none()
    );

    // A session past its time is gone.
    store
        .create_app_session(
            "token-old",
            ana.id,
            "csrf",
            SessionTimes {
                idle_millis: -1,
                absolute_millis: 3_600_000,
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .app_session("token-old", 60_000)
            .await
            .unwrap()
            .is_none()
    );
    store
        .create_app_session("token-ana", ana.id, "csrf", TIMES)
        .await
        .unwrap();
    store.end_app_session("token-ana").await.unwrap();
    assert!(
        store
            .app_session("token-ana", 60_000)
            .await
            .unwrap()
            .is_none()
    );

    // Two admins: one may go; the last may not, nor become a viewer.
    store.remove_app_user(bob.id).await.unwrap();
    let last = store.remove_app_user(ana.id).await.unwrap_err();
    assert!(last.to_string().contains("only admin"), "{last}");
    let demoted = store
        .set_app_user_role(ana.id, AppRole::Viewer)
        .await
        .unwrap_err();
    assert!(demoted.to_string().contains("only admin"), "{demoted}");
    assert_eq!(store.app_users().await.unwrap().len(), 1);
    assert!(matches!(
        store.remove_app_user(9999).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
}

async fn the_set_up_link_makes_one_admin_once(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let later = store::now_millis() + 60_000;
    store.create_setup_token("link-1", later).await.unwrap();
    store.create_setup_token("link-2", later).await.unwrap();
    store
        .create_setup_token("link-old", store::now_millis() - 1)
        .await
        .unwrap();
    assert!(store.setup_token_usable("link-1").await.unwrap());
    assert!(!store.setup_token_usable("link-old").await.unwrap());
    assert!(!store.setup_token_usable("link-unknown").await.unwrap());
    assert!(
        store
            .create_first_admin("link-old", "eve", "$argon2id$x")
            .await
            .is_err()
    );
    let ana = store
        .create_first_admin("link-1", "ana", "$argon2id$x")
        .await
        .unwrap();
    assert_eq!(ana.role, AppRole::Admin);
    // Used, and with an admin there, no link works any more.
    assert!(
        store
            .create_first_admin("link-1", "eve", "$argon2id$x")
            .await
            .is_err()
    );
    assert!(!store.setup_token_usable("link-2").await.unwrap());
    assert!(
        store
            .create_first_admin("link-2", "eve", "$argon2id$x")
            .await
            .is_err()
    );
    assert_eq!(store.app_users().await.unwrap().len(), 1);
}

async fn contacts_are_searched_sorted_and_counted(kind: StoreKind) {
    let (store, home) = testkit::store_of(kind).await;
    let app = testkit::TestApp::on(
        store,
        home,
        testkit::graph_sim::SimConfig {
            seed: 3,
            tenants: vec![testkit::graph_sim::TenantSpec::with_users(30)],
            ..testkit::graph_sim::SimConfig::default()
        },
    )
    .await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let store = &app.store;
    let all = ContactSearch {
        limit: 10,
        ..ContactSearch::default()
    };
    let (first, total) = store.search_contacts(&all).await.unwrap();
    assert!(total >= 30, "{total}");
    assert_eq!(first.len(), 10);
    let names: Vec<String> = first
        .iter()
        .map(|c| c.display_name.to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ordered by name");
    let (last_page, _) = store
        .search_contacts(&ContactSearch {
            offset: total - 3,
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(last_page.len(), 3);
    let (backwards, _) = store
        .search_contacts(&ContactSearch {
            sort: ContactSort::Name,
            descending: true,
            limit: 1,
            ..all.clone()
        })
        .await
        .unwrap();
    // Backwards, the first is the last of the whole list forwards.
    let (every, _) = store
        .search_contacts(&ContactSearch {
            limit: 1000,
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        backwards[0].display_name,
        every.last().unwrap().display_name
    );
    let someone = &first[0];
    let wanted = someone.display_name.to_uppercase();
    let (found, count) = store
        .search_contacts(&ContactSearch {
            text: Some(wanted),
            ..all.clone()
        })
        .await
        .unwrap();
    assert!(count >= 1 && found.iter().any(|c| c.id == someone.id));
    let (none, zero) = store
        .search_contacts(&ContactSearch {
            text: Some("%_no such person_%".into()),
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!((none.len(), zero), (0, 0), "wildcards are taken literally");
    let (licensed, licensed_count) = store
        .search_contacts(&ContactSearch {
            only: Some(ContactKind::Licensed),
            limit: 1000,
            ..all.clone()
        })
        .await
        .unwrap();
    assert!(licensed.iter().all(|c| !c.licenses.is_empty()));
    let (unlicensed, unlicensed_count) = store
        .search_contacts(&ContactSearch {
            only: Some(ContactKind::Unlicensed),
            limit: 1000,
            ..all.clone()
        })
        .await
        .unwrap();
    assert!(unlicensed.iter().all(|c| c.licenses.is_empty()));
    assert_eq!(licensed_count + unlicensed_count, total);
    let one = store.contact(someone.id).await.unwrap().unwrap();
    assert_eq!(one.display_name, someone.display_name);
    assert_eq!(one.licenses, someone.licenses);
    assert!(store.contact(-1).await.unwrap().is_none());
}
