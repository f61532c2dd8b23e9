//! The audit trail on both backends: typed columns, append-only writes with their resume point,
//! retention per tenant, listing filters, and the move of older stores' inventory rows.

use domain::{
    AuditRecord, AuditRetention, ClientId, ClientSecret, Cloud, ConnectionName, Credential,
    Dataset, InventoryItem, OrganizationRecord, TenantId,
};
use serde_json::json;
use store::{AuditQuery, Checkpoint, NewConnection, StepCounts, Store, StoreError};
use testkit::StoreKind;

const CONTOSO: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const FABRIKAM: &str = "0d5c3e1a-6b7f-4a2e-9c8d-1e2f3a4b5c6d";

testkit::on_both_stores!(
    records_land_in_typed_columns_and_a_second_reading_adds_nothing,
    retention_deletes_only_the_old_records_of_its_tenant,
    a_listing_filters_by_time_and_user,
    a_connection_keeps_its_audit_retention,
    inventory_audit_rows_move_to_their_own_table_on_upgrade,
);

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

async fn organization(store: &Store, id: &str, name: &str) -> i64 {
    store
        .apply_organization(&OrganizationRecord {
            tenant_id: tenant(id),
            display_name: name.into(),
            verified_domains: vec![],
            default_domain: None,
            country_letter_code: None,
        })
        .await
        .unwrap()
        .id()
}

fn record(id: &str, created: Option<&str>, user: &str, operation: &str) -> AuditRecord {
    AuditRecord {
        id: id.into(),
        creation_time: created.map(str::to_string),
        operation: Some(operation.into()),
        workload: Some("Exchange".into()),
        record_type: Some(1),
        user_id: Some(user.into()),
        user_type: Some(0),
        client_ip: Some("203.0.113.7".into()),
        result_status: Some("Succeeded".into()),
        object_id: Some("mailbox".into()),
        content_type: Some("Audit.Exchange".into()),
        record: json!({ "Id": id, "Operation": operation, "Parameters": [{ "Name": "Identity" }] }),
    }
}

async fn kept(store: &Store, id: &str) -> Vec<AuditRecord> {
    store
        .audit_records(&AuditQuery {
            tenant_id: Some(tenant(id)),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|listed| listed.row.record)
        .collect()
}

fn checkpoint(end: &str) -> Checkpoint {
    Checkpoint {
        resource: "audit:Audit.Exchange".into(),
        link: end.into(),
    }
}

async fn records_land_in_typed_columns_and_a_second_reading_adds_nothing(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let org = organization(&store, CONTOSO, "Contoso").await;
    let first = [
        record(
            "a1",
            Some("2026-11-01T10:00:00"),
            "adele@contoso.example",
            "Set-Mailbox",
        ),
        record(
            "a2",
            Some("2026-11-01T11:00:00"),
            "alex@contoso.example",
            "New-InboxRule",
        ),
        // Repeated within a window: kept once.
        record(
            "a1",
            Some("2026-11-01T10:00:00"),
            "adele@contoso.example",
            "Set-Mailbox",
        ),
    ];
    let counts = store
        .append_audit_records(
            org,
            &tenant(CONTOSO),
            &first,
            Some(&checkpoint("2026-11-01T12:00:00+00:00")),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        StepCounts {
            created: 2,
            ..StepCounts::default()
        }
    );
    assert_eq!(
        store
            .delta_link(&tenant(CONTOSO), "audit:Audit.Exchange")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-11-01T12:00:00+00:00"),
        "the window's end is saved with its records"
    );
    let rows = store.audit_records(&AuditQuery::default()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].organization, "Contoso");
    assert_eq!(rows[0].tenant_id, CONTOSO);
    assert!(!rows[0].row.archived);
    assert_eq!(
        rows[0].row.record, first[0],
        "every column and the JSON come back"
    );
    assert_eq!(rows[1].row.record, first[1]);

    // The same blob read again, even if Microsoft now sent it otherwise: nothing is rewritten.
    let mut again = first[..2].to_vec();
    again[0].operation = Some("Changed".into());
    again[0].record = json!({ "Id": "a1", "Operation": "Changed" });
    let counts = store
        .append_audit_records(
            org,
            &tenant(CONTOSO),
            &again,
            Some(&checkpoint("2026-11-02T12:00:00+00:00")),
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        StepCounts {
            unchanged: 2,
            ..StepCounts::default()
        }
    );
    assert_eq!(kept(&store, CONTOSO).await, first[..2].to_vec());
    assert_eq!(
        store
            .delta_link(&tenant(CONTOSO), "audit:Audit.Exchange")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-11-02T12:00:00+00:00")
    );
    // Nothing at all asks for nothing.
    assert_eq!(
        store
            .append_audit_records(org, &tenant(CONTOSO), &[], None)
            .await
            .unwrap(),
        StepCounts::default()
    );
    store.close().await;
}

async fn retention_deletes_only_the_old_records_of_its_tenant(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let contoso = organization(&store, CONTOSO, "Contoso").await;
    let fabrikam = organization(&store, FABRIKAM, "Fabrikam").await;
    let both = |prefix: &str| {
        vec![
            record(
                &format!("{prefix}-old"),
                Some("2026-05-01T08:00:00"),
                "u@x.example",
                "Old",
            ),
            record(
                &format!("{prefix}-edge"),
                Some("2026-06-01T00:00:00"),
                "u@x.example",
                "Edge",
            ),
            record(
                &format!("{prefix}-new"),
                Some("2026-11-01T08:00:00"),
                "u@x.example",
                "New",
            ),
            record(
                &format!("{prefix}-timeless"),
                None,
                "u@x.example",
                "Timeless",
            ),
        ]
    };
    store
        .append_audit_records(contoso, &tenant(CONTOSO), &both("c"), None)
        .await
        .unwrap();
    store
        .append_audit_records(fabrikam, &tenant(FABRIKAM), &both("f"), None)
        .await
        .unwrap();

    // Stored a moment ago: a record without a time is kept until it has been kept too long.
    let deleted = store
        .expire_audit_records(&tenant(CONTOSO), "2026-06-01T00:00:00", 0)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let ids = |records: Vec<AuditRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let mut left = ids(kept(&store, CONTOSO).await);
    left.sort();
    assert_eq!(left, ["c-edge", "c-new", "c-timeless"]);
    assert_eq!(
        kept(&store, FABRIKAM).await.len(),
        4,
        "another tenant keeps its own"
    );

    let deleted = store
        .expire_audit_records(&tenant(CONTOSO), "2026-06-01T00:00:00", i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        deleted, 1,
        "the record without a time, kept before the cutoff"
    );
    let mut left = ids(kept(&store, CONTOSO).await);
    left.sort();
    assert_eq!(left, ["c-edge", "c-new"]);
    assert_eq!(kept(&store, FABRIKAM).await.len(), 4);
    store.close().await;
}

async fn a_listing_filters_by_time_and_user(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let contoso = organization(&store, CONTOSO, "Contoso").await;
    let fabrikam = organization(&store, FABRIKAM, "Fabrikam").await;
    store
        .append_audit_records(
            contoso,
            &tenant(CONTOSO),
            &[
                record(
                    "c3",
                    Some("2026-11-03T08:00:00"),
                    "adele@contoso.example",
                    "Three",
                ),
                record(
                    "c1",
                    Some("2026-11-01T08:00:00"),
                    "adele@contoso.example",
                    "One",
                ),
                record(
                    "c2",
                    Some("2026-11-02T08:00:00"),
                    "alex@contoso.example",
                    "Two",
                ),
            ],
            None,
        )
        .await
        .unwrap();
    store
        .append_audit_records(
            fabrikam,
            &tenant(FABRIKAM),
            &[record(
                "f1",
                Some("2026-11-05T08:00:00"),
                "adele@contoso.example",
                "Guest",
            )],
            None,
        )
        .await
        .unwrap();
    let listed = |query: AuditQuery| {
        let store = &store;
        async move {
            store
                .audit_records(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.row.record.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(AuditQuery::default()).await,
        ["c1", "c2", "c3", "f1"],
        "by organisation, then oldest first"
    );
    assert_eq!(
        listed(AuditQuery {
            since: Some("2026-11-02T08:00:00".into()),
            ..AuditQuery::default()
        })
        .await,
        ["c2", "c3", "f1"]
    );
    assert_eq!(
        listed(AuditQuery {
            user: Some(" Adele@Contoso.example ".into()),
            tenant_id: Some(tenant(CONTOSO)),
            ..AuditQuery::default()
        })
        .await,
        ["c1", "c3"]
    );
    store.close().await;
}

async fn a_connection_keeps_its_audit_retention(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let connection = store
        .add_connection(NewConnection {
            name: ConnectionName::parse("contoso").unwrap(),
            tenant_id: tenant(CONTOSO),
            client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
            credential: Credential::Secret(ClientSecret::parse("Abc8Q~secret-value-1234").unwrap()),
            cloud: Cloud::Global,
            datasets: vec![Dataset::Audit],
        })
        .await
        .unwrap();
    assert_eq!(connection.audit_retention, AuditRetention::default());
    let stored = store.connection("contoso").await.unwrap().unwrap();
    assert_eq!(stored.audit_retention.days(), 180);
    store
        .set_audit_retention("contoso", AuditRetention::parse("30").unwrap())
        .await
        .unwrap();
    let stored = store.connection("contoso").await.unwrap().unwrap();
    assert_eq!(stored.audit_retention.days(), 30);
    assert!(matches!(
        store
            .set_audit_retention("nobody", AuditRetention::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    store.close().await;
}

/// A store from before the audit table: its audit records were inventory documents.
async fn inventory_audit_rows_move_to_their_own_table_on_upgrade(kind: StoreKind) {
    let key = store::SecretKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let postgres = match kind {
        StoreKind::Sqlite => None,
        StoreKind::Postgres => Some(testkit::PostgresDatabase::create().await.unwrap()),
    };
    let location = match &postgres {
        Some(db) => db.url.clone(),
        None => dir.path().join("old.db").to_str().unwrap().to_string(),
    };
    let store = Store::open(&location, key.clone()).await.unwrap();
    let org = organization(&store, CONTOSO, "Contoso").await;
    let document = |id: &str, user: &str| {
        json!({
            "id": id.to_uppercase(), "record_type": 15, "created": "2026-11-01T09:30:00",
            "operation": "UserLoggedIn", "workload": "AzureActiveDirectory", "result_status": "Succeeded",
            "user_id": user, "user_type": 0, "user_key": "10030000", "object_id": "portal",
            "client_ip": "203.0.113.9", "organization_id": CONTOSO,
            "record": { "Id": id.to_uppercase(), "Operation": "UserLoggedIn", "ExtendedProperties": [{ "Name": "UserAgent" }] },
        })
    };
    let items = vec![
        InventoryItem {
            key: "b1".into(),
            name: "2026-11-01T09:30:00 UserLoggedIn by Adele".into(),
            document: document("b1", "Adele@Contoso.example"),
        },
        InventoryItem {
            key: "b2".into(),
            name: "2026-11-01T09:30:00 UserLoggedIn by ?".into(),
            document: json!({ "id": "B2", "created": null, "record": { "Id": "B2" } }),
        },
    ];
    store
        .apply_inventory(org, &tenant(CONTOSO), Dataset::Audit, &items, None)
        .await
        .unwrap();
    store
        .apply_inventory(
            org,
            &tenant(CONTOSO),
            Dataset::Domains,
            &[InventoryItem {
                key: "contoso.example".into(),
                name: "contoso.example".into(),
                document: json!({ "name": "contoso.example" }),
            }],
            None,
        )
        .await
        .unwrap();
    store.close().await;
    // Back to the schema before 0018, keeping the inventory rows written above.
    let undo = [
        "DROP TABLE audit_records",
        "ALTER TABLE connections DROP COLUMN audit_retention_days",
        "DELETE FROM schema_migrations WHERE version = 18",
    ];
    match kind {
        StoreKind::Sqlite => {
            use sqlx::Connection as _;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{location}"))
                .await
                .unwrap();
            for sql in undo {
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            c.close().await.unwrap();
        }
        StoreKind::Postgres => {
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(&location).await.unwrap();
            for sql in undo {
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            c.close().await.unwrap();
        }
    }

    let store = Store::open(&location, key).await.unwrap();
    let moved = kept(&store, CONTOSO).await;
    assert_eq!(moved.len(), 2, "{moved:?}");
    let login = &moved[0];
    assert_eq!(login.id, "b1");
    assert_eq!(login.creation_time.as_deref(), Some("2026-11-01T09:30:00"));
    assert_eq!(login.operation.as_deref(), Some("UserLoggedIn"));
    assert_eq!(login.workload.as_deref(), Some("AzureActiveDirectory"));
    assert_eq!(login.record_type, Some(15));
    assert_eq!(login.user_id.as_deref(), Some("adele@contoso.example"));
    assert_eq!(login.user_type, Some(0));
    assert_eq!(login.client_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(login.result_status.as_deref(), Some("Succeeded"));
    assert_eq!(login.object_id.as_deref(), Some("portal"));
    assert_eq!(login.content_type, None, "never kept before");
    assert_eq!(login.record, document("b1", "")["record"]);
    let bare = &moved[1];
    assert_eq!(
        (bare.id.as_str(), bare.creation_time.as_deref()),
        ("b2", None)
    );
    assert_eq!(bare.record, json!({ "Id": "B2" }));
    assert!(
        store
            .inventory(None, Dataset::Audit, true)
            .await
            .unwrap()
            .is_empty(),
        "moved, not copied"
    );
    assert_eq!(
        store
            .inventory(None, Dataset::Domains, true)
            .await
            .unwrap()
            .len(),
        1,
        "other datasets stay where they were"
    );
    store.close().await;
}
