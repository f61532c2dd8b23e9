//! The faults of the control API as a client meets them over HTTP: each injected the way a
//! script would (`POST /_sim/tenants/TENANT/faults`), each answering as Graph or the network
//! between would.

use graph_sim::{RunningSimulator, SimConfig, TenantSpec};
use serde_json::{Value, json};

async fn users(count: u64) -> RunningSimulator {
    graph_sim::start(
        SimConfig {
            tenants: vec![TenantSpec::with_users(count)],
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

async fn inject(sim: &RunningSimulator, fault: Value) {
    let tenant = &sim.tenants()[0].tenant_id;
    let answer = reqwest::Client::new()
        .post(format!("{}/_sim/tenants/{tenant}/faults", sim.url))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{fault}: {}", answer.status());
}

fn absolute(sim: &RunningSimulator, path_or_link: &str) -> String {
    if path_or_link.starts_with("http") {
        path_or_link.to_string()
    } else {
        format!("{}{path_or_link}", sim.url)
    }
}

async fn get(sim: &RunningSimulator, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(absolute(sim, path))
        .bearer_auth(token)
        .header("prefer", "odata.maxpagesize=10")
        .send()
        .await
        .unwrap()
}

async fn get_json(sim: &RunningSimulator, token: &str, path: &str) -> (u16, Value) {
    let answer = get(sim, token, path).await;
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// A whole delta round's last page, for its delta link.
async fn delta_link(sim: &RunningSimulator, token: &str) -> String {
    let mut link = "/v1.0/users/delta?$select=id".to_string();
    loop {
        let (status, page) = get_json(sim, token, &link).await;
        assert_eq!(status, 200, "{page}");
        if let Some(delta) = page["@odata.deltaLink"].as_str() {
            return delta.to_string();
        }
        link = page["@odata.nextLink"].as_str().unwrap().to_string();
    }
}

#[tokio::test]
async fn an_expired_delta_token_answers_in_either_documented_shape() {
    let sim = users(25).await;
    let token = token(&sim).await;

    let link = delta_link(&sim, &token).await;
    inject(&sim, json!({"kind": "expire_delta_tokens"})).await;
    let answer = get(&sim, &token, &link).await;
    assert_eq!(answer.status().as_u16(), 410);
    let fresh = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(
        fresh.starts_with(&format!("{}/v1.0/users/delta?", sim.url)),
        "{fresh}"
    );
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "resyncRequired");

    let link = delta_link(&sim, &token).await;
    inject(
        &sim,
        json!({"kind": "expire_delta_tokens", "shape": "sync_state_not_found"}),
    )
    .await;
    let answer = get(&sim, &token, &link).await;
    assert_eq!(answer.status().as_u16(), 400);
    assert!(answer.headers().get("location").is_none());
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn a_page_storm_passes_after_its_count_and_hits_only_its_page() {
    let sim = users(25).await;
    let token = token(&sim).await;
    inject(
        &sim,
        json!({"kind": "users_page_storm", "page": 2, "status": 504, "times": 2, "retry_after": "3"}),
    )
    .await;
    let (status, first) = get_json(&sim, &token, "/v1.0/users/delta?$select=id").await;
    assert_eq!(status, 200, "page 1 is not aimed at");
    let second = first["@odata.nextLink"].as_str().unwrap();
    for _ in 0..2 {
        let answer = get(&sim, &token, second).await;
        assert_eq!(answer.status().as_u16(), 504);
        assert_eq!(answer.headers()["retry-after"], "3");
    }
    let (status, page) = get_json(&sim, &token, second).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["value"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn a_cut_page_promises_more_than_it_sends() {
    let sim = users(25).await;
    let token = token(&sim).await;
    inject(
        &sim,
        json!({"kind": "cut_users_page", "page": 1, "times": 1}),
    )
    .await;
    let answer = get(&sim, &token, "/v1.0/users/delta?$select=id").await;
    assert_eq!(answer.status().as_u16(), 200);
    let promised: usize = answer.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(promised > 100);
    assert!(answer.bytes().await.is_err(), "the body stops short");
    let (status, page) = get_json(&sim, &token, "/v1.0/users/delta?$select=id").await;
    assert_eq!((status, page["value"].as_array().unwrap().len()), (200, 10));
}

#[tokio::test]
async fn a_huge_page_means_the_same_as_the_page() {
    let sim = users(25).await;
    let token = token(&sim).await;
    let (_, plain) = get_json(&sim, &token, "/v1.0/users?$select=id&$top=10").await;
    inject(
        &sim,
        json!({"kind": "huge_users_page", "page": 1, "megabytes": 3}),
    )
    .await;
    let answer = get(&sim, &token, "/v1.0/users?$select=id&$top=10").await;
    let bytes = answer.bytes().await.unwrap();
    assert!(bytes.len() >= 3_000_000, "{}", bytes.len());
    let padded: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(padded["value"], plain["value"]);
}

#[tokio::test]
async fn access_tokens_expire_after_the_requests_given_and_new_ones_work() {
    let sim = users(5).await;
    let old = token(&sim).await;
    inject(&sim, json!({"kind": "expire_access_tokens", "after": 1})).await;
    assert_eq!(get_json(&sim, &old, "/v1.0/organization").await.0, 200);
    let (status, body) = get_json(&sim, &old, "/v1.0/organization").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let new = token(&sim).await;
    assert_eq!(get_json(&sim, &new, "/v1.0/organization").await.0, 200);
    assert_eq!(get_json(&sim, &old, "/v1.0/organization").await.0, 401);
}

#[tokio::test]
async fn foreign_links_name_the_other_host() {
    let sim = users(25).await;
    let token = token(&sim).await;
    inject(
        &sim,
        json!({"kind": "foreign_links", "base": "https://proxy.example/"}),
    )
    .await;
    let (status, page) = get_json(&sim, &token, "/v1.0/users/delta?$select=id").await;
    assert_eq!(status, 200);
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with("https://proxy.example/v1.0/users/delta?"),
        "{next}"
    );
}

#[tokio::test]
async fn a_replayed_user_opens_each_changes_round_as_removed() {
    let sim = users(25).await;
    let token = token(&sim).await;
    let (_, whole) = get_json(&sim, &token, "/v1.0/users/delta?$select=id").await;
    let replayed = whole["value"][3]["id"].as_str().unwrap().to_string();
    let link = delta_link(&sim, &token).await;
    inject(&sim, json!({"kind": "replay_removed_user", "index": 3})).await;
    let (status, page) = get_json(&sim, &token, &link).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["value"],
        json!([{"id": replayed, "@removed": {"reason": "changed"}}])
    );
    // A whole round is not a replay: it lists the user as it is.
    let (_, again) = get_json(&sim, &token, "/v1.0/users/delta?$select=id").await;
    assert_eq!(again["value"][3], json!({"id": replayed}));
}
