//! Installing, configuring and running m365sync as a service, and the command line's manners:
//! help that names every choice, headers on lists, fast and plain failures, configuration with a
//! clear precedence, log formats, and backups of a store in use.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{add, free_port, m365sync, serve_until_it_speaks, sim, text};

fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut all = args.to_vec();
    all.push("--help");
    let output = m365sync(&dir.path().join("x.db"), &all, &[]);
    assert!(output.status.success(), "{:?}", text(&output));
    text(&output).0
}

#[test]
fn connection_add_help_names_every_dataset_and_all() {
    let shown = help(&["connection", "add"]);
    for dataset in domain::Dataset::ALL {
        assert!(
            shown.contains(dataset.name()),
            "{} missing:\n{shown}",
            dataset.name()
        );
    }
    assert!(shown.contains("`all`"), "{shown}");
}

#[test]
fn store_options_are_not_offered_where_they_mean_nothing() {
    let simulate = help(&["simulate"]);
    for option in ["--db", "--ca-cert", "--key-file"] {
        assert!(
            !simulate.contains(option),
            "simulate offers {option}:\n{simulate}"
        );
    }
    // Where they mean something, they stand apart from the command's own options.
    let sync = help(&["sync"]);
    let global = sync
        .split("Global options:")
        .nth(1)
        .unwrap_or_else(|| panic!("no global options heading:\n{sync}"));
    for option in [
        "--db",
        "--ca-cert",
        "--config",
        "--key-file",
        "--log-format",
    ] {
        assert!(
            global.contains(option),
            "{option} not among the global options:\n{sync}"
        );
    }
    assert!(!global.contains("--full"), "{sync}");
}

#[test]
fn export_help_names_every_kind() {
    let top = help(&[]);
    let summary = top
        .lines()
        .find(|l| l.trim_start().starts_with("export"))
        .unwrap_or_else(|| panic!("no export in:\n{top}"));
    assert!(
        !summary.contains("contacts, organisations or licences"),
        "{summary}"
    );
    let shown = help(&["export"]);
    for kind in [
        "contacts",
        "organizations",
        "licenses",
        "mailboxes",
        "deleted-mailboxes",
        "filtered-users",
        "domains",
        "service-health",
        "service-messages",
        "applications",
        "terms-of-use",
        "usage",
        "groups",
        "group-members",
        "directory-roles",
        "managed-devices",
        "detected-apps",
        "devices",
        "sign-in-activity",
        "audit",
    ] {
        assert!(shown.contains(kind), "{kind} missing:\n{shown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_list_has_a_header() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let secret = sim.tenants()[0].client_secret.clone();
    assert!(add(&db, &sim, "contoso", &secret).status.success());
    let listed = m365sync(&db, &["connection", "list"], &[]);
    let (out, err) = text(&listed);
    assert!(listed.status.success(), "{err}");
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    for column in ["NAME", "MODE", "TENANT", "CLIENT", "DATASETS", "SCHEDULE"] {
        assert!(header.contains(column), "{out}");
    }
    let row = lines.next().unwrap_or_default();
    assert!(row.starts_with("contoso "), "{out}");
    // Columns line up: the tenant id starts where its heading does.
    let tenant_id = &sim.tenants()[0].tenant_id;
    assert_eq!(header.find("TENANT"), row.find(tenant_id.as_str()), "{out}");
}

#[test]
fn a_postgres_port_that_refuses_fails_at_once_and_says_so() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/m365sync");
    let key_file = dir.path().join("secret.key").display().to_string();
    let output = m365sync(Path::new(&url), &["--key-file", &key_file, "runs"], &[]);
    let took = started.elapsed();
    let (_, err) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("Nothing is listening at 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!err.contains("pool timed out"), "{err}");
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_microsoft_endpoint_fails_fast_quietly_and_plainly() {
    let sim = sim(2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let t = sim.tenants()[0].clone();
    let stopped = format!("http://127.0.0.1:{}", free_port());
    let added = m365sync(
        &db,
        &[
            "connection",
            "add",
            "stopped",
            "--tenant-id",
            &t.tenant_id,
            "--client-id",
            &t.client_id,
            "--client-secret-env",
            "TEST_SECRET",
            "--login-url",
            &stopped,
            "--graph-url",
            &stopped,
        ],
        &[("TEST_SECRET", &t.client_secret)],
    );
    assert!(added.status.success(), "{:?}", text(&added));
    let started = Instant::now();
    let synced = m365sync(&db, &["sync", "stopped"], &[("TERM", "xterm-256color")]);
    let took = started.elapsed();
    let (out, err) = text(&synced);
    assert_eq!(synced.status.code(), Some(1), "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("nothing is listening at 127.0.0.1:"),
        "{said}"
    );
    assert!(!said.contains("retrying"), "retries are details:\n{said}");
    assert!(
        !said.contains('\u{1b}'),
        "colour codes off a terminal:\n{said}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let stopped = format!("http://127.0.0.1:{}", free_port());
    let added = m365sync(
        &db,
        &[
            "connection",
            "add",
            "stopped",
            "--tenant-id",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "--client-id",
            "11111111-2222-3333-4444-555555555555",
            "--client-secret-env",
            "TEST_SECRET",
            "--login-url",
            &stopped,
            "--graph-url",
            &stopped,
        ],
        &[("TEST_SECRET", "Abc8Q~not-a-real-secret")],
    );
    assert!(added.status.success(), "{:?}", text(&added));
    let synced = m365sync(
        &db,
        &["-v", "sync", "stopped"],
        &[("M365SYNC_LOG_FORMAT", "json")],
    );
    let (_, err) = text(&synced);
    let logged: Vec<Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!logged.is_empty(), "{err}");
    assert!(
        logged
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// `config show --json` as a map of key → (value, source).
fn shown_config(
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::collections::HashMap<String, (Value, String)>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    command
        .args(args)
        .args(["config", "show", "--json"])
        .env_remove("M365SYNC_DB")
        .env_remove("M365SYNC_CONFIG")
        .env_remove("M365SYNC_SECRET_KEY")
        .env_remove("M365SYNC_LOG_FORMAT")
        .env_remove("M365SYNC_LISTEN")
        .env_remove("M365SYNC_TIME_ZONE")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    let (out, err) = text(&output);
    if !output.status.success() {
        return (Default::default(), err);
    }
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (
        rows.into_iter()
            .map(|r| {
                (
                    r["key"].as_str().unwrap().to_string(),
                    (
                        r["value"].clone(),
                        r["source"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect(),
        err,
    )
}

#[test]
fn settings_come_from_flag_then_environment_then_file_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".config/m365sync")).unwrap();
    let file = home.join(".config/m365sync/config.toml");
    write(
        &file,
        "# a comment\ndb = \"postgres://m365sync:s3cret@db.example.com/m365sync\"\nlog_format = \"json\"\nlisten = \"127.0.0.1:9090\"\ntime_zone = \"Europe/Paris\"\n",
    );
    let home_env = home.display().to_string();
    let base = [("HOME", home_env.as_str()), ("XDG_CONFIG_HOME", "")];

    // The user's file is found on its own.
    let (shown, err) = shown_config(&[], &base);
    assert!(err.is_empty() || !err.contains("error"), "{err}");
    assert_eq!(shown["config"].0, file.display().to_string());
    let (db, source) = &shown["db"];
    assert_eq!(
        db, "postgres://m365sync:****@db.example.com/m365sync",
        "password redacted"
    );
    assert_eq!(source, &format!("file {}:2", file.display()));
    assert_eq!(shown["log_format"].0, "json");
    assert_eq!(shown["listen"].0, "127.0.0.1:9090");
    assert_eq!(shown["time_zone"].0, "Europe/Paris");
    assert_eq!(shown["key_file"].1.split(' ').next(), Some("default"));

    // The environment beats the file; the flag beats both.
    let mut env = base.to_vec();
    env.push(("M365SYNC_DB", "from-env.db"));
    env.push(("M365SYNC_LOG_FORMAT", "text"));
    env.push((
        "M365SYNC_SECRET_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ));
    let (shown, _) = shown_config(&[], &env);
    assert_eq!(
        shown["db"],
        (Value::from("from-env.db"), "environment M365SYNC_DB".into())
    );
    assert_eq!(shown["log_format"].0, "text");
    let key = shown["secret_key"].0.as_str().unwrap().to_string();
    assert!(key.starts_with("(redacted"), "{key}");
    assert!(!key.contains("MDEy"), "{key}");
    let (shown, _) = shown_config(&["--db", "from-flag.db"], &env);
    assert_eq!(shown["db"], (Value::from("from-flag.db"), "--db".into()));

    // With no file anywhere, the defaults.
    let empty = dir.path().join("nobody");
    let empty_env = empty.display().to_string();
    let (shown, _) = shown_config(&[], &[("HOME", &empty_env), ("XDG_CONFIG_HOME", "")]);
    if !Path::new("/etc/m365sync/config.toml").exists() {
        assert_eq!(shown["db"], (Value::from("m365sync.db"), "default".into()));
        assert_eq!(shown["config"].0, Value::Null);
    }
    assert_eq!(shown["log_format"].0, "text");

    // --config names another file, which then must exist.
    let other = dir.path().join("other.toml");
    write(&other, "db = \"other.db\"\n");
    let other_arg = other.display().to_string();
    let (shown, _) = shown_config(&["--config", &other_arg], &base);
    assert_eq!(shown["db"].0, "other.db");
    let (_, err) = shown_config(&["--config", "/no/such/config.toml"], &base);
    assert!(err.contains("/no/such/config.toml"), "{err}");
}

#[test]
fn a_wrong_configuration_names_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    let file_arg = file.display().to_string();
    for (content, line, key) in [
        (
            "db = \"a.db\"\n\nlog_format = \"colourful\"\n",
            3,
            "log_format",
        ),
        ("db = \"a.db\"\ndatabase = \"b.db\"\n", 2, "database"),
        ("listen = \"everywhere\"\n", 1, "listen"),
        ("time_zone = \"Mars/Olympus_Mons\"\n", 1, "time_zone"),
        ("db = \"a.db\"\nlog_format = \n", 2, "log_format"),
    ] {
        write(&file, content);
        let output = Command::new(env!("CARGO_BIN_EXE_m365sync"))
            .args(["--config", &file_arg, "runs"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let (_, err) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{content}: {err}");
        assert!(
            err.contains(&format!("{}:{line}: key `{key}`", file.display())),
            "{content}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_in_use_is_backed_up_with_its_key_reminder() {
    let sim = sim(40).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let secret = sim.tenants()[0].client_secret.clone();
    assert!(add(&db, &sim, "contoso", &secret).status.success());
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));

    // The store is in use: served, with its worker.
    let (mut server, _) = serve_until_it_speaks(&db, &["--listen", "127.0.0.1:0"], &[]);
    let copy = dir.path().join("backups").join("store-copy.db");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let copy_arg = copy.display().to_string();
    let backed = m365sync(&db, &["backup", &copy_arg], &[]);
    let _ = server.kill();
    let _ = server.wait();
    let (out, err) = text(&backed);
    assert!(backed.status.success(), "{out}{err}");
    let key_file = format!("{}.key", db.display());
    assert!(out.contains(&key_file), "the key file is named: {out}");

    // The copy is a store of its own, opened with the original's key.
    let key_arg = key_file.clone();
    let original = m365sync(&db, &["export", "contacts"], &[]);
    let copied = m365sync(&copy, &["--key-file", &key_arg, "export", "contacts"], &[]);
    assert!(copied.status.success(), "{:?}", text(&copied));
    let count = |o: &std::process::Output| {
        serde_json::from_slice::<Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&copied), count(&original));
    assert!(count(&copied) >= 40);
    let tested = m365sync(
        &copy,
        &["--key-file", &key_arg, "connection", "list", "--json"],
        &[],
    );
    assert!(tested.status.success(), "{:?}", text(&tested));

    // A backup never overwrites a file.
    let again = m365sync(&db, &["backup", &copy_arg], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again).1.contains("already exists"),
        "{:?}",
        text(&again)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_store_is_backed_up_with_pg_dump() {
    let Some(database) = testkit::PostgresDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db").display().to_string();
    let key_file = dir.path().join("secret.key").display().to_string();
    let output = m365sync(
        Path::new(&database.url),
        &["--key-file", &key_file, "backup", &copy],
        &[],
    );
    let (_, err) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("pg_dump"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_prints_a_connection_add_line_that_works_as_pasted() {
    let mut simulator = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--tenants",
            "2",
            "--users",
            "5",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(simulator.stderr.take().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    while lines
        .iter()
        .filter(|l: &&String| l.contains("connection add"))
        .count()
        < 2
    {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines.push(line.trim().to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    for position in 0..2 {
        let export = lines
            .iter()
            .find(|l| l.starts_with(&format!("export SIM_SECRET_{position}=")))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        let secret = export
            .split_once('=')
            .map(|(_, v)| v.trim_matches('\''))
            .unwrap()
            .to_string();
        let add_line = lines
            .iter()
            .find(|l| l.contains(&format!("connection add sim-{position} ")))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        let words: Vec<&str> = add_line.split_whitespace().collect();
        assert_eq!(words[0], "m365sync");
        let variable = format!("SIM_SECRET_{position}");
        let added = m365sync(&db, &words[1..], &[(variable.as_str(), secret.as_str())]);
        assert!(added.status.success(), "{add_line}: {:?}", text(&added));
        let tested = m365sync(
            &db,
            &["connection", "test", &format!("sim-{position}")],
            &[],
        );
        assert!(tested.status.success(), "{:?}", text(&tested));
    }
    let _ = simulator.kill();
    let _ = simulator.wait();
}

/// Runs `args` under a pseudo-terminal (util-linux `script`), as a person at a terminal does,
/// and returns what the terminal received.
fn on_a_terminal(db: &Path, args: &[&str]) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped: `script` (util-linux) is missing, so no terminal can be made");
        return None;
    }
    let mut line = format!(
        "M365SYNC_CONFIG=/dev/null {} --db {}",
        env!("CARGO_BIN_EXE_m365sync"),
        db.display()
    );
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    let output = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env("COLUMNS", "160")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_on_a_terminal_shows_each_step_once() {
    let sim = sim(30).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let secret = sim.tenants()[0].client_secret.clone();
    assert!(add(&db, &sim, "contoso", &secret).status.success());
    let Some(screen) = on_a_terminal(&db, &["sync", "contoso"]) else {
        return;
    };
    // What stays on the screen: each line as last drawn, escape codes aside.
    let plain: String = strip_escapes(&screen);
    let final_lines: Vec<&str> = plain
        .split('\n')
        .map(|l| {
            l.rsplit('\r')
                .find(|part| !part.trim().is_empty())
                .unwrap_or("")
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    for dataset in ["organization", "licenses", "users", "mailboxes"] {
        let shown = final_lines
            .iter()
            .filter(|l| l.trim_start().starts_with(&format!("{dataset} ")))
            .count();
        assert_eq!(
            shown,
            1,
            "{dataset} shown {shown} times:\n{}",
            final_lines.join("\n")
        );
    }
    assert!(
        final_lines
            .iter()
            .any(|l| l.starts_with("Run ") && l.contains("succeeded")),
        "{}",
        final_lines.join("\n")
    );
}

/// Text without terminal escape sequences (CSI and OSC).
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                for c in chars.by_ref() {
                    if c == '\u{7}' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn completions_and_manual_pages_are_made_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    for (shell, marker) in [
        ("bash", "_m365sync()"),
        ("zsh", "#compdef m365sync"),
        ("fish", "complete -c m365sync"),
    ] {
        let output = m365sync(&db, &["completions", shell], &[]);
        assert!(output.status.success(), "{:?}", text(&output));
        let script = text(&output).0;
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("connection"), "{shell}");
    }
    let pages = dir.path().join("man");
    std::fs::create_dir_all(&pages).unwrap();
    let pages_arg = pages.display().to_string();
    let output = m365sync(&db, &["manual", "--out", &pages_arg], &[]);
    assert!(output.status.success(), "{:?}", text(&output));
    let main = std::fs::read_to_string(pages.join("m365sync.1")).unwrap();
    assert!(main.contains(".TH m365sync"), "{main}");
    let add = std::fs::read_to_string(pages.join("m365sync-connection-add.1")).unwrap();
    assert!(add.contains("tenant\\-id"), "{add}");
    assert!(
        !dir.path().join("x.db").exists(),
        "no store is made for these"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_given_by_its_domain_is_kept_by_its_id() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let t = sim.tenants()[0].clone();
    let by_domain = |name: &str, domain: &str| {
        m365sync(
            &db,
            &[
                "connection",
                "add",
                name,
                "--tenant-id",
                domain,
                "--client-id",
                &t.client_id,
                "--client-secret-env",
                "TEST_SECRET",
                "--login-url",
                &sim.url,
                "--graph-url",
                &sim.url,
            ],
            &[("TEST_SECRET", &t.client_secret)],
        )
    };
    let added = by_domain("contoso", &t.initial_domain);
    assert!(added.status.success(), "{:?}", text(&added));
    assert!(text(&added).1.contains(&t.tenant_id), "{:?}", text(&added));
    let listed = m365sync(&db, &["connection", "list", "--json"], &[]);
    let list: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list[0]["tenant_id"], t.tenant_id.as_str());
    let tested = m365sync(&db, &["connection", "test", "contoso"], &[]);
    assert!(tested.status.success(), "{:?}", text(&tested));

    let unknown = by_domain("nobody", "nobody.example.org");
    assert_eq!(unknown.status.code(), Some(2), "{:?}", text(&unknown));
    assert!(
        text(&unknown)
            .1
            .contains("knows no tenant with that domain"),
        "{:?}",
        text(&unknown)
    );
}
