//! The sync pipeline against the simulator: the invariants of DESIGN.md, one test each, and the
//! connection test's diagnoses.

use domain::devices::{DeviceRecord, ManagedDeviceRecord};
use std::collections::HashSet;

use domain::rows::Keyed;
use domain::usage::{SignInRecord, UsageRecord};
use domain::{Dataset, RunStatus, StepStatus, TenantId};
use graph_sim::{DeviceChange, Fault, SimConfig, TenantSpec, UserPatch};
use store::typed::TypedTable;
use store::{ContactFilter, StepCounts};
use testkit::{StoreKind, TestApp};

// Every scenario runs on SQLite and on PostgreSQL: a query one backend accepts and the other
// refuses cannot hide.
testkit::on_both_stores!(
    first_sync_fills_the_store_and_an_unchanged_resync_writes_nothing,
    identity_is_the_object_id_and_no_run_creates_a_duplicate,
    a_run_that_fails_part_way_archives_nothing,
    concealed_report_names_attach_nothing_and_the_run_names_the_setting,
    changes_at_the_source_arrive_and_licence_counts_follow,
    a_tenant_finds_its_organisation_by_exact_name_before_creating_one,
    tenant_inventories_sync_resync_idempotently_and_warn_of_expiring_credentials,
    a_dataset_without_its_permission_fails_alone,
    products_are_the_licences_plans_less_those_switched_off,
    usage_reports_attach_to_contacts_and_respect_concealment,
    groups_and_directory_roles_name_their_members,
    group_memberships_follow_changes_by_delta,
    intune_devices_and_their_software_link_to_people,
    a_device_gone_from_the_tenant_is_archived_and_an_unchanged_resync_writes_nothing,
    sign_in_activity_shows_on_contacts_and_needs_a_premium_tenant,
    the_audit_trail_comes_from_the_management_activity_api,
    audit_records_past_the_retention_are_deleted_in_their_tenant_alone,
    deleted_mailboxes_stay_apart_and_shared_ones_say_so,
    seats_bought_and_devices_retired_through_the_control_api_arrive,
    a_whole_sync_succeeds_under_steady_throttling,
    control_characters_from_microsoft_never_reach_the_store,
    a_link_saved_against_another_graph_address_is_dropped,
    a_user_no_store_could_keep_is_left_out_alone,
    filters_leave_users_out_with_the_reason_and_let_them_back,
    a_filter_that_would_archive_most_contacts_is_held,
    a_drop_larger_than_the_guard_is_held_until_accepted,
    a_user_replayed_as_removed_then_listed_stays_active,
    only_members_of_a_chosen_group_are_kept,
    a_local_field_keeps_its_hand_edit_and_a_mapped_one_lands_in_its_custom_field,
    the_run_log_names_every_record_changed_and_nothing_unchanged,
    a_connection_test_is_kept_with_its_outcome,
    a_page_graph_would_not_give_is_logged_with_its_request_id,
    software_is_consolidated_and_the_tenant_snapshotted_after_a_sync,
);

fn tenant_filter(app: &TestApp) -> ContactFilter {
    ContactFilter {
        tenant_id: Some(TenantId::parse(&app.tenant_key(0)).unwrap()),
        ..ContactFilter::default()
    }
}

/// Every contact of the first tenant, archived ones left out.
async fn tenant_contacts(app: &TestApp) -> Vec<store::ContactRow> {
    let mut contacts = Vec::new();
    app.store
        .each_contact(&tenant_filter(app), |c| {
            contacts.push(c);
            Ok(())
        })
        .await
        .unwrap();
    contacts
}

/// A typed dataset's rows of the tenant at `position`, archived ones too when asked.
async fn rows_of<R: TypedTable>(app: &TestApp, include_archived: bool) -> Vec<(R, bool)> {
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    app.store
        .typed_rows::<R>(Some(&tenant), include_archived)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.row.record, r.row.archived))
        .collect()
}

async fn active_rows<R: TypedTable>(app: &TestApp) -> Vec<R> {
    rows_of::<R>(app, false)
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

async fn contact_count(app: &TestApp, include_archived: bool) -> usize {
    let filter = ContactFilter {
        include_archived,
        ..tenant_filter(app)
    };
    let mut n = 0;
    app.store
        .each_contact(&filter, |_| {
            n += 1;
            Ok(())
        })
        .await
        .unwrap();
    n
}

/// Users of the simulated tenant that have a mailbox, as the simulator holds them.
fn users_with_mailbox(app: &TestApp, users: u64) -> usize {
    let key = app.tenant_key(0);
    let tenant = app.sim.state.tenant(&key).unwrap();
    (0..users)
        .filter_map(|i| tenant.user(i))
        .filter(|u| u.has_mailbox)
        .count()
}

async fn first_sync_fills_the_store_and_an_unchanged_resync_writes_nothing(store: StoreKind) {
    let app = TestApp::with_users_on(store, 150).await;
    let connection = app.add_connection("contoso", 0).await;
    let first = app.sync("contoso").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let users = first.step(Dataset::Users).unwrap();
    assert_eq!(
        users.counts,
        StepCounts {
            created: 150,
            ..StepCounts::default()
        }
    );
    assert_eq!(first.step(Dataset::Organization).unwrap().counts.created, 1);
    assert_eq!(first.step(Dataset::Licenses).unwrap().counts.created, 6);
    let unknown: Vec<&str> = first
        .warnings
        .iter()
        .filter(|w| w.code == "sku_unknown")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(unknown[0].contains("Microsoft_Teams_Premium"));
    assert!(first.step(Dataset::Mailboxes).unwrap().counts.created > 100);
    assert_eq!(contact_count(&app, false).await, 150);
    // UPNs are joined case-insensitively: every user with a mailbox got its figures.
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    assert_eq!(
        app.store.attached_mailbox_count(&tenant).await.unwrap() as usize,
        users_with_mailbox(&app, 150)
    );

    // The daily reports and service health are cached; fetched again, they compare unchanged.
    app.store.clear_cache(&connection, None).await.unwrap();
    let second = app.sync("contoso").await;
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(second.writes(), 0, "{second:?}");
    assert!(
        !second.warnings.iter().any(|w| w.code == "sku_unknown"),
        "a new SKU is reported once"
    );
    for step in &second.steps {
        assert_eq!(step.status, StepStatus::Succeeded);
        // Users and groups come by delta and audit records by time window: an unchanged tenant
        // sends none.
        let expected = if matches!(
            step.dataset,
            Dataset::Users | Dataset::Groups | Dataset::Audit
        ) {
            0
        } else {
            first.step(step.dataset).unwrap().counts.created
        };
        assert_eq!(step.counts.unchanged, expected, "{:?}", step.dataset);
    }
    assert!(
        second
            .step(Dataset::Users)
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .contains("delta")
    );
    // A full (clean) sync lists every user again, and still writes nothing.
    let full = app
        .engine
        .sync_with("contoso", &sync::NoProgress, true)
        .await
        .unwrap();
    assert_eq!(full.writes(), 0, "{full:?}");
    assert_eq!(full.step(Dataset::Users).unwrap().counts.unchanged, 150);
    let runs = app.store.runs(Some("contoso"), 5).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].kind, "full");
    assert_eq!(runs[0].steps.len(), Dataset::ALL.len());
    // Every step names its tenant, even the very first (which learned the tenant's name).
    assert!(
        first
            .steps
            .iter()
            .all(|s| s.tenant_id == tenant && s.tenant_name.as_deref() == Some("Contoso Ltd")),
        "{first:?}"
    );
    let key = app.tenant_key(0);
    assert!(
        runs[2]
            .steps
            .iter()
            .all(|s| s.tenant_id.as_deref() == Some(key.as_str())
                && s.tenant_name.as_deref() == Some("Contoso Ltd")),
        "{:?}",
        runs[2]
    );
}

async fn identity_is_the_object_id_and_no_run_creates_a_duplicate(store: StoreKind) {
    let app = TestApp::with_users_on(store, 90).await;
    app.add_connection("contoso", 0).await;
    // Two runs at once: one goes ahead, the other is refused, naming the run that is going.
    let (a, b) = tokio::join!(
        app.engine.sync("contoso", &sync::NoProgress),
        app.engine.sync("contoso", &sync::NoProgress)
    );
    let (done, refused) = match (a, b) {
        (Ok(done), Err(refused)) | (Err(refused), Ok(done)) => (done, refused),
        other => panic!("one run, and one refusal: {other:?}"),
    };
    assert_eq!(done.status, RunStatus::Succeeded);
    assert!(refused.to_string().contains("already syncing"), "{refused}");
    assert_eq!(contact_count(&app, true).await, 90);

    // A user renamed at the source is the same contact, updated.
    let key = app.tenant_key(0);
    assert!(app.sim.state.patch_user(
        &key,
        5,
        UserPatch {
            display_name: Some("Zoë Ødegård-Smith".into()),
            job_title: Some("CFO".into()),
            ..UserPatch::default()
        }
    ));
    let report = app.sync("contoso").await;
    assert_eq!(
        report.step(Dataset::Users).unwrap().counts,
        StepCounts {
            updated: 1,
            unchanged: 0,
            ..StepCounts::default()
        }
    );
    assert_eq!(contact_count(&app, true).await, 90);
    let mut renamed = Vec::new();
    app.store
        .each_contact(&tenant_filter(&app), |c| {
            if c.display_name == "Zoë Ødegård-Smith" {
                renamed.push(c)
            }
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(renamed.len(), 1);
    assert_eq!(renamed[0].job_title.as_deref(), Some("CFO"));
}

async fn a_run_that_fails_part_way_archives_nothing(store: StoreKind) {
    let app = TestApp::with_users_on(store, 120).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    for index in [3, 50, 100] {
        assert!(app.sim.state.remove_user(&key, index));
    }
    // A full listing breaks on page 2 of 3: the removed users must not be archived.
    app.sim.state.inject(
        &key,
        Fault::FailUsersPage {
            page: 2,
            status: 500,
        },
    );
    let broken = app
        .engine
        .sync_with("contoso", &sync::NoProgress, true)
        .await
        .unwrap();
    assert_eq!(broken.status, RunStatus::Partial);
    let users = broken.step(Dataset::Users).unwrap();
    assert_eq!(users.status, StepStatus::Failed);
    assert_eq!(users.counts.archived, 0);
    assert!(
        users.message.as_deref().unwrap().contains("500"),
        "{users:?}"
    );
    assert_eq!(contact_count(&app, false).await, 120);

    // Throttled out: the same.
    app.sim.state.clear_faults(&key);
    app.sim.state.inject(
        &key,
        Fault::Throttle {
            count: 1000,
            retry_after: Some("1".into()),
        },
    );
    let throttled = app.sync("contoso").await;
    assert_eq!(throttled.status, RunStatus::Failed);
    assert_eq!(contact_count(&app, false).await, 120);

    // Once a round completes — here the delta round from the last good sync, whose link the
    // failed runs left alone — exactly the removed users are marked deleted (they sit in the
    // recycle bin, restorable), and nothing else changes.
    app.sim.state.clear_faults(&key);
    let healed = app.sync("contoso").await;
    assert_eq!(healed.status, RunStatus::Succeeded, "{healed:?}");
    let users = healed.step(Dataset::Users).unwrap().counts;
    assert_eq!((users.deleted, users.archived), (3, 0), "{users:?}");
    let in_bin = tenant_contacts(&app)
        .await
        .iter()
        .filter(|c| c.restorable_until.is_some())
        .count();
    assert_eq!(in_bin, 3);
    assert_eq!(contact_count(&app, false).await, 120);
    assert_eq!(
        contact_count(&app, true).await,
        120,
        "marked, never deleted"
    );
}

async fn concealed_report_names_attach_nothing_and_the_run_names_the_setting(store: StoreKind) {
    let mut spec = TenantSpec::with_users(60);
    spec.concealed_names = true;
    let app = TestApp::new_on(
        store,
        SimConfig {
            seed: 11,
            tenants: vec![spec],
            ..SimConfig::default()
        },
    )
    .await;
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "warnings do not fail a run"
    );
    let mailboxes = report.step(Dataset::Mailboxes).unwrap();
    assert_eq!(mailboxes.status, StepStatus::Skipped);
    assert_eq!(mailboxes.counts.writes(), 0);
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    assert_eq!(app.store.attached_mailbox_count(&tenant).await.unwrap(), 0);
    let warning = report
        .warnings
        .iter()
        .find(|w| w.code == "report_names_concealed")
        .expect("a warning");
    assert!(
        warning
            .message
            .contains("Display concealed user, group, and site names in all reports"),
        "{}",
        warning.message
    );
    assert!(
        warning
            .message
            .contains("Org settings › Services › Reports")
    );

    // Once the admin turns concealment off, the figures arrive.
    app.sim.state.set_concealed(&app.tenant_key(0), false);
    let after = app.sync("contoso").await;
    assert!(
        !after
            .warnings
            .iter()
            .any(|w| w.code == "report_names_concealed")
    );
    assert_eq!(
        app.store.attached_mailbox_count(&tenant).await.unwrap() as usize,
        users_with_mailbox(&app, 60)
    );
}

async fn changes_at_the_source_arrive_and_licence_counts_follow(store: StoreKind) {
    let app = TestApp::with_users_on(store, 45).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    app.sim.state.add_user(&key).unwrap();
    app.sim.state.patch_user(
        &key,
        0,
        UserPatch {
            licenses: Some(vec!["FLOW_FREE".into()]),
            ..UserPatch::default()
        },
    );
    let report = app.sync("contoso").await;
    let users = report.step(Dataset::Users).unwrap().counts;
    assert_eq!((users.created, users.updated), (1, 1));
    assert!(report.step(Dataset::Licenses).unwrap().counts.updated >= 1);
    let mut first = None;
    app.store
        .each_contact(&tenant_filter(&app), |c| {
            if first.is_none() {
                first = Some(c)
            }
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(first.unwrap().licenses, vec!["FLOW_FREE"]);
}

async fn a_tenant_finds_its_organisation_by_exact_name_before_creating_one(store: StoreKind) {
    let app = TestApp::with_users_on(store, 5).await;
    let existing = app.store.create_organization("contoso LTD").await.unwrap();
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    assert_eq!(
        report.step(Dataset::Organization).unwrap().counts.updated,
        1
    );
    let orgs = app.store.organizations().await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].id, existing);
    assert_eq!(orgs[0].contacts, 5);
    assert!(
        orgs[0]
            .verified_domains
            .contains(&"contoso.example".to_string())
    );
}

mod connection_test {
    use super::*;

    testkit::on_both_stores!(
        a_good_connection_passes_with_its_permissions_listed,
        each_failure_has_its_code,
        a_missing_permission_is_named,
        an_unreachable_endpoint_says_so,
    );
    use sync::test_connection;

    async fn diagnose(app: &TestApp, name: &str) -> sync::ConnectionTestReport {
        let connection = app.store.connection(name).await.unwrap().unwrap();
        test_connection(&app.store, &connection, testkit::instant_retry(2).0)
            .await
            .unwrap()
    }

    async fn a_good_connection_passes_with_its_permissions_listed(store: StoreKind) {
        let app = TestApp::with_users_on(store, 3).await;
        app.add_connection("ok", 0).await;
        let report = diagnose(&app, "ok").await;
        assert!(report.ok, "{report:?}");
        assert!(report.missing_permissions.is_empty());
        assert!(
            report
                .granted_permissions
                .contains(&"Reports.Read.All".to_string())
        );
        assert!(report.datasets.iter().all(|(_, state)| state == "ok"));
    }

    async fn each_failure_has_its_code(store: StoreKind) {
        let app = TestApp::new_on(
            store,
            SimConfig {
                seed: 5,
                tenants: vec![TenantSpec::with_users(2), TenantSpec::with_users(2)],
                ..SimConfig::default()
            },
        )
        .await;
        let a = app.tenant(0);
        let b = app.tenant(1);
        let unknown = "3c2e1b0a-0000-4000-8000-000000000000";
        let all = Dataset::ALL.to_vec();
        let cases = [
            (
                "tenant",
                unknown,
                a.client_id.as_str(),
                a.client_secret.as_str(),
                "tenant_not_found",
            ),
            (
                "app",
                a.tenant_id.as_str(),
                unknown,
                a.client_secret.as_str(),
                "app_not_found",
            ),
            (
                "secret",
                a.tenant_id.as_str(),
                a.client_id.as_str(),
                "Xyz8Q~definitely-not-the-right-value-000",
                "invalid_secret",
            ),
            (
                "secretid",
                a.tenant_id.as_str(),
                a.client_id.as_str(),
                "6f1d2c3b-4a59-4e8f-9a0b-1c2d3e4f5a6b",
                "secret_id_not_value",
            ),
            (
                "expired",
                a.tenant_id.as_str(),
                a.client_id.as_str(),
                a.expired_client_secret.as_str(),
                "expired_secret",
            ),
            (
                "consent",
                a.tenant_id.as_str(),
                b.client_id.as_str(),
                b.client_secret.as_str(),
                "app_not_consented",
            ),
        ];
        for (name, tenant, client, secret, code) in cases {
            app.add_connection_with(name, tenant, client, secret, all.clone())
                .await;
            let report = diagnose(&app, name).await;
            assert!(!report.ok);
            assert_eq!(report.problems.len(), 1, "{report:?}");
            assert_eq!(report.problems[0].code, code, "{report:?}");
            assert!(!report.problems[0].fix.is_empty());
        }
    }

    async fn a_missing_permission_is_named(store: StoreKind) {
        let app = TestApp::with_users_on(store, 2).await;
        app.sim.state.set_roles(
            &app.tenant_key(0),
            vec!["User.Read.All".into(), "Organization.Read.All".into()],
        );
        let t = app.tenant(0);
        app.add_connection_with(
            "partial",
            &t.tenant_id,
            &t.client_id,
            &t.client_secret,
            Dataset::DEFAULT.to_vec(),
        )
        .await;
        let report = diagnose(&app, "partial").await;
        assert!(!report.ok);
        assert_eq!(report.missing_permissions, vec!["Reports.Read.All"]);
        let problem = &report.problems[0];
        assert_eq!(problem.code, "permission_missing");
        assert!(
            problem.message.contains("Reports.Read.All") && problem.message.contains("mailboxes"),
            "{problem:?}"
        );
        assert!(
            report
                .datasets
                .contains(&(Dataset::Users, "ok".to_string()))
        );

        // No consent at all: a token without roles.
        app.sim.state.set_roles(&app.tenant_key(0), vec![]);
        let report = diagnose(&app, "partial").await;
        assert_eq!(report.problems[0].code, "consent_missing");
    }

    async fn an_unreachable_endpoint_says_so(store: StoreKind) {
        let app = TestApp::with_users_on(store, 1).await;
        let a = app.tenant(0);
        app.store
            .add_connection(store::NewConnection {
                name: domain::ConnectionName::parse("down").unwrap(),
                tenant_id: TenantId::parse(&a.tenant_id).unwrap(),
                client_id: domain::ClientId::parse(&a.client_id).unwrap(),
                credential: domain::Credential::Secret(
                    domain::ClientSecret::parse(&a.client_secret).unwrap(),
                ),
                cloud: domain::Cloud::custom("http://127.0.0.1:9", "http://127.0.0.1:9").unwrap(),
                datasets: vec![Dataset::Users],
            })
            .await
            .unwrap();
        let report = diagnose(&app, "down").await;
        assert_eq!(report.problems[0].code, "unreachable");
    }
}

async fn tenant_inventories_sync_resync_idempotently_and_warn_of_expiring_credentials(
    store: StoreKind,
) {
    let app = TestApp::with_users_on(store, 10).await;
    app.add_connection("contoso", 0).await;
    let first = app.sync("contoso").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let created = |d: Dataset| first.step(d).unwrap().counts.created;
    assert_eq!(created(Dataset::Domains), 3);
    assert_eq!(
        created(Dataset::ServiceHealth),
        8 + 3,
        "eight services and three issues"
    );
    assert_eq!(
        created(Dataset::ServiceMessages),
        130,
        "both pages of the message centre"
    );
    assert_eq!(created(Dataset::Applications), 4);
    assert_eq!(created(Dataset::TermsOfUse), 2);

    let codes: Vec<(&str, &str)> = first
        .warnings
        .iter()
        .map(|w| (w.code.as_str(), w.message.as_str()))
        .collect();
    assert!(
        codes
            .iter()
            .any(|(c, m)| *c == "credential_expired"
                && m.contains("m365sync's own app registration")),
        "{codes:?}"
    );
    assert!(
        codes.iter().any(|(c, m)| *c == "credential_expiring"
            && m.contains("Payroll Connector")
            && (m.contains("in 11 days") || m.contains("in 12 days"))),
        "{codes:?}"
    );
    assert!(
        !codes.iter().any(|(_, m)| m.contains("SSO Gateway")),
        "a certificate 200 days out is no concern yet"
    );

    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let health = app
        .store
        .inventory(Some(&tenant), Dataset::ServiceHealth, false)
        .await
        .unwrap();
    let exchange = health.iter().find(|h| h.name == "Exchange Online").unwrap();
    assert_eq!(
        exchange.document["status"], "serviceDegradation",
        "PascalCase from Graph, camelCase in the store"
    );
    let incident = health
        .iter()
        .find(|h| {
            h.document["kind"] == "issue"
                && h.document["classification"] == "incident"
                && h.document["is_resolved"] == false
        })
        .unwrap();
    assert_eq!(incident.document["posts"].as_array().unwrap().len(), 2);
    let domains = app
        .store
        .inventory(Some(&tenant), Dataset::Domains, false)
        .await
        .unwrap();
    assert_eq!(
        domains
            .iter()
            .filter(|d| d.document["is_verified"] == true)
            .count(),
        2
    );

    let second = app.sync("contoso").await;
    assert_eq!(second.writes(), 0, "{second:?}");
}

async fn a_dataset_without_its_permission_fails_alone(store: StoreKind) {
    let app = TestApp::with_users_on(store, 4).await;
    let mut roles: Vec<String> = graph_sim::DEFAULT_ROLES
        .iter()
        .map(|r| r.to_string())
        .collect();
    roles.retain(|r| r != "ServiceMessage.Read.All");
    app.sim.state.set_roles(&app.tenant_key(0), roles);
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Partial);
    let messages = report.step(Dataset::ServiceMessages).unwrap();
    assert_eq!(messages.status, StepStatus::Failed);
    assert!(
        messages
            .message
            .as_deref()
            .unwrap()
            .contains("Authorization_RequestDenied")
    );
    assert_eq!(
        report
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
            .count(),
        1
    );
    let connection = app.store.connection("contoso").await.unwrap().unwrap();
    let diagnosis = sync::test_connection(&app.store, &connection, testkit::instant_retry(2).0)
        .await
        .unwrap();
    assert_eq!(
        diagnosis.missing_permissions,
        vec!["ServiceMessage.Read.All"]
    );
    assert!(
        diagnosis.problems[0].message.contains("service_messages"),
        "{diagnosis:?}"
    );
}

async fn products_are_the_licences_plans_less_those_switched_off(store: StoreKind) {
    let app = TestApp::with_users_on(store, 200).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    let tenant = app.sim.state.tenant(&key).unwrap();
    let mut checked = 0;
    let contacts = tenant_contacts(&app).await;
    for index in 0..200 {
        let Some(user) = tenant.user(index) else {
            continue;
        };
        let contact = contacts
            .iter()
            .find(|c| c.object_id.as_deref() == Some(user.id.to_string().as_str()))
            .unwrap();
        let disabled: Vec<&str> = user
            .licenses
            .iter()
            .flat_map(|(_, d)| d.iter().copied())
            .collect();
        if user.licenses.is_empty() {
            assert!(contact.products.is_empty());
            continue;
        }
        let teams_off = !disabled.is_empty();
        assert_eq!(
            contact.products.contains(&"TEAMS1".to_string()),
            !teams_off
                && contact.licenses.iter().any(|l| l != "EXCHANGESTANDARD"
                    && l != "POWER_BI_STANDARD"
                    && l != "FLOW_FREE"
                    && l != "Microsoft_Teams_Premium"),
            "{contact:?}"
        );
        assert_eq!(contact.licenses.len(), contact.license_names.len());
        checked += 1;
    }
    assert!(checked > 100);
    assert!(contacts.iter().any(|c| {
        c.license_names
            .iter()
            .any(|n| n.starts_with("Microsoft 365") || n.starts_with("Office 365"))
    }));
}

mod delta {
    use super::*;

    testkit::on_both_stores!(
        changes_arrive_by_delta_and_removals_archive,
        a_full_listing_says_how_many_users_to_expect_and_a_delta_round_does_not,
        a_round_that_breaks_saves_no_link,
    );

    async fn changes_arrive_by_delta_and_removals_archive(store: StoreKind) {
        let app = TestApp::with_users_on(store, 100).await;
        app.add_connection("contoso", 0).await;
        app.sync("contoso").await;
        let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
        assert!(
            app.store
                .delta_link(&tenant, "users")
                .await
                .unwrap()
                .is_some(),
            "a full round saves its link"
        );
        let key = app.tenant_key(0);
        app.sim.state.patch_user(
            &key,
            7,
            UserPatch {
                job_title: Some("Head of Care".into()),
                ..UserPatch::default()
            },
        );
        // User 8 goes to the recycle bin (restorable), user 9 is deleted for good.
        app.sim.state.remove_user(&key, 8);
        app.sim.state.purge_user(&key, 9).unwrap();
        app.sim.state.add_user(&key).unwrap();
        let pages_before = app.sim.state.stats().users_pages;
        let report = app.sync("contoso").await;
        assert_eq!(
            report.step(Dataset::Users).unwrap().counts,
            StepCounts {
                created: 1,
                updated: 1,
                unchanged: 0,
                archived: 1,
                deleted: 1,
            }
        );
        assert_eq!(
            app.sim.state.stats().users_pages,
            pages_before,
            "no full listing was made"
        );
        // The restorable one is kept (marked deleted), the other archived.
        assert_eq!(contact_count(&app, false).await, 100);
        let in_bin = tenant_contacts(&app)
            .await
            .into_iter()
            .find(|c| c.restorable_until.is_some())
            .expect("a contact marked deleted");
        let until = in_bin.restorable_until.unwrap();
        let days = (until - store::now_millis()) as f64 / 86_400_000.0;
        assert!((29.9..=30.0).contains(&days), "{days}");
        let again = app.sync("contoso").await;
        assert_eq!(
            again.step(Dataset::Users).unwrap().counts,
            StepCounts::default()
        );
        // A clean sync does not list users in the recycle bin, and does not cut their window.
        let clean = app
            .engine
            .sync_with("contoso", &sync::NoProgress, true)
            .await
            .unwrap();
        assert_eq!(
            clean.step(Dataset::Users).unwrap().counts.archived,
            0,
            "{clean:?}"
        );
        assert!(
            tenant_contacts(&app)
                .await
                .iter()
                .any(|c| c.id == in_bin.id && c.restorable_until == Some(until))
        );
        // Restored in Microsoft 365: the same contact comes back.
        app.sim.state.restore_user(&key, 8).unwrap();
        let back = app.sync("contoso").await;
        assert_eq!(
            back.step(Dataset::Users).unwrap().counts.updated,
            1,
            "{back:?}"
        );
        let restored = tenant_contacts(&app)
            .await
            .into_iter()
            .find(|c| c.id == in_bin.id)
            .unwrap();
        assert_eq!(restored.restorable_until, None);
        let history = app.store.contact_history(in_bin.id).await.unwrap();
        assert!(
            history.iter().all(|h| h.field != "assignedLicenses"),
            "a restored user's licences did not change: {history:?}"
        );
        assert_eq!(contact_count(&app, true).await, 101, "no second contact");
    }

    async fn a_full_listing_says_how_many_users_to_expect_and_a_delta_round_does_not(
        store: StoreKind,
    ) {
        struct Expecting(std::sync::Mutex<Vec<(Dataset, u64)>>);
        impl sync::Progress for Expecting {
            fn expected(&self, step: sync::StepKey, total: u64) {
                self.0.lock().unwrap().push((step.dataset, total));
            }
        }
        let app = TestApp::with_users_on(store, 57).await;
        app.add_connection("contoso", 0).await;
        let progress = Expecting(std::sync::Mutex::new(Vec::new()));
        app.engine.sync("contoso", &progress).await.unwrap();
        assert_eq!(*progress.0.lock().unwrap(), vec![(Dataset::Users, 57)]);
        app.engine.sync("contoso", &progress).await.unwrap();
        assert_eq!(
            progress.0.lock().unwrap().len(),
            1,
            "a delta round counts nothing"
        );
    }

    async fn a_round_that_breaks_saves_no_link(store: StoreKind) {
        let app = TestApp::with_users_on(store, 100).await;
        app.add_connection("contoso", 0).await;
        app.sim.state.inject(
            &app.tenant_key(0),
            Fault::FailUsersPage {
                page: 3,
                status: 500,
            },
        );
        let broken = app.sync("contoso").await;
        assert_eq!(
            broken.step(Dataset::Users).unwrap().status,
            StepStatus::Failed
        );
        let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
        assert_eq!(
            app.store.delta_link(&tenant, "users").await.unwrap(),
            None,
            "the next run lists everything again"
        );
        app.sim.state.clear_faults(&app.tenant_key(0));
        let healed = app.sync("contoso").await;
        let users = healed.step(Dataset::Users).unwrap().counts;
        assert_eq!(users.created + users.unchanged, 100);
        assert!(
            app.store
                .delta_link(&tenant, "users")
                .await
                .unwrap()
                .is_some()
        );
    }
}

async fn usage_reports_attach_to_contacts_and_respect_concealment(store: StoreKind) {
    let app = TestApp::with_users_on(store, 80).await;
    let connection = app.add_connection("contoso", 0).await;
    let first = app.sync("contoso").await;
    let usage = first.step(Dataset::Usage).unwrap();
    assert_eq!(usage.status, StepStatus::Succeeded, "{usage:?}");
    assert!(usage.counts.created > 100, "{usage:?}");
    let contacts = tenant_contacts(&app).await;
    let licensed = contacts
        .iter()
        .find(|c| !c.licenses.is_empty() && c.mailbox.is_some())
        .unwrap();
    assert_eq!(licensed.usage["activity"]["report"], "activity");
    assert!(licensed.usage["activity"]["assigned_products"].is_string());
    assert!(licensed.usage["apps"]["windows"].is_boolean());
    assert!(licensed.usage["email"]["send_count"].is_number());
    assert!(
        licensed.usage["apps"].get("send_count").is_none(),
        "a report shows its own columns, not another's empty ones"
    );
    let guest = contacts
        .iter()
        .find(|c| c.user_type.as_deref() == Some("Guest"))
        .unwrap();
    assert!(
        ["activity", "apps", "email"]
            .iter()
            .all(|r| !guest.usage.contains_key(*r)),
        "unlicensed guests are in no usage report"
    );
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let rows = app
        .store
        .typed_rows::<UsageRecord>(Some(&tenant), true)
        .await
        .unwrap();
    assert_eq!(rows.len() as u64, usage.counts.created);
    // The reports are cached for a day: each sync below reads them again.
    app.store.clear_cache(&connection, None).await.unwrap();
    let again = app.sync("contoso").await;
    let step = again.step(Dataset::Usage).unwrap();
    assert_eq!(step.counts.writes(), 0, "{step:?}");
    assert_eq!(step.counts.unchanged, usage.counts.created);

    // A user deleted in the tenant leaves the reports: their rows of every report are archived,
    // everyone else's left alone.
    let key = app.tenant_key(0);
    let gone = (0..80)
        .filter_map(|index| app.sim.state.tenant(&key).unwrap().user(index))
        .find(|u| {
            u.upn
                .eq_ignore_ascii_case(licensed.user_principal_name.as_deref().unwrap())
        })
        .unwrap();
    assert!(app.sim.state.remove_user(&key, gone.index));
    app.store.clear_cache(&connection, None).await.unwrap();
    let after = app.sync("contoso").await;
    let step = after.step(Dataset::Usage).unwrap();
    assert_eq!(step.status, StepStatus::Succeeded, "{step:?}");
    assert_eq!(step.counts.archived, 3, "{step:?}");
    assert_eq!(step.counts.created + step.counts.updated, 0, "{step:?}");
    let archived: Vec<String> = app
        .store
        .typed_rows::<UsageRecord>(Some(&tenant), true)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.row.archived)
        .map(|r| r.row.record.key().to_string())
        .collect();
    let upn = gone.upn.to_lowercase();
    assert_eq!(
        archived,
        vec![
            format!("activity:{upn}"),
            format!("apps:{upn}"),
            format!("email:{upn}")
        ]
    );
    let active_before = rows.len() - 3;

    // Concealment on: nothing new is attached, nothing is archived, and the run says why.
    app.sim.state.set_concealed(&app.tenant_key(0), true);
    app.store.clear_cache(&connection, None).await.unwrap();
    let concealed = app.sync("contoso").await;
    let step = concealed.step(Dataset::Usage).unwrap();
    assert_eq!(step.status, StepStatus::Skipped);
    assert_eq!(step.counts.writes(), 0);
    assert_eq!(
        app.store
            .typed_rows::<UsageRecord>(Some(&tenant), false)
            .await
            .unwrap()
            .len(),
        active_before,
        "a concealed report archives nobody"
    );
    assert!(
        concealed
            .warnings
            .iter()
            .filter(|w| w.code == "report_names_concealed")
            .count()
            >= 2,
        "mailboxes and usage both warn"
    );
}

async fn groups_and_directory_roles_name_their_members(store: StoreKind) {
    let app = TestApp::with_users_on(store, 150).await;
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    assert_eq!(report.step(Dataset::Groups).unwrap().counts.created, 6);
    assert_eq!(
        report.step(Dataset::DirectoryRoles).unwrap().counts.created,
        4
    );
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let held = app.sim.state.tenant(&app.tenant_key(0)).unwrap();

    let roles = app
        .store
        .inventory(Some(&tenant), Dataset::DirectoryRoles, false)
        .await
        .unwrap();
    let admins = roles
        .iter()
        .find(|r| r.name == "Global Administrator")
        .unwrap();
    let upns: Vec<&str> = admins.document["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_principal_name"].as_str().unwrap())
        .collect();
    let expected = [held.user(0).unwrap().upn, held.user(1).unwrap().upn];
    assert_eq!(upns.len(), 2);
    assert!(
        expected.iter().all(|u| upns.contains(&u.as_str())),
        "{upns:?}"
    );
    assert_eq!(
        admins.document["role_template_id"],
        "62e90394-69f5-4237-9190-012177145e10"
    );

    // Members are read across pages of the tenant's users (999 a page here, 150 users).
    let groups = app.store.groups(Some(&tenant), false).await.unwrap();
    let all_staff = groups
        .iter()
        .find(|g| g.group.name() == "All Staff")
        .unwrap();
    let enabled_members = (0..150)
        .filter_map(|i| held.user(i))
        .filter(|u| u.user_type == "Member" && u.account_enabled)
        .count();
    assert_eq!(all_staff.member_count as usize, enabled_members);
    assert_eq!(all_staff.group.kind(), "microsoft365");
    assert_eq!(all_staff.group.visibility.as_deref(), Some("private"));
    assert_eq!(all_staff.group.group_types, ["Unified"]);
    assert_eq!(
        groups
            .iter()
            .find(|g| g.group.name() == "External Guests")
            .unwrap()
            .group
            .kind(),
        "security"
    );
    // Members are named from their contacts.
    let named = app
        .store
        .group_members(Some(&tenant), false)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.group_name == "All Staff")
        .filter(|m| m.user_principal_name.is_some() && m.member_type.as_deref() == Some("user"))
        .count();
    assert_eq!(named, enabled_members);
    assert_eq!(app.sync("contoso").await.writes(), 0);
}

async fn group_memberships_follow_changes_by_delta(store: StoreKind) {
    let app = TestApp::with_users_on(store, 300).await;
    app.add_connection_with(
        "contoso",
        &app.tenant(0).tenant_id,
        &app.tenant(0).client_id,
        &app.tenant(0).client_secret,
        vec![Dataset::Organization, Dataset::Users, Dataset::Groups],
    )
    .await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    let tenant = TenantId::parse(&key).unwrap();
    let held = app.sim.state.tenant(&key).unwrap();
    let members_of =
        |groups: &(Vec<store::GroupRow>, Vec<store::GroupMemberRow>), name: &str| -> Vec<String> {
            let group = groups.0.iter().find(|g| g.group.name() == name).unwrap();
            let members: Vec<String> = groups
                .1
                .iter()
                .filter(|m| m.group_id == group.key())
                .map(|m| m.user_principal_name.clone().unwrap())
                .collect();
            assert_eq!(group.member_count as usize, members.len());
            members
        };
    let read_groups = || async {
        (
            app.store.groups(Some(&tenant), false).await.unwrap(),
            app.store.group_members(Some(&tenant), false).await.unwrap(),
        )
    };
    let truth = |group: usize| -> Vec<String> {
        let mut upns: Vec<String> = (0..held.index_space())
            .filter_map(|i| held.user(i))
            .filter(|u| graph_sim::inventory::group_has(group, u))
            .map(|u| u.upn)
            .collect();
        upns.sort();
        upns
    };
    let groups = read_groups().await;
    let mut all_staff = members_of(&groups, "All Staff");
    all_staff.sort();
    assert_eq!(
        all_staff,
        truth(0),
        "a first round over two pages of 200 users"
    );

    // Someone moves to Finance, someone is disabled, someone leaves, someone joins.
    let mover = (0..300)
        .find(|i| {
            held.user(*i).is_some_and(|u| {
                u.user_type == "Member"
                    && u.account_enabled
                    && u.department.as_deref() != Some("Finance")
            })
        })
        .unwrap();
    app.sim.state.patch_user(
        &key,
        mover,
        UserPatch {
            department: Some("Finance".into()),
            ..UserPatch::default()
        },
    );
    let disabled = (mover + 1..300)
        .find(|i| {
            held.user(*i)
                .is_some_and(|u| u.user_type == "Member" && u.account_enabled)
        })
        .unwrap();
    app.sim.state.patch_user(
        &key,
        disabled,
        UserPatch {
            account_enabled: Some(false),
            ..UserPatch::default()
        },
    );
    let leaver = (disabled + 1..300)
        .find(|i| {
            held.user(*i)
                .is_some_and(|u| u.user_type == "Member" && u.account_enabled)
        })
        .unwrap();
    app.sim.state.remove_user(&key, leaver);
    app.sim.state.add_user(&key).unwrap();

    let report = app.sync("contoso").await;
    let step = report.step(Dataset::Groups).unwrap();
    assert_eq!(step.status, StepStatus::Succeeded, "{step:?}");
    assert!(
        step.counts.updated >= 2 && step.counts.created == 0,
        "{step:?}"
    );
    let groups = read_groups().await;
    for (index, name) in [(0, "All Staff"), (1, "Finance")] {
        let mut stored = members_of(&groups, name);
        stored.sort();
        assert_eq!(stored, truth(index), "{name}");
    }
    assert_eq!(groups.0.len(), 6, "no group archived by a changes round");
    assert_eq!(app.sync("contoso").await.writes(), 0);

    // A member renamed is shown by the new name, though their groups did not change.
    let renamed = (0..300)
        .find(|i| {
            held.user(*i)
                .is_some_and(|u| graph_sim::inventory::group_has(0, &u))
        })
        .unwrap();
    app.sim.state.patch_user(
        &key,
        renamed,
        UserPatch {
            display_name: Some("Renée Renamed".into()),
            ..UserPatch::default()
        },
    );
    let renamed_run = app.sync("contoso").await;
    assert_eq!(
        renamed_run.step(Dataset::Groups).unwrap().counts.writes(),
        0,
        "a renamed member changes no group"
    );
    let id = held.user(renamed).unwrap().id.to_string();
    let member = read_groups()
        .await
        .1
        .into_iter()
        .find(|m| m.group_name == "All Staff" && m.member_id == id)
        .unwrap();
    assert_eq!(member.display_name.as_deref(), Some("Renée Renamed"));

    // The link expires: one whole round again, and the same result.
    app.sim.state.inject(
        &key,
        Fault::ExpireDeltaTokens {
            shape: Default::default(),
        },
    );
    let again = app.sync("contoso").await;
    assert!(
        again
            .warnings
            .iter()
            .any(|w| w.code == "delta_reset" && w.message.contains("groups"))
    );
    assert_eq!(again.step(Dataset::Groups).unwrap().counts.writes(), 0);
}

async fn intune_devices_and_their_software_link_to_people(store: StoreKind) {
    let app = TestApp::with_users_on(store, 120).await;
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    let devices_step = report.step(Dataset::ManagedDevices).unwrap();
    assert_eq!(
        devices_step.status,
        StepStatus::Succeeded,
        "{devices_step:?}"
    );
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let devices = active_rows::<ManagedDeviceRecord>(&app).await;
    assert!(devices.len() > 40, "{}", devices.len());
    assert_eq!(devices_step.counts.created as usize, devices.len());
    let contacts = tenant_contacts(&app).await;
    for device in &devices {
        let owner = device.user_id.as_deref().unwrap();
        let contact = contacts
            .iter()
            .find(|c| c.object_id.as_deref() == Some(owner))
            .expect("every device's user is a contact");
        assert_eq!(
            device.user_principal_name.as_deref(),
            contact
                .user_principal_name
                .as_deref()
                .map(str::to_lowercase)
                .as_deref()
        );
        for (field, present) in [
            ("operating_system", device.operating_system.is_some()),
            ("os_version", device.os_version.is_some()),
            ("compliance_state", device.compliance_state.is_some()),
            ("enrolled", device.enrolled.is_some()),
            ("last_check_in", device.last_check_in.is_some()),
            ("serial_number", device.serial_number.is_some()),
            ("manufacturer", device.manufacturer.is_some()),
            ("model", device.model.is_some()),
            ("total_storage_bytes", device.total_storage_bytes.is_some()),
            ("is_encrypted", device.is_encrypted.is_some()),
        ] {
            assert!(present, "{field}");
        }
    }
    let apps = app
        .store
        .inventory(Some(&tenant), Dataset::DetectedApps, false)
        .await
        .unwrap();
    // Every name and version the simulator's installers go by, whether on a device or not.
    assert_eq!(apps.len(), 75);
    for detected in &apps {
        let ids = detected.document["device_ids"].as_array().unwrap();
        assert_eq!(
            ids.len() as i64,
            detected.document["device_count"].as_i64().unwrap(),
            "{}",
            detected.name
        );
        let known: std::collections::HashSet<&str> =
            devices.iter().map(|d| d.id.as_str()).collect();
        assert!(ids.iter().all(|id| known.contains(id.as_str().unwrap())));
    }
    assert_eq!(app.sync("contoso").await.writes(), 0);

    // Entra's own device objects: one per enrolled device, joined laptops and registered phones,
    // each carrying the Entra device id Intune names.
    let entra = active_rows::<DeviceRecord>(&app).await;
    assert_eq!(entra.len(), devices.len());
    let intune_ids: std::collections::HashSet<&str> = devices
        .iter()
        .map(|d| d.entra_device_id.as_deref().unwrap())
        .collect();
    for device in &entra {
        assert!(intune_ids.contains(device.device_id.as_deref().unwrap()));
        assert!(matches!(
            device.join_type.as_deref(),
            Some("joined" | "registered")
        ));
        assert!(device.last_sign_in.is_some() && device.trust_type.is_some());
    }
}

async fn a_device_gone_from_the_tenant_is_archived_and_an_unchanged_resync_writes_nothing(
    store: StoreKind,
) {
    let app = TestApp::with_users_on(store, 40).await;
    let sim_tenant = app.tenant(0);
    app.add_connection_with(
        "contoso",
        &sim_tenant.tenant_id,
        &sim_tenant.client_id,
        &sim_tenant.client_secret,
        vec![
            Dataset::Organization,
            Dataset::ManagedDevices,
            Dataset::Devices,
        ],
    )
    .await;
    let first = app.sync("contoso").await;
    let managed = active_rows::<ManagedDeviceRecord>(&app).await;
    let entra = active_rows::<DeviceRecord>(&app).await;
    assert!(managed.len() > 10, "{}", managed.len());
    let step = |report: &sync::SyncReport, dataset| report.step(dataset).unwrap().counts;
    assert_eq!(
        step(&first, Dataset::ManagedDevices).created as usize,
        managed.len()
    );
    assert_eq!(step(&first, Dataset::Devices).created as usize, entra.len());

    // Retired in Intune: gone from both listings.
    let gone = managed[managed.len() / 2].clone();
    let gone_entra = entra
        .iter()
        .find(|d| d.device_id == gone.entra_device_id)
        .unwrap()
        .clone();
    app.sim
        .state
        .change_device(
            &app.tenant_key(0),
            &gone.id,
            DeviceChange {
                removed: true,
                ..DeviceChange::default()
            },
        )
        .unwrap();
    // Devices are cached for an hour by default; a technician clears that to see it now.
    app.clear_cache("contoso").await;
    let second = app.sync("contoso").await;
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    let unchanged = |n: usize, archived: u64| StepCounts {
        unchanged: n as u64,
        archived,
        ..StepCounts::default()
    };
    assert_eq!(
        step(&second, Dataset::ManagedDevices),
        unchanged(managed.len() - 1, 1)
    );
    assert_eq!(
        step(&second, Dataset::Devices),
        unchanged(entra.len() - 1, 1)
    );
    assert!(
        !active_rows::<ManagedDeviceRecord>(&app)
            .await
            .contains(&gone)
    );
    assert!(
        !active_rows::<DeviceRecord>(&app)
            .await
            .contains(&gone_entra)
    );
    // Archived, not deleted: kept as it was last seen.
    assert!(
        rows_of::<ManagedDeviceRecord>(&app, true)
            .await
            .contains(&(gone.clone(), true))
    );
    assert!(
        rows_of::<DeviceRecord>(&app, true)
            .await
            .contains(&(gone_entra.clone(), true))
    );

    // Nothing changed since: every device unchanged, nothing written, nothing archived again.
    app.clear_cache("contoso").await;
    let third = app.sync("contoso").await;
    assert_eq!(third.writes(), 0, "{third:?}");
    assert_eq!(
        step(&third, Dataset::ManagedDevices),
        unchanged(managed.len() - 1, 0)
    );
    assert_eq!(
        step(&third, Dataset::Devices),
        unchanged(entra.len() - 1, 0)
    );
}

async fn sign_in_activity_shows_on_contacts_and_needs_a_premium_tenant(store: StoreKind) {
    let app = TestApp::with_users_on(store, 130).await;
    app.add_connection_with(
        "contoso",
        &app.tenant(0).tenant_id,
        &app.tenant(0).client_id,
        &app.tenant(0).client_secret,
        vec![
            Dataset::Organization,
            Dataset::Users,
            Dataset::SignInActivity,
        ],
    )
    .await;
    let first = app.sync("contoso").await;
    let step = first.step(Dataset::SignInActivity).unwrap();
    assert_eq!(step.status, StepStatus::Succeeded, "{step:?}");
    assert_eq!(step.counts.created, 130, "two pages of at most 120");
    let contacts = tenant_contacts(&app).await;
    assert!(contacts.iter().all(|c| c.usage.contains_key("sign_in")));
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let rows = app
        .store
        .typed_rows::<SignInRecord>(Some(&tenant), false)
        .await
        .unwrap();
    assert_eq!(rows.len(), 130);
    for contact in &contacts {
        let row = rows
            .iter()
            .find(|r| Some(&r.row.record.object_id) == contact.object_id.as_ref())
            .expect("every user has a row under their object id");
        assert_eq!(
            row.row.record.user_principal_name,
            contact
                .user_principal_name
                .as_ref()
                .map(|u| u.to_lowercase())
        );
        assert_eq!(
            contact.usage["sign_in"]["last_sign_in"],
            serde_json::json!(row.row.record.last_sign_in)
        );
    }
    let signed_in = contacts
        .iter()
        .filter(|c| c.usage["sign_in"]["last_sign_in"].is_string())
        .count();
    assert!(
        (90..130).contains(&signed_in),
        "most, not all, have signed in: {signed_in}"
    );
    assert_eq!(app.sync("contoso").await.writes(), 0);

    // A deleted user's row is archived once a complete listing lacks it.
    let key = app.tenant_key(0);
    let gone = app.sim.state.tenant(&key).unwrap().user(7).unwrap();
    assert!(app.sim.state.remove_user(&key, 7));
    app.clear_cache("contoso").await;
    let after = app.sync("contoso").await;
    let step = after.step(Dataset::SignInActivity).unwrap();
    assert_eq!(
        (
            step.counts.archived,
            step.counts.created,
            step.counts.updated
        ),
        (1, 0, 0),
        "{step:?}"
    );
    let archived: Vec<String> = app
        .store
        .typed_rows::<SignInRecord>(Some(&tenant), true)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.row.archived)
        .map(|r| r.row.record.object_id)
        .collect();
    assert_eq!(archived, vec![gone.id.to_string()]);

    // The tenant loses Entra ID P1: the step is skipped with a note, nothing is archived.
    app.sim.state.set_premium(&app.tenant_key(0), false);
    app.clear_cache("contoso").await;
    let without = app.sync("contoso").await;
    let step = without.step(Dataset::SignInActivity).unwrap();
    assert_eq!(step.status, StepStatus::Skipped, "{step:?}");
    assert_eq!(step.counts.writes(), 0);
    assert_eq!(
        app.store
            .typed_rows::<SignInRecord>(Some(&tenant), false)
            .await
            .unwrap()
            .len(),
        129,
        "a skipped step archives nobody"
    );
    assert_eq!(without.status, RunStatus::Succeeded);
    assert!(
        without
            .warnings
            .iter()
            .any(|w| w.code == "sign_in_activity_needs_premium")
    );
    assert!(step.message.as_deref().unwrap().contains("Entra ID P1"));
}

async fn the_audit_trail_comes_from_the_management_activity_api(store: StoreKind) {
    let app = TestApp::with_users_on(store, 30).await;
    app.add_connection("contoso", 0).await;
    let first = app.sync("contoso").await;
    let audit = first.step(Dataset::Audit).unwrap();
    assert_eq!(audit.status, StepStatus::Succeeded, "{audit:?}");
    // Seven days back, hour by hour, four content types, three records a blob.
    assert!(audit.counts.created > 1_900, "{audit:?}");
    let held = app.sim.state.tenant(&app.tenant_key(0)).unwrap();
    assert_eq!(
        held.subscription_count(),
        4,
        "a subscription was started per content type"
    );
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let records = audit_records(&app, &tenant).await;
    assert_eq!(records.len() as u64, audit.counts.created);
    let login = records
        .iter()
        .find(|r| r.operation.as_deref() == Some("UserLoggedIn"))
        .unwrap();
    assert_eq!(login.workload.as_deref(), Some("AzureActiveDirectory"));
    assert_eq!(login.record_type, Some(15));
    assert_eq!(
        login.content_type.as_deref(),
        Some("Audit.AzureActiveDirectory")
    );
    assert!(login.creation_time.is_some() && login.client_ip.is_some());
    // Every record keeps its client's address, whichever field carried it, without a port.
    assert!(records.iter().all(|r| {
        r.client_ip
            .as_deref()
            .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    }));
    assert!(
        records
            .iter()
            .any(|r| r.workload.as_deref() == Some("Exchange")
                && r.client_ip.as_deref().is_some_and(|ip| ip.contains(':')))
    );
    assert!(login.user_id.as_deref().unwrap().contains('@'));
    assert_eq!(login.record["OrganizationId"], app.tenant_key(0));
    assert_eq!(
        login.record["Id"].as_str().unwrap().to_lowercase(),
        login.id
    );

    // The next run reads only what became available since: nothing is read twice.
    let second = app.sync("contoso").await;
    let again = second.step(Dataset::Audit).unwrap();
    assert_eq!(
        (again.counts.updated, again.counts.unchanged),
        (0, 0),
        "{again:?}"
    );
    assert!(again.counts.created <= 12);

    // A run resumes from each content type's checkpoint: one moved back three days reads those
    // three days of that type again, and they add nothing.
    let resource = "audit:Audit.Exchange";
    let saved = app
        .store
        .delta_link(&tenant, resource)
        .await
        .unwrap()
        .unwrap();
    let saved = chrono::DateTime::parse_from_rfc3339(&saved).unwrap();
    assert!((chrono::Utc::now() - saved.with_timezone(&chrono::Utc)).num_minutes() < 5);
    let rewound = store::Checkpoint {
        resource: resource.into(),
        link: (saved - chrono::Duration::days(3)).to_rfc3339(),
    };
    app.store
        .append_audit_records(0, &tenant, &[], Some(&rewound))
        .await
        .unwrap();
    let resumed = app.sync("contoso").await;
    let step = resumed.step(Dataset::Audit).unwrap();
    assert_eq!(step.status, StepStatus::Succeeded, "{step:?}");
    // Three days of hourly Exchange blobs, three records each; only what is new is created.
    assert!((200..=220).contains(&step.counts.unchanged), "{step:?}");
    assert_eq!(step.counts.updated, 0);

    // A resume point older than the API's seven days is brought forward, not refused.
    let stale = store::Checkpoint {
        resource: resource.into(),
        link: "2020-01-01T00:00:00+00:00".into(),
    };
    app.store
        .append_audit_records(0, &tenant, &[], Some(&stale))
        .await
        .unwrap();
    let resumed = app.sync("contoso").await;
    assert_eq!(
        resumed.step(Dataset::Audit).unwrap().status,
        StepStatus::Succeeded
    );
}

async fn audit_records(app: &TestApp, tenant: &TenantId) -> Vec<domain::AuditRecord> {
    app.store
        .audit_records(&store::AuditQuery {
            tenant_id: Some(*tenant),
            ..store::AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|listed| listed.row.record)
        .collect()
}

async fn audit_records_past_the_retention_are_deleted_in_their_tenant_alone(store: StoreKind) {
    let app = TestApp::with_users_on(store, 20).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let before = audit_records(&app, &tenant).await;
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let old = before.iter().filter(|r| r.created_before(&cutoff)).count();
    assert!(
        old > 1_000,
        "seven days were read: {old} of {}",
        before.len()
    );
    // Another tenant's record, as old: not this connection's to delete.
    let organization = app
        .store
        .organization_for_tenant(&tenant)
        .await
        .unwrap()
        .unwrap()
        .id;
    let other = TenantId::parse("0d5c3e1a-6b7f-4a2e-9c8d-1e2f3a4b5c6d").unwrap();
    let elsewhere = domain::AuditRecord {
        id: "elsewhere".into(),
        creation_time: Some("2020-01-01T00:00:00".into()),
        ..before[0].clone()
    };
    app.store
        .append_audit_records(organization, &other, &[elsewhere], None)
        .await
        .unwrap();

    app.store
        .set_audit_retention("contoso", domain::AuditRetention::parse("2").unwrap())
        .await
        .unwrap();
    let run = app.sync("contoso").await;
    let step = run.step(Dataset::Audit).unwrap();
    assert_eq!(step.status, StepStatus::Succeeded, "{step:?}");
    let message = step.message.as_deref().unwrap_or_default();
    assert!(message.contains("older than 2 days deleted"), "{message}");
    let after = audit_records(&app, &tenant).await;
    // What the run found new is as young as the rest.
    assert!(
        after.len() <= before.len() - old + 12,
        "{} left",
        after.len()
    );
    assert!(after.len() > 300, "two days are kept: {} left", after.len());
    assert!(after.iter().all(|r| !r.created_before(&cutoff)));
    assert_eq!(audit_records(&app, &other).await.len(), 1);
}

async fn deleted_mailboxes_stay_apart_and_shared_ones_say_so(store: StoreKind) {
    let app = TestApp::with_users_on(store, 200).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let live = app
        .store
        .mailboxes(Some(&tenant), store::MailboxKind::Live, false)
        .await
        .unwrap();
    let deleted = app
        .store
        .mailboxes(Some(&tenant), store::MailboxKind::Deleted, false)
        .await
        .unwrap();
    assert!(!deleted.is_empty(), "the report lists former staff");
    for mailbox in &deleted {
        assert!(
            mailbox.is_deleted && mailbox.deleted_date.is_some(),
            "{mailbox:?}"
        );
        assert_eq!(
            mailbox.contact_object_id, None,
            "a deleted mailbox belongs to nobody"
        );
    }
    assert!(
        live.iter()
            .all(|m| !m.is_deleted && m.contact_object_id.is_some())
    );
    let shared: Vec<_> = live
        .iter()
        .filter(|m| m.recipient_type.as_deref() == Some("shared"))
        .collect();
    assert!(!shared.is_empty());
    let contacts = tenant_contacts(&app).await;
    let shared_contact = contacts
        .iter()
        .find(|c| c.object_id == shared[0].contact_object_id)
        .unwrap();
    assert_eq!(
        shared_contact
            .mailbox
            .as_ref()
            .unwrap()
            .recipient_type
            .as_deref(),
        Some("shared")
    );
    assert_eq!(
        contacts.iter().filter(|c| c.mailbox.is_some()).count(),
        live.len(),
        "every live mailbox is on its contact, and only those"
    );
}

async fn seats_bought_and_devices_retired_through_the_control_api_arrive(store: StoreKind) {
    let app = TestApp::with_users_on(store, 60).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    let tenant = TenantId::parse(&key).unwrap();
    let http = reqwest::Client::new();
    let control = |path: String| format!("{}/_sim/tenants/{key}/{path}", app.sim.url);

    let (part, _, enabled) = app.sim.state.tenant(&key).unwrap().subscribed_skus()[0].clone();
    let bought = http
        .put(control(format!("licenses/{part}")))
        .json(&serde_json::json!({ "enabled": enabled + 25 }))
        .send()
        .await
        .unwrap();
    assert_eq!(bought.status(), 204);
    let unknown = http
        .put(control("licenses/NOT_A_SKU".into()))
        .json(&serde_json::json!({ "enabled": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let devices = active_rows::<ManagedDeviceRecord>(&app).await;
    let retired = &devices[0].id;
    let failing = devices
        .iter()
        .find(|d| &d.id != retired && d.compliance_state.as_deref() == Some("compliant"))
        .unwrap()
        .id
        .clone();
    for (id, change) in [
        (retired.clone(), serde_json::json!({ "removed": true })),
        (
            failing.clone(),
            serde_json::json!({ "complianceState": "noncompliant" }),
        ),
    ] {
        let answer = http
            .patch(control(format!("devices/{id}")))
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204, "{id}");
    }

    app.clear_cache("contoso").await;
    let report = app.sync("contoso").await;
    assert_eq!(report.step(Dataset::Licenses).unwrap().counts.updated, 1);
    let step = report.step(Dataset::ManagedDevices).unwrap().counts;
    assert_eq!((step.updated, step.archived), (1, 1), "{step:?}");
    let licenses = app.store.licenses(Some(&tenant), false).await.unwrap();
    let changed = licenses.iter().find(|l| l.sku_part_number == part).unwrap();
    assert_eq!(changed.enabled_units, enabled + 25);
    assert_eq!(
        changed.free_units,
        changed.enabled_units - changed.consumed_units
    );
    let now = active_rows::<ManagedDeviceRecord>(&app).await;
    assert!(!now.iter().any(|d| &d.id == retired));
    assert_eq!(
        now.iter()
            .find(|d| d.id == failing)
            .unwrap()
            .compliance_state
            .as_deref(),
        Some("noncompliant")
    );
}

async fn a_whole_sync_succeeds_under_steady_throttling(store: StoreKind) {
    let app = TestApp::with_users_on(store, 90).await;
    app.add_connection("contoso", 0).await;
    let key = app.tenant_key(0);
    app.sim.state.inject(
        &key,
        Fault::ThrottleRate {
            every: 4,
            retry_after: Some("0".into()),
        },
    );
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert!(
        app.sim.state.stats().throttled >= 10,
        "{:?}",
        app.sim.state.stats()
    );
    // The waits are summed up once for the run, not told one by one.
    let retried: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.code == "retried")
        .collect();
    assert_eq!(retried.len(), 1, "{:?}", report.warnings);
    assert!(
        retried[0].message.contains("429 × "),
        "{}",
        retried[0].message
    );
    app.sim.state.clear_faults(&key);
    assert_eq!(
        app.sync("contoso").await.writes(),
        0,
        "throttling lost or doubled nothing"
    );
}

/// A NUL (which PostgreSQL cannot hold in text) or an escape sequence in one user's fields is
/// cleaned before anything is planned, the same on both stores: the tenant syncs whole.
async fn control_characters_from_microsoft_never_reach_the_store(store: StoreKind) {
    let app = TestApp::with_users_on(store, 42).await;
    app.add_connection("contoso", 0).await;
    let key = app.tenant_key(0);
    app.sim.state.patch_user(
        &key,
        3,
        UserPatch {
            display_name: Some("Ann\u{0}Lee\u{1b}[0m".into()),
            job_title: Some("C\u{7}E\u{85}O\u{0}".into()),
            department: Some("Sales\tand\u{8}Service".into()),
            mobile_phone: Some("+1\u{0}555\u{7f}0100".into()),
            ..UserPatch::default()
        },
    );
    let first = app.sync("contoso").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_eq!(first.step(Dataset::Users).unwrap().counts.created, 42);
    let contacts = tenant_contacts(&app).await;
    assert_eq!(contacts.len(), 42);
    let ann = contacts
        .iter()
        .find(|c| c.display_name.starts_with("Ann"))
        .expect("the patched user was stored");
    assert_eq!(ann.display_name, "AnnLee[0m");
    assert_eq!(ann.job_title.as_deref(), Some("CEO"));
    assert_eq!(ann.department.as_deref(), Some("Sales\tandService"));
    assert_eq!(ann.mobile_phone.as_deref(), Some("+15550100"));
    // The cleaned record is what is compared next time: nothing to write.
    let second = app.sync("contoso").await;
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    assert_eq!(second.writes(), 0, "{second:?}");
}

/// A full disk fails the steps that could not write, with what to free, and the run is closed
/// as failed instead of being left open; what was stored before stays.
#[tokio::test]
async fn a_full_disk_fails_its_steps_with_a_fix_and_closes_the_run() {
    let (store, home) = testkit::sqlite_store_near_full(12).await;
    let app = TestApp::on(
        store,
        home,
        SimConfig {
            seed: 7,
            tenants: vec![TenantSpec::with_users(600)],
            ..SimConfig::default()
        },
    )
    .await;
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    // The small tenant-wide lists still fit; the users do not.
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    let users = report.step(Dataset::Users).unwrap();
    assert_eq!(users.status, StepStatus::Failed, "{report:?}");
    let message = users.message.as_deref().unwrap();
    assert!(
        message.contains("disk that holds the store is full"),
        "{message}"
    );
    assert!(message.contains("free space"), "{message}");
    // Every chosen dataset has its step in the log, run or failed or skipped.
    assert_eq!(report.steps.len(), Dataset::ALL.len(), "{report:?}");
    let logged = app.store.run(report.run_id).await.unwrap().unwrap();
    assert_eq!(logged.status, RunStatus::Partial);
    assert!(logged.finished_at.is_some(), "the run row is closed");
    assert!(logged.steps.iter().all(|s| s.finished_at.is_some()));
}

/// The demo's simulator comes back on another port: the links saved against the old address
/// are dropped with a warning and the round starts again, instead of every sync failing.
async fn a_link_saved_against_another_graph_address_is_dropped(store: StoreKind) {
    let config = || SimConfig {
        seed: 7,
        tenants: vec![TenantSpec::with_users(50)],
        ..SimConfig::default()
    };
    let app = TestApp::new_on(store, config()).await;
    app.add_connection("demo", 0).await;
    let first = app.sync("demo").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");

    let moved = testkit::simulator(config()).await;
    assert_ne!(moved.url, app.sim.url);
    app.store.remove_connection("demo").await.unwrap();
    let tenant = &moved.tenants()[0];
    app.store
        .add_connection(store::NewConnection {
            name: domain::ConnectionName::parse("demo").unwrap(),
            tenant_id: TenantId::parse(&tenant.tenant_id).unwrap(),
            client_id: domain::ClientId::parse(&tenant.client_id).unwrap(),
            credential: domain::Credential::Secret(
                domain::ClientSecret::parse(&tenant.client_secret).unwrap(),
            ),
            cloud: domain::Cloud::custom(&moved.url, &moved.url).unwrap(),
            datasets: Dataset::ALL.to_vec(),
        })
        .await
        .unwrap();
    let again = app.sync("demo").await;
    assert_eq!(again.status, RunStatus::Succeeded, "{again:?}");
    let dropped: Vec<&str> = again
        .warnings
        .iter()
        .filter(|w| w.code == "delta_link_foreign")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(dropped.len(), 2, "users and groups: {dropped:?}");
    assert!(
        dropped
            .iter()
            .all(|m| m.contains(&app.sim.url.replace("http://", "")))
    );
    assert_eq!(again.step(Dataset::Users).unwrap().counts.unchanged, 50);
    assert_eq!(contact_count(&app, true).await, 50, "no duplicates");
    // The new links are the new address's: the next round is by delta, with no warning.
    let third = app.sync("demo").await;
    assert_eq!(third.status, RunStatus::Succeeded, "{third:?}");
    assert!(
        third
            .warnings
            .iter()
            .all(|w| w.code != "delta_link_foreign")
    );
    assert_eq!(third.writes(), 0, "{third:?}");
}

/// A user whose mail address is longer than a store can look up by (PostgreSQL refuses to index
/// it; SQLite would keep it) is left out on both stores alike, named with the field, and the
/// rest of the tenant syncs.
async fn a_user_no_store_could_keep_is_left_out_alone(store: StoreKind) {
    let app = TestApp::with_users_on(store, 30).await;
    app.add_connection("contoso", 0).await;
    let key = app.tenant_key(0);
    let huge = format!("{}@contoso.example", "a".repeat(3_000));
    app.sim.state.patch_user(
        &key,
        4,
        UserPatch {
            mail: Some(huge),
            ..UserPatch::default()
        },
    );
    let upn = app.sim.state.tenant(&key).unwrap().user(4).unwrap().upn;
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.step(Dataset::Users).unwrap().counts.created, 29);
    let skipped = report
        .warnings
        .iter()
        .find(|w| w.code == "users_skipped")
        .expect("the user left out is reported");
    assert!(skipped.message.contains(&upn), "{}", skipped.message);
    assert!(skipped.message.contains("mail"), "{}", skipped.message);
    assert_eq!(contact_count(&app, true).await, 29);
    // Not archived, not duplicated, and still reported on the next full listing.
    let again = app
        .engine
        .sync_with("contoso", &sync::NoProgress, true)
        .await
        .unwrap();
    assert_eq!(again.status, RunStatus::Succeeded, "{again:?}");
    assert_eq!(contact_count(&app, true).await, 29);
}

/// A connection's filters: a user left out is not written, a contact whose user leaves them is
/// archived with the rule's reason (kept in its history and in the list of users left out), and
/// clearing the filters brings the same contact back.
async fn filters_leave_users_out_with_the_reason_and_let_them_back(store: StoreKind) {
    let app = TestApp::with_users_on(store, 60).await;
    app.add_connection("contoso", 0).await;
    let first = app.sync("contoso").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let before = contact_count(&app, false).await;
    let key = app.tenant_key(0);
    let tenant = TenantId::parse(&key).unwrap();
    app.sim.state.patch_user(
        &key,
        3,
        UserPatch {
            account_enabled: Some(false),
            ..UserPatch::default()
        },
    );
    let filter = domain::filter::UserFilter {
        enabled_only: true,
        exclude_guests: true,
        ..Default::default()
    };
    app.store.set_user_filter("contoso", &filter).await.unwrap();
    let filtered = app.sync("contoso").await;
    assert_eq!(filtered.status, RunStatus::Succeeded, "{filtered:?}");
    let users = filtered.step(Dataset::Users).unwrap();
    assert!(
        users.message.as_deref().unwrap().contains("full"),
        "new filters weigh every user again: {users:?}"
    );
    let left_out = app.store.filtered_users(Some(&tenant)).await.unwrap();
    let upn3 = app.sim.state.tenant(&key).unwrap().user(3).unwrap().upn;
    let three = left_out
        .iter()
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(&upn3))
        .expect("user 3 is listed as left out");
    assert_eq!(three.reason, "disabled");
    assert!(
        left_out
            .iter()
            .all(|u| matches!(u.reason.as_str(), "disabled" | "guest"))
    );
    assert_eq!(
        users.counts.archived as usize,
        left_out.len(),
        "each user left out had a contact, now archived: {users:?}"
    );
    assert_eq!(contact_count(&app, false).await, before - left_out.len());
    assert!(
        filtered
            .warnings
            .iter()
            .any(|w| w.code == "users_filtered" && w.message.contains("disabled")),
        "{filtered:?}"
    );
    let mut archived = Vec::new();
    app.store
        .each_contact(
            &ContactFilter {
                include_archived: true,
                ..tenant_filter(&app)
            },
            |c| {
                if c.archived {
                    archived.push(c);
                }
                Ok(())
            },
        )
        .await
        .unwrap();
    let contact3 = archived
        .iter()
        .find(|c| {
            c.user_principal_name
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(&upn3))
        })
        .unwrap();
    let history = app.store.contact_history(contact3.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|h| h.field == "archived" && h.note.as_deref() == Some("out_of_scope: disabled")),
        "{history:?}"
    );
    // An unchanged resync writes nothing.
    let again = app.sync("contoso").await;
    assert_eq!(again.writes(), 0, "{again:?}");

    // Every user again: the same contacts come back, none twice.
    app.store
        .set_user_filter("contoso", &domain::filter::UserFilter::default())
        .await
        .unwrap();
    let cleared = app.sync("contoso").await;
    assert_eq!(cleared.status, RunStatus::Succeeded, "{cleared:?}");
    assert_eq!(contact_count(&app, false).await, before);
    assert_eq!(contact_count(&app, true).await, before, "no second contact");
    assert!(
        app.store
            .filtered_users(Some(&tenant))
            .await
            .unwrap()
            .is_empty()
    );
}

/// `Members of chosen groups only` keeps the members of a group as the last groups round stored
/// them, chosen by name; a group the tenant does not have is refused when it is set.
async fn only_members_of_a_chosen_group_are_kept(store: StoreKind) {
    let app = TestApp::with_users_on(store, 60).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    let tenant = TenantId::parse(&key).unwrap();
    let held = app.sim.state.tenant(&key).unwrap();
    let connection = app.store.connection("contoso").await.unwrap().unwrap();
    let typo = domain::filter::UserFilter {
        groups: vec!["All Stuff".into()],
        ..Default::default()
    };
    let problem = sync::filter_problem(&app.store, &connection, &typo)
        .await
        .unwrap()
        .expect("a group the tenant does not have");
    assert!(problem.contains("no group 'All Stuff'"), "{problem}");
    let chosen = domain::filter::UserFilter {
        groups: vec!["all staff".into()],
        ..Default::default()
    };
    assert_eq!(
        sync::filter_problem(&app.store, &connection, &chosen)
            .await
            .unwrap(),
        None
    );
    app.store.set_user_filter("contoso", &chosen).await.unwrap();
    let filtered = app.sync("contoso").await;
    assert_eq!(filtered.status, RunStatus::Succeeded, "{filtered:?}");
    let members: HashSet<String> = (0..60)
        .filter_map(|i| held.user(i))
        .filter(|u| graph_sim::inventory::group_has(0, u))
        .map(|u| u.upn.to_lowercase())
        .collect();
    assert!(!members.is_empty() && members.len() < 60);
    let mut kept = HashSet::new();
    app.store
        .each_contact(&tenant_filter(&app), |c| {
            kept.insert(c.user_principal_name.unwrap_or_default().to_lowercase());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(kept, members);
    let left_out = app.store.filtered_users(Some(&tenant)).await.unwrap();
    assert_eq!(left_out.len(), 60 - members.len());
    assert!(
        left_out.iter().all(|u| u.reason == "not_in_chosen_groups"),
        "{left_out:?}"
    );
}

/// A typo in a filter (a domain nobody has) would archive every contact: the listing is held,
/// nothing is archived, and the step says how to check or confirm it.
async fn a_filter_that_would_archive_most_contacts_is_held(store: StoreKind) {
    let app = TestApp::with_users_on(store, 40).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let before = contact_count(&app, false).await;
    let typo = domain::filter::UserFilter {
        include_domains: vec!["contso.example".into()],
        ..Default::default()
    };
    app.store.set_user_filter("contoso", &typo).await.unwrap();
    let held = app.sync("contoso").await;
    let users = held.step(Dataset::Users).unwrap();
    assert_eq!(users.status, StepStatus::Failed, "{held:?}");
    let message = users.message.as_deref().unwrap();
    assert!(message.contains("looks like a mistake"), "{message}");
    assert!(message.contains("connection filter contoso"), "{message}");
    assert_eq!(contact_count(&app, false).await, before, "nothing archived");
    // Held again next time (no link was saved), until a person confirms it.
    let again = app.sync("contoso").await;
    assert_eq!(
        again.step(Dataset::Users).unwrap().status,
        StepStatus::Failed
    );
    let confirmed = app
        .engine
        .clone()
        .confirming_archive(true)
        .sync("contoso", &sync::NoProgress)
        .await
        .unwrap();
    assert_eq!(
        confirmed.step(Dataset::Users).unwrap().status,
        StepStatus::Succeeded,
        "{confirmed:?}"
    );
    assert_eq!(contact_count(&app, false).await, 0);
}

/// Changes that take away more than the connection's guard allows are held whole, by delta as
/// by a whole listing: nothing is taken away and no link is saved until a person accepts it.
async fn a_drop_larger_than_the_guard_is_held_until_accepted(store: StoreKind) {
    let app = TestApp::with_users_on(store, 40).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    // Ten of forty users deleted at once (25%, over the 20% allowed by default).
    for index in 0..10 {
        assert!(app.sim.state.remove_user(&key, index));
    }
    for _ in 0..2 {
        let held = app.sync("contoso").await;
        let users = held.step(Dataset::Users).unwrap();
        assert_eq!(users.status, StepStatus::Failed, "{held:?}");
        let message = users.message.as_deref().unwrap();
        assert!(
            message.contains("10 of the tenant's 40 contacts"),
            "{message}"
        );
        assert!(message.contains("10 deleted in Microsoft 365"), "{message}");
        assert!(message.contains("--accept-drop"), "{message}");
        assert_eq!(contact_count(&app, false).await, 40, "nothing taken away");
    }
    // A looser guard lets it through, as accepting it once does.
    app.store
        .set_drop_guard(
            "contoso",
            domain::plan::DropGuard {
                max_share_percent: 30,
            },
        )
        .await
        .unwrap();
    let accepted = app.sync("contoso").await;
    let users = accepted.step(Dataset::Users).unwrap();
    assert_eq!(users.status, StepStatus::Succeeded, "{accepted:?}");
    assert_eq!(users.counts.deleted, 10, "{accepted:?}");
    // The link moved on with them: the next round has nothing to do.
    let again = app.sync("contoso").await;
    assert_eq!(again.writes(), 0, "{again:?}");

    // A listing that finds nobody where there were people is held however small the tenant.
    let tiny = TestApp::with_users_on(store, 3).await;
    tiny.add_connection("tiny", 0).await;
    tiny.sync("tiny").await;
    let nobody = domain::filter::UserFilter {
        include_domains: vec!["nobody.example".into()],
        ..Default::default()
    };
    tiny.store.set_user_filter("tiny", &nobody).await.unwrap();
    let held = tiny.sync("tiny").await;
    let message = held.step(Dataset::Users).unwrap().message.clone().unwrap();
    assert!(
        message.contains("none of the tenant's 3 contacts"),
        "{message}"
    );
    assert_eq!(contact_count(&tiny, false).await, 3);
    let accepted = tiny
        .engine
        .clone()
        .confirming_archive(true)
        .sync("tiny", &sync::NoProgress)
        .await
        .unwrap();
    assert_eq!(
        accepted.step(Dataset::Users).unwrap().status,
        StepStatus::Succeeded
    );
    assert_eq!(contact_count(&tiny, false).await, 0);
}

async fn a_local_field_keeps_its_hand_edit_and_a_mapped_one_lands_in_its_custom_field(
    store: StoreKind,
) {
    let app = TestApp::with_users_on(store, 20).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    let user = app.sim.state.tenant(&key).unwrap().user(0).unwrap();
    let object_id = user.id.to_string();
    let contact_of = |contacts: Vec<store::ContactRow>| {
        contacts
            .into_iter()
            .find(|c| c.object_id.as_deref() == Some(object_id.as_str()))
            .unwrap()
    };
    let id = contact_of(tenant_contacts(&app).await).id;

    // Identity fields stay Microsoft's.
    let mut mapping = domain::FieldMapping::default();
    let refused = mapping.set_local("userPrincipalName").unwrap_err();
    assert!(refused.to_string().contains("always owns it"), "{refused}");

    mapping.set_local("jobTitle").unwrap();
    mapping.set_custom("department", "Cost centre").unwrap();
    app.store
        .set_field_mapping("contoso", &mapping)
        .await
        .unwrap();
    let mapping = app
        .store
        .connection("contoso")
        .await
        .unwrap()
        .unwrap()
        .field_mapping;
    assert!(mapping.hand_edit("jobTitle").is_ok());
    app.store
        .edit_contact(
            id,
            &store::HandEdit::Field("jobTitle"),
            Some("Head of IT (by hand)"),
        )
        .await
        .unwrap();
    assert!(app.sim.state.patch_user(
        &key,
        0,
        UserPatch {
            display_name: Some("Renamed At Microsoft".into()),
            job_title: Some("Changed At Microsoft".into()),
            department: Some("Finance".into()),
            ..UserPatch::default()
        },
    ));
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let contact = contact_of(tenant_contacts(&app).await);
    assert_eq!(contact.display_name, "Renamed At Microsoft");
    assert_eq!(contact.job_title.as_deref(), Some("Head of IT (by hand)"));
    assert_eq!(
        contact.custom_fields.get("Cost centre").map(String::as_str),
        Some("Finance")
    );
    // The department itself is the technician's now: the sync did not write it.
    assert_eq!(contact.department, user.department);

    let history = app.store.contact_history(id).await.unwrap();
    let by_hand = history
        .iter()
        .find(|c| c.field == "jobTitle")
        .expect("the hand edit is in the history");
    assert_eq!(
        (by_hand.run_id, by_hand.note.as_deref()),
        (None, Some("by hand"))
    );
    assert!(history.iter().any(|c| c.field == "displayName"
        && c.run_id.is_some()
        && c.new.as_deref() == Some("Renamed At Microsoft")));
    assert!(history.iter().any(|c| c.field == "custom:Cost centre"
        && c.run_id.is_some()
        && c.new.as_deref() == Some("Finance")));
    assert!(
        !history
            .iter()
            .any(|c| c.field == "jobTitle" && c.run_id.is_some())
    );

    // An unchanged resync writes nothing, the hand edit included.
    let again = app.sync("contoso").await;
    let users = again.step(Dataset::Users).unwrap().counts;
    assert_eq!((users.created, users.updated, users.archived), (0, 0, 0));
    assert_eq!(
        contact_of(tenant_contacts(&app).await).job_title.as_deref(),
        Some("Head of IT (by hand)")
    );
    assert_eq!(
        app.store.contact_history(id).await.unwrap().len(),
        history.len()
    );
}

/// The outcome of one record of a run's users step, found by its user principal name.
fn record_of<'a>(
    records: &'a [store::RunRecordRow],
    outcome: store::RecordOutcome,
    upn: &str,
) -> Option<&'a store::RunRecordRow> {
    records.iter().find(|r| {
        r.outcome == outcome
            && r.dataset == "users"
            && r.label
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case(upn))
    })
}

/// Every user a run creates, updates, archives, leaves out, holds or cannot store is in its log
/// with the outcome, under its step; an unchanged resync adds nothing but its steps.
async fn the_run_log_names_every_record_changed_and_nothing_unchanged(store: StoreKind) {
    use store::RecordOutcome;
    let app = TestApp::with_users_on(store, 20).await;
    let key = app.tenant_key(0);
    let user = |index: u64| app.sim.state.tenant(&key).unwrap().user(index).unwrap();
    // Two contacts kept by hand could both be user 7: held, never guessed.
    let organization = app.store.create_organization("Contoso Ltd").await.unwrap();
    for name in ["Candidate A", "Candidate B"] {
        app.store
            .create_local_contact(organization, name, &user(7).upn)
            .await
            .unwrap();
    }
    // User 4's mail is longer than any store keeps: it cannot be written.
    app.sim.state.patch_user(
        &key,
        4,
        UserPatch {
            mail: Some(format!("{}@contoso.example", "a".repeat(3_000))),
            ..UserPatch::default()
        },
    );
    let connection = app.add_connection("contoso", 0).await;
    let first = app.sync("contoso").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let records = app.store.run_records(first.run_id, None).await.unwrap();
    let users_step = app.store.run(first.run_id).await.unwrap().unwrap();
    let users_step = users_step
        .steps
        .iter()
        .find(|s| s.dataset == "users")
        .unwrap()
        .id;
    let created: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == RecordOutcome::Created)
        .collect();
    assert_eq!(created.len(), 18, "{records:?}");
    assert!(
        created
            .iter()
            .all(|r| r.contact_id.is_some() && r.step_id == Some(users_step)),
        "{created:?}"
    );
    let held = record_of(&records, RecordOutcome::Held, &user(7).upn).expect("user 7 is held");
    assert_eq!(held.key, user(7).id.to_string());
    assert_eq!(held.detail["candidates"].as_array().unwrap().len(), 2);
    let failed = records
        .iter()
        .find(|r| r.outcome == RecordOutcome::Failed)
        .expect("user 4 failed");
    assert_eq!(failed.key, user(4).id.to_string());
    assert!(
        failed.detail["why"].as_str().unwrap().contains("mail"),
        "{failed:?}"
    );

    // A changed title, a user deleted for good.
    app.sim.state.patch_user(
        &key,
        3,
        UserPatch {
            job_title: Some("Chief Cartographer".into()),
            ..UserPatch::default()
        },
    );
    app.sim.state.purge_user(&key, 5).unwrap();
    let second = app.sync("contoso").await;
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    let records = app.store.run_records(second.run_id, None).await.unwrap();
    let updated = app
        .store
        .run_records(second.run_id, Some(RecordOutcome::Updated))
        .await
        .unwrap();
    assert_eq!(updated.len(), 1, "{records:?}");
    assert_eq!(
        updated[0].label.as_deref().map(str::to_lowercase),
        Some(user(3).upn.to_lowercase())
    );
    let fields = updated[0].detail["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0]["field"], "jobTitle");
    assert_eq!(fields[0]["new"], "Chief Cartographer");
    assert_ne!(fields[0]["old"], fields[0]["new"]);
    let upn5 = app
        .sim
        .state
        .tenant(&key)
        .unwrap()
        .user(5)
        .map(|u| u.upn)
        .unwrap_or_default();
    let archived: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == RecordOutcome::Archived)
        .collect();
    assert_eq!(archived.len(), 1, "{records:?}");
    assert_eq!(archived[0].detail["reason"], "removed_in_tenant");
    assert!(archived[0].contact_id.is_some());
    if !upn5.is_empty() {
        assert_eq!(
            archived[0].label.as_deref().map(str::to_lowercase),
            Some(upn5.to_lowercase())
        );
    }

    // A filter leaves a disabled user out: skipped with the rule, and its contact archived.
    app.sim.state.patch_user(
        &key,
        9,
        UserPatch {
            account_enabled: Some(false),
            ..UserPatch::default()
        },
    );
    let filter = domain::filter::UserFilter {
        enabled_only: true,
        ..Default::default()
    };
    app.store.set_user_filter("contoso", &filter).await.unwrap();
    let third = app.sync("contoso").await;
    let records = app.store.run_records(third.run_id, None).await.unwrap();
    let skipped = record_of(&records, RecordOutcome::Skipped, &user(9).upn)
        .unwrap_or_else(|| panic!("user 9 is skipped: {records:?}"));
    assert_eq!(skipped.detail["reason"], "disabled");
    assert!(
        skipped.detail["why"].as_str().unwrap().contains("disabled"),
        "{skipped:?}"
    );
    let out = record_of(&records, RecordOutcome::Archived, &user(9).upn).expect("archived");
    assert_eq!(out.detail["reason"], "out_of_scope: disabled");
    assert!(
        records
            .iter()
            .all(|r| r.outcome != RecordOutcome::Created && r.outcome != RecordOutcome::Updated),
        "a full listing of unchanged users logs none of them: {records:?}"
    );

    // Unchanged: the run writes its steps and nothing else.
    let fourth = app.sync("contoso").await;
    assert_eq!(fourth.writes(), 0, "{fourth:?}");
    assert!(
        app.store
            .run_records(fourth.run_id, None)
            .await
            .unwrap()
            .is_empty()
    );

    // Only the latest runs keep their records.
    let forgotten = app.store.prune_run_records(connection.id, 2).await.unwrap();
    assert!(forgotten >= 20, "{forgotten}");
    assert!(
        app.store
            .run_records(first.run_id, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !app.store
            .run_records(third.run_id, None)
            .await
            .unwrap()
            .is_empty()
    );
    // The runs themselves stay, with their counts.
    let kept = app.store.run(first.run_id).await.unwrap().unwrap();
    assert!(
        kept.duration_ms.is_some() && kept.started_at.is_some(),
        "{kept:?}"
    );
}

async fn a_connection_test_is_kept_with_its_outcome(store: StoreKind) {
    let app = TestApp::with_users_on(store, 3).await;
    let connection = app.add_connection("contoso", 0).await;
    assert_eq!(connection.last_tested_at, None);
    let before = store::now_millis();
    let report = sync::test_connection(&app.store, &connection, graph::RetryPolicy::default())
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    let tested = app.store.connection("contoso").await.unwrap().unwrap();
    assert!(tested.last_tested_at.unwrap() >= before);
    assert_eq!(tested.last_test_passed, Some(true));

    // A wrong secret: tested, and failed.
    let tenant = app.tenant(0);
    let wrong = app
        .add_connection_with(
            "wrong",
            &tenant.tenant_id,
            &tenant.client_id,
            "not-the-secret",
            vec![Dataset::Users],
        )
        .await;
    let report = sync::test_connection(&app.store, &wrong, graph::RetryPolicy::default())
        .await
        .unwrap();
    assert!(!report.ok);
    let tested = app.store.connection("wrong").await.unwrap().unwrap();
    assert!(tested.last_tested_at.is_some());
    assert_eq!(tested.last_test_passed, Some(false));
}

async fn a_page_graph_would_not_give_is_logged_with_its_request_id(store: StoreKind) {
    let app = TestApp::with_users_on(store, 120).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    app.sim.state.inject(
        &key,
        Fault::FailUsersPage {
            page: 2,
            status: 500,
        },
    );
    let broken = app
        .engine
        .sync_with("contoso", &sync::NoProgress, true)
        .await
        .unwrap();
    assert_eq!(
        broken.step(Dataset::Users).unwrap().status,
        StepStatus::Failed
    );
    let failed = app
        .store
        .run_records(broken.run_id, Some(store::RecordOutcome::Failed))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].key, "page 2 of users");
    assert_eq!(failed[0].detail["status"], 500);
    assert!(
        failed[0].detail["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{failed:?}"
    );
    assert!(
        failed[0].detail["graph_code"].as_str().is_some(),
        "{failed:?}"
    );
}

/// Graph may replay an object's earlier state within a delta round; the latest entry holds. A
/// user sent as removed on one page and as present on a later one exists: its contact is
/// updated, neither marked deleted nor archived, however the round defers what takes contacts
/// away to its end.
async fn a_user_replayed_as_removed_then_listed_stays_active(store: StoreKind) {
    let app = TestApp::with_users_on(store, 30).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let key = app.tenant_key(0);
    for (index, title) in [(2, "Buyer"), (7, "Controller")] {
        assert!(app.sim.state.patch_user(
            &key,
            index,
            UserPatch {
                job_title: Some(title.into()),
                ..UserPatch::default()
            }
        ));
    }
    // A page a user: page 1 replays user 7 as removed beside user 2; page 2 lists user 7.
    app.sim
        .state
        .inject(&key, Fault::ReplayRemovedUser { index: 7 });
    let report = app
        .engine
        .clone()
        .with_page_size(1)
        .sync("contoso", &sync::NoProgress)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let users = report.step(Dataset::Users).unwrap().counts;
    assert_eq!(
        (users.updated, users.deleted, users.archived),
        (2, 0, 0),
        "{users:?}"
    );
    let replayed_id = app
        .sim
        .state
        .tenant(&key)
        .unwrap()
        .user(7)
        .unwrap()
        .id
        .to_string();
    let contacts = tenant_contacts(&app).await;
    let replayed = contacts
        .iter()
        .find(|c| c.object_id.as_deref() == Some(replayed_id.as_str()))
        .expect("the replayed user's contact is active");
    assert_eq!(replayed.job_title.as_deref(), Some("Controller"));
    assert_eq!(replayed.restorable_until, None);
    assert_eq!(contact_count(&app, false).await, 30);
}

/// A sync consolidates the tenant's detected apps into products (noise taken out, versions
/// grouped, devices and users counted once, the residue listed), reads its API connectors,
/// and keeps one snapshot of its figures, which an unchanged resync only extends.
async fn software_is_consolidated_and_the_tenant_snapshotted_after_a_sync(store: StoreKind) {
    let app = TestApp::with_users_on(store, 300).await;
    app.add_connection("contoso", 0).await;
    let first = app.sync("contoso").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.message);
    assert!(
        first
            .warnings
            .iter()
            .all(|w| w.code != "software_not_consolidated" && w.code != "snapshot_not_kept"),
        "{:?}",
        first.warnings
    );
    let tenant = TenantId::parse(&app.tenant_key(0)).unwrap();
    let detected = app.store.detected_apps_of(&tenant).await.unwrap();
    let products = app.store.software_products(Some(&tenant)).await.unwrap();
    let product = |name: &str| {
        products
            .iter()
            .map(|s| &s.product)
            .find(|p| p.product == name)
            .unwrap_or_else(|| {
                panic!(
                    "no {name} among {:?}",
                    products
                        .iter()
                        .map(|p| &p.product.product)
                        .collect::<Vec<_>>()
                )
            })
    };
    // 7-Zip is installed under three names; a device has one of them.
    let zip = product("7-Zip");
    assert!(zip.matched);
    let zip_devices: HashSet<&str> = detected
        .iter()
        .filter(|a| a.name.starts_with("7-Zip"))
        .flat_map(|a| a.device_ids.iter().map(|id| &**id))
        .collect();
    assert!(!zip_devices.is_empty());
    assert_eq!(zip.devices as usize, zip_devices.len());
    assert_eq!(
        zip.versions.iter().map(|v| v.devices).sum::<u64>(),
        zip.devices
    );
    assert!(zip.users > 0 && zip.users <= zip.devices, "{zip:?}");
    assert_eq!(zip.latest_version.as_deref(), Some("23.01"));
    assert_eq!(zip.oldest_version.as_deref(), Some("19.00"));
    assert!(zip.raw_names.contains(&"7-Zip 23.01 (x64)".to_string()));
    // Editions, languages and trademarks fold into one product; updates into theirs.
    assert!(product("Microsoft 365 Apps").raw_names.len() >= 3);
    assert!(
        product("Windows and Office updates")
            .versions
            .iter()
            .all(|v| v.version.starts_with("KB"))
    );
    assert_eq!(
        product("Microsoft Authenticator").publisher.as_deref(),
        Some("Microsoft")
    );
    // What no rule knows is listed, under its cleaned name.
    let timesheets = product("contoso timesheets");
    assert!(!timesheets.matched);
    assert_eq!(timesheets.publisher.as_deref(), Some("Contoso"));
    // Look-alikes stay apart: each JDK major, Java 8, the build tools, the Teams add-in.
    for name in [
        "Java SE Development Kit 17",
        "Java SE Development Kit 21",
        "Java Runtime Environment 8",
        "Visual Studio Build Tools",
        "Visual Studio",
        "Microsoft Teams Meeting Add-in for Outlook",
        "Microsoft Teams",
        "WhatsApp Business",
        "WhatsApp",
    ] {
        assert!(product(name).matched, "{name}");
    }
    // "v1.2.10.6" and "1.2.10.6" are one version.
    let greenshot = product("greenshot");
    assert_eq!(greenshot.versions.len(), 1, "{greenshot:?}");
    assert_eq!(greenshot.versions[0].version, "1.2.10.6");
    // Apps without a name are counted, with why, never as a product named by an id.
    let nameless = product(domain::software::NAMELESS);
    assert!(!nameless.matched && nameless.devices > 0, "{nameless:?}");
    assert!(nameless.reason.is_some() && nameless.raw_names.is_empty());
    let consolidated = app.store.consolidations().await.unwrap();
    assert_eq!(consolidated.len(), 1);
    assert!(
        consolidated[0]
            .rules_revision
            .starts_with("bundled software rules")
    );
    assert_eq!(consolidated[0].detected_apps as usize, detected.len());

    let connectors = app
        .store
        .inventory(Some(&tenant), Dataset::ApiConnectors, false)
        .await
        .unwrap();
    assert_eq!(connectors.len(), 2);
    assert!(
        connectors
            .iter()
            .any(|c| c.document["authentication"] == "basicAuthentication"
                && c.document["username"] == "userflows")
    );
    assert!(
        connectors
            .iter()
            .any(|c| c.document["certificates"][0]["end"].is_string())
    );

    let snapshots = app.store.snapshots(&tenant).await.unwrap();
    assert_eq!(snapshots.len(), 1);
    let figures = &snapshots[0].figures;
    let contacts = tenant_contacts(&app).await;
    let enabled = contacts
        .iter()
        .filter(|c| c.account_enabled == Some(true) && c.user_type.as_deref() != Some("Guest"))
        .count() as i64;
    assert_eq!(figures.get("users.enabled"), Some(enabled));
    assert_eq!(
        figures.get("software.products"),
        Some(products.iter().filter(|p| p.product.matched).count() as i64)
    );
    let devices = active_rows::<ManagedDeviceRecord>(&app).await.len() as i64;
    let by_compliance: i64 = figures
        .0
        .iter()
        .filter(|(k, _)| k.starts_with("devices."))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(by_compliance, devices);
    assert!(
        figures
            .0
            .keys()
            .any(|k| k.starts_with("licenses.") && k.ends_with(".assigned"))
    );
    assert!(figures.get("admins.count").unwrap_or(0) > 0);
    assert!(figures.get("mailboxes.storage_bytes").unwrap_or(0) > 0);
    assert!(figures.get("secrets.expiring_30_days").is_some());

    let again = app.sync("contoso").await;
    assert_eq!(again.status, RunStatus::Succeeded);
    let snapshots = app.store.snapshots(&tenant).await.unwrap();
    assert_eq!(
        snapshots.len(),
        1,
        "an unchanged tenant extends its snapshot"
    );
    assert!(snapshots[0].seen_until > snapshots[0].taken_at);

    // The licence facts read on either backend, and every licensed user holds a known SKU.
    let (skus, users) = app.store.license_facts(Some(&tenant)).await.unwrap();
    assert!(!skus.is_empty() && !users.is_empty());
    assert!(users.iter().all(|u| u.sign_ins_known && u.usage_known));
    let known: HashSet<&str> = skus.iter().map(|s| s.sku_id.as_str()).collect();
    assert!(
        users
            .iter()
            .all(|u| u.sku_ids.iter().all(|id| known.contains(id.as_str())))
    );
    let report = domain::waste::findings(
        &skus,
        &users,
        &domain::waste::PriceList::default(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(report.seats.len(), skus.len());
    // The tenant's subscriptions tell its Teams Premium trial, which no part number names.
    let teams = skus
        .iter()
        .find(|s| s.sku_part_number == "Microsoft_Teams_Premium")
        .unwrap();
    assert_eq!(teams.trial, Some(true));
    assert!(teams.next_lifecycle.is_some_and(|t| t > chrono::Utc::now()));
    assert!(
        skus.iter()
            .filter(|s| s.sku_part_number != "Microsoft_Teams_Premium")
            .all(|s| s.trial == Some(false))
    );
    let trials: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.kind == domain::waste::FindingKind::TrialSubscription)
        .map(|f| f.subject.as_str())
        .collect();
    assert_eq!(trials, vec!["Microsoft_Teams_Premium"]);
}
