//! A partner connection as a person uses it: the real binary, the simulator's partner tenant and
//! its customers, a store in a temp folder.

use std::path::Path;
use std::process::Output;

use graph_sim::{RunningSimulator, SimConfig, TenantSpec};
use serde_json::Value;

use super::{m365sync, text};

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(output)))
}

/// A partner (tenant 0) and two customers, Fabrikam Inc and Northwind Traders.
async fn sim() -> RunningSimulator {
    testkit::simulator(SimConfig {
        seed: 17,
        tenants: vec![TenantSpec::with_users(3); 3],
        partner: true,
        ..SimConfig::default()
    })
    .await
}

/// `connection add NAME --partner` for the simulator's partner tenant, with more options.
fn add_partner(db: &Path, sim: &RunningSimulator, name: &str, options: &[&str]) -> Output {
    let partner = &sim.tenants()[0];
    let mut args = vec![
        "connection",
        "add",
        name,
        "--partner",
        "--tenant-id",
        &partner.tenant_id,
        "--client-id",
        &partner.client_id,
        "--client-secret-env",
        "TEST_SECRET",
        "--login-url",
        &sim.url,
        "--graph-url",
        &sim.url,
    ];
    args.extend_from_slice(options);
    m365sync(db, &args, &[("TEST_SECRET", &partner.client_secret)])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_connection_is_added_tested_and_synced_customer_by_customer() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let tenants = sim.tenants();
    let (fabrikam, northwind) = (&tenants[1], &tenants[2]);

    // The partner's own tenant is never filed under an organisation.
    let named = add_partner(&db, &sim, "csp", &["--organization", "Acme"]);
    assert_eq!(named.status.code(), Some(2), "{:?}", text(&named));

    let added = add_partner(&db, &sim, "csp", &["--create-organization"]);
    assert!(added.status.success(), "{:?}", text(&added));
    assert!(text(&added).0.contains("partner connection 'csp'"));
    let listed = json(&m365sync(&db, &["connection", "list", "--json"], &[]));
    assert_eq!(listed[0]["mode"], "partner", "{listed}");
    assert_eq!(listed[0]["create_organization"], true, "{listed}");
    let (plain, _) = text(&m365sync(&db, &["connection", "list"], &[]));
    let mut lines = plain.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("NAME") && h.contains("MODE")),
        "{plain}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|row| row.split_whitespace().take(2).eq(["csp", "partner"])),
        "{plain}"
    );

    // Northwind's admin has not consented the app: the test names it and gives the link.
    sim.state
        .set_partner_consent(&northwind.tenant_id, false)
        .unwrap();
    let link = format!(
        "{}/{}/adminconsent?client_id={}",
        sim.url, northwind.tenant_id, tenants[0].client_id
    );
    let tested = m365sync(&db, &["connection", "test", "csp", "--json"], &[]);
    assert_eq!(tested.status.code(), Some(1), "{:?}", text(&tested));
    let report = json(&tested);
    assert_eq!(report["mode"], "partner");
    assert_eq!(report["customers_listed_by"], "delegatedAdminCustomers");
    let customers: Vec<(&str, &str, &Value)> = report["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["tenant_id"].as_str().unwrap(),
                c["state"].as_str().unwrap(),
                &c["consent_url"],
            )
        })
        .collect();
    assert_eq!(
        customers,
        [
            (fabrikam.tenant_id.as_str(), "ok", &Value::Null),
            (
                northwind.tenant_id.as_str(),
                "app_not_consented",
                &Value::from(link.clone())
            ),
        ]
    );
    let (plain, _) = text(&m365sync(&db, &["connection", "test", "csp"], &[]));
    assert!(
        plain.contains(&format!(
            "Northwind Traders ({}): app_not_consented — consent: {link}",
            northwind.tenant_id
        )),
        "{plain}"
    );

    // The sync goes on without Northwind: partial, and every step names its tenant.
    let synced = m365sync(&db, &["sync", "csp", "--json"], &[]);
    assert_eq!(synced.status.code(), Some(1), "{:?}", text(&synced));
    let run = json(&synced);
    assert_eq!(run["status"], "partial", "{run}");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8, "{run}");
    let of = |tenant: &str| -> Vec<&Value> {
        steps.iter().filter(|s| s["tenant_id"] == tenant).collect()
    };
    assert!(
        of(&fabrikam.tenant_id)
            .iter()
            .all(|s| s["status"] == "succeeded" && s["tenant_name"] == "Fabrikam Inc"),
        "{run}"
    );
    let refused = of(&northwind.tenant_id);
    assert_eq!(refused.len(), 4, "{run}");
    assert_eq!(refused[0]["status"], "failed");
    assert!(
        refused[0]["message"].as_str().unwrap().contains(&link),
        "{run}"
    );

    let (listed, _) = text(&m365sync(&db, &["runs"], &[]));
    assert!(
        listed.starts_with("RUN") && listed.contains(" failed"),
        "{listed}"
    );
    let run_id = json(&m365sync(&db, &["runs", "--json"], &[]))[0]["id"].to_string();
    let (plain, _) = text(&m365sync(&db, &["run", &run_id], &[]));
    for (tenant, name) in [
        (&fabrikam.tenant_id, "Fabrikam Inc"),
        (&northwind.tenant_id, "Northwind Traders"),
    ] {
        assert!(
            plain.contains(&format!("tenant {name} ({tenant})")),
            "{plain}"
        );
    }
    let runs = json(&m365sync(&db, &["runs", "--json"], &[]));
    let logged: Vec<&str> = runs[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tenant_id"].as_str().unwrap())
        .collect();
    let mut reported: Vec<&str> = steps
        .iter()
        .map(|s| s["tenant_id"].as_str().unwrap())
        .collect();
    // Customers are synced side by side: the log keeps each one's steps together, in the
    // order the customers started.
    let mut tenants_in_log = logged.clone();
    tenants_in_log.dedup();
    assert_eq!(tenants_in_log.len(), 2, "{logged:?}");
    let mut logged = logged;
    logged.sort();
    reported.sort();
    assert_eq!(logged, reported);
}
