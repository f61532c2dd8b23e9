//! `account` and `calendar` as a person uses them: `account connect` prints the sign-in address
//! and waits on loopback; the test plays the browser on the simulator's sign-in page and follows
//! Microsoft's redirect back to it. Then list → free → book → move → cancel → remove, with no
//! token in any output.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::{add, sim, text};

fn m365sync(db: &Path, args: &[&str]) -> Output {
    super::m365sync(db, args, &[])
}

fn json(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{:?}", text(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(output)))
}

/// What no output may ever contain: the simulator's refresh tokens start `1.AR`, codes `1.AQ`,
/// access and id tokens are JWTs (`eyJ`).
fn assert_no_token(output: &str) {
    for marker in ["1.AR", "1.AQ", "eyJ"] {
        assert!(
            !output.contains(marker),
            "a token leaked ({marker}): {output}"
        );
    }
}

fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|part| {
            let value_of = |attr: &str| {
                let start = part.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
                let end = start + part[start..].find('"').unwrap();
                part[start..end]
                    .replace("&amp;", "&")
                    .replace("&quot;", "\"")
            };
            (value_of("name"), value_of("value"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_list_free_book_move_cancel_remove_from_the_command_line() {
    let sim = sim(10).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let secret = sim.tenants()[0].client_secret.clone();
    assert!(add(&db, &sim, "contoso", &secret).status.success());
    let person = {
        let tenant = sim.state.tenant("0").unwrap();
        (0..10)
            .filter_map(|i| tenant.user(i))
            .find(|u| u.has_mailbox && u.account_enabled)
            .unwrap()
            .upn
    };
    let mut outputs = String::new();

    let mut child = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .arg("--db")
        .arg(&db)
        .args([
            "account",
            "connect",
            "--connection",
            "contoso",
            "--login-hint",
            &person,
            "--timeout",
            "60s",
        ])
        .env_remove("M365SYNC_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut address = String::new();
    stdout.read_line(&mut address).unwrap();
    let address = address.trim().to_string();
    assert!(
        address.starts_with(&sim.url) && address.contains("code_challenge_method=S256"),
        "{address}"
    );
    assert!(
        address.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "the redirect names the address listened on: {address}"
    );

    // The browser: the sign-in page, the person accepts, Microsoft sends it back to loopback.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(&address)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("value=\"{person}\"")),
        "login_hint is honoured"
    );
    let tenant_id = sim.tenants()[0].tenant_id.clone();
    let mut form = hidden_fields(&page);
    form.push(("login".into(), person.clone()));
    form.push(("consent".into(), "accept".into()));
    let answer = browser
        .post(format!("{}/{tenant_id}/oauth2/v2.0/authorize", sim.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    let back = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.contains("/integrations/office365/callback?code="),
        "{back}"
    );
    let done = browser
        .get(&back)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("Connected"), "{done}");
    assert_no_token(&done);

    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains(&format!("Connected {person}")), "{rest}");
    outputs.push_str(&rest);

    let listed = m365sync(&db, &["account", "list", "--json"]);
    let accounts = json(&listed);
    outputs.push_str(&String::from_utf8_lossy(&listed.stdout));
    assert_eq!(accounts[0]["username"], person.as_str());
    assert_eq!(accounts[0]["state"], "active");
    assert_eq!(accounts[0]["token_health"]["health"], "healthy");
    let plain = m365sync(&db, &["account", "list"]);
    outputs.push_str(&String::from_utf8_lossy(&plain.stdout));
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.starts_with("ID") && plain.contains("healthy"),
        "{plain}"
    );

    let free = m365sync(
        &db,
        &[
            "calendar",
            "free",
            "--account",
            "1",
            "--days",
            "5",
            "--length",
            "45m",
            "--json",
        ],
    );
    let free = json(&free);
    let slots = free["slots"].as_array().unwrap();
    assert!(slots.len() > 2, "{free}");
    let first = slots[0]["start"].as_str().unwrap().to_string();
    let later = slots[slots.len() - 1]["start"]
        .as_str()
        .unwrap()
        .to_string();

    let booked = m365sync(
        &db,
        &[
            "calendar",
            "book",
            "--account",
            "1",
            "--start",
            &first,
            "--length",
            "45m",
            "--subject",
            "Council tax appointment",
            "--attendee",
            "resident@example.org",
            "--online",
            "--json",
        ],
    );
    outputs.push_str(&String::from_utf8_lossy(&booked.stdout));
    let booking = json(&booked);
    assert_eq!(booking["state"], "booked");
    let id = booking["id"].to_string();

    // The same slot again is refused, in words.
    let again = m365sync(
        &db,
        &[
            "calendar",
            "book",
            "--account",
            "1",
            "--start",
            &first,
            "--subject",
            "Second",
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{:?}", text(&again));
    assert!(
        text(&again).1.contains("no longer free"),
        "{:?}",
        text(&again)
    );

    // A night-time start is refused with the working hours, unless it is meant; a past one is
    // refused; both before anything reaches Outlook.
    let night = format!("{}T03:00", &later[..10]);
    let refused = m365sync(
        &db,
        &[
            "calendar",
            "book",
            "--account",
            "1",
            "--start",
            &night,
            "--subject",
            "Night",
        ],
    );
    assert_ne!(refused.status.code(), Some(0), "{:?}", text(&refused));
    assert!(
        text(&refused)
            .1
            .contains("outside the mailbox's working hours"),
        "{:?}",
        text(&refused)
    );
    let meant = m365sync(
        &db,
        &[
            "calendar",
            "book",
            "--account",
            "1",
            "--start",
            &night,
            "--subject",
            "Night",
            "--outside-working-hours",
            "--json",
        ],
    );
    assert_eq!(json(&meant)["state"], "booked", "{:?}", text(&meant));
    let past = m365sync(
        &db,
        &[
            "calendar",
            "book",
            "--account",
            "1",
            "--start",
            "2020-01-06T10:00",
            "--subject",
            "Late",
        ],
    );
    assert!(text(&past).1.contains("in the past"), "{:?}", text(&past));
    let listed = m365sync(&db, &["calendar", "bookings"]);
    let (listed, _) = text(&listed);
    assert!(listed.contains("Council tax appointment"), "{listed}");
    assert!(
        !listed.contains(" UTC") && listed.contains(free["time_zone"].as_str().unwrap()),
        "{listed}"
    );
    let missing = m365sync(&db, &["calendar", "move", "999", "--start", &later]);
    assert!(
        text(&missing)
            .1
            .contains("`m365sync calendar bookings` lists them"),
        "{:?}",
        text(&missing)
    );

    let moved = json(&m365sync(
        &db,
        &["calendar", "move", &id, "--start", &later, "--json"],
    ));
    assert_eq!(moved["state"], "booked");
    let cancelled = json(&m365sync(&db, &["calendar", "cancel", &id, "--json"]));
    assert_eq!(cancelled["state"], "cancelled");

    let unconfirmed = m365sync(&db, &["account", "remove", &person]);
    assert_eq!(
        unconfirmed.status.code(),
        Some(2),
        "{:?}",
        text(&unconfirmed)
    );
    assert!(text(&unconfirmed).1.contains("--yes"));
    let removed = m365sync(&db, &["account", "remove", &person, "--yes"]);
    assert!(removed.status.success(), "{:?}", text(&removed));
    let (said, _) = text(&removed);
    assert!(said.contains("Revoke"), "{said}");
    outputs.push_str(&said);
    assert_eq!(
        json(&m365sync(&db, &["account", "list", "--json"])),
        Value::Array(vec![])
    );

    assert_no_token(&outputs);
}
