//! Outlook calendars as a client meets them over HTTP with application permissions: recurring
//! events expanded in a calendar view, Outlook's error shapes, and its limit of 4 concurrent
//! requests per app and mailbox.

use graph_sim::{MAILBOX_CONCURRENCY, RunningSimulator, SimConfig, TenantSpec};
use serde_json::{Value, json};

async fn sim() -> RunningSimulator {
    let mut spec = TenantSpec::with_users(6);
    spec.roles.push("Calendars.ReadWrite".into());
    graph_sim::start(
        SimConfig {
            tenants: vec![spec],
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

async fn token(sim: &RunningSimulator) -> String {
    let tenant = &sim.tenants()[0];
    let answer: Value = reqwest::Client::new()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            sim.url, tenant.tenant_id
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", tenant.client_id.as_str()),
            ("client_secret", tenant.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

fn mailbox_owner(sim: &RunningSimulator) -> String {
    let tenant = sim.state.tenant("0").unwrap();
    (0..6)
        .filter_map(|i| tenant.user(i))
        .find(|u| u.has_mailbox)
        .unwrap()
        .upn
}

#[tokio::test]
async fn a_calendar_view_expands_recurring_events_into_occurrences_page_by_page() {
    let sim = sim().await;
    let token = token(&sim).await;
    let owner = mailbox_owner(&sim);
    let client = reqwest::Client::new();
    let now = chrono_like_now();
    let mut url = format!(
        "{}/v1.0/users/{owner}/calendarView?startDateTime={}&endDateTime={}",
        sim.url, now.0, now.1
    );
    let mut events = Vec::new();
    let mut pages = 0;
    loop {
        let page: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        events.extend(page["value"].as_array().unwrap().iter().cloned());
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert!(pages > 1, "ten events a page by default");
    let standups: Vec<&Value> = events
        .iter()
        .filter(|e| e["subject"] == "Team stand-up")
        .collect();
    assert!(
        standups.len() >= 5,
        "a daily series gives one occurrence per working day"
    );
    for occurrence in &standups {
        assert_eq!(occurrence["type"], "occurrence");
        assert!(occurrence["seriesMasterId"].is_string());
        assert_eq!(occurrence["start"]["timeZone"], "UTC");
    }
    for show_as in ["free", "workingElsewhere", "oof", "tentative"] {
        assert!(
            events.iter().any(|e| e["showAs"] == show_as),
            "an event shown as {show_as}"
        );
    }
}

/// Two weeks from now, as ISO 8601 instants.
fn chrono_like_now() -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let iso = |t: i64| {
        let days = t.div_euclid(86_400);
        let (y, m, d) = civil(days);
        format!("{y:04}-{m:02}-{d:02}T00:00:00Z")
    };
    (iso(now), iso(now + 14 * 86_400))
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[tokio::test]
async fn outlook_error_shapes_name_the_problem() {
    let sim = sim().await;
    let token = token(&sim).await;
    let client = reqwest::Client::new();
    let owner = mailbox_owner(&sim);

    let me = client
        .get(format!("{}/v1.0/me", sim.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 400);
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest");

    let no_window = client
        .get(format!("{}/v1.0/users/{owner}/calendarView", sim.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(no_window.status(), 400);
    let body: Value = no_window.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ErrorInvalidParameter");

    let missing = client
        .get(format!(
            "{}/v1.0/users/{owner}/events/AAMkAnothing",
            sim.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ErrorItemNotFound");

    let bad_zone = client
        .post(format!("{}/v1.0/users/{owner}/events", sim.url))
        .bearer_auth(&token)
        .json(&json!({
            "subject": "x",
            "start": { "dateTime": "2030-01-07T10:00:00", "timeZone": "Mars Standard Time" },
            "end": { "dateTime": "2030-01-07T10:30:00", "timeZone": "UTC" },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_zone.status(), 400);
    let body: Value = bad_zone.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TimeZoneNotSupportedException");

    // A create repeated with the same transactionId gets the same event.
    let create = || {
        client
            .post(format!("{}/v1.0/users/{owner}/events", sim.url))
            .bearer_auth(&token)
            .json(&json!({
                "subject": "Once",
                "start": { "dateTime": "2030-01-07T10:00:00", "timeZone": "Europe/London" },
                "end": { "dateTime": "2030-01-07T10:30:00", "timeZone": "Europe/London" },
                "transactionId": "same-booking",
            }))
            .send()
    };
    let first: Value = create().await.unwrap().json().await.unwrap();
    let second: Value = create().await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["start"]["dateTime"], "2030-01-07T10:00:00.0000000");
}

#[tokio::test]
async fn more_than_four_concurrent_requests_to_one_mailbox_are_throttled() {
    let sim = sim().await;
    let token = token(&sim).await;
    let owner = mailbox_owner(&sim);
    let client = reqwest::Client::new();
    client
        .put(format!("{}/_sim/calendars/hold", sim.url))
        .json(&json!({ "millis": 400 }))
        .send()
        .await
        .unwrap();
    let window = chrono_like_now();
    let url = format!(
        "{}/v1.0/users/{owner}/calendarView?startDateTime={}&endDateTime={}",
        sim.url, window.0, window.1
    );
    let requests = (0..MAILBOX_CONCURRENCY + 3).map(|_| {
        let request = client.get(&url).bearer_auth(&token).send();
        async move {
            let response = request.await.unwrap();
            let retry_after = response.headers().get("retry-after").cloned();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, retry_after, body)
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let ok = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let throttled: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(ok, MAILBOX_CONCURRENCY, "{answers:?}");
    assert_eq!(throttled.len(), 3);
    for (_, retry_after, body) in throttled {
        assert!(retry_after.is_some());
        assert_eq!(body["error"]["code"], "ApplicationThrottled");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("MailboxConcurrency")
        );
    }
}
