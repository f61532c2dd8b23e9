//! The usage and sign-in activity tables on every backend: a store that kept them as inventory
//! documents moves them into their tables on upgrade, and a resync then finds them unchanged.

use domain::rows::{Keyed, plan_page};
use domain::usage::{SignInRecord, UsageRecord, UsageReport};
use domain::{Dataset, TenantId};
use store::{SecretKey, Store};
use testkit::StoreKind;

testkit::on_both_stores!(
    a_store_before_0017_moves_usage_and_sign_ins_out_of_the_inventory,
    usage_documents_of_unexpected_types_do_not_stop_the_upgrade,
);

const CONTOSO: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ANN: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const BOB: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

/// Undoes migration 0017 and puts back what an older sync wrote to the inventory.
fn before_0017() -> Vec<String> {
    let item = |dataset: &str, key: &str, document: &str, archived: bool, updated: i64| {
        format!(
            "INSERT INTO inventory (organization_id, tenant_id, dataset, item_key, name, document, fingerprint, archived, created_at, updated_at) \
             VALUES (1, '{CONTOSO}', '{dataset}', '{key}', '{key}', '{document}', 'old', {archived}, 5, {updated})",
            archived = if archived { "TRUE" } else { "FALSE" },
        )
    };
    vec![
        "DROP TABLE usage".into(),
        "DROP TABLE sign_in_activity".into(),
        "DELETE FROM schema_migrations WHERE version = 17".into(),
        "INSERT INTO organizations (name, created_at, updated_at) VALUES ('Contoso', 1, 1)".into(),
        item(
            "usage",
            "activity:ann@contoso.example",
            r#"{"kind": "activity", "user_principal_name": "ann@contoso.example", "is_deleted": false, "last_activity": {"exchange": "2026-11-01", "onedrive": null, "sharepoint": null, "teams": "2026-11-20", "yammer": null, "skype_for_business": null}, "has_license": {"exchange": true, "onedrive": false, "sharepoint": true, "teams": true}, "assigned_products": ["Office 365 E3", "Microsoft Teams"]}"#,
            false,
            10,
        ),
        item(
            "usage",
            "apps:ann@contoso.example",
            r#"{"kind": "apps", "user_principal_name": "ann@contoso.example", "last_activation": "2026-10-01", "last_activity": "2026-11-21", "platforms": {"windows": true, "mac": false, "mobile": null, "web": true}, "apps": {"outlook": true, "word": true, "excel": false, "powerpoint": false, "onenote": null, "teams": true}}"#,
            false,
            10,
        ),
        item(
            "usage",
            "email:ann@contoso.example",
            r#"{"kind": "email", "user_principal_name": "ann@contoso.example", "is_deleted": false, "last_activity": "2026-11-22", "send_count": 12, "receive_count": 40, "read_count": 30, "meeting_created_count": 1, "meeting_interacted_count": 2}"#,
            true,
            10,
        ),
        // Ann was renamed between two syncs: the older item under her old name gives way.
        item(
            "sign_in_activity",
            "sign_in:ann.old@contoso.example",
            &format!(
                r#"{{"user_id": "{ANN}", "user_principal_name": "ann.old@contoso.example", "last_sign_in": "2026-01-01T00:00:00Z", "last_non_interactive_sign_in": null, "last_successful_sign_in": null}}"#
            ),
            false,
            10,
        ),
        item(
            "sign_in_activity",
            "sign_in:ann@contoso.example",
            &format!(
                r#"{{"user_id": "{ANN}", "user_principal_name": "ann@contoso.example", "last_sign_in": "2026-11-28T09:30:00Z", "last_non_interactive_sign_in": "2026-11-29T07:00:00Z", "last_successful_sign_in": "2026-11-28T09:30:00Z"}}"#
            ),
            false,
            20,
        ),
        item(
            "sign_in_activity",
            "sign_in:bob@contoso.example",
            &format!(
                r#"{{"user_id": "{}", "user_principal_name": "bob@contoso.example", "last_sign_in": null, "last_non_interactive_sign_in": null, "last_successful_sign_in": null}}"#,
                BOB.to_uppercase()
            ),
            true,
            20,
        ),
        item(
            "domains",
            "contoso.example",
            r#"{"id": "contoso.example"}"#,
            false,
            10,
        ),
    ]
}

async fn open_before_0017(
    kind: StoreKind,
    statements: Vec<String>,
) -> (String, Option<testkit::PostgresDatabase>, tempfile::TempDir) {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let (location, pg) = match kind {
        StoreKind::Sqlite => (
            dir.path().join("old.db").to_str().unwrap().to_string(),
            None,
        ),
        StoreKind::Postgres => {
            let pg = testkit::PostgresDatabase::create().await.unwrap();
            (pg.url.clone(), Some(pg))
        }
    };
    Store::open(&location, SecretKey::generate())
        .await
        .unwrap()
        .close()
        .await;
    match kind {
        StoreKind::Sqlite => {
            let url = format!("sqlite://{location}");
            let mut old = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for sql in statements.clone() {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut old)
                    .await
                    .unwrap();
            }
            old.close().await.unwrap();
        }
        StoreKind::Postgres => {
            let mut old = sqlx::PgConnection::connect(&location).await.unwrap();
            for sql in statements.clone() {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut old)
                    .await
                    .unwrap();
            }
            old.close().await.unwrap();
        }
    }
    (location, pg, dir)
}

async fn a_store_before_0017_moves_usage_and_sign_ins_out_of_the_inventory(kind: StoreKind) {
    let (location, _pg, _dir) = open_before_0017(kind, before_0017()).await;
    let store = Store::open(&location, SecretKey::generate()).await.unwrap();
    let tenant = TenantId::parse(CONTOSO).unwrap();

    let mut activity = UsageRecord::new(UsageReport::Activity, "ann@contoso.example");
    activity.is_deleted = Some(false);
    activity.exchange_last_activity = Some("2026-11-01".into());
    activity.teams_last_activity = Some("2026-11-20".into());
    activity.has_exchange_license = Some(true);
    activity.has_onedrive_license = Some(false);
    activity.has_sharepoint_license = Some(true);
    activity.has_teams_license = Some(true);
    activity.assigned_products = Some("Microsoft Teams+Office 365 E3".into());
    let mut apps = UsageRecord::new(UsageReport::Apps, "ann@contoso.example");
    apps.last_activation = Some("2026-10-01".into());
    apps.last_activity = Some("2026-11-21".into());
    (apps.windows, apps.mac, apps.web) = (Some(true), Some(false), Some(true));
    (apps.outlook, apps.word, apps.excel) = (Some(true), Some(true), Some(false));
    (apps.powerpoint, apps.teams) = (Some(false), Some(true));
    let mut email = UsageRecord::new(UsageReport::Email, "ann@contoso.example");
    email.is_deleted = Some(false);
    email.last_activity = Some("2026-11-22".into());
    (email.send_count, email.receive_count, email.read_count) = (Some(12), Some(40), Some(30));
    (email.meeting_created_count, email.meeting_interacted_count) = (Some(1), Some(2));

    let usage: Vec<(UsageRecord, bool)> = store
        .typed_rows::<UsageRecord>(Some(&tenant), true)
        .await
        .unwrap()
        .into_iter()
        .map(|listed| (listed.row.record, listed.row.archived))
        .collect();
    assert_eq!(
        usage,
        vec![(activity.clone(), false), (apps, false), (email, true)]
    );

    let sign_ins: Vec<(SignInRecord, bool)> = store
        .typed_rows::<SignInRecord>(Some(&tenant), true)
        .await
        .unwrap()
        .into_iter()
        .map(|listed| (listed.row.record, listed.row.archived))
        .collect();
    let ann = SignInRecord {
        object_id: ANN.into(),
        user_principal_name: Some("ann@contoso.example".into()),
        last_sign_in: Some("2026-11-28T09:30:00Z".into()),
        last_non_interactive_sign_in: Some("2026-11-29T07:00:00Z".into()),
        last_successful_sign_in: Some("2026-11-28T09:30:00Z".into()),
    };
    let bob = SignInRecord {
        object_id: BOB.into(),
        user_principal_name: Some("bob@contoso.example".into()),
        last_sign_in: None,
        last_non_interactive_sign_in: None,
        last_successful_sign_in: None,
    };
    assert_eq!(sign_ins, vec![(ann.clone(), false), (bob, true)]);

    for (dataset, left) in [
        (Dataset::Usage, 0),
        (Dataset::SignInActivity, 0),
        (Dataset::Domains, 1),
    ] {
        assert_eq!(
            store
                .inventory(Some(&tenant), dataset, true)
                .await
                .unwrap()
                .len(),
            left,
            "{dataset:?}"
        );
    }

    // What the next sync reads from Microsoft compares equal to what was moved: nothing to write.
    let mut batch = store.row_batch::<UsageRecord>(1, &tenant).await.unwrap();
    let stored = batch.stored([activity.key()]).await.unwrap();
    let plan = plan_page(&stored, vec![activity]);
    assert_eq!((plan.unchanged, plan.write.len()), (1, 0));
    batch.commit().await.unwrap();
    let mut batch = store.row_batch::<SignInRecord>(1, &tenant).await.unwrap();
    let stored = batch.stored([ann.key()]).await.unwrap();
    let plan = plan_page(&stored, vec![ann]);
    assert_eq!((plan.unchanged, plan.write.len()), (1, 0));
    batch.commit().await.unwrap();
    store.close().await;
}

/// Usage documents whose fields have types no version wrote: the upgrade still runs, on both
/// backends alike, and keeps only what has its column's type.
async fn usage_documents_of_unexpected_types_do_not_stop_the_upgrade(kind: StoreKind) {
    let item = |key: &str, document: &str| {
        format!(
            "INSERT INTO inventory (organization_id, tenant_id, dataset, item_key, name, document, fingerprint, archived, created_at, updated_at) \
             VALUES (1, '{CONTOSO}', 'usage', '{key}', '{key}', '{document}', 'old', FALSE, 5, 10)"
        )
    };
    let mut statements = before_0017()
        .into_iter()
        .filter(|sql| !sql.starts_with("INSERT INTO inventory"))
        .collect::<Vec<_>>();
    statements.extend([
        item(
            "activity:ann@contoso.example",
            r#"{"kind": "activity", "user_principal_name": "ann@contoso.example", "is_deleted": "no", "last_activity": {"exchange": 20261101, "teams": "2026-11-20"}, "has_license": {"exchange": "true", "teams": true}, "assigned_products": "Office 365 E3"}"#,
        ),
        item(
            "apps:ann@contoso.example",
            r#"{"kind": "apps", "user_principal_name": "ann@contoso.example", "last_activation": ["2026-10-01"], "last_activity": {"day": "2026-11-21"}, "platforms": {"windows": "yes", "web": true}, "apps": {"word": 1, "teams": false}}"#,
        ),
        item(
            "email:ann@contoso.example",
            r#"{"kind": "email", "user_principal_name": "ann@contoso.example", "last_activity": "2026-11-22", "send_count": "12", "receive_count": 40.5, "read_count": 30, "meeting_created_count": true, "meeting_interacted_count": [2]}"#,
        ),
        item(
            "email:nobody",
            r#"{"kind": "email", "user_principal_name": 42, "send_count": 1}"#,
        ),
    ]);
    let (location, _pg, _dir) = open_before_0017(kind, statements).await;
    let store = Store::open(&location, SecretKey::generate()).await.unwrap();
    let tenant = TenantId::parse(CONTOSO).unwrap();

    let mut activity = UsageRecord::new(UsageReport::Activity, "ann@contoso.example");
    activity.teams_last_activity = Some("2026-11-20".into());
    activity.has_teams_license = Some(true);
    let mut apps = UsageRecord::new(UsageReport::Apps, "ann@contoso.example");
    apps.web = Some(true);
    apps.teams = Some(false);
    let mut email = UsageRecord::new(UsageReport::Email, "ann@contoso.example");
    email.last_activity = Some("2026-11-22".into());
    email.read_count = Some(30);
    let usage: Vec<UsageRecord> = store
        .typed_rows::<UsageRecord>(Some(&tenant), true)
        .await
        .unwrap()
        .into_iter()
        .map(|listed| listed.row.record)
        .collect();
    assert_eq!(usage, vec![activity, apps, email]);
    store.close().await;
}
