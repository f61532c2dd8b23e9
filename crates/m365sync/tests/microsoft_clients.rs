//! Proof by Microsoft's own clients: Python msal and msgraph-sdk, unchanged, against the
//! simulator over HTTPS. What they read must equal what the simulator holds; if Microsoft's
//! client rejects something, the simulator is wrong.

use std::path::PathBuf;
use std::process::Command;

use graph_sim::{LoopbackCertificate, SimConfig, TenantSpec};
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtual environment `scripts/test` prepares; `None` (after saying so) where it is missing
/// outside CI. Under CI=true a missing environment fails the test.
fn python() -> Option<PathBuf> {
    let python = repo_root().join(".venv/bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import msal, msgraph"])
            .output()
            .is_ok_and(|o| o.status.success());
    if ready {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but .venv lacks msal and msgraph-sdk; scripts/test installs them");
    }
    testkit::say_skipped(
        "Microsoft's Python clients: run ./scripts/test once to install msal and msgraph-sdk into .venv",
    );
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn msal_and_msgraph_sdk_read_what_the_simulator_holds() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("simulator.pem");
    let certificate = LoopbackCertificate::generate().unwrap();
    certificate.write(&cert_path).unwrap();
    let config = SimConfig {
        seed: 17,
        tenants: vec![TenantSpec::with_users(130)],
        ..SimConfig::default()
    };
    let sim = graph_sim::start_with(config, "127.0.0.1:0".parse().unwrap(), Some(&certificate))
        .await
        .unwrap();
    assert!(sim.url.starts_with("https://"));
    let tenant = sim.tenants().remove(0);
    let registered = sim.state.add_certificate("0", -1, 365).unwrap().unwrap();
    let removed = sim.state.add_certificate("0", -1, 365).unwrap().unwrap();
    assert!(
        sim.state
            .remove_certificate(sim.state.tenant("0").unwrap(), &removed.key_id)
    );
    let certificate_args = |c: &graph_sim::CertificateIssued| json!({"private_key": c.private_key_pem, "certificate": c.certificate_pem, "thumbprint": c.thumbprint});
    let args = json!({
        "url": sim.url, "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
        "client_secret": tenant.client_secret, "ca_cert": cert_path,
        "certificate": certificate_args(&registered), "removed": certificate_args(&removed),
    });
    let script = repo_root().join("tests/python/microsoft_clients.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(args.to_string())
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();

    // msal: a token for the tenant carrying the granted roles, served from its cache the second
    // time, and Microsoft's refusal for a wrong secret.
    let msal = &read["msal"];
    assert_eq!(msal["token_type"], "Bearer");
    assert_eq!(msal["tid"], tenant.tenant_id);
    // A Graph token carries Graph's roles only; ActivityFeed.Read belongs to the management API.
    let mut roles: Vec<String> = graph_sim::DEFAULT_ROLES
        .iter()
        .filter(|r| **r != "ActivityFeed.Read")
        .map(|r| r.to_string())
        .collect();
    roles.sort();
    assert_eq!(msal["roles"], json!(roles));
    assert_eq!(msal["second_from_cache"], true);
    assert_eq!(msal["wrong_secret"]["error"], "invalid_client");
    assert_eq!(msal["wrong_secret"]["error_codes"], json!([7000215]));

    // msal with a certificate: both assertion forms it makes are accepted (the token says the
    // app proved itself with a certificate), and a certificate no longer on the app is refused.
    let with_certificate = &read["msal_certificate"];
    for form in ["ps256", "rs256"] {
        assert_eq!(
            with_certificate[form]["tid"], tenant.tenant_id,
            "{form}: {with_certificate}"
        );
        assert_eq!(with_certificate[form]["appidacr"], "2", "{form}");
        assert_eq!(
            with_certificate[form]["roles"],
            json!(roles.len()),
            "{form}"
        );
    }
    assert_eq!(with_certificate["removed"]["error"], "invalid_client");
    assert_eq!(with_certificate["removed"]["error_codes"], json!([700027]));

    // msgraph-sdk: every user through its PageIterator (50 a page), the SKUs, Intune's managed
    // devices (paged as the simulator pages them), service health.
    let held = sim.state.tenant(&tenant.tenant_id).unwrap();
    let mut expected: Vec<(String, String)> = (0..130)
        .filter_map(|i| held.user(i))
        .map(|u| (u.id.to_string(), u.upn))
        .collect();
    let mut got: Vec<(String, String)> = read["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["upn"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    let mut skus: Vec<Value> =
        held.subscribed_skus().into_iter().map(|(part, consumed, enabled)| json!({"part": part, "consumed": consumed, "enabled": enabled})).collect();
    skus.sort_by_key(|s| s["part"].as_str().unwrap().to_string());
    assert_eq!(read["skus"], json!(skus));
    let services: Vec<&str> = read["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(services, graph_sim::inventory::service_ids());
    assert!(
        read["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == "serviceDegradation")
    );
}
