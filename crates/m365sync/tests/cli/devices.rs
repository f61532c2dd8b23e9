//! `export managed-devices` and `export devices`: a column per field in CSV, the same fields in
//! JSON, archived devices only when asked.

use std::path::Path;

use graph_sim::{DeviceChange, SimConfig, TenantSpec};
use serde_json::Value;

use super::{add_with, m365sync, text};

const MANAGED_COLUMNS: [&str; 23] = [
    "organization",
    "tenant_id",
    "id",
    "device_name",
    "user_id",
    "user_principal_name",
    "user_display_name",
    "owner_type",
    "operating_system",
    "os_version",
    "compliance_state",
    "management_agent",
    "enrolled",
    "last_check_in",
    "entra_device_id",
    "manufacturer",
    "model",
    "serial_number",
    "is_encrypted",
    "total_storage_bytes",
    "free_storage_bytes",
    "physical_memory_bytes",
    "archived",
];

const ENTRA_COLUMNS: [&str; 19] = [
    "organization",
    "tenant_id",
    "id",
    "device_id",
    "display_name",
    "operating_system",
    "operating_system_version",
    "join_type",
    "trust_type",
    "profile_type",
    "is_compliant",
    "is_managed",
    "account_enabled",
    "manufacturer",
    "model",
    "ownership",
    "registered",
    "last_sign_in",
    "archived",
];

fn export(db: &Path, args: &[&str]) -> Vec<u8> {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let output = m365sync(db, &all, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {:?}",
        text(&output)
    );
    output.stdout
}

fn json_rows(db: &Path, args: &[&str]) -> Vec<Value> {
    let out = export(db, args);
    serde_json::from_slice::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn csv_rows(db: &Path, args: &[&str]) -> (Vec<String>, Vec<Vec<String>>) {
    let out = export(db, args);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// A JSON value as its CSV cell shows it.
fn as_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn device_exports_have_a_column_per_field(kind: testkit::StoreKind) {
    let sim = testkit::simulator(SimConfig {
        seed: 21,
        tenants: vec![TenantSpec::with_users(30)],
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (_store, home) = testkit::store_of(kind).await;
    let db = match &home {
        testkit::StoreHome::Postgres(database) => std::path::PathBuf::from(&database.url),
        testkit::StoreHome::Sqlite(_) => dir.path().join("store.db"),
    };
    let tenant = sim.tenants()[0].clone();
    let added = add_with(
        &db,
        &sim,
        "contoso",
        &tenant.client_secret,
        &["--datasets", "organization,managed-devices,devices"],
    );
    assert!(added.status.success(), "{:?}", text(&added));
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));

    let managed = json_rows(&db, &["managed-devices", "--connection", "contoso"]);
    assert!(managed.len() > 5, "{}", managed.len());
    for device in &managed {
        let fields: Vec<&str> = device
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = MANAGED_COLUMNS.to_vec();
        expected.sort_unstable();
        assert_eq!(fields, expected);
        assert_eq!(device["tenant_id"], tenant.tenant_id.as_str());
        assert_eq!(device["organization"], "Contoso Ltd");
        assert_eq!(device["archived"], false);
        assert!(device["is_encrypted"].is_boolean(), "{device}");
        assert!(device["total_storage_bytes"].is_i64(), "{device}");
        let upn = device["user_principal_name"].as_str().unwrap();
        assert!(upn.contains('@') && upn == upn.to_lowercase(), "{upn}");
        for field in [
            "serial_number",
            "last_check_in",
            "enrolled",
            "entra_device_id",
        ] {
            assert!(device[field].is_string(), "{field}: {device}");
        }
    }
    let (header, rows) = csv_rows(&db, &["managed-devices", "--format", "csv"]);
    assert_eq!(header, MANAGED_COLUMNS);
    assert_eq!(rows.len(), managed.len());
    for (row, device) in rows.iter().zip(&managed) {
        for (name, cell) in header.iter().zip(row) {
            assert_eq!(cell, &as_cell(&device[name.as_str()]), "{name}");
        }
    }

    let entra = json_rows(&db, &["devices"]);
    assert_eq!(entra.len(), managed.len());
    let (header, rows) = csv_rows(&db, &["devices", "--format", "csv"]);
    assert_eq!(header, ENTRA_COLUMNS);
    assert_eq!(rows.len(), entra.len());
    for (row, device) in rows.iter().zip(&entra) {
        for (name, cell) in header.iter().zip(row) {
            assert_eq!(cell, &as_cell(&device[name.as_str()]), "{name}");
        }
        assert!(
            managed
                .iter()
                .any(|m| m["entra_device_id"] == device["device_id"]),
            "{device}"
        );
        assert!(device["is_compliant"].is_boolean(), "{device}");
        assert!(device["join_type"].is_string(), "{device}");
    }

    // A retired device leaves the export, and comes back in it, archived, when asked for.
    let retired = managed[0]["id"].as_str().unwrap();
    sim.state
        .change_device(
            &tenant.tenant_id,
            retired,
            DeviceChange {
                removed: true,
                ..DeviceChange::default()
            },
        )
        .unwrap();
    // Devices are cached for an hour by default; `sync --full` reads them now.
    let synced = m365sync(&db, &["sync", "contoso", "--full"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));
    let now = json_rows(&db, &["managed-devices"]);
    assert_eq!(now.len(), managed.len() - 1);
    assert!(!now.iter().any(|d| d["id"] == retired));
    let everything = json_rows(&db, &["managed-devices", "--include-archived"]);
    let kept = everything.iter().find(|d| d["id"] == retired).unwrap();
    assert_eq!(kept["archived"], true);
    assert_eq!(kept["serial_number"], managed[0]["serial_number"]);
    let (_, rows) = csv_rows(&db, &["devices", "--format", "csv", "--include-archived"]);
    assert_eq!(
        rows.iter().filter(|r| r.last().unwrap() == "true").count(),
        1
    );
}

testkit::on_both_stores!(device_exports_have_a_column_per_field);
