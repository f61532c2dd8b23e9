//! One story run against every backend: what SQLite does, PostgreSQL does too.

use std::collections::HashSet;

use domain::{
    CertificateCredential, ClientId, ClientSecret, Cloud, ConnectionName, ContactRecord,
    Credential, Dataset, LicenseRecord, MailboxRecord, ObjectId, OrganizationRecord, RunStatus,
    ServicePlan, SkuPartNumber, StepStatus, TenantId, Upn,
};
use store::{
    Checkpoint, ContactFilter, NewConnection, OrganizationOutcome, RunWarning, StepCounts,
    StepTenant, Store, StoreError,
};

// The people who log in, their sessions and the set-up link.
#[path = "conformance/app_users.rs"]
mod app_users;
// The typed tables of devices.
#[path = "conformance/devices.rs"]
mod devices;
// What the REST API and the metrics page ask of the store.
#[path = "conformance/api.rs"]
mod api;
// What the pages page through, and text found in any case.
#[path = "conformance/pages.rs"]
mod pages;
// Calendar bookings: what each asked, and a failed attempt's transaction id.
#[path = "conformance/bookings.rs"]
mod bookings;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
const FLOW: &str = "f30db892-07e9-47e9-837c-80727f46fd3d";

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

/// The tenant's organisation as a first sync reads it, with nothing but its name.
fn contoso() -> OrganizationRecord {
    OrganizationRecord {
        tenant_id: tenant(),
        display_name: "Contoso Ltd".into(),
        verified_domains: vec![],
        default_domain: None,
        country_letter_code: None,
    }
}

fn in_tenant() -> StepTenant {
    StepTenant {
        tenant_id: TENANT.into(),
        tenant_name: None,
    }
}

fn contact(n: u8, title: &str) -> ContactRecord {
    ContactRecord {
        tenant_id: tenant(),
        object_id: ObjectId::parse(&format!("11111111-2222-4333-8444-5555555555{n:02}")).unwrap(),
        user_principal_name: Upn::parse(&format!("User{n}@Contoso.example")).unwrap(),
        display_name: format!("User {n}"),
        given_name: Some("Zoë".into()),
        surname: None,
        email: Some(format!("user{n}@contoso.example")),
        aliases: vec![],
        job_title: Some(title.into()),
        department: None,
        office_location: None,
        mobile_phone: None,
        business_phones: vec!["+44 20 7946 0000".into()],
        account_enabled: true,
        user_type: "Member".into(),
        license_sku_ids: vec![E3.into()],
        disabled_plans: vec![format!("{E3}:57ff2da0-773e-42df-b2af-ffb7a2317929")],
    }
}

fn license(sku: &str, part: &str, consumed: i64) -> LicenseRecord {
    LicenseRecord {
        tenant_id: tenant(),
        sku_id: sku.into(),
        sku_part_number: SkuPartNumber::parse(part).unwrap(),
        applies_to: "User".into(),
        capability_status: "Enabled".into(),
        enabled_units: 25,
        suspended_units: 0,
        warning_units: 0,
        consumed_units: consumed,
        service_plans: vec!["EXCHANGE_S_ENTERPRISE".into(), "TEAMS1".into()],
        plans: vec![
            ServicePlan {
                id: "efb87545-963c-4e0d-99df-69c6916d9eb0".into(),
                name: "EXCHANGE_S_ENTERPRISE".into(),
            },
            ServicePlan {
                id: "57ff2da0-773e-42df-b2af-ffb7a2317929".into(),
                name: "TEAMS1".into(),
            },
        ],
        trial: None,
        next_lifecycle: None,
    }
}

fn mailbox(upn: &str, used: i64) -> MailboxRecord {
    MailboxRecord {
        tenant_id: tenant(),
        user_principal_name: Upn::parse(upn).unwrap(),
        display_name: None,
        is_deleted: false,
        deleted_date: None,
        recipient_type: Some("user".into()),
        storage_used_bytes: Some(used),
        item_count: Some(10),
        issue_warning_quota_bytes: None,
        prohibit_send_quota_bytes: Some(53_150_220_288),
        prohibit_send_receive_quota_bytes: None,
        deleted_item_count: None,
        deleted_item_size_bytes: None,
        has_archive: Some(false),
        created_date: None,
        last_activity_date: Some("2026-11-20".into()),
    }
}

fn counts(created: u64, updated: u64, unchanged: u64, archived: u64) -> StepCounts {
    StepCounts {
        created,
        updated,
        unchanged,
        archived,
        deleted: 0,
    }
}

async fn story(store: &Store) {
    // Connections: saved, listed, secret sealed and opened, names unique.
    let new = || NewConnection {
        name: ConnectionName::parse("contoso").unwrap(),
        tenant_id: tenant(),
        client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
        credential: Credential::Secret(
            ClientSecret::parse("Abc8Q~not-a-real-secret-but-forty-chars").unwrap(),
        ),
        cloud: Cloud::Usgov,
        datasets: vec![Dataset::Users, Dataset::Mailboxes],
    };
    let connection = store.add_connection(new()).await.unwrap();
    assert!(matches!(
        store.add_connection(new()).await,
        Err(StoreError::Conflict(_))
    ));
    let listed = store.connections().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].cloud, Cloud::Usgov);
    assert_eq!(listed[0].datasets, vec![Dataset::Users, Dataset::Mailboxes]);
    let Credential::Secret(secret) = store.connection_credential(&connection).await.unwrap() else {
        panic!("a secret was saved");
    };
    assert_eq!(secret.expose(), "Abc8Q~not-a-real-secret-but-forty-chars");
    assert_eq!(listed[0].certificate, None);

    // A move to a certificate: the PEM sealed, the thumbprint and expiry shown.
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    let moved = store
        .set_connection_credential(
            &connection,
            &Credential::Certificate(CertificateCredential::new(pem, "AB12", 1_900_000_000)),
        )
        .await
        .unwrap();
    let reread = store.connection("contoso").await.unwrap().unwrap();
    assert_eq!(reread.certificate, moved.certificate);
    assert_eq!(reread.certificate.as_ref().unwrap().thumbprint, "AB12");
    let Credential::Certificate(certificate) = store.connection_credential(&reread).await.unwrap()
    else {
        panic!("a certificate was saved");
    };
    assert_eq!(
        (certificate.pem(), certificate.expires_at),
        (pem, 1_900_000_000)
    );
    let connection = store
        .set_connection_credential(&reread, &new().credential)
        .await
        .unwrap();
    assert_eq!(connection.certificate, None);

    // Organisations: created once, then unchanged, then updated when the tenant changes.
    let record = OrganizationRecord {
        tenant_id: tenant(),
        display_name: "Contoso Ltd".into(),
        verified_domains: vec!["contoso.example".into()],
        default_domain: Some("contoso.example".into()),
        country_letter_code: Some("GB".into()),
    };
    let created = store.apply_organization(&record).await.unwrap();
    let org = created.id();
    assert!(matches!(created, OrganizationOutcome::Created(_)));
    assert_eq!(
        store.apply_organization(&record).await.unwrap(),
        OrganizationOutcome::Unchanged(org)
    );
    let renamed = OrganizationRecord {
        display_name: "Contoso Group".into(),
        ..record.clone()
    };
    assert_eq!(
        store.apply_organization(&renamed).await.unwrap(),
        OrganizationOutcome::Updated(org)
    );
    let row = store
        .organization_for_tenant(&tenant())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.name.as_str(), row.tenant_name.as_deref()),
        ("Contoso Ltd", Some("Contoso Group")),
        "the MSP's name is kept"
    );
    let candidates = store.organization_candidates().await.unwrap();
    assert_eq!(candidates.len(), 1);

    // Licences: created, unchanged, updated, archived when no longer listed.
    let skus = vec![license(E3, "SPE_E3", 3), license(FLOW, "FLOW_FREE", 1)];
    assert_eq!(
        store.apply_licenses(org, &tenant(), &skus).await.unwrap(),
        counts(2, 0, 0, 0)
    );
    assert_eq!(
        store.apply_licenses(org, &tenant(), &skus).await.unwrap(),
        counts(0, 0, 2, 0)
    );
    assert_eq!(
        store
            .apply_licenses(org, &tenant(), &[license(E3, "SPE_E3", 4)])
            .await
            .unwrap(),
        counts(0, 1, 0, 1)
    );
    let licenses = store.licenses(Some(&tenant()), false).await.unwrap();
    assert_eq!(licenses.len(), 1);
    assert_eq!(
        (licenses[0].consumed_units, licenses[0].free_units),
        (4, 21)
    );
    // A trial, told by the tenant's subscriptions, reaches the waste findings' facts.
    let trial = LicenseRecord {
        trial: Some(true),
        next_lifecycle: Some("2026-12-20T00:00:00Z".into()),
        ..license(E3, "SPE_E3", 4)
    };
    assert_eq!(
        store
            .apply_licenses(org, &tenant(), &[trial])
            .await
            .unwrap(),
        counts(0, 1, 0, 0)
    );
    let (facts, _) = store.license_facts(Some(&tenant())).await.unwrap();
    assert_eq!(facts[0].trial, Some(true));
    assert_eq!(
        facts[0].next_lifecycle.map(|t| t.to_rfc3339()),
        Some("2026-12-20T00:00:00+00:00".into())
    );

    // A contact entered by hand before the first sync is linked, not duplicated.
    let local = store
        .create_local_contact(org, "Somebody", "USER3@contoso.example")
        .await
        .unwrap();

    // Contacts: keyed by object id; unchanged pages write nothing.
    let page = vec![contact(1, "CFO"), contact(2, "CTO"), contact(3, "Nurse")];
    assert_eq!(
        store.apply_contacts(org, &page).await.unwrap(),
        counts(2, 1, 0, 0)
    );
    assert_eq!(
        store.apply_contacts(org, &page).await.unwrap(),
        counts(0, 0, 3, 0)
    );
    let changed = vec![contact(1, "CEO"), contact(2, "CTO"), contact(3, "Nurse")];
    assert_eq!(
        store.apply_contacts(org, &changed).await.unwrap(),
        counts(0, 1, 2, 0)
    );

    // Mailboxes join contacts by UPN whatever its case.
    let boxes = vec![
        mailbox("user1@contoso.example", 1_000),
        mailbox("gone@contoso.example", 5),
    ];
    assert_eq!(
        store.apply_mailboxes(&tenant(), &boxes).await.unwrap(),
        counts(2, 0, 0, 0)
    );
    assert_eq!(
        store.apply_mailboxes(&tenant(), &boxes).await.unwrap(),
        counts(0, 0, 2, 0)
    );
    assert_eq!(store.attached_mailbox_count(&tenant()).await.unwrap(), 1);
    let keep: HashSet<String> = ["user1@contoso.example".to_string()].into();
    assert_eq!(
        store
            .archive_mailboxes_not_in(&tenant(), &keep, None)
            .await
            .unwrap(),
        1
    );

    let filter = ContactFilter {
        tenant_id: Some(tenant()),
        ..ContactFilter::default()
    };
    let all = store.contacts_page(&filter, 0, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    let user1 = all
        .iter()
        .find(|c| c.job_title.as_deref() == Some("CEO"))
        .unwrap();
    assert_eq!(user1.licenses, vec!["SPE_E3"]);
    assert_eq!(user1.license_names, vec!["Microsoft 365 E3"]);
    assert_eq!(
        user1.products,
        vec!["EXCHANGE_S_ENTERPRISE"],
        "Teams is switched off for this user"
    );
    assert_eq!(
        user1.mailbox.as_ref().unwrap().storage_used_bytes,
        Some(1_000)
    );
    assert_eq!(user1.given_name.as_deref(), Some("Zoë"));
    assert_eq!(user1.organization, "Contoso Ltd");
    let linked = all.iter().find(|c| c.id == local).unwrap();
    assert_eq!(
        linked.object_id.as_deref(),
        Some("11111111-2222-4333-8444-555555555503")
    );

    // Archiving: only what the complete listing lacks, in one transaction with the delta link of
    // the round; archived contacts return when seen again.
    let full_round = Checkpoint {
        resource: "users".into(),
        link: "https://graph/delta?$deltatoken=1".into(),
    };
    let seen: HashSet<ObjectId> = [contact(1, "").object_id, contact(2, "").object_id].into();
    assert_eq!(
        store
            .archive_contacts_not_in(org, &tenant(), &seen, Some(&full_round))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delta_link(&tenant(), "users")
            .await
            .unwrap()
            .as_deref(),
        Some("https://graph/delta?$deltatoken=1")
    );
    assert_eq!(store.contacts_page(&filter, 0, 10).await.unwrap().len(), 2);
    let with_archived = ContactFilter {
        include_archived: true,
        ..filter.clone()
    };
    assert_eq!(
        store
            .contacts_page(&with_archived, 0, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store.apply_contacts(org, &changed).await.unwrap(),
        counts(0, 1, 2, 0)
    );
    let mut seen_all = 0;
    store
        .each_contact(&filter, |_| {
            seen_all += 1;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(seen_all, 3);

    // A delta page: a change, a removal and the next link, together.
    let next_round = Checkpoint {
        resource: "users".into(),
        link: "https://graph/delta?$deltatoken=2".into(),
    };
    let changes = store
        .apply_contact_changes(
            org,
            &tenant(),
            &[contact(2, "Head of IT")],
            &[contact(3, "").object_id],
            Some(&next_round),
        )
        .await
        .unwrap();
    assert_eq!(changes, counts(0, 1, 0, 1));
    assert_eq!(
        store.delta_link(&tenant(), "users").await.unwrap(),
        Some(next_round.link.clone())
    );
    let removed_again = store
        .apply_contact_changes(org, &tenant(), &[], &[contact(3, "").object_id], None)
        .await
        .unwrap();
    assert_eq!(
        removed_again,
        counts(0, 0, 0, 0),
        "a replayed removal changes nothing"
    );
    store.clear_delta_link(&tenant(), "users").await.unwrap();
    assert_eq!(store.delta_link(&tenant(), "users").await.unwrap(), None);
    assert_eq!(
        store.apply_contacts(org, &changed).await.unwrap(),
        counts(0, 2, 1, 0)
    );

    // The run log, and runs left behind by a crash.
    let run = store
        .start_run(connection.id, "contoso", "manual")
        .await
        .unwrap();
    let step = store.start_step(run, "users", &in_tenant()).await.unwrap();
    store
        .finish_step(
            step,
            StepStatus::Succeeded,
            counts(1, 2, 3, 4),
            None,
            Some("Contoso Ltd"),
        )
        .await
        .unwrap();
    let warning = RunWarning {
        code: "report_names_concealed".into(),
        message: "x".into(),
    };
    store
        .finish_run(
            run,
            RunStatus::Succeeded,
            std::slice::from_ref(&warning),
            None,
        )
        .await
        .unwrap();
    let crashed = store
        .start_run_as(connection.id, "contoso", "manual", &gone_process())
        .await
        .unwrap();
    store
        .start_step(crashed, "users", &in_tenant())
        .await
        .unwrap();
    assert_eq!(store.fail_interrupted_runs().await.unwrap(), 1);
    let runs = store.runs(Some("contoso"), 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert_eq!(runs[0].steps[0].status, StepStatus::Failed);
    let done = store.run(run).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.warnings.clone(), done.steps[0].counts),
        (RunStatus::Succeeded, vec![warning], counts(1, 2, 3, 4))
    );
    // Each step keeps the tenant it read, and the name it learned on the way.
    assert_eq!(
        (
            done.steps[0].tenant_id.as_deref(),
            done.steps[0].tenant_name.as_deref()
        ),
        (Some(TENANT), Some("Contoso Ltd"))
    );
    assert_eq!(runs[0].steps[0].tenant_id.as_deref(), Some(TENANT));

    store.remove_connection("contoso").await.unwrap();
    assert!(matches!(
        store.remove_connection("contoso").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.contacts_page(&filter, 0, 10).await.unwrap().len(),
        3,
        "removing a connection keeps its data"
    );
}

/// A process that ran and has ended, as a run's owner.
fn gone_process() -> store::RunOwner {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = i64::from(child.id());
    let started = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|_| "a start that is not this process's".to_string())
        .unwrap_or_default();
    child.wait().unwrap();
    store::RunOwner {
        pid,
        started,
        ..store::RunOwner::current()
    }
}

/// A run is interrupted only when its process is gone: a sync going on in another process is
/// neither marked failed by other commands nor joined by a second sync of its connection.
async fn only_runs_whose_process_is_gone_are_interrupted(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let add = |name: &str| NewConnection {
        name: ConnectionName::parse(name).unwrap(),
        tenant_id: tenant(),
        client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
        credential: Credential::Secret(ClientSecret::parse("Abc8Q~secret-value-1234").unwrap()),
        cloud: Cloud::Global,
        datasets: vec![Dataset::Users],
    };
    let contoso = store.add_connection(add("contoso")).await.unwrap();
    let fabrikam = store.add_connection(add("fabrikam")).await.unwrap();

    let live = store
        .start_run(contoso.id, "contoso", "manual")
        .await
        .unwrap();
    store.start_step(live, "users", &in_tenant()).await.unwrap();
    assert_eq!(store.fail_interrupted_runs().await.unwrap(), 0);
    let err = store
        .start_run(contoso.id, "contoso", "manual")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already syncing"), "{err}");
    assert!(err.contains(&format!("run {live}")), "{err}");
    assert_eq!(
        store.run(live).await.unwrap().unwrap().status,
        RunStatus::Running
    );
    store
        .finish_run(live, RunStatus::Succeeded, &[], None)
        .await
        .unwrap();

    // A run on another host cannot be judged from here: left as it is, and not joined.
    let elsewhere = store::RunOwner {
        host: "another-host.example".into(),
        ..store::RunOwner::current()
    };
    let remote = store
        .start_run_as(fabrikam.id, "fabrikam", "manual", &elsewhere)
        .await
        .unwrap();
    // A run whose process died: closed by the next command, or by the next sync.
    let crashed = store
        .start_run_as(contoso.id, "contoso", "manual", &gone_process())
        .await
        .unwrap();
    store
        .start_step(crashed, "users", &in_tenant())
        .await
        .unwrap();
    assert_eq!(store.fail_interrupted_runs().await.unwrap(), 1);
    let closed = store.run(crashed).await.unwrap().unwrap();
    assert_eq!(closed.status, RunStatus::Failed);
    assert_eq!(closed.steps[0].status, StepStatus::Failed);
    assert_eq!(
        store.run(remote).await.unwrap().unwrap().status,
        RunStatus::Running
    );
    let refused = store
        .start_run(fabrikam.id, "fabrikam", "manual")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!("runs --close {remote}")),
        "{refused}"
    );
    // A person who knows that host's process is gone closes the run; a live one is refused.
    store.close_run(remote).await.unwrap();
    assert_eq!(
        store.run(remote).await.unwrap().unwrap().status,
        RunStatus::Failed
    );
    assert!(store.close_run(remote).await.is_err(), "closed twice");
    let ours = store
        .start_run(fabrikam.id, "fabrikam", "manual")
        .await
        .unwrap();
    let live = store.close_run(ours).await.unwrap_err().to_string();
    assert!(live.contains("still going"), "{live}");
    store
        .finish_run(ours, RunStatus::Succeeded, &[], None)
        .await
        .unwrap();
    let crashed_again = store
        .start_run_as(contoso.id, "contoso", "manual", &gone_process())
        .await
        .unwrap();
    let next = store
        .start_run(contoso.id, "contoso", "manual")
        .await
        .unwrap();
    assert_eq!(
        store.run(crashed_again).await.unwrap().unwrap().status,
        RunStatus::Failed
    );
    assert_eq!(
        store.run(next).await.unwrap().unwrap().status,
        RunStatus::Running
    );
    store.close().await;
}

testkit::on_both_stores!(only_runs_whose_process_is_gone_are_interrupted);

/// A step's message may carry anything an error said (an HTML error page with a NUL in it):
/// PostgreSQL cannot keep a NUL in text, and the run is closed all the same.
async fn any_message_closes_its_step_and_run(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let run = store.start_run(1, "contoso", "manual").await.unwrap();
    let step = store.start_step(run, "users", &in_tenant()).await.unwrap();
    let message = "the server answered <html>bad\u{0}gateway</html>";
    store
        .finish_step(
            step,
            StepStatus::Failed,
            StepCounts::default(),
            Some(message),
            None,
        )
        .await
        .unwrap();
    store
        .finish_run(run, RunStatus::Failed, &[], Some(message))
        .await
        .unwrap();
    let logged = store.run(run).await.unwrap().unwrap();
    assert_eq!(logged.status, RunStatus::Failed);
    assert_eq!(
        logged.steps[0].message.as_deref(),
        Some("the server answered <html>badgateway</html>")
    );
    store.close().await;
}

testkit::on_both_stores!(any_message_closes_its_step_and_run);

#[tokio::test]
async fn sqlite_store_keeps_the_story() {
    let (store, _home) = testkit::sqlite_store().await;
    story(&store).await;
}

#[tokio::test]
async fn postgres_store_keeps_the_story() {
    let Some((store, _home)) = testkit::postgres_store().await else {
        return;
    };
    story(&store).await;
    store.close().await;
}

#[tokio::test]
async fn both_backends_have_the_same_schema() {
    let Some((pg, _pg_home)) = testkit::postgres_store().await else {
        return;
    };
    let (sqlite, _home) = testkit::sqlite_store().await;
    assert_eq!(sqlite.schema().await.unwrap(), pg.schema().await.unwrap());
    pg.close().await;
}

#[tokio::test]
async fn a_store_opened_with_another_key_refuses_to_open_secrets() {
    let dir = tempfile_dir();
    let path = dir.join("store.db");
    let location = path.to_str().unwrap();
    let store = Store::open(location, store::SecretKey::generate())
        .await
        .unwrap();
    let connection = store
        .add_connection(NewConnection {
            name: ConnectionName::parse("a").unwrap(),
            tenant_id: tenant(),
            client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
            credential: Credential::Secret(
                ClientSecret::parse("Abc8Q~secret-value-that-must-not-leak-00").unwrap(),
            ),
            cloud: Cloud::Global,
            datasets: vec![Dataset::Users],
        })
        .await
        .unwrap();
    store.close().await;
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    let needle = b"secret-value-that-must-not-leak";
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle)
    );
    let _ = connection;
    store.close().await;
    let other = store::SecretKey::generate();
    let Err(err) = Store::open(location, other.clone()).await else {
        panic!("a store with secrets opened with another key");
    };
    let message = err.to_string();
    assert!(message.contains("sealed with key"), "{message}");
    assert!(message.contains(&other.id()), "{message}");
    assert!(message.contains("M365SYNC_SECRET_KEY"), "{message}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A SQLite file of another program is refused before m365sync adds a table or a key to it.
#[tokio::test]
async fn a_database_of_another_program_is_left_alone() {
    use sqlx::Connection as _;
    let dir = tempfile_dir();
    let path = dir.join("other.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE recipes (name TEXT)")
        .execute(&mut other)
        .await
        .unwrap();
    other.close().await.unwrap();
    let location = path.to_str().unwrap();
    let key_file = dir.join("other.db.key");
    let Err(err) = Store::open_keyed(location, None, &key_file, Default::default()).await else {
        panic!("another program's database was taken for a store");
    };
    assert!(err.to_string().contains("another program"), "{err}");
    assert!(!key_file.exists());
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut other)
            .await
            .unwrap();
    assert_eq!(tables, ["recipes"]);
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(
        journal, "delete",
        "the other program's database was changed"
    );
    // A migrations table of another framework is not ours either.
    sqlx::query("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY)")
        .execute(&mut other)
        .await
        .unwrap();
    other.close().await.unwrap();
    let Err(err) = Store::open_keyed(location, None, &key_file, Default::default()).await else {
        panic!("a Rails database was taken for a store");
    };
    assert!(err.to_string().contains("another program"), "{err}");
    assert!(!key_file.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// A file that is not a SQLite database is refused by name, and left as it was.
#[tokio::test]
async fn a_file_that_is_no_database_is_refused() {
    let dir = tempfile_dir();
    let path = dir.join("notes.txt");
    std::fs::write(
        &path,
        "shopping list: milk, eggs, and a great deal more text\n",
    )
    .unwrap();
    let key_file = dir.join("notes.txt.key");
    let Err(err) =
        Store::open_keyed(path.to_str().unwrap(), None, &key_file, Default::default()).await
    else {
        panic!("a text file was taken for a store");
    };
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("shopping list"),
        "the file was changed"
    );
    assert!(!key_file.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// Opening the store a second time in one process (the server's worker has a handle of its
/// own) keeps the locks the first handle holds: another program that opens and closes the
/// store then leaves its write-ahead log in place, and nothing written through either handle
/// is lost.
#[tokio::test]
async fn a_second_handle_keeps_the_first_ones_locks() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but python3 (for a second SQLite program) is missing"
        );
        eprintln!("skipped: python3 is not installed to open the store as another program");
        return;
    }
    let dir = tempfile_dir();
    let path = dir.join("shared.db");
    let location = path.to_str().unwrap();
    let key_file = dir.join("shared.db.key");
    let first = Store::open_keyed(location, None, &key_file, Default::default())
        .await
        .unwrap();
    first.apply_organization(&contoso()).await.unwrap();
    let second = Store::open_keyed(location, None, &key_file, Default::default())
        .await
        .unwrap();
    assert_eq!(second.organizations().await.unwrap().len(), 1);
    let other = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT COUNT(*) FROM sqlite_master').fetchall(); c.close()")
        .arg(location)
        .output()
        .unwrap();
    assert!(other.status.success(), "{other:?}");
    let wal = dir.join("shared.db-wal");
    assert!(
        wal.exists(),
        "another program closing the store took the write-ahead log of the open handles"
    );
    first.close().await;
    second.close().await;
    let reopened = Store::open_keyed(location, None, &key_file, Default::default())
        .await
        .unwrap();
    assert_eq!(reopened.organizations().await.unwrap().len(), 1);
    reopened.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("m365sync-store-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn concurrent_writers(store: &Store) {
    let record = contoso();
    let (a, b) = tokio::join!(
        store.apply_organization(&record),
        store.apply_organization(&record)
    );
    assert_eq!(
        a.unwrap().id(),
        b.unwrap().id(),
        "one organisation, whoever came first"
    );
    let org = store
        .organization_for_tenant(&tenant())
        .await
        .unwrap()
        .unwrap()
        .id;
    let page = vec![contact(1, "A"), contact(2, "B"), contact(3, "C")];
    let (a, b) = tokio::join!(
        store.apply_contacts(org, &page),
        store.apply_contacts(org, &page)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.created + b.created, 3);
    assert_eq!(a.unchanged + b.unchanged, 3);
    let filter = ContactFilter {
        tenant_id: Some(tenant()),
        ..ContactFilter::default()
    };
    assert_eq!(store.contacts_page(&filter, 0, 10).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_writers_at_once_make_no_duplicates() {
    let (store, _home) = testkit::sqlite_store().await;
    concurrent_writers(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_writers_at_once_make_no_duplicates() {
    let Some((store, _home)) = testkit::postgres_store().await else {
        return;
    };
    concurrent_writers(&store).await;
    store.close().await;
}

async fn inventory_story(store: &Store) {
    let record = contoso();
    let org = store.apply_organization(&record).await.unwrap().id();
    let item = |key: &str, value: i64| domain::InventoryItem {
        key: key.into(),
        name: key.into(),
        document: serde_json::json!({ "v": value }),
    };
    // A key twice in one batch: the last one is kept, and the upsert does not trip on itself.
    let batch = vec![item("a", 1), item("a", 2), item("b", 1)];
    assert_eq!(
        store
            .apply_inventory(org, &tenant(), Dataset::Domains, &batch, None)
            .await
            .unwrap(),
        counts(2, 0, 0, 0)
    );
    assert_eq!(
        store
            .apply_inventory(org, &tenant(), Dataset::Domains, &batch, None)
            .await
            .unwrap(),
        counts(0, 0, 2, 0)
    );
    let rows = store
        .inventory(Some(&tenant()), Dataset::Domains, false)
        .await
        .unwrap();
    assert_eq!(rows.iter().find(|r| r.key == "a").unwrap().document["v"], 2);
    // The same key in another dataset is another item.
    assert_eq!(
        store
            .apply_inventory(org, &tenant(), Dataset::Groups, &[item("a", 9)], None)
            .await
            .unwrap(),
        counts(1, 0, 0, 0)
    );
    let seen: HashSet<String> = ["b".to_string()].into();
    assert_eq!(
        store
            .archive_inventory_not_in(&tenant(), Dataset::Domains, &seen)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .inventory(Some(&tenant()), Dataset::Groups, false)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn sqlite_inventory_keeps_one_item_per_key() {
    let (store, _home) = testkit::sqlite_store().await;
    inventory_story(&store).await;
}

#[tokio::test]
async fn postgres_inventory_keeps_one_item_per_key() {
    let Some((store, _home)) = testkit::postgres_store().await else {
        return;
    };
    inventory_story(&store).await;
    store.close().await;
}

/// Every list a store method takes may be empty: a page with no items, a delta round with no
/// changes, a listing that found nothing. PostgreSQL refuses an empty `IN ()` that SQLite
/// accepts, so each is asked of both.
async fn empty_lists_ask_for_nothing(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let record = contoso();
    let org = store.apply_organization(&record).await.unwrap().id();
    let none = StepCounts::default();
    let checkpoint = |resource: &str| Checkpoint {
        resource: resource.into(),
        link: format!("https://graph.example/v1.0/{resource}/delta?$deltatoken=1"),
    };
    // Empty pages that still carry the round's checkpoint.
    assert_eq!(
        store
            .apply_inventory(
                org,
                &tenant(),
                Dataset::Groups,
                &[],
                Some(&checkpoint("groups"))
            )
            .await
            .unwrap(),
        none
    );
    assert_eq!(
        store
            .apply_contact_changes(org, &tenant(), &[], &[], Some(&checkpoint("users")))
            .await
            .unwrap(),
        none
    );
    assert!(
        store
            .delta_link(&tenant(), "users")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .delta_link(&tenant(), "groups")
            .await
            .unwrap()
            .is_some()
    );
    // Empty pages without one, and empty lookups.
    assert_eq!(store.apply_contacts(org, &[]).await.unwrap(), none);
    assert_eq!(store.apply_mailboxes(&tenant(), &[]).await.unwrap(), none);
    assert_eq!(
        store.apply_licenses(org, &tenant(), &[]).await.unwrap(),
        none
    );
    assert_eq!(
        store
            .append_audit_records(org, &tenant(), &[], None)
            .await
            .unwrap(),
        none
    );
    assert!(
        store
            .contact_names(&tenant(), &[])
            .await
            .unwrap()
            .is_empty()
    );
    // Removals of ids the store never held.
    let stranger = ObjectId::parse("00000000-0000-4000-8000-000000000001").unwrap();
    assert_eq!(
        store
            .apply_contact_changes(org, &tenant(), &[], &[stranger], None)
            .await
            .unwrap(),
        none
    );
    // Complete listings that found nothing, over a store that holds nothing.
    let nothing = HashSet::new();
    assert_eq!(
        store
            .archive_contacts_not_in(org, &tenant(), &HashSet::new(), None)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .archive_inventory_not_in(&tenant(), Dataset::Domains, &nothing)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .archive_mailboxes_not_in(&tenant(), &nothing, None)
            .await
            .unwrap(),
        0
    );
    store.close().await;
}

testkit::on_both_stores!(empty_lists_ask_for_nothing);

/// A contact reads back as the plan compares it with its user: every synced field, licences
/// and switched-off plans included; a contact kept by hand has no tenant or user.
async fn a_contact_reads_back_as_its_plan_compares_it(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let record = contoso();
    let org = store.apply_organization(&record).await.unwrap().id();
    let mut user = contact(1, "Engineer");
    user.license_sku_ids = vec![E3.into(), FLOW.into()];
    user.aliases = vec!["u1@contoso.example".into()];
    store
        .apply_contact_changes(org, &tenant(), std::slice::from_ref(&user), &[], None)
        .await
        .unwrap();
    let mut ids = Vec::new();
    store
        .each_contact(&ContactFilter::default(), |c| {
            ids.push(c.id);
            Ok(())
        })
        .await
        .unwrap();
    let planned = store.contact_as_planned(ids[0]).await.unwrap().unwrap();
    assert_eq!(planned.tenant_id, Some(tenant()));
    assert_eq!(planned.contact.object_id, Some(user.object_id));
    assert_eq!(planned.contact.fields, user.fields());

    let by_hand = store
        .create_local_contact(org, "Kept By Hand", "hand@contoso.example")
        .await
        .unwrap();
    let planned = store.contact_as_planned(by_hand).await.unwrap().unwrap();
    assert_eq!((planned.tenant_id, planned.contact.object_id), (None, None));
    assert_eq!(
        planned.contact.fields["mail"].as_deref(),
        Some("hand@contoso.example")
    );
    assert!(
        store
            .contact_as_planned(by_hand + 100)
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}

testkit::on_both_stores!(a_contact_reads_back_as_its_plan_compares_it);

/// Runs are jobs: queued, claimed one per connection with a lease, renewed, cancelled, and taken
/// for interrupted only when the lease has expired.
async fn runs_are_queued_claimed_with_a_lease_and_cancelled(kind: testkit::StoreKind) {
    use std::time::Duration;
    use store::{Cancelled, Claim, Lease, RunOptions, RunTrigger, Worker};

    let (store, _home) = testkit::store_of(kind).await;
    let add = |name: &str| NewConnection {
        name: ConnectionName::parse(name).unwrap(),
        tenant_id: tenant(),
        client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
        credential: Credential::Secret(ClientSecret::parse("Abc8Q~secret-value-1234").unwrap()),
        cloud: Cloud::Global,
        datasets: vec![Dataset::Users],
    };
    let contoso = store.add_connection(add("contoso")).await.unwrap();
    let fabrikam = store.add_connection(add("fabrikam")).await.unwrap();
    let plain = RunOptions::default();

    // A schedule queues; asking again joins the queued run, and a person's request raises it.
    let scheduled = store
        .enqueue_run(fabrikam.id, "fabrikam", RunTrigger::Scheduled, plain)
        .await
        .unwrap();
    let contoso_run = store
        .enqueue_run(contoso.id, "contoso", RunTrigger::Scheduled, plain)
        .await
        .unwrap();
    let joined = store
        .enqueue_run(
            contoso.id,
            "contoso",
            RunTrigger::Manual,
            RunOptions {
                full: true,
                ..plain
            },
        )
        .await
        .unwrap();
    assert!(joined.joined);
    assert_eq!(joined.run_id, contoso_run.run_id);
    assert_eq!(store.queued_runs().await.unwrap().len(), 2);

    // The person's run goes first, with both requests' wishes.
    let worker = Worker::current(Duration::from_secs(60));
    let Claim::Claimed(first) = store.claim_run(&worker, None).await.unwrap() else {
        panic!("a run to claim");
    };
    assert_eq!(first.run_id, contoso_run.run_id);
    assert!(first.options.full);
    assert_eq!(first.kind, "full");
    // One run per connection: a second request for contoso waits behind the one going.
    let behind = store
        .enqueue_run(contoso.id, "contoso", RunTrigger::Manual, plain)
        .await
        .unwrap();
    assert!(!behind.joined);
    let other = Worker::current(Duration::from_secs(60));
    let Claim::Claimed(second) = store.claim_run(&other, None).await.unwrap() else {
        panic!("fabrikam's run to claim");
    };
    assert_eq!(second.run_id, scheduled.run_id);
    assert!(matches!(
        store.claim_run(&other, None).await.unwrap(),
        Claim::Nothing
    ));
    match store.claim_run(&other, Some(behind.run_id)).await.unwrap() {
        Claim::Busy { run_id, .. } => assert_eq!(run_id, first.run_id),
        other => panic!("busy behind run {}: {other:?}", first.run_id),
    }

    // Renewing keeps the lease; a cancel request reaches the worker that renews.
    assert_eq!(
        store.renew_lease(&worker, first.run_id).await.unwrap(),
        Lease::Held {
            cancel_requested: false
        }
    );
    assert_eq!(
        store.cancel_run(first.run_id).await.unwrap(),
        Cancelled::Stopping
    );
    assert_eq!(
        store.renew_lease(&worker, first.run_id).await.unwrap(),
        Lease::Held {
            cancel_requested: true
        }
    );
    assert_eq!(
        store.renew_lease(&other, first.run_id).await.unwrap(),
        Lease::Lost,
        "only the holder renews"
    );
    store
        .finish_run(first.run_id, RunStatus::Cancelled, &[], None)
        .await
        .unwrap();
    assert!(store.cancel_run(first.run_id).await.is_err());
    // A queued run is cancelled at once and never claimed.
    assert_eq!(
        store.cancel_run(behind.run_id).await.unwrap(),
        Cancelled::Dequeued
    );
    assert_eq!(
        store.run(behind.run_id).await.unwrap().unwrap().status,
        RunStatus::Cancelled
    );

    // A worker that stops renewing loses the run once its lease expires, and only then.
    let short = Worker::current(Duration::from_millis(400));
    store
        .enqueue_run(contoso.id, "contoso", RunTrigger::Manual, plain)
        .await
        .unwrap();
    let Claim::Claimed(stalled) = store.claim_run(&short, None).await.unwrap() else {
        panic!("a run to claim");
    };
    store
        .start_step(stalled.run_id, "users", &in_tenant())
        .await
        .unwrap();
    assert_eq!(store.close_expired_runs().await.unwrap(), 0, "still held");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.close_expired_runs().await.unwrap(), 1);
    let closed = store.run(stalled.run_id).await.unwrap().unwrap();
    assert_eq!(closed.status, RunStatus::Failed);
    assert!(closed.message.unwrap().contains("lease"));
    assert_eq!(closed.steps[0].status, StepStatus::Failed);
    assert_eq!(
        store.renew_lease(&short, stalled.run_id).await.unwrap(),
        Lease::Lost
    );
    // Its late finish does not overwrite what was decided.
    store
        .finish_run(stalled.run_id, RunStatus::Succeeded, &[], None)
        .await
        .unwrap();
    assert_eq!(
        store.run(stalled.run_id).await.unwrap().unwrap().status,
        RunStatus::Failed
    );
    store.close().await;
}

testkit::on_both_stores!(runs_are_queued_claimed_with_a_lease_and_cancelled);

/// A worker writes for a run only while it holds the run's lease: once the lease has expired
/// and the run is closed, its writes are refused whole and its late finish changes nothing.
async fn a_worker_that_lost_its_lease_writes_nothing_more(kind: testkit::StoreKind) {
    use std::time::Duration;
    use store::{Claim, RunOptions, RunTrigger, StoreError, Worker};

    let (store, _home) = testkit::store_of(kind).await;
    let connection = store
        .add_connection(NewConnection {
            name: ConnectionName::parse("contoso").unwrap(),
            tenant_id: tenant(),
            client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
            credential: Credential::Secret(ClientSecret::parse("Abc8Q~secret-value-1234").unwrap()),
            cloud: Cloud::Global,
            datasets: vec![Dataset::Users],
        })
        .await
        .unwrap();
    let org = store.apply_organization(&contoso()).await.unwrap().id();
    let worker = Worker::current(Duration::from_millis(400));
    store
        .enqueue_run(
            connection.id,
            "contoso",
            RunTrigger::Manual,
            RunOptions::default(),
        )
        .await
        .unwrap();
    let Claim::Claimed(run) = store.claim_run(&worker, None).await.unwrap() else {
        panic!("a run to claim");
    };
    let fenced = store.fenced_to(run.run_id, &worker);
    // While the lease holds, the worker's writes go through.
    fenced
        .apply_contact_changes(org, &tenant(), &[contact(1, "Engineer")], &[], None)
        .await
        .unwrap();
    // The worker stalls past its lease; the run is closed as interrupted.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.close_expired_runs().await.unwrap(), 1);
    let late = fenced
        .apply_contact_changes(
            org,
            &tenant(),
            &[contact(1, "Director"), contact(2, "Analyst")],
            &[],
            None,
        )
        .await;
    match late {
        Err(StoreError::LeaseLost { run_id }) => assert_eq!(run_id, run.run_id),
        other => panic!("a late write is refused: {other:?}"),
    }
    let mut titles = Vec::new();
    store
        .each_contact(&ContactFilter::default(), |c| {
            titles.push(c.job_title.clone());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        titles,
        vec![Some("Engineer".to_string())],
        "nothing of the late write"
    );
    fenced
        .finish_run(run.run_id, RunStatus::Succeeded, &[], None)
        .await
        .unwrap();
    assert_eq!(
        store.run(run.run_id).await.unwrap().unwrap().status,
        RunStatus::Failed,
        "the late finish leaves the run as it was closed"
    );
    store.close().await;
}

testkit::on_both_stores!(a_worker_that_lost_its_lease_writes_nothing_more);

/// A connection's latest runs keep the outcome of each record; older ones keep their steps and
/// counts only, and another connection's runs are not touched.
async fn a_connection_keeps_the_records_of_its_latest_runs(kind: testkit::StoreKind) {
    use store::{RecordOutcome, RecordStep, RunRecord};
    let (store, _home) = testkit::store_of(kind).await;
    let logged_run = |connection: i64, n: i64| {
        let store = store.clone();
        async move {
            let run = store
                .start_run(connection, &format!("connection-{connection}"), "manual")
                .await
                .unwrap();
            let step = store.start_step(run, "users", &in_tenant()).await.unwrap();
            let step_of = RecordStep {
                run_id: run,
                step_id: step,
                tenant_id: TENANT.into(),
                dataset: "users".into(),
            };
            let record = RunRecord {
                outcome: RecordOutcome::Created,
                key: format!("user {n}"),
                label: Some(format!("user{n}@contoso.example")),
                detail: serde_json::json!({"display_name": format!("User {n}")}),
                contact_id: Some(n),
            };
            store.record_outcomes(&step_of, &[record]).await.unwrap();
            store
                .finish_run(run, RunStatus::Succeeded, &[], None)
                .await
                .unwrap();
            run
        }
    };
    let other = logged_run(2, 0).await;
    let mut runs = Vec::new();
    for n in 0..store::run_records::KEPT_RUNS + 2 {
        runs.push(logged_run(1, n).await);
    }
    for (i, run) in runs.iter().enumerate() {
        let records = store.run_records(*run, None).await.unwrap();
        assert_eq!(records.len(), usize::from(i >= 2), "run {i}: {records:?}");
    }
    let newest = store
        .run_records(*runs.last().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(newest[0].outcome, RecordOutcome::Created);
    assert_eq!(
        newest[0].detail["display_name"],
        format!("User {}", store::run_records::KEPT_RUNS + 1)
    );
    assert!(
        store
            .run_records(*runs.last().unwrap(), Some(RecordOutcome::Failed))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.run_records(other, None).await.unwrap().len(), 1);
    let first = store
        .run(runs[0])
        .await
        .unwrap()
        .expect("the run itself stays");
    assert_eq!(first.status, RunStatus::Succeeded);
    assert!(first.duration_ms.is_some_and(|d| d >= 0), "{first:?}");
    store.close().await;
}

testkit::on_both_stores!(a_connection_keeps_the_records_of_its_latest_runs);

/// The users and mailbox steps run side by side, so either may write first: a mailbox belongs to
/// the live contact of its name whichever came first, and a contact renamed to a mailbox's name
/// takes that mailbox and lets go of its old one.
async fn a_mailbox_belongs_to_the_contact_of_its_name_whichever_is_written_first(
    kind: testkit::StoreKind,
) {
    let (store, _home) = testkit::store_of(kind).await;
    let record = contoso();
    let org = store.apply_organization(&record).await.unwrap().id();
    let early = vec![mailbox("USER1@contoso.example", 7)];
    assert_eq!(
        store.apply_mailboxes(&tenant(), &early).await.unwrap(),
        counts(1, 0, 0, 0)
    );
    assert_eq!(store.attached_mailbox_count(&tenant()).await.unwrap(), 0);
    store
        .apply_contacts(org, &[contact(1, "CEO"), contact(2, "CTO")])
        .await
        .unwrap();
    assert_eq!(store.attached_mailbox_count(&tenant()).await.unwrap(), 1);
    assert_eq!(
        store.apply_mailboxes(&tenant(), &early).await.unwrap(),
        counts(0, 0, 1, 0),
        "a mailbox as stored is unchanged, whenever its contact came"
    );
    let late = vec![mailbox("user2@contoso.example", 9)];
    store.apply_mailboxes(&tenant(), &late).await.unwrap();
    assert_eq!(store.attached_mailbox_count(&tenant()).await.unwrap(), 2);

    // A mailbox named for nobody yet is taken by the contact renamed to it.
    let renamed_box = vec![mailbox("new.name@contoso.example", 11)];
    store
        .apply_mailboxes(&tenant(), &renamed_box)
        .await
        .unwrap();
    assert_eq!(store.attached_mailbox_count(&tenant()).await.unwrap(), 2);
    let mut renamed = contact(2, "CTO");
    renamed.user_principal_name = Upn::parse("New.Name@contoso.example").unwrap();
    store.apply_contacts(org, &[renamed]).await.unwrap();
    assert_eq!(
        store.attached_mailbox_count(&tenant()).await.unwrap(),
        2,
        "the mailbox of the old name is no longer the contact's"
    );
    let filter = ContactFilter {
        tenant_id: Some(tenant()),
        ..ContactFilter::default()
    };
    let page = store.contacts_page(&filter, 0, 10).await.unwrap();
    let cto = page
        .iter()
        .find(|c| c.job_title.as_deref() == Some("CTO"))
        .unwrap();
    assert_eq!(
        cto.mailbox.as_ref().and_then(|m| m.storage_used_bytes),
        Some(11)
    );
    store.close().await;
}

testkit::on_both_stores!(a_mailbox_belongs_to_the_contact_of_its_name_whichever_is_written_first);

/// PostgreSQL plans from statistics autovacuum gathers about once a minute: a contacts table a
/// first sync fills within seconds is analysed as it grows, or each page of users is looked up by
/// reading every contact of the tenant.
#[tokio::test]
async fn a_postgres_contacts_table_a_sync_fills_is_analysed_as_it_grows() {
    use sqlx::Connection as _;
    let Some((store, home)) = testkit::postgres_store().await else {
        return;
    };
    let testkit::StoreHome::Postgres(database) = &home else {
        unreachable!("a PostgreSQL store lives in a database")
    };
    let record = contoso();
    let org = store.apply_organization(&record).await.unwrap().id();
    let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
    // Autovacuum would analyse the table on its own schedule, in or out of the test's window.
    sqlx::query("ALTER TABLE contacts SET (autovacuum_enabled = off)")
        .execute(&mut connection)
        .await
        .unwrap();
    const HELD: &str = "SELECT reltuples FROM pg_class WHERE oid = CAST('contacts' AS regclass)";
    for page in 0..5u32 {
        let users: Vec<ContactRecord> = (0..500u32)
            .map(|n| {
                let n = page * 500 + n;
                let mut user = contact(1, "Staff");
                user.object_id =
                    ObjectId::parse(&format!("11111111-2222-4333-8444-{n:012}")).unwrap();
                user.user_principal_name = Upn::parse(&format!("user{n}@contoso.example")).unwrap();
                user
            })
            .collect();
        store.apply_contacts(org, &users).await.unwrap();
        if page == 2 {
            assert!(
                sqlx::query_scalar::<_, f32>(HELD)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap()
                    < 1_000.0,
                "1,500 contacts are too few to look at"
            );
        }
    }
    let held: f32 = sqlx::query_scalar(HELD)
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert!(
        held >= 2_000.0,
        "the planner still thinks the table holds {held} rows"
    );
    store.close().await;
}

/// A user deleted into the recycle bin keeps a live contact for 30 days, and a new user may take
/// the name meanwhile: the mailbox of that name is the new user's alone, wherever it is read.
async fn a_reused_name_gives_its_mailbox_to_the_new_user_alone(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let org = store.apply_organization(&contoso()).await.unwrap().id();
    let leaver = contact(1, "Leaver");
    store
        .apply_contacts(org, std::slice::from_ref(&leaver))
        .await
        .unwrap();
    // Removed by a delta round without "deleted": in the recycle bin, restorable.
    let removed = [domain::plan::Removal::from_reason(leaver.object_id, None)];
    let mapping = domain::FieldMapping::default();
    let mut batch = store.contact_batch(org, &tenant()).await.unwrap();
    let stored = batch.stored(&[], &removed, &mapping).await.unwrap();
    let plan = domain::plan::plan_contacts(&[], &removed, &stored, &mapping, store::now_millis());
    batch.apply(&plan, None, None).await.unwrap();
    batch.commit().await.unwrap();
    let mut joiner = contact(2, "Joiner");
    joiner.user_principal_name = leaver.user_principal_name.clone();
    store
        .apply_contact_changes(org, &tenant(), std::slice::from_ref(&joiner), &[], None)
        .await
        .unwrap();
    let mut shared = mailbox("user1@contoso.example", 5);
    shared.recipient_type = Some("shared".into());
    store.apply_mailboxes(&tenant(), &[shared]).await.unwrap();

    assert_eq!(store.attached_mailbox_count(&tenant()).await.unwrap(), 1);
    let listed = store
        .mailboxes(Some(&tenant()), store::MailboxKind::Live, false)
        .await
        .unwrap();
    assert_eq!(
        listed[0].contact_object_id,
        Some(joiner.object_id.to_string())
    );
    let filter = ContactFilter {
        tenant_id: Some(tenant()),
        ..ContactFilter::default()
    };
    let page = store.contacts_page(&filter, 0, 10).await.unwrap();
    assert_eq!(page.len(), 2, "the leaver is still listed, as deleted");
    let holders: Vec<Option<String>> = page
        .iter()
        .filter(|c| c.mailbox.is_some())
        .map(|c| c.job_title.clone())
        .collect();
    assert_eq!(holders, vec![Some("Joiner".to_string())]);
    let (shared_users, total) = store
        .search_contacts(&store::ContactSearch {
            only: Some(store::ContactKind::Shared),
            limit: 10,
            ..store::ContactSearch::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(shared_users[0].job_title.as_deref(), Some("Joiner"));
    store.close().await;
}

testkit::on_both_stores!(a_reused_name_gives_its_mailbox_to_the_new_user_alone);

/// A listing need not read back the rows it created itself to find what it lacked; a row of
/// the tenant another writer created meanwhile is read, and archived if the listing lacked it.
async fn a_listing_reads_back_all_but_the_rows_it_created(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let org = store.apply_organization(&contoso()).await.unwrap().id();
    store
        .apply_contacts(org, &[contact(1, "Old")])
        .await
        .unwrap();
    store
        .apply_mailboxes(&tenant(), &[mailbox("user1@contoso.example", 1)])
        .await
        .unwrap();
    let mut contacts_since = store.contacts_stored_since().await.unwrap();
    let mut mailboxes_since = store.mailboxes_stored_since().await.unwrap();
    // The listing creates user 2 and its mailbox...
    store
        .apply_contacts(org, &[contact(2, "New")])
        .await
        .unwrap();
    contacts_since.created(1);
    let applied = store
        .apply_mailboxes(&tenant(), &[mailbox("user2@contoso.example", 2)])
        .await
        .unwrap();
    mailboxes_since.created(applied.created);

    let mut batch = store.contact_batch(org, &tenant()).await.unwrap();
    assert_eq!(batch.active_linked_count().await.unwrap(), 2);
    let read = |contacts: Vec<domain::plan::ActiveContact>| {
        contacts
            .into_iter()
            .map(|c| c.object_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        read(
            batch
                .active_linked_where(Some(&contacts_since), |_| true)
                .await
                .unwrap()
        ),
        vec![contact(1, "").object_id],
        "the contact the listing created is not read back"
    );
    drop(batch);
    // ...and another writer creates user 3's contact meanwhile: now every contact is read.
    store
        .apply_contacts(org, &[contact(3, "Settled")])
        .await
        .unwrap();
    let mut batch = store.contact_batch(org, &tenant()).await.unwrap();
    assert_eq!(
        batch
            .active_linked_where(Some(&contacts_since), |_| true)
            .await
            .unwrap()
            .len(),
        3
    );
    drop(batch);

    // Neither mailbox is in the report: only the one stored before it began is archived.
    let nothing: HashSet<String> = HashSet::new();
    assert_eq!(
        store
            .archive_mailboxes_not_in(&tenant(), &nothing, Some(&mailboxes_since))
            .await
            .unwrap(),
        1
    );
    let left: Vec<String> = store
        .mailboxes(Some(&tenant()), store::MailboxKind::Live, false)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_principal_name)
        .collect();
    assert_eq!(left, vec!["user2@contoso.example"]);
    // A mailbox another writer stored meanwhile is read too, with every other.
    store
        .apply_mailboxes(&tenant(), &[mailbox("user4@contoso.example", 4)])
        .await
        .unwrap();
    assert_eq!(
        store
            .archive_mailboxes_not_in(&tenant(), &nothing, Some(&mailboxes_since))
            .await
            .unwrap(),
        2
    );
}

testkit::on_both_stores!(a_listing_reads_back_all_but_the_rows_it_created);
