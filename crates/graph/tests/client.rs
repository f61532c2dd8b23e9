//! The Graph client against the simulator: tokens, paging, retries, reports.

use std::time::Duration;

use graph::models::{MailboxUsageRow, USER_SELECT, User};
use std::sync::Arc;

use graph::{
    AppCredentials, AssertionAlgorithm, ClientCertificate, ClientCredential, GraphClient,
    GraphEndpoints, GraphError, TokenProblem,
};
use graph_sim::{Fault, RunningSimulator, SimConfig, TenantSpec};
use testkit::{RecordingSleeper, instant_retry, simulator};

async fn sim(users: u64) -> RunningSimulator {
    simulator(SimConfig {
        seed: 3,
        tenants: vec![TenantSpec::with_users(users), TenantSpec::with_users(5)],
        ..SimConfig::default()
    })
    .await
}

fn client_for(
    sim: &RunningSimulator,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> (GraphClient, RecordingSleeper) {
    let (retry, sleeper) = instant_retry(4);
    let client = GraphClient::new(
        GraphEndpoints {
            login: sim.url.clone(),
            graph: sim.url.clone(),
            scope: "https://graph.microsoft.com/.default".into(),
        },
        AppCredentials::with_secret(tenant, client_id, secret),
        retry,
    )
    .unwrap();
    (client, sleeper)
}

fn client(sim: &RunningSimulator) -> (GraphClient, RecordingSleeper) {
    let t = &sim.tenants()[0];
    client_for(sim, &t.tenant_id, &t.client_id, &t.client_secret)
}

#[tokio::test]
async fn paging_follows_next_links_one_page_at_a_time() {
    let sim = sim(101).await;
    let (client, _) = client(&sim);
    let mut pager = client.pages::<User>(&format!("v1.0/users?$select={USER_SELECT}&$top=7"));
    let mut ids = std::collections::HashSet::new();
    let mut largest = 0;
    while let Some(page) = pager.next_page().await.unwrap() {
        largest = largest.max(page.len());
        for user in page {
            assert!(
                user.user_principal_name.is_some() && user.account_enabled.is_some(),
                "$select fields came back"
            );
            ids.insert(user.id);
        }
    }
    assert_eq!(ids.len(), 101);
    assert_eq!(pager.pages_read(), 15);
    assert_eq!(largest, 7);
    // The default page is 100, and without $select only the default properties come back.
    let mut default = client.pages::<serde_json::Value>("v1.0/users");
    let first = default.next_page().await.unwrap().unwrap();
    assert_eq!(first.len(), 100);
    assert!(
        first[0].get("accountEnabled").is_none() && first[0].get("userPrincipalName").is_some()
    );
    assert_eq!(sim.state.stats().token_requests, 1, "the token is cached");
}

#[tokio::test]
async fn a_started_pager_asks_for_its_first_page_at_once_and_each_page_once() {
    let sim = sim(20).await;
    let (client, _) = client(&sim);
    let mut pager = client
        .pages::<User>(&format!("v1.0/users?$select={USER_SELECT}&$top=7"))
        .started();
    // The first page is on its way before anyone reads it, and the second once the first is in.
    for _ in 0..200 {
        if sim.state.stats().users_pages == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.state.stats().users_pages, 2);
    let mut ids = std::collections::HashSet::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        ids.extend(page.into_iter().map(|u| u.id));
    }
    assert_eq!(ids.len(), 20);
    assert_eq!(pager.pages_read(), 3);
    assert_eq!(
        sim.state.stats().users_pages,
        3,
        "no page was asked for twice"
    );
    // Dropped unread, it asks for nothing more.
    drop(client.pages::<User>("v1.0/users?$top=7").started());
}

#[tokio::test]
async fn the_page_after_next_is_asked_for_while_the_reader_is_busy_and_no_further() {
    let sim = sim(30).await;
    let (client, _) = client(&sim);
    let mut pager = client.pages::<User>(&format!("v1.0/users?$select={USER_SELECT}&$top=7"));
    let first = pager.next_page().await.unwrap().unwrap();
    assert_eq!(first.len(), 7);
    // The reader holds page 1: page 2 is read ahead, and page 3 asked for once page 2 is in.
    for _ in 0..200 {
        if sim.state.stats().users_pages == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        sim.state.stats().users_pages,
        3,
        "two pages ahead of the reader, no more"
    );
    let mut ids: std::collections::HashSet<_> = first.into_iter().map(|u| u.id).collect();
    while let Some(page) = pager.next_page().await.unwrap() {
        ids.extend(page.into_iter().map(|u| u.id));
    }
    assert_eq!(ids.len(), 30);
    assert_eq!(sim.state.stats().users_pages, 5, "each page asked for once");
}

#[tokio::test]
async fn page_size_out_of_range_is_graphs_error() {
    let sim = sim(3).await;
    let (client, _) = client(&sim);
    let err = client
        .pages::<User>("v1.0/users?$top=1000")
        .next_page()
        .await
        .unwrap_err();
    match err {
        GraphError::Api {
            status: 400,
            code,
            message,
            request_id,
            ..
        } => {
            assert_eq!(code, "Request_BadRequest");
            assert!(message.contains("Must be between 1 and 999"), "{message}");
            assert!(request_id.is_some());
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn throttling_honours_a_fractional_retry_after() {
    let sim = sim(3).await;
    let (client, sleeper) = client(&sim);
    let tenant = sim.tenants()[0].tenant_id.clone();
    sim.state.inject(
        &tenant,
        Fault::Throttle {
            count: 2,
            retry_after: Some("0.25".into()),
        },
    );
    let page = client
        .pages::<User>("v1.0/users")
        .next_page()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(
        sleeper.waits(),
        vec![Duration::from_millis(250), Duration::from_millis(250)]
    );
    assert_eq!(sim.state.stats().throttled, 2);
}

#[tokio::test]
async fn a_retry_after_of_1e20_waits_the_cap_and_does_not_panic() {
    let sim = sim(3).await;
    let (client, sleeper) = client(&sim);
    let tenant = sim.tenants()[0].tenant_id.clone();
    let cap = Duration::from_secs(600);
    sim.state.inject(
        &tenant,
        Fault::Throttle {
            count: 1,
            retry_after: Some("1e20".into()),
        },
    );
    let page = client
        .pages::<User>("v1.0/users")
        .next_page()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(sleeper.waits(), vec![cap]);

    // The same inside a `$batch`, where each request carries its own Retry-After.
    sim.state.inject(
        &tenant,
        Fault::Throttle {
            count: 1,
            retry_after: Some("1e20".into()),
        },
    );
    let answers = client
        .batch_get("v1.0", &["/users?$top=1".to_string()])
        .await
        .unwrap();
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert_eq!(sleeper.waits(), vec![cap, cap]);
    assert_eq!(sim.state.stats().throttled, 2);
}

#[tokio::test]
async fn unavailable_without_retry_after_backs_off_and_gives_up_in_the_end() {
    let sim = sim(3).await;
    let (client, sleeper) = client(&sim);
    let tenant = sim.tenants()[0].tenant_id.clone();
    sim.state.inject(
        &tenant,
        Fault::Unavailable {
            count: 10,
            retry_after: None,
        },
    );
    let err = client
        .pages::<User>("v1.0/users")
        .next_page()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GraphError::Throttled {
                attempts: 4,
                last_status: 503,
                ..
            }
        ),
        "{err}"
    );
    let waits = sleeper.waits();
    assert_eq!(waits.len(), 3, "a wait between each of the 4 attempts");
    assert!(waits.iter().all(|w| *w <= Duration::from_secs(60)));
}

#[tokio::test]
async fn a_refused_connection_fails_at_once_saying_nothing_listens_there() {
    let (retry, sleeper) = instant_retry(3);
    let client = GraphClient::new(
        GraphEndpoints {
            login: "http://127.0.0.1:9".into(),
            graph: "http://127.0.0.1:9".into(),
            scope: "x/.default".into(),
        },
        AppCredentials::with_secret("t", "c", "s"),
        retry,
    )
    .unwrap();
    let err = client.token().await.unwrap_err();
    assert!(
        matches!(err, GraphError::Unreachable { attempts: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("nothing is listening at 127.0.0.1:9"),
        "{err}"
    );
    assert_eq!(err.code(), "unreachable");
    assert!(sleeper.waits().is_empty(), "no wait for a refusal");
}

#[tokio::test]
async fn token_refusals_are_classified_by_aadsts_code() {
    let sim = sim(1).await;
    let a = sim.tenants()[0].clone();
    let b = sim.tenants()[1].clone();
    let cases = [
        (
            "3c2e1b0a-0000-4000-8000-000000000000",
            a.client_id.as_str(),
            a.client_secret.as_str(),
            TokenProblem::TenantNotFound,
            400,
        ),
        (
            a.tenant_id.as_str(),
            "3c2e1b0a-0000-4000-8000-000000000000",
            a.client_secret.as_str(),
            TokenProblem::AppNotFound,
            400,
        ),
        (
            a.tenant_id.as_str(),
            a.client_id.as_str(),
            "wrong~secret",
            TokenProblem::InvalidSecret,
            401,
        ),
        (
            a.tenant_id.as_str(),
            a.client_id.as_str(),
            a.expired_client_secret.as_str(),
            TokenProblem::ExpiredSecret,
            401,
        ),
        (
            a.tenant_id.as_str(),
            b.client_id.as_str(),
            b.client_secret.as_str(),
            TokenProblem::AppNotConsented,
            401,
        ),
    ];
    for (tenant, client_id, secret, expected, expected_status) in cases {
        let (client, _) = client_for(&sim, tenant, client_id, secret);
        match client.token().await.unwrap_err() {
            GraphError::Token {
                problem,
                status,
                description,
                aadsts,
                ..
            } => {
                assert_eq!(problem, expected, "{description}");
                assert_eq!(status, expected_status);
                assert!(
                    description.starts_with(&format!("AADSTS{}", aadsts[0])),
                    "{description}"
                );
                assert!(
                    !description.contains("Trace ID"),
                    "only the first line is kept"
                );
            }
            other => panic!("{other}"),
        }
    }
    // A tenant may also be named by its verified domain.
    let (client, _) = client_for(&sim, &a.domain, &a.client_id, &a.client_secret);
    let token = client.token().await.unwrap();
    assert!(token.roles.contains(&"User.Read.All".to_string()));
    assert_eq!(token.tenant_id.as_deref(), Some(a.tenant_id.as_str()));
}

#[tokio::test]
async fn missing_permission_is_a_403_with_graphs_code() {
    let sim = sim(2).await;
    let tenant = sim.tenants()[0].tenant_id.clone();
    sim.state
        .set_roles(&tenant, vec!["Organization.Read.All".into()]);
    let (client, _) = client(&sim);
    let err = client
        .pages::<User>("v1.0/users")
        .next_page()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GraphError::Api { status: 403, code, .. } if code == "Authorization_RequestDenied"),
        "{err}"
    );
    assert_eq!(err.code(), "permission_missing");
}

#[tokio::test]
async fn a_malformed_page_is_an_error_not_a_panic() {
    let sim = sim(30).await;
    let tenant = sim.tenants()[0].tenant_id.clone();
    sim.state
        .inject(&tenant, Fault::MalformedUsersPage { page: 2 });
    let (client, _) = client(&sim);
    let mut pager = client.pages::<User>("v1.0/users?$top=10");
    assert_eq!(pager.next_page().await.unwrap().unwrap().len(), 10);
    let err = pager.next_page().await.unwrap_err();
    assert!(
        matches!(&err, GraphError::Malformed { detail, .. } if detail.contains("page 2")),
        "{err}"
    );
}

#[tokio::test]
async fn next_links_to_another_host_are_not_followed() {
    let sim = sim(1).await;
    let (client, _) = client(&sim);
    let err = client
        .get_json::<serde_json::Value>("http://198.51.100.7/v1.0/users")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GraphError::ForeignLink { link, .. } if link.contains("198.51.100.7")),
        "{err}"
    );
}

#[tokio::test]
async fn mailbox_report_downloads_without_the_bearer_and_parses_by_header() {
    let sim = sim(60).await;
    let (client, _) = client(&sim);
    let file = client
        .download_report("reports/getMailboxUsageDetail(period='D7')")
        .await
        .unwrap();
    let mut rows = file.rows::<MailboxUsageRow>().unwrap();
    assert_eq!(
        rows.headers()[0],
        "Report Refresh Date",
        "the byte-order mark is stripped"
    );
    let mut count = 0;
    while let Some(row) = rows.next_row().unwrap() {
        assert!(row.user_principal_name.unwrap().contains('@'));
        assert!(row.prohibit_send_quota_bytes.unwrap() > 0);
        assert_eq!(row.report_period.as_deref(), Some("7"));
        count += 1;
    }
    assert!(count > 10, "{count} rows");
    let stats = sim.state.stats();
    assert_eq!(
        (stats.report_requests, stats.downloads),
        (1, 1),
        "the download host refuses a bearer token, so reaching it proves none was sent"
    );
}

#[tokio::test]
async fn https_works_with_the_extra_ca_and_is_refused_without_it() {
    let certificate = graph_sim::LoopbackCertificate::generate().unwrap();
    let config = SimConfig {
        seed: 3,
        tenants: vec![TenantSpec::with_users(3)],
        ..SimConfig::default()
    };
    let sim = graph_sim::start_with(config, "127.0.0.1:0".parse().unwrap(), Some(&certificate))
        .await
        .unwrap();
    let t = sim.tenants()[0].clone();
    let endpoints = GraphEndpoints {
        login: sim.url.clone(),
        graph: sim.url.clone(),
        scope: "https://graph.microsoft.com/.default".into(),
    };
    let credentials = AppCredentials::with_secret(
        t.tenant_id.clone(),
        t.client_id.clone(),
        t.client_secret.clone(),
    );
    let trusting = GraphClient::trusting(
        endpoints.clone(),
        credentials.clone(),
        instant_retry(3).0,
        Some(certificate.cert_pem.as_bytes()),
    )
    .unwrap();
    let users = trusting
        .pages::<User>("v1.0/users")
        .next_page()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users.len(), 3);
    // The report download goes to the second listener, over HTTPS too, still without the bearer.
    assert!(
        trusting
            .download_report("reports/getMailboxUsageDetail(period='D7')")
            .await
            .unwrap()
            .bytes
            > 0
    );

    let (retry, sleeper) = instant_retry(3);
    let plain = GraphClient::new(endpoints, credentials, retry).unwrap();
    let err = plain.token().await.unwrap_err();
    assert_eq!(err.code(), "tls_untrusted", "{err}");
    assert!(err.fix().contains("--ca-cert"));
    assert!(
        sleeper.waits().is_empty(),
        "an untrusted certificate is not retried"
    );
    assert!(matches!(
        graph::parse_ca_bundle(b"not a certificate"),
        Err(GraphError::BadCaCertificate(_))
    ));
}

fn certificate_client(
    sim: &RunningSimulator,
    pem: &str,
    algorithm: AssertionAlgorithm,
) -> GraphClient {
    let t = &sim.tenants()[0];
    let certificate = ClientCertificate::from_pem(pem)
        .unwrap()
        .with_algorithm(algorithm);
    GraphClient::new(
        GraphEndpoints {
            login: sim.url.clone(),
            graph: sim.url.clone(),
            scope: "https://graph.microsoft.com/.default".into(),
        },
        AppCredentials {
            tenant: t.tenant_id.clone(),
            client_id: t.client_id.clone(),
            credential: ClientCredential::Certificate(Arc::new(certificate)),
        },
        instant_retry(2).0,
    )
    .unwrap()
}

#[tokio::test]
async fn a_registered_certificate_signs_in_with_ps256_and_with_rs256() {
    let sim = sim(3).await;
    let issued = sim.state.add_certificate("0", -1, 365).unwrap().unwrap();
    let pem = format!("{}{}", issued.certificate_pem, issued.private_key_pem);
    for algorithm in [AssertionAlgorithm::Ps256, AssertionAlgorithm::Rs256] {
        let client = certificate_client(&sim, &pem, algorithm);
        let token = client.token().await.unwrap();
        assert!(token.roles.iter().any(|r| r == "User.Read.All"));
        let users = client
            .pages::<User>("v1.0/users?$select=id")
            .next_page()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(users.len(), 3, "{algorithm:?}");
    }
    let facts = ClientCertificate::from_pem(&pem).unwrap().facts().clone();
    assert_eq!(facts.thumbprint, issued.thumbprint);
}

#[tokio::test]
async fn an_unregistered_removed_or_expired_certificate_is_refused_by_name() {
    let sim = sim(3).await;
    let refusal = |client: GraphClient| async move {
        match client.token().await.unwrap_err() {
            GraphError::Token {
                problem,
                aadsts,
                description,
                ..
            } => (problem, aadsts, description),
            other => panic!("expected a token refusal, got {other:?}"),
        }
    };
    let expired = sim.state.add_certificate("0", -400, -10).unwrap().unwrap();
    let pem = format!("{}{}", expired.private_key_pem, expired.certificate_pem);
    let (problem, codes, description) =
        refusal(certificate_client(&sim, &pem, AssertionAlgorithm::Ps256)).await;
    assert_eq!(
        (problem, codes),
        (TokenProblem::InvalidCertificate, vec![700027])
    );
    assert!(description.contains("expired"), "{description}");

    let removed = sim.state.add_certificate("0", -1, 30).unwrap().unwrap();
    let tenant = sim.state.tenant("0").unwrap();
    assert!(sim.state.remove_certificate(tenant, &removed.key_id));
    let pem = format!("{}{}", removed.private_key_pem, removed.certificate_pem);
    let (problem, _, description) =
        refusal(certificate_client(&sim, &pem, AssertionAlgorithm::Rs256)).await;
    assert_eq!(problem, TokenProblem::InvalidCertificate);
    assert!(description.contains(&removed.thumbprint), "{description}");
    assert_eq!(problem.code(), "invalid_certificate");
}

#[tokio::test]
async fn batches_of_twenty_answer_like_direct_requests_and_inner_429s_wait_their_turn() {
    use graph::models::DirectoryObject;
    let sim = sim(120).await;
    let (client, sleeper) = client(&sim);
    let groups: Vec<DirectoryObject> = {
        let mut pager = client.pages::<DirectoryObject>("v1.0/groups?$select=id");
        let mut all = Vec::new();
        while let Some(page) = pager.next_page().await.unwrap() {
            all.extend(page);
        }
        all
    };
    // More paths than one batch holds, so the requests go in several batches.
    let mut paths: Vec<String> = groups
        .iter()
        .map(|g| format!("/groups/{}/members?$select=id&$top=999", g.id))
        .collect();
    while paths.len() <= graph::MAX_BATCH {
        paths.extend_from_within(..paths.len().min(graph::MAX_BATCH));
    }
    let before = sim.state.stats().graph_requests;
    sim.state.inject(
        &sim.tenants()[0].tenant_id,
        Fault::Throttle {
            count: 3,
            retry_after: Some("0.25".into()),
        },
    );
    let batched = client
        .batch_collections::<DirectoryObject>("v1.0", &paths)
        .await
        .unwrap();
    assert_eq!(
        sim.state.stats().throttled,
        3,
        "three inner requests were throttled"
    );
    assert_eq!(
        sleeper.waits(),
        vec![Duration::from_millis(250)],
        "one wait, the server's"
    );
    assert_eq!(
        sim.state.stats().graph_requests - before,
        paths.len() as u64 + 3,
        "each inner request counted once, plus the three sent again"
    );
    for (path, members) in paths.iter().zip(&batched) {
        let direct: Vec<String> = client
            .get_json::<serde_json::Value>(&format!("v1.0{path}"))
            .await
            .unwrap()["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        let via_batch: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        assert_eq!(via_batch, direct, "{path}");
    }

    // An inner failure is that request's own error; the others still answer.
    let answers = client
        .batch_get(
            "v1.0",
            &["/groups/nope/members".to_string(), paths[0].clone()],
        )
        .await
        .unwrap();
    assert!(
        matches!(&answers[0], Err(GraphError::Api { status: 404, .. })),
        "{:?}",
        answers[0]
    );
    assert!(answers[1].is_ok());
}

/// A token Graph calls expired before its time is replaced once, whether the 401 comes to a
/// direct request or to requests inside a batch; the answers are those a fresh token gets.
#[tokio::test]
async fn an_access_token_expired_early_is_renewed_once_for_direct_and_batched_requests() {
    let sim = sim(30).await;
    let (client, _) = client(&sim);
    let tenant = sim.tenants()[0].tenant_id.clone();
    let first: serde_json::Value = client.get_json("v1.0/organization").await.unwrap();
    let tokens = sim.state.stats().token_requests;

    sim.state
        .inject(&tenant, Fault::ExpireAccessTokens { after: 0 });
    let again: serde_json::Value = client.get_json("v1.0/organization").await.unwrap();
    assert_eq!(again, first);
    assert_eq!(sim.state.stats().token_requests, tokens + 1);

    let paths = vec![
        "/users?$select=id&$top=5".to_string(),
        "/organization?$select=id".to_string(),
    ];
    sim.state
        .inject(&tenant, Fault::ExpireAccessTokens { after: 0 });
    let answers = client.batch_get("v1.0", &paths).await.unwrap();
    assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
    assert_eq!(sim.state.stats().token_requests, tokens + 2);
}

#[tokio::test]
async fn counting_is_an_advanced_query_that_needs_eventual_consistency() {
    let sim = sim(42).await;
    let (client, _) = client(&sim);
    assert_eq!(client.count("v1.0/users/$count").await.unwrap(), 42);
    sim.state.remove_user(&sim.tenants()[0].tenant_id, 3);
    assert_eq!(client.count("v1.0/users/$count").await.unwrap(), 41);
    // Without the header Graph refuses, as it does.
    match client.probe("v1.0/users/$count").await.unwrap_err() {
        GraphError::Api { status, code, .. } => {
            assert_eq!((status, code.as_str()), (400, "Request_BadRequest"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_connection_is_retried_and_a_slow_answer_waited_for() {
    let sim = sim(30).await;
    let (client, sleeper) = client(&sim);
    client.token().await.unwrap();
    let tenant = sim.tenants()[0].tenant_id.clone();
    sim.state
        .inject(&tenant, Fault::ConnectionReset { count: 2 });
    let users = client
        .pages::<User>("v1.0/users?$select=id")
        .next_page()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users.len(), 30);
    assert_eq!(sleeper.waits().len(), 2, "two resets, two waits");

    sim.state.inject(
        &tenant,
        Fault::Latency {
            count: 1,
            millis: 150,
        },
    );
    let started = std::time::Instant::now();
    client.probe("v1.0/organization").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn the_simulator_refuses_a_batch_graph_would_refuse() {
    let sim = sim(3).await;
    let t = &sim.tenants()[0];
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/{}/oauth2/v2.0/token", sim.url, t.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", t.client_id.as_str()),
            ("client_secret", t.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let post = |requests: serde_json::Value| {
        let bearer = bearer.clone();
        let url = format!("{}/v1.0/$batch", sim.url);
        async move {
            reqwest::Client::new()
                .post(url)
                .header("authorization", bearer)
                .json(&serde_json::json!({ "requests": requests }))
                .send()
                .await
                .unwrap()
        }
    };
    let request = |id: usize| serde_json::json!({"id": id.to_string(), "method": "GET", "url": "/users?$select=id"});
    let too_many: Vec<_> = (0..21).map(request).collect();
    assert_eq!(post(serde_json::json!(too_many)).await.status(), 400);
    let twice = serde_json::json!([request(1), request(1)]);
    assert_eq!(post(twice).await.status(), 400);
    let fine = post(serde_json::json!([request(1), request(2)])).await;
    assert_eq!(fine.status(), 200);
    let body: serde_json::Value = fine.json().await.unwrap();
    assert_eq!(body["responses"].as_array().unwrap().len(), 2);
    assert_eq!(
        body["responses"][0]["body"]["value"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// Steps side by side share Graph's counts, so a batch can lose some of its requests to 429 in
/// round after round while the rest go through. Such rounds are progress, not a refusal: only
/// rounds in which nothing was let through count towards giving up.
#[tokio::test]
async fn a_batch_that_gets_some_answers_each_round_keeps_going_past_the_attempt_limit() {
    let sim = sim(3).await;
    let (client, sleeper) = client(&sim);
    let tenant = sim.tenants()[0].tenant_id.clone();
    // Every second request is throttled: 40 requests need about six rounds, the client
    // allows four attempts.
    sim.state.inject(
        &tenant,
        Fault::ThrottleRate {
            every: 2,
            retry_after: Some("0.1".into()),
        },
    );
    let paths: Vec<String> = (0..40).map(|_| "/users?$top=1".to_string()).collect();
    let answers = client.batch_get("v1.0", &paths).await.unwrap();
    for answer in &answers {
        assert!(answer.is_ok(), "{answer:?}");
    }
    assert!(
        sleeper.waits().len() > 4,
        "more rounds than attempts: {:?}",
        sleeper.waits()
    );

    // A request Graph refuses round after round still gives up after the attempts.
    sim.state.inject(
        &tenant,
        Fault::ThrottleRate {
            every: 1,
            retry_after: Some("0.1".into()),
        },
    );
    let answers = client
        .batch_get("v1.0", &["/users?$top=1".to_string()])
        .await
        .unwrap();
    assert!(
        matches!(
            &answers[0],
            Err(GraphError::Throttled {
                attempts: 4,
                last_status: 429,
                ..
            })
        ),
        "{:?}",
        answers[0]
    );
}
