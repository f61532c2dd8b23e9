//! The fault matrix: every fault Microsoft Graph or the network between can throw at a run,
//! injected by the simulator, each on both stores. Every run ends with either the right data
//! (the same contacts as a clean sync of the same tenant into an empty store) or a clear failure
//! naming the fix, and never loses, duplicates or wrongly archives a contact; a delta link is
//! saved only with the data it covers.
//!
//! | Fault                                   | Outcome                                                                                  | Tested in |
//! |-----------------------------------------|------------------------------------------------------------------------------------------|-----------|
//! | 429 storm that passes                   | waits `Retry-After`, right data                                                          | `a_429_storm` here |
//! | 429 storm that outlasts the retries     | step failed "still throttled… run the sync later", nothing archived, link kept          | `a_429_storm` here |
//! | steady 429s on every 4th request        | right data                                                                               | `sync.rs` `a_whole_sync_succeeds_under_steady_throttling` |
//! | 429 on every request                    | run failed, nothing archived                                                             | `sync.rs` `a_run_that_fails_part_way_archives_nothing` |
//! | fractional and absurd `Retry-After`     | waited as said, capped                                                                   | `client.rs` `throttling_honours_a_fractional_retry_after`, `a_retry_after_of_1e20_…` |
//! | 503 / 504 that pass                     | backs off, right data                                                                    | `a_503_or_504` here; `client.rs` `unavailable_without_retry_after_backs_off_and_gives_up_in_the_end` |
//! | 503 / 504 that last                     | step failed "still unavailable… service health", nothing archived, link kept            | `a_503_or_504` here |
//! | 500 mid-listing                         | step failed with the status, nothing archived, no link                                  | `sync.rs` `a_run_that_fails_part_way_archives_nothing`, `a_round_that_breaks_saves_no_link` |
//! | connection resets                       | retried, right data; lasting: run failed, "could not reach… check the network, proxy and firewall" | `connection_resets` here; `client.rs` `a_dropped_connection_is_retried_and_a_slow_answer_waited_for` |
//! | body cut off mid-page                   | retried, right data; lasting: "could not reach… check the network, proxy and firewall" | `a_body_cut_off_mid_page` here |
//! | a page of 50 MB                         | read whole, right data                                                                   | `a_page_of_50_mb` here |
//! | access token expired mid-run            | a new token, one retry, right data                                                       | `an_access_token_expired_mid_run` here (every dataset); `client.rs` `an_access_token_expired_early_is_renewed_once_for_direct_and_batched_requests` |
//! | delta token expired: 410 Gone           | one full listing, warning `delta_reset`, right data, a fresh link                        | `an_expired_delta_token` here |
//! | delta token expired: `syncStateNotFound`| the same                                                                                 | `an_expired_delta_token` here |
//! | malformed page                          | step failed "cannot read… run the sync again", nothing archived, link kept              | `a_malformed_page` here; `client.rs` `a_malformed_page_is_an_error_not_a_panic` |
//! | saved delta link names another host     | dropped with warning `delta_link_foreign`, full listing, right data                     | `sync.rs` `a_link_saved_against_another_graph_address_is_dropped` |
//! | Graph's links name another host (proxy) | step failed "links to… outside… have the proxy pass them unchanged", link never saved   | `links_that_name_another_host` here; `client.rs` `next_links_to_another_host_are_not_followed` |

use std::collections::BTreeMap;

use domain::{ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, RunStatus};
use domain::{StepStatus, TenantId};
use graph_sim::{DeltaExpiry, Fault, UserPatch};
use serde_json::Value;
use store::{ContactFilter, NewConnection, Store};
use sync::{NoProgress, SyncEngine, SyncReport};
use testkit::{StoreKind, TestApp};

testkit::on_both_stores!(
    a_429_storm,
    a_503_or_504,
    connection_resets,
    a_body_cut_off_mid_page,
    a_page_of_50_mb,
    an_access_token_expired_mid_run,
    an_expired_delta_token,
    a_malformed_page,
    links_that_name_another_host,
);

/// Enough users for three pages of 40: a fault can hit a listing in its middle.
const USERS: u64 = 100;

/// The datasets of most rows: the contacts, what they hang on, and both delta rounds.
const DATASETS: [Dataset; 4] = [
    Dataset::Organization,
    Dataset::Licenses,
    Dataset::Users,
    Dataset::Groups,
];

/// A tenant synced once, then changed at the source (one user edited, one sent to the recycle
/// bin, one deleted for good, one added): what the faulted run has to bring in.
async fn synced_then_changed(kind: StoreKind, datasets: &[Dataset]) -> TestApp {
    let app = TestApp::with_users_on(kind, USERS).await;
    let tenant = app.tenant(0);
    app.add_connection_with(
        "contoso",
        &tenant.tenant_id,
        &tenant.client_id,
        &tenant.client_secret,
        datasets.to_vec(),
    )
    .await;
    let first = app.sync("contoso").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let key = app.tenant_key(0);
    assert!(app.sim.state.patch_user(
        &key,
        7,
        UserPatch {
            job_title: Some("Head of Care".into()),
            ..UserPatch::default()
        },
    ));
    assert!(app.sim.state.remove_user(&key, 8));
    app.sim.state.purge_user(&key, 9).unwrap();
    app.sim.state.add_user(&key).unwrap();
    app
}

fn tenant_of(app: &TestApp) -> TenantId {
    TenantId::parse(&app.tenant_key(0)).unwrap()
}

/// A full listing, as `sync --full` makes: the only round a users-page fault can hit, since a
/// delta round of a few changes is one page.
async fn full_sync(app: &TestApp) -> SyncReport {
    app.engine
        .sync_with("contoso", &NoProgress, true)
        .await
        .expect("sync ran")
}

/// Every contact of the tenant (archived ones too) as the store shows it, less the store's own
/// row numbers, by object id; a second contact for one object id fails the test.
async fn contacts(store: &Store, tenant: &TenantId) -> BTreeMap<String, Value> {
    let filter = ContactFilter {
        tenant_id: Some(*tenant),
        include_archived: true,
        ..ContactFilter::default()
    };
    let mut rows = Vec::new();
    store
        .each_contact(&filter, |c| {
            rows.push(c);
            Ok(())
        })
        .await
        .unwrap();
    let mut by_id = BTreeMap::new();
    for row in rows {
        let object_id = row
            .object_id
            .clone()
            .expect("a synced contact has its object id");
        let mut view = serde_json::to_value(&row).unwrap();
        if let Value::Object(fields) = &mut view {
            fields.remove("id");
            fields.remove("organization_id");
        }
        assert!(
            by_id.insert(object_id.clone(), view).is_none(),
            "two contacts for {object_id}"
        );
    }
    by_id
}

fn is_live(contact: &Value) -> bool {
    contact["archived"] == Value::Bool(false) && contact["restorable_until"].is_null()
}

/// What a clean sync of the tenant as it is now makes of it in an empty store of the same kind.
async fn clean_sync(
    app: &TestApp,
    kind: StoreKind,
    datasets: &[Dataset],
) -> BTreeMap<String, Value> {
    let (store, _home) = testkit::store_of(kind).await;
    let tenant = app.tenant(0);
    store
        .add_connection(NewConnection {
            name: ConnectionName::parse("clean").unwrap(),
            tenant_id: TenantId::parse(&tenant.tenant_id).unwrap(),
            client_id: ClientId::parse(&tenant.client_id).unwrap(),
            credential: Credential::Secret(ClientSecret::parse(&tenant.client_secret).unwrap()),
            cloud: Cloud::custom(&app.sim.url, &app.sim.url).unwrap(),
            datasets: datasets.to_vec(),
        })
        .await
        .unwrap();
    let (retry, _) = testkit::instant_retry(6);
    let engine = SyncEngine::new(store.clone())
        .with_retry(retry)
        .with_page_size(40);
    let report = engine.sync_with("clean", &NoProgress, true).await.unwrap();
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "clean sync: {report:?}"
    );
    contacts(&store, &tenant_of(app)).await
}

/// The store holds what a clean sync makes of the tenant: the same live contacts, field for
/// field, none twice; and whatever it archived or marked deleted, the tenant no longer has.
async fn assert_as_clean_sync(app: &TestApp, kind: StoreKind, datasets: &[Dataset]) {
    app.sim.state.clear_faults(&app.tenant_key(0));
    let ours = contacts(&app.store, &tenant_of(app)).await;
    let clean = clean_sync(app, kind, datasets).await;
    let live: BTreeMap<&String, &Value> = ours.iter().filter(|(_, c)| is_live(c)).collect();
    let expected: BTreeMap<&String, &Value> = clean.iter().collect();
    let missing: Vec<&&String> = expected
        .keys()
        .filter(|id| !live.contains_key(*id))
        .collect();
    let extra: Vec<&&String> = live
        .keys()
        .filter(|id| !expected.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "lost {missing:?}, kept {extra:?}"
    );
    for (id, contact) in &expected {
        assert_eq!(
            live[id], *contact,
            "contact {id} differs from a clean sync's"
        );
    }
    for (id, contact) in ours.iter().filter(|(_, c)| !is_live(c)) {
        assert!(
            !clean.contains_key(id),
            "{id} was archived or marked deleted but is still in the tenant: {contact}"
        );
    }
}

/// What a failed run must leave: every contact that was live still live and none archived or
/// marked deleted since (a run that did not finish proves no one gone), none twice, and the
/// delta links as they were.
struct Before {
    contacts: BTreeMap<String, Value>,
    links: (Option<String>, Option<String>),
}

async fn before(app: &TestApp) -> Before {
    Before {
        contacts: contacts(&app.store, &tenant_of(app)).await,
        links: links(app).await,
    }
}

/// The saved delta links of users and of groups.
async fn links(app: &TestApp) -> (Option<String>, Option<String>) {
    let tenant = tenant_of(app);
    (
        app.store.delta_link(&tenant, "users").await.unwrap(),
        app.store.delta_link(&tenant, "groups").await.unwrap(),
    )
}

/// Nothing lost or archived since `before`; the links of the delta datasets whose rounds
/// failed (`users`, and `groups` when `groups_failed`) as they were.
async fn assert_nothing_lost(app: &TestApp, before: &Before, groups_failed: bool) {
    let now = contacts(&app.store, &tenant_of(app)).await;
    for id in before
        .contacts
        .keys()
        .filter(|id| is_live(&before.contacts[*id]))
    {
        let after = now.get(id).unwrap_or_else(|| panic!("{id} is gone"));
        assert!(
            is_live(after),
            "{id} was archived by a run that failed: {after}"
        );
    }
    let newly_gone = now
        .iter()
        .filter(|(id, c)| !is_live(c) && before.contacts.get(*id).is_none_or(is_live))
        .count();
    assert_eq!(newly_gone, 0, "a failed run archived or marked contacts");
    let (users, groups) = links(app).await;
    assert_eq!(users, before.links.0, "a failed users round saved a link");
    if groups_failed {
        assert_eq!(groups, before.links.1, "a failed groups round saved a link");
    }
}

/// The step of `dataset` failed, saying `what` and naming `fix`.
fn assert_step_failed(report: &SyncReport, dataset: Dataset, what: &str, fix: &str) {
    let step = report.step(dataset).unwrap();
    assert_eq!(step.status, StepStatus::Failed, "{report:?}");
    let message = step.message.as_deref().unwrap_or_default();
    assert!(message.contains(what), "{message}");
    assert!(message.contains(fix), "{message}");
}

/// After a failed run and the fault cleared: the next ordinary run brings the right data, and
/// the one after it reads only changes (its link covers what was stored).
async fn assert_heals(app: &TestApp, kind: StoreKind, datasets: &[Dataset]) {
    app.sim.state.clear_faults(&app.tenant_key(0));
    let healed = app.sync("contoso").await;
    assert_eq!(healed.status, RunStatus::Succeeded, "{healed:?}");
    assert_as_clean_sync(app, kind, datasets).await;
    assert_links_cover_the_data(app).await;
}

/// The saved links are the ones of the stored data: the next run finds nothing to write and
/// lists no users page by page.
async fn assert_links_cover_the_data(app: &TestApp) {
    let pages = app.sim.state.stats().users_pages;
    let next = app.sync("contoso").await;
    assert_eq!(next.status, RunStatus::Succeeded, "{next:?}");
    assert_eq!(next.writes(), 0, "{next:?}");
    assert!(
        next.step(Dataset::Users)
            .unwrap()
            .message
            .as_deref()
            .is_some_and(|m| m.contains("delta")),
        "{next:?}"
    );
    assert_eq!(
        app.sim.state.stats().users_pages,
        pages,
        "a full listing was made"
    );
}

async fn a_429_storm(kind: StoreKind) {
    let app = synced_then_changed(kind, &DATASETS).await;
    let key = app.tenant_key(0);
    // A storm on the second page that passes within the retries: waited out as Graph asks.
    app.sim.state.inject(
        &key,
        Fault::UsersPageStorm {
            page: 2,
            status: 429,
            times: 4,
            retry_after: Some("7".into()),
        },
    );
    let waits = app.sleeper.waits().len();
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let new_waits = app.sleeper.waits()[waits..].to_vec();
    // Each 429 waits its Retry-After; the other lanes' requests in that window wait out what
    // is left of it, never longer.
    let asked = std::time::Duration::from_secs(7);
    assert!(
        new_waits.iter().filter(|w| **w == asked).count() >= 4,
        "each 429 waited its Retry-After: {new_waits:?}"
    );
    assert!(
        new_waits.iter().all(|w| *w <= asked),
        "no request waited longer than Graph asked: {new_waits:?}"
    );
    assert_as_clean_sync(&app, kind, &DATASETS).await;

    // One that outlasts them: the listing stops, archives nothing and saves no link.
    app.sim.state.add_user(&key).unwrap();
    app.sim.state.remove_user(&key, 20);
    app.sim.state.inject(
        &key,
        Fault::UsersPageStorm {
            page: 2,
            status: 429,
            times: 1000,
            retry_after: Some("1".into()),
        },
    );
    let kept = before(&app).await;
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    assert_step_failed(
        &report,
        Dataset::Users,
        "still throttled by Microsoft after 6 attempts (last answer 429)",
        "run the sync later or less often",
    );
    assert_nothing_lost(&app, &kept, false).await;
    assert_heals(&app, kind, &DATASETS).await;
}

async fn a_503_or_504(kind: StoreKind) {
    let app = synced_then_changed(kind, &DATASETS).await;
    let key = app.tenant_key(0);
    for (page, status) in [(1, 503), (3, 504)] {
        app.sim.state.inject(
            &key,
            Fault::UsersPageStorm {
                page,
                status,
                times: 3,
                retry_after: None,
            },
        );
        let report = full_sync(&app).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{status}: {report:?}");
        assert_as_clean_sync(&app, kind, &DATASETS).await;
    }

    app.sim.state.remove_user(&key, 30);
    app.sim.state.inject(
        &key,
        Fault::UsersPageStorm {
            page: 3,
            status: 504,
            times: 1000,
            retry_after: None,
        },
    );
    let kept = before(&app).await;
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    assert_step_failed(
        &report,
        Dataset::Users,
        "Microsoft Graph was still unavailable after 6 attempts (last answer 504)",
        "check the tenant's service health",
    );
    assert_nothing_lost(&app, &kept, false).await;
    assert_heals(&app, kind, &DATASETS).await;
}

async fn connection_resets(kind: StoreKind) {
    let app = synced_then_changed(kind, &DATASETS).await;
    let key = app.tenant_key(0);
    // The first requests of the run lose their connection, then it holds.
    app.sim
        .state
        .inject(&key, Fault::ConnectionReset { count: 4 });
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_as_clean_sync(&app, kind, &DATASETS).await;

    app.sim.state.remove_user(&key, 40);
    app.sim
        .state
        .inject(&key, Fault::ConnectionReset { count: 100_000 });
    let kept = before(&app).await;
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert_step_failed(
        &report,
        Dataset::Organization,
        "could not reach",
        "Check the network, proxy and firewall",
    );
    assert!(
        report
            .steps
            .iter()
            .all(|s| matches!(s.status, StepStatus::Failed | StepStatus::Skipped)),
        "{report:?}"
    );
    assert_nothing_lost(&app, &kept, true).await;
    assert_heals(&app, kind, &DATASETS).await;
}

async fn a_body_cut_off_mid_page(kind: StoreKind) {
    let app = synced_then_changed(kind, &DATASETS).await;
    let key = app.tenant_key(0);
    app.sim
        .state
        .inject(&key, Fault::CutUsersPage { page: 2, times: 3 });
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_as_clean_sync(&app, kind, &DATASETS).await;

    app.sim.state.remove_user(&key, 50);
    app.sim.state.inject(
        &key,
        Fault::CutUsersPage {
            page: 2,
            times: 1000,
        },
    );
    let kept = before(&app).await;
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    assert_step_failed(
        &report,
        Dataset::Users,
        "could not reach",
        "Check the network, proxy and firewall",
    );
    assert_nothing_lost(&app, &kept, false).await;
    assert_heals(&app, kind, &DATASETS).await;
}

async fn a_page_of_50_mb(kind: StoreKind) {
    let app = synced_then_changed(kind, &DATASETS).await;
    let key = app.tenant_key(0);
    app.sim.state.inject(
        &key,
        Fault::HugeUsersPage {
            page: 2,
            megabytes: 50,
        },
    );
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_as_clean_sync(&app, kind, &DATASETS).await;
    assert_links_cover_the_data(&app).await;
}

async fn an_access_token_expired_mid_run(kind: StoreKind) {
    // Every dataset: the token runs out under direct requests, pages, batches and reports alike.
    let app = synced_then_changed(kind, &Dataset::ALL).await;
    let key = app.tenant_key(0);
    for after in [0, 3, 9, 17, 30] {
        let tokens = app.sim.state.stats().token_requests;
        app.sim
            .state
            .inject(&key, Fault::ExpireAccessTokens { after });
        let report = app.sync("contoso").await;
        assert_eq!(
            report.status,
            RunStatus::Succeeded,
            "after {after}: {report:?}"
        );
        assert!(
            app.sim.state.stats().token_requests > tokens,
            "after {after}: a new token was asked for"
        );
        app.sim.state.add_user(&key).unwrap();
    }
    app.sim
        .state
        .inject(&key, Fault::ExpireAccessTokens { after: 5 });
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_as_clean_sync(&app, kind, &Dataset::ALL).await;
    assert_links_cover_the_data(&app).await;
}

async fn an_expired_delta_token(kind: StoreKind) {
    let app = synced_then_changed(kind, &DATASETS).await;
    let key = app.tenant_key(0);
    for shape in [DeltaExpiry::Gone, DeltaExpiry::SyncStateNotFound] {
        let pages = app.sim.state.stats().users_pages;
        app.sim
            .state
            .inject(&key, Fault::ExpireDeltaTokens { shape });
        let report = app.sync("contoso").await;
        assert_eq!(report.status, RunStatus::Succeeded, "{shape:?}: {report:?}");
        let resets: Vec<&str> = report
            .warnings
            .iter()
            .filter(|w| w.code == "delta_reset")
            .map(|w| w.message.as_str())
            .collect();
        assert_eq!(resets.len(), 2, "users and groups: {resets:?}");
        assert!(
            resets.iter().all(|m| m.contains("listed again")),
            "{resets:?}"
        );
        assert_eq!(
            report.step(Dataset::Users).unwrap().message.as_deref(),
            Some("full listing")
        );
        assert!(app.sim.state.stats().users_pages > pages, "{shape:?}");
        assert_as_clean_sync(&app, kind, &DATASETS).await;
        assert_links_cover_the_data(&app).await;
        // The next shape meets changes again.
        app.sim.state.remove_user(&key, 60);
        app.sim.state.add_user(&key).unwrap();
    }
}

async fn a_malformed_page(kind: StoreKind) {
    let app = synced_then_changed(kind, &DATASETS).await;
    let key = app.tenant_key(0);
    app.sim
        .state
        .inject(&key, Fault::MalformedUsersPage { page: 2 });
    let kept = before(&app).await;
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    assert_step_failed(
        &report,
        Dataset::Users,
        "Microsoft sent something m365sync cannot read",
        "Run the sync again",
    );
    assert_nothing_lost(&app, &kept, false).await;
    assert_heals(&app, kind, &DATASETS).await;
}

async fn links_that_name_another_host(kind: StoreKind) {
    let app = synced_then_changed(kind, &DATASETS).await;
    let key = app.tenant_key(0);
    let elsewhere = "https://graph.proxy.example";
    app.sim.state.inject(
        &key,
        Fault::ForeignLinks {
            base: elsewhere.into(),
        },
    );
    // A delta round of a few changes is one page: only its delta link leads elsewhere. It is
    // refused, and the link saved before stays, to read the same changes next time.
    let kept = before(&app).await;
    assert!(kept.links.0.is_some() && kept.links.1.is_some());
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    for dataset in [Dataset::Users, Dataset::Groups] {
        assert_step_failed(
            &report,
            dataset,
            &format!("links to {elsewhere}/v1.0/"),
            "have it pass them unchanged, or set the connection's Graph URL",
        );
    }
    assert_nothing_lost(&app, &kept, true).await;
    // A whole listing is refused at its first next link, having archived nothing.
    let report = full_sync(&app).await;
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    assert_step_failed(
        &report,
        Dataset::Users,
        "outside the connection's Graph address",
        "set the connection's Graph URL",
    );
    assert_nothing_lost(&app, &kept, true).await;
    assert_heals(&app, kind, &DATASETS).await;
}
