//! `tenants` and `match` as a person uses them.

use std::path::Path;
use std::process::Output;

use graph_sim::{RunningSimulator, SimConfig, TenantSpec};
use serde_json::Value;

use super::text;

const USERS: u64 = 8;

fn m365sync(db: &Path, args: &[&str]) -> Output {
    super::m365sync(db, args, &[])
}

fn m365sync_with(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    super::m365sync(db, args, env)
}

fn json(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{:?}", text(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(output)))
}

/// A sync whose tenant awaits a decision: it fails (exit 1), still printing the run as JSON.
fn held_run(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(1), "{:?}", text(output));
    let run: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", text(output)));
    assert_eq!(run["status"], "failed", "{run}");
    run
}

async fn sim() -> RunningSimulator {
    testkit::simulator(SimConfig {
        seed: 33,
        tenants: vec![TenantSpec::with_users(USERS)],
        ..SimConfig::default()
    })
    .await
}

fn add(db: &Path, sim: &RunningSimulator, extra: &[&str]) -> Output {
    let t = &sim.tenants()[0];
    let mut args = vec![
        "connection",
        "add",
        "contoso",
        "--tenant-id",
        &t.tenant_id,
        "--client-id",
        &t.client_id,
        "--client-secret-env",
        "TEST_SECRET",
        "--login-url",
        &sim.url,
        "--graph-url",
        &sim.url,
    ];
    args.extend_from_slice(extra);
    m365sync_with(db, &args, &[("TEST_SECRET", &t.client_secret)])
}

/// Exit 2 and one sentence on standard error that holds `expected`.
fn refused(db: &Path, args: &[&str], expected: &str) {
    let output = m365sync(db, args);
    let (_, err) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(expected), "{args:?}: {err}");
}

fn step<'a>(run: &'a Value, dataset: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dataset"] == dataset)
        .unwrap_or_else(|| panic!("no {dataset} step in {run}"))
}

async fn organisation_named(db: &str, name: &str) {
    let store = store::Store::open_keyed(
        db,
        None,
        &store::default_key_file(db),
        store::StoreOptions::default(),
    )
    .await
    .unwrap();
    store.create_organization(name).await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_lists_the_suggestions_and_match_decides() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let tenant = sim.tenants()[0].tenant_id.clone();
    let tid = tenant.as_str();
    let added = add(&db, &sim, &[]);
    assert!(added.status.success(), "{:?}", text(&added));
    organisation_named(db.to_str().unwrap(), "Contosso").await;

    // The tenant ("Contoso Ltd") only comes near "Contosso": nothing of it is written.
    let run = held_run(&m365sync(&db, &["sync", "contoso", "--json"]));
    let users = step(&run, "users");
    assert_eq!(users["status"], "skipped", "{run}");
    assert!(
        users["message"]
            .as_str()
            .unwrap()
            .contains(&format!("`m365sync match {tid} --accept`")),
        "{run}"
    );
    let listed = m365sync(&db, &["tenants"]);
    let (out, _) = text(&listed);
    assert_eq!(listed.status.code(), Some(0));
    assert!(out.starts_with("TENANT"), "a header first: {out}");
    for expected in [
        "Contoso Ltd",
        tid,
        "suggested",
        "1. Contosso",
        "similar name",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }
    let waiting = json(&m365sync(
        &db,
        &["tenants", "--state", "suggested", "--json"],
    ));
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
    assert_eq!(waiting[0]["tenant_id"], tid);
    let suggestion = &waiting[0]["suggestions"][0];
    assert_eq!(suggestion["organization"], "Contosso");
    assert_eq!(suggestion["rule"], "similar_name");
    assert!(suggestion["score"].as_f64().unwrap() > 0.75, "{suggestion}");
    assert_eq!(
        json(&m365sync(&db, &["tenants", "--state", "matched", "--json"])),
        serde_json::json!([])
    );

    // Asked wrongly: exit 2, and what to do instead.
    refused(&db, &["match", "nobody", "--accept"], "`m365sync tenants`");
    refused(&db, &["match", tid], "--accept");
    refused(&db, &["match", tid, "--accept", "--ignore"], "--ignore");
    refused(
        &db,
        &["match", "Contoso Ltd", "--accept", "2"],
        "from 1 to 1",
    );
    refused(
        &db,
        &["match", "Contoso Ltd", "--accept", "first"],
        "from 1 to 1",
    );
    refused(
        &db,
        &["match", tid, "--organization", "Nowhere"],
        "--create 'Nowhere'",
    );
    refused(
        &db,
        &["match", tid, "--create", "contosso"],
        "--organization",
    );
    // A near-duplicate is the same name; a name with a control character or too long is none.
    refused(
        &db,
        &["match", tid, "--create", " CONTOSSO\u{200B} "],
        "exists already",
    );
    refused(
        &db,
        &["match", tid, "--create", "Fresh\u{1}Co"],
        "--create: the organisation's name holds a control character",
    );
    let long = "n".repeat(201);
    refused(&db, &["match", tid, "--create", &long], "more than 200");
    refused(&db, &["tenants", "--state", "lost"], "unmatched");

    // Accepted by its display name as a person types it.
    let accepted = m365sync(&db, &["match", "contoso ltd", "--accept"]);
    let (out, err) = text(&accepted);
    assert_eq!(accepted.status.code(), Some(0), "{err}");
    assert!(out.contains("matched to organisation 'Contosso'"), "{out}");
    assert!(out.contains("`m365sync sync contoso`"), "{out}");
    refused(&db, &["match", tid, "--accept"], "--organization");
    let run = json(&m365sync(&db, &["sync", "contoso", "--json"]));
    assert_eq!(step(&run, "users")["created"], USERS, "{run}");

    // Ignored: not listed as awaiting, and its syncs say why they skip.
    assert!(m365sync(&db, &["match", tid, "--ignore"]).status.success());
    assert_eq!(
        json(&m365sync(
            &db,
            &["tenants", "--state", "unmatched", "--json"]
        )),
        serde_json::json!([])
    );
    assert_eq!(
        json(&m365sync(&db, &["tenants", "--state", "ignored", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let ignored = m365sync(&db, &["sync", "contoso"]);
    assert_eq!(ignored.status.code(), Some(1), "{:?}", text(&ignored));
    let (out, _) = text(&ignored);
    assert!(out.contains("is ignored"), "{out}");

    // Back for a decision, then changed to a new organisation: its contacts go with it.
    assert!(m365sync(&db, &["match", tid, "--unmatch"]).status.success());
    let back = json(&m365sync(&db, &["tenants", "--json"]));
    assert_eq!(back[0]["state"], "suggested", "{back}");
    assert!(
        m365sync(&db, &["match", tid, "--organization", "Contosso"])
            .status
            .success()
    );
    let changed = m365sync(&db, &["match", tid, "--create", "Contoso Group"]);
    assert!(changed.status.success(), "{:?}", text(&changed));
    let orgs = json(&m365sync(&db, &["export", "organizations"]));
    let group = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Contoso Group")
        .unwrap_or_else(|| panic!("{orgs}"));
    assert_eq!(group["contacts"], USERS, "{orgs}");
    let run = json(&m365sync(&db, &["sync", "contoso", "--json"]));
    assert_eq!(run["status"], "succeeded", "{run}");

    // An organisation named with a number that is another's id: a bare number is refused as
    // ambiguous, and `id:` says which is meant.
    let contosso = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Contosso")
        .unwrap_or_else(|| panic!("{orgs}"))["id"]
        .to_string();
    let numbered = m365sync(&db, &["match", tid, "--create", &contosso]);
    assert!(numbered.status.success(), "{:?}", text(&numbered));
    refused(
        &db,
        &["match", tid, "--organization", &contosso],
        &format!("id:{contosso}"),
    );
    refused(
        &db,
        &["match", tid, "--organization", "id:x"],
        "whole number",
    );
    refused(
        &db,
        &["match", tid, "--organization", "id:9999"],
        "no organisation with id 9999",
    );
    let by_id = m365sync(
        &db,
        &["match", tid, "--organization", &format!("id:{contosso}")],
    );
    let (out, err) = text(&by_id);
    assert!(by_id.status.success(), "{err}");
    assert!(out.contains("matched to organisation 'Contosso'"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_add_names_the_organisation_or_forbids_creating_one() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let tid = sim.tenants()[0].tenant_id.clone();

    let named = dir.path().join("named.db");
    refused(
        &named,
        &[
            "connection",
            "add",
            "x",
            "--tenant-id",
            &tid,
            "--client-id",
            &tid,
            "--client-secret-env",
            "TEST_SECRET",
            "--organization",
            " ",
        ],
        "--organization is empty",
    );
    let added = add(&named, &sim, &["--organization", "Acme Ltd"]);
    assert!(added.status.success(), "{:?}", text(&added));
    assert!(text(&added).0.contains("'Acme Ltd'"));
    let run = json(&m365sync(&named, &["sync", "contoso", "--json"]));
    assert_eq!(run["status"], "succeeded", "{run}");
    let orgs = json(&m365sync(&named, &["export", "organizations"]));
    assert_eq!(orgs.as_array().unwrap().len(), 1, "{orgs}");
    assert_eq!(
        (&orgs[0]["name"], &orgs[0]["contacts"]),
        (&Value::from("Acme Ltd"), &Value::from(USERS))
    );
    let tenants = json(&m365sync(&named, &["tenants", "--json"]));
    assert_eq!(tenants[0]["match_rule"], "person", "{tenants}");
    assert_eq!(tenants[0]["display_name"], "Contoso Ltd", "{tenants}");

    let held = dir.path().join("held.db");
    let added = add(&held, &sim, &["--no-create-organization"]);
    assert!(added.status.success(), "{:?}", text(&added));
    let list = json(&m365sync(&held, &["connection", "list", "--json"]));
    assert_eq!(list[0]["create_organization"], false, "{list}");
    let run = held_run(&m365sync(&held, &["sync", "contoso", "--json"]));
    let message = step(&run, "users")["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(&format!("`m365sync match {tid} --create`")),
        "{message}"
    );
    let waiting = json(&m365sync(
        &held,
        &["tenants", "--state", "unmatched", "--json"],
    ));
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
    let created = m365sync(&held, &["match", &tid, "--create"]);
    assert!(
        text(&created)
            .0
            .contains("matched to organisation 'Contoso Ltd'"),
        "{:?}",
        text(&created)
    );
    let run = json(&m365sync(&held, &["sync", "contoso", "--json"]));
    assert_eq!(step(&run, "users")["created"], USERS, "{run}");
}
