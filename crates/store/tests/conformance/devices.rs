//! The typed tables of devices on both backends: a page planned and applied, an unchanged
//! resync that writes nothing, archiving after a complete listing and coming back, and the
//! upgrade that moves devices out of the JSON inventory.

use std::collections::HashSet;
use std::fmt::Debug;

use domain::devices::{DeviceRecord, ManagedDeviceRecord};
use domain::rows::{plan_not_listed, plan_page};
use domain::{Dataset, InventoryItem, OrganizationRecord, TenantId};
use serde_json::json;
use store::typed::TypedTable;
use store::{SecretKey, StepCounts, Store};

use super::{TENANT, counts, tenant};

const OTHER_TENANT: &str = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";

async fn organization(store: &Store, tenant_id: &str) -> i64 {
    store
        .apply_organization(&OrganizationRecord {
            tenant_id: TenantId::parse(tenant_id).unwrap(),
            display_name: format!("Org {tenant_id}"),
            verified_domains: vec![],
            default_domain: None,
            country_letter_code: None,
        })
        .await
        .unwrap()
        .id()
}

/// Every field set, each to a value no other field has, so that a column read into the wrong
/// field shows.
fn managed(n: u8) -> ManagedDeviceRecord {
    let text = |field: &str| Some(format!("{field}-{n}"));
    ManagedDeviceRecord {
        id: format!("managed-{n}"),
        device_name: text("name"),
        user_id: text("user"),
        user_principal_name: Some(format!("user{n}@contoso.com")),
        user_display_name: text("display"),
        owner_type: text("owner"),
        operating_system: text("os"),
        os_version: text("version"),
        compliance_state: Some("compliant".into()),
        management_agent: text("agent"),
        enrolled: Some(format!("2025-01-0{n}T00:00:00Z")),
        last_check_in: Some(format!("2025-02-0{n}T00:00:00Z")),
        entra_device_id: text("entra"),
        manufacturer: text("maker"),
        model: text("model"),
        serial_number: text("serial"),
        is_encrypted: Some(n.is_multiple_of(2)),
        total_storage_bytes: Some(1_000_000_000_000 + i64::from(n)),
        free_storage_bytes: Some(2_000 + i64::from(n)),
        physical_memory_bytes: Some(3_000 + i64::from(n)),
    }
}

fn entra(n: u8) -> DeviceRecord {
    let text = |field: &str| Some(format!("{field}-{n}"));
    DeviceRecord {
        id: format!("entra-{n}"),
        device_id: text("device"),
        display_name: text("name"),
        operating_system: text("os"),
        operating_system_version: text("version"),
        join_type: Some("joined".into()),
        trust_type: Some("AzureAd".into()),
        profile_type: text("profile"),
        is_compliant: Some(n.is_multiple_of(2)),
        is_managed: Some(!n.is_multiple_of(2)),
        account_enabled: Some(true),
        manufacturer: text("maker"),
        model: text("model"),
        ownership: text("ownership"),
        registered: Some(format!("2025-01-0{n}T00:00:00Z")),
        last_sign_in: Some(format!("2025-02-0{n}T00:00:00Z")),
    }
}

/// One page, planned against what the store holds and applied as a sync applies it.
async fn sync_page<R: TypedTable + Clone>(
    store: &Store,
    org: i64,
    tenant_id: &TenantId,
    page: &[R],
) -> StepCounts {
    let mut batch = store.row_batch::<R>(org, tenant_id).await.unwrap();
    let stored = batch.stored(page.iter().map(|r| r.key())).await.unwrap();
    let plan = plan_page(&stored, page.to_vec());
    let counts = batch.apply(&plan, None).await.unwrap();
    batch.commit().await.unwrap();
    counts
}

/// Archives what a complete listing of `seen` lacks.
async fn end_listing<R: TypedTable>(
    store: &Store,
    org: i64,
    tenant_id: &TenantId,
    seen: &[&str],
) -> StepCounts {
    let mut batch = store.row_batch::<R>(org, tenant_id).await.unwrap();
    let active = batch.active_keys().await.unwrap();
    let seen: HashSet<String> = seen.iter().map(|k| k.to_string()).collect();
    let counts = batch
        .apply(&plan_not_listed::<R>(&active, &seen), None)
        .await
        .unwrap();
    batch.commit().await.unwrap();
    counts
}

async fn active<R: TypedTable + Clone>(store: &Store, tenant_id: &TenantId) -> Vec<R> {
    store
        .typed_rows::<R>(Some(tenant_id), false)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.row.record)
        .collect()
}

/// The life of a device table's rows: `records` are three rows, `changed` the second of them
/// changed, `blank` a row with nothing but its key.
async fn typed_story<R: TypedTable + Clone + Debug>(
    store: &Store,
    records: [R; 3],
    changed: R,
    blank: R,
) {
    let tenant = tenant();
    let org = organization(store, TENANT).await;
    let [a, b, c] = records;
    let page = vec![a.clone(), b.clone(), c.clone(), blank.clone()];
    assert_eq!(
        sync_page(store, org, &tenant, &page).await,
        counts(4, 0, 0, 0)
    );
    assert_eq!(active::<R>(store, &tenant).await, page);

    // What the store gives back compares equal to what was written: a resync writes nothing.
    let mut batch = store.row_batch::<R>(org, &tenant).await.unwrap();
    let stored = batch.stored(page.iter().map(|r| r.key())).await.unwrap();
    let plan = plan_page(&stored, page.clone());
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(batch.apply(&plan, None).await.unwrap(), counts(0, 0, 4, 0));
    batch.commit().await.unwrap();

    // One column changed: that row alone is rewritten.
    let page = vec![a.clone(), changed.clone(), c.clone(), blank.clone()];
    assert_eq!(
        sync_page(store, org, &tenant, &page).await,
        counts(0, 1, 3, 0)
    );
    assert_eq!(active::<R>(store, &tenant).await, page);

    // A complete listing without `c` archives it, and only it; the next one archives nothing.
    let seen = [a.key(), changed.key(), blank.key()];
    assert_eq!(
        end_listing::<R>(store, org, &tenant, &seen).await,
        counts(0, 0, 0, 1)
    );
    assert_eq!(
        end_listing::<R>(store, org, &tenant, &seen).await,
        counts(0, 0, 0, 0)
    );
    let shown = active::<R>(store, &tenant).await;
    assert!(!shown.contains(&c), "{shown:?}");
    let everything = store.typed_rows::<R>(Some(&tenant), true).await.unwrap();
    let archived = everything.iter().find(|r| r.row.record == c).unwrap();
    assert!(archived.row.archived);
    assert_eq!(archived.tenant_id, TENANT);
    assert_eq!(archived.organization, format!("Org {TENANT}"));

    // Listed again, it comes back though none of its columns changed.
    assert_eq!(
        sync_page(store, org, &tenant, std::slice::from_ref(&c)).await,
        counts(0, 1, 0, 0)
    );
    assert!(active::<R>(store, &tenant).await.contains(&c));

    // Another tenant's row of the same key is its own, and its listing archives nothing here.
    let other = TenantId::parse(OTHER_TENANT).unwrap();
    let other_org = organization(store, OTHER_TENANT).await;
    assert_eq!(
        sync_page(store, other_org, &other, std::slice::from_ref(&a)).await,
        counts(1, 0, 0, 0)
    );
    assert_eq!(
        end_listing::<R>(store, other_org, &other, &[a.key()]).await,
        counts(0, 0, 0, 0)
    );
    assert_eq!(active::<R>(store, &tenant).await.len(), 4);
    assert_eq!(active::<R>(store, &other).await, vec![a.clone()]);
    assert_eq!(store.typed_rows::<R>(None, false).await.unwrap().len(), 5);
}

async fn typed_managed_devices_are_planned_archived_and_come_back(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let mut changed = managed(2);
    changed.compliance_state = Some("noncompliant".into());
    changed.is_encrypted = None;
    let blank = ManagedDeviceRecord {
        id: "managed-blank".into(),
        ..ManagedDeviceRecord::default()
    };
    typed_story(&store, [managed(1), managed(2), managed(3)], changed, blank).await;
    store.close().await;
}

testkit::on_both_stores!(typed_managed_devices_are_planned_archived_and_come_back);

async fn typed_entra_devices_are_planned_archived_and_come_back(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let mut changed = entra(2);
    changed.last_sign_in = Some("2025-03-01T00:00:00Z".into());
    let blank = DeviceRecord {
        id: "entra-blank".into(),
        ..DeviceRecord::default()
    };
    typed_story(&store, [entra(1), entra(2), entra(3)], changed, blank).await;
    store.close().await;
}

testkit::on_both_stores!(typed_entra_devices_are_planned_archived_and_come_back);

/// A store as the version before the device tables left it: opened in full, then the device
/// tables dropped and their migration forgotten, so that the next open applies it again.
struct OldStore {
    location: String,
    key: SecretKey,
    _home: testkit::StoreHome,
}

impl OldStore {
    async fn new(kind: testkit::StoreKind) -> (Store, Self) {
        let key = SecretKey::generate();
        let (location, home) = match kind {
            testkit::StoreKind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("old.db");
                (
                    path.to_str().unwrap().to_string(),
                    testkit::StoreHome::Sqlite(dir),
                )
            }
            testkit::StoreKind::Postgres => {
                let db = testkit::PostgresDatabase::create().await.unwrap();
                (db.url.clone(), testkit::StoreHome::Postgres(db))
            }
        };
        let store = Store::open(&location, key.clone()).await.unwrap();
        let undo = "DROP TABLE managed_devices; DROP TABLE devices; DELETE FROM schema_migrations WHERE version = 15";
        match kind {
            testkit::StoreKind::Sqlite => {
                use sqlx::Connection as _;
                let url = format!("sqlite://{location}");
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(undo).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            testkit::StoreKind::Postgres => {
                use sqlx::Connection as _;
                let mut c = sqlx::PgConnection::connect(&location).await.unwrap();
                sqlx::raw_sql(undo).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
        (
            store,
            Self {
                location,
                key,
                _home: home,
            },
        )
    }

    async fn upgrade(&self, old: Store) -> Store {
        old.close().await;
        Store::open(&self.location, self.key.clone()).await.unwrap()
    }
}

fn item(key: &str, document: serde_json::Value) -> InventoryItem {
    InventoryItem {
        key: key.into(),
        name: key.into(),
        document,
    }
}

/// Devices as the inventory kept them before they had tables of their own.
fn old_managed(record: &ManagedDeviceRecord) -> serde_json::Value {
    json!({
        "id": record.id, "device_name": record.device_name, "user_id": record.user_id,
        "user_principal_name": record.user_principal_name, "user_display_name": record.user_display_name,
        "owner_type": record.owner_type, "operating_system": record.operating_system, "os_version": record.os_version,
        "compliance_state": record.compliance_state, "management_agent": record.management_agent,
        "enrolled": record.enrolled, "last_check_in": record.last_check_in, "entra_device_id": record.entra_device_id,
        "manufacturer": record.manufacturer, "model": record.model, "serial_number": record.serial_number, "is_encrypted": record.is_encrypted,
        "total_storage_bytes": record.total_storage_bytes, "free_storage_bytes": record.free_storage_bytes,
        "physical_memory_bytes": record.physical_memory_bytes,
    })
}

fn old_entra(record: &DeviceRecord) -> serde_json::Value {
    json!({
        "id": record.id, "device_id": record.device_id, "display_name": record.display_name,
        "operating_system": record.operating_system, "operating_system_version": record.operating_system_version,
        "join_type": record.join_type, "trust_type": record.trust_type, "profile_type": record.profile_type,
        "is_compliant": record.is_compliant, "is_managed": record.is_managed, "account_enabled": record.account_enabled,
        "manufacturer": record.manufacturer, "model": record.model, "ownership": record.ownership,
        "registered": record.registered, "last_sign_in": record.last_sign_in,
    })
}

async fn typed_devices_move_out_of_the_inventory_on_upgrade(kind: testkit::StoreKind) {
    let (store, old) = OldStore::new(kind).await;
    let tenant = tenant();
    let org = organization(&store, TENANT).await;
    let write = |dataset: Dataset, items: Vec<InventoryItem>| {
        let store = &store;
        let tenant = &tenant;
        async move {
            store
                .apply_inventory(org, tenant, dataset, &items, None)
                .await
                .unwrap()
        }
    };
    let (kept, gone, odd) = (managed(1), managed(2), managed(3));
    let mut odd_document = old_managed(&odd);
    // Fields of a type the column cannot hold: the row moves, those fields are left empty.
    odd_document["is_encrypted"] = json!("yes");
    odd_document["total_storage_bytes"] = json!("512 GB");
    odd_document["model"] = json!(42);
    write(
        Dataset::ManagedDevices,
        vec![
            item(&kept.id, old_managed(&kept)),
            item(&gone.id, old_managed(&gone)),
            item(&odd.id, odd_document),
        ],
    )
    .await;
    let seen: HashSet<String> = [kept.id.clone(), odd.id.clone()].into();
    store
        .archive_inventory_not_in(&tenant, Dataset::ManagedDevices, &seen)
        .await
        .unwrap();
    let joined = entra(1);
    write(Dataset::Devices, vec![item(&joined.id, old_entra(&joined))]).await;
    write(
        Dataset::Domains,
        vec![item("contoso.com", json!({ "name": "contoso.com" }))],
    )
    .await;

    let store = old.upgrade(store).await;
    let moved = store
        .typed_rows::<ManagedDeviceRecord>(Some(&tenant), true)
        .await
        .unwrap();
    let find = |id: &str| moved.iter().find(|r| r.row.record.id == id).unwrap();
    assert_eq!(moved.len(), 3);
    assert_eq!(find(&kept.id).row.record, kept);
    assert!(!find(&kept.id).row.archived);
    assert_eq!(find(&gone.id).row.record, gone);
    assert!(find(&gone.id).row.archived);
    let odd_moved = &find(&odd.id).row.record;
    assert_eq!(
        (
            odd_moved.is_encrypted,
            odd_moved.total_storage_bytes,
            odd_moved.model.as_deref()
        ),
        (None, None, None)
    );
    assert_eq!(odd_moved.serial_number, odd.serial_number);
    assert_eq!(
        active::<DeviceRecord>(&store, &tenant).await,
        vec![joined.clone()]
    );

    // Nothing of them is left in the inventory; what is not a device stays there.
    for dataset in [Dataset::ManagedDevices, Dataset::Devices] {
        let left = store.inventory(None, dataset, true).await.unwrap();
        assert!(left.is_empty(), "{dataset}: {left:?}");
    }
    assert_eq!(
        store
            .inventory(Some(&tenant), Dataset::Domains, false)
            .await
            .unwrap()
            .len(),
        1
    );

    // A moved row compares equal to the same device fetched again: the first sync after the
    // upgrade writes nothing for it, and brings the archived one back.
    assert_eq!(
        sync_page(&store, org, &tenant, &[kept.clone(), gone.clone()]).await,
        counts(0, 1, 1, 0)
    );
    assert_eq!(
        sync_page(&store, org, &tenant, std::slice::from_ref(&joined)).await,
        counts(0, 0, 1, 0)
    );
    store.close().await;
}

testkit::on_both_stores!(typed_devices_move_out_of_the_inventory_on_upgrade);
