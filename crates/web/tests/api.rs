//! The REST API as a program meets it over HTTP, against a server over a store that synced a
//! simulated tenant: tokens and roles, every route's answer, cursor pagination, the JSON shape
//! of every failure, that no answer ever holds a stored secret, the OpenAPI document (and its
//! drift from the copy in docs/), health, readiness and metrics.

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::ApiRole;
use testkit::TestApp;

struct Api {
    app: TestApp,
    base: String,
    http: reqwest::Client,
    admin: String,
    viewer: String,
    /// The secret the `contoso` connection was saved with.
    stored_secret: String,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl Api {
    /// A store with the simulated tenant synced (every dataset) behind a server on port 0, and
    /// an admin and a viewer token.
    async fn start() -> Self {
        let app = TestApp::with_users(12).await;
        app.add_connection("contoso", 0).await;
        app.sync("contoso").await;
        let stored_secret = app.tenant(0).client_secret;
        let admin = app
            .store
            .issue_api_token("automation", ApiRole::Admin)
            .await
            .unwrap()
            .secret;
        let viewer = app
            .store
            .issue_api_token("dashboard", ApiRole::Viewer)
            .await
            .unwrap()
            .secret;
        let listener = web::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(web::serve(
            app.store.clone(),
            listener,
            web::ServeOptions::default(),
        ));
        Self {
            app,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            admin,
            viewer,
            stored_secret,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer {
            status,
            headers,
            text,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(Method::GET, path, Some(token), None).await
    }

    async fn ok(&self, path: &str) -> Value {
        let answer = self.get(path, &self.viewer).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.text);
        answer.json()
    }

    async fn organization_id(&self) -> i64 {
        let organizations = self.ok("/api/v1/organizations").await;
        organizations["items"][0]["id"]
            .as_i64()
            .expect("an organisation")
    }

    /// Every GET route the API has, with real ids.
    async fn readable_paths(&self) -> Vec<String> {
        let org = self.organization_id().await;
        let contact = self.ok("/api/v1/contacts?limit=1").await["items"][0]["id"]
            .as_i64()
            .unwrap();
        let run = self.ok("/api/v1/runs").await["items"][0]["id"]
            .as_i64()
            .unwrap();
        let tenant = self.app.tenant_key(0);
        let mut paths = vec![
            "/api/v1/connections".to_string(),
            "/api/v1/connections/contoso".into(),
            "/api/v1/runs".into(),
            format!("/api/v1/runs/{run}"),
            format!("/api/v1/runs/{run}/records"),
            "/api/v1/organizations".into(),
            format!("/api/v1/organizations/{org}"),
            "/api/v1/tenants".into(),
            format!("/api/v1/tenants/{tenant}"),
            "/api/v1/review?all=true".into(),
            "/api/v1/contacts".into(),
            format!("/api/v1/contacts/{contact}"),
            format!("/api/v1/contacts/{contact}/history"),
            "/api/v1/accounts".into(),
            "/api/v1/bookings".into(),
        ];
        for dataset in [
            "licenses",
            "domains",
            "groups",
            "admins",
            "devices",
            "managed-devices",
            "service-health",
            "applications",
            "terms-of-use",
            "audit",
        ] {
            paths.push(format!("/api/v1/organizations/{org}/{dataset}"));
        }
        paths
    }
}

fn assert_error(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["code"], code, "{}", answer.text);
    assert!(
        body["message"].as_str().is_some_and(|m| m.len() > 20),
        "a message that says what to do: {}",
        answer.text
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "only code and message: {}",
        answer.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_read_route_answers_a_viewer_with_typed_json() {
    let api = Api::start().await;
    for path in api.readable_paths().await {
        let answer = api.get(&path, &api.viewer).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.text);
        assert_eq!(
            answer
                .headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
        answer.json();
    }
    let connection = api.ok("/api/v1/connections/contoso").await;
    assert_eq!(connection["tenant_id"], api.app.tenant_key(0));
    assert_eq!(connection["credential"]["kind"], "secret");
    assert_eq!(connection["credential"]["set"], true);

    let org = api.organization_id().await;
    let licenses = api
        .ok(&format!("/api/v1/organizations/{org}/licenses"))
        .await;
    let first = &licenses["items"][0];
    assert!(first["sku_part_number"].is_string(), "{licenses}");
    assert!(first["enabled_units"].is_i64(), "{licenses}");
    let domains = api
        .ok(&format!("/api/v1/organizations/{org}/domains"))
        .await;
    assert!(
        domains["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == api.app.tenant(0).domain),
        "{domains}"
    );
    let apps = api
        .ok(&format!("/api/v1/organizations/{org}/applications"))
        .await;
    for app in apps["items"].as_array().unwrap() {
        for secret in app["secrets"].as_array().unwrap() {
            assert!(
                secret.get("hint").is_none(),
                "no part of a secret: {secret}"
            );
        }
    }

    // A contact with its overlay and history.
    let contacts = api.ok("/api/v1/contacts?licensed=true&limit=1").await;
    let contact = &contacts["items"][0];
    assert!(!contact["licenses"].as_array().unwrap().is_empty());
    let detail = api.ok(&format!("/api/v1/contacts/{}", contact["id"])).await;
    assert_eq!(detail["display_name"], contact["display_name"]);
    assert!(
        !detail["products"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    assert!(
        detail["managed_by_microsoft_365"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "displayName"),
        "{detail}"
    );
    let history = api
        .ok(&format!("/api/v1/contacts/{}/history", contact["id"]))
        .await;
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "contact"),
        "its creation is in its history: {history}"
    );

    // The run log with each record's outcome.
    let runs = api.ok("/api/v1/runs?connection=contoso").await;
    let run = &runs["items"][0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["duration_ms"].is_i64());
    assert!(!run["steps"].as_array().unwrap().is_empty());
    let created = api
        .ok(&format!(
            "/api/v1/runs/{}/records?outcome=created",
            run["id"]
        ))
        .await;
    let records = created["items"].as_array().unwrap();
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r["outcome"] == "created"));
}

#[tokio::test(flavor = "multi_thread")]
async fn contacts_are_searched_filtered_and_paged_by_cursor() {
    let api = Api::start().await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=5&cursor={c}"),
            None => "/api/v1/contacts?limit=5".to_string(),
        };
        let page = api.ok(&path).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|c| c["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let stored = api
        .app
        .store
        .contacts_page(&store::ContactFilter::default(), 0, 1000)
        .await
        .unwrap();
    let expected: Vec<i64> = stored.iter().map(|c| c.id).collect();
    assert_eq!(seen, expected, "every contact once, in order");

    let someone = &stored[3];
    let word: String = someone.display_name.chars().skip(1).take(4).collect();
    let found = api
        .ok(&format!(
            "/api/v1/contacts?search={}",
            word.to_uppercase().replace(' ', "%20")
        ))
        .await;
    let found = found["items"].as_array().unwrap();
    assert!(found.iter().any(|c| c["id"] == someone.id), "{found:?}");
    assert!(found.iter().all(|c| {
        let text = format!(
            "{} {} {} {} {}",
            c["display_name"],
            c["user_principal_name"],
            c["email"],
            c["job_title"],
            c["department"]
        );
        text.to_lowercase().contains(&word.to_lowercase())
    }));
    let nobody = api.ok("/api/v1/contacts?search=zz%25_no_such").await;
    assert!(nobody["items"].as_array().unwrap().is_empty());

    let licensed = api.ok("/api/v1/contacts?licensed=true&limit=500").await;
    let unlicensed = api.ok("/api/v1/contacts?licensed=false&limit=500").await;
    let (l, u) = (
        licensed["items"].as_array().unwrap(),
        unlicensed["items"].as_array().unwrap(),
    );
    assert_eq!(l.len() + u.len(), stored.len());
    assert!(
        l.iter()
            .all(|c| !c["licenses"].as_array().unwrap().is_empty())
    );
    assert!(
        u.iter()
            .all(|c| c["licenses"].as_array().unwrap().is_empty())
    );
    let guests = api.ok("/api/v1/contacts?guest=true&limit=500").await;
    assert!(
        guests["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["user_type"] == "Guest")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_holds_a_stored_secret() {
    let api = Api::start().await;
    let mut answers = Vec::new();
    for path in api.readable_paths().await {
        answers.push((path.clone(), api.get(&path, &api.admin).await.text));
    }
    let fresh_secret = "Fresh~Secret.Value_0123456789abcdefghij";
    let tenant = api.app.tenant(0);
    let created = api
        .send(
            Method::POST,
            "/api/v1/connections",
            Some(&api.admin),
            Some(json!({
                "name": "second",
                "tenant_id": tenant.tenant_id,
                "client_id": tenant.client_id,
                "client_secret": fresh_secret,
                "login_url": api.app.sim.url,
                "graph_url": api.app.sim.url,
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    answers.push(("POST /connections".into(), created.text));
    let rotated = api
        .send(
            Method::PATCH,
            "/api/v1/connections/second",
            Some(&api.admin),
            Some(json!({ "client_secret": format!("{fresh_secret}-rotated") })),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    answers.push(("PATCH /connections/second".into(), rotated.text));
    let tested = api
        .send(
            Method::POST,
            "/api/v1/connections/contoso/test",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.text);
    assert_eq!(tested.json()["ok"], true, "{}", tested.text);
    answers.push(("POST /connections/contoso/test".into(), tested.text));
    for path in ["/api/v1/connections", "/api/v1/connections/second"] {
        answers.push((path.into(), api.get(path, &api.admin).await.text));
    }
    answers.push((
        "/metrics".into(),
        api.get("/metrics", &api.admin).await.text,
    ));
    for (what, body) in &answers {
        for secret in [
            api.stored_secret.as_str(),
            fresh_secret,
            api.admin.as_str(),
            api.viewer.as_str(),
        ] {
            assert!(!body.contains(secret), "{what} holds a secret: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_token_gets_403_on_every_change_and_changes_nothing() {
    let api = Api::start().await;
    let tenant = api.app.tenant_key(0);
    let run = api.ok("/api/v1/runs").await["items"][0]["id"]
        .as_i64()
        .unwrap();
    let changes = [
        (
            Method::POST,
            "/api/v1/connections".to_string(),
            Some(
                json!({"name": "x", "tenant_id": tenant, "client_id": tenant, "client_secret": "s3cret-value-long-enough"}),
            ),
        ),
        (
            Method::PATCH,
            "/api/v1/connections/contoso".into(),
            Some(json!({"max_drop_percent": 90})),
        ),
        (Method::DELETE, "/api/v1/connections/contoso".into(), None),
        (
            Method::POST,
            "/api/v1/connections/contoso/test".into(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/connections/contoso/sync".into(),
            Some(json!({"clean": true})),
        ),
        (Method::POST, format!("/api/v1/runs/{run}/cancel"), None),
        (
            Method::POST,
            format!("/api/v1/tenants/{tenant}/decision"),
            Some(json!({"action": "ignore"})),
        ),
        (
            Method::POST,
            "/api/v1/review/1".into(),
            Some(json!({"create": true})),
        ),
    ];
    for (method, path, body) in changes {
        let answer = api
            .send(method.clone(), &path, Some(&api.viewer), body)
            .await;
        assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
        assert!(
            answer.text.contains("dashboard"),
            "names the token: {}",
            answer.text
        );
    }
    let connection = api.ok("/api/v1/connections/contoso").await;
    assert_eq!(connection["max_drop_percent"], 20);
    let runs = api.ok("/api/v1/runs").await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1, "no run queued");
    assert_eq!(
        api.ok(&format!("/api/v1/tenants/{tenant}")).await["state"],
        "matched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_a_live_token_gets_401() {
    let api = Api::start().await;
    let none = api.send(Method::GET, "/api/v1/contacts", None, None).await;
    assert_error(&none, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        none.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let unknown = api.get("/api/v1/contacts", "m365s_not-a-token").await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "unauthorized");
    api.app.store.revoke_api_token("Dashboard").await.unwrap();
    let revoked = api.get("/api/v1/contacts", &api.viewer).await;
    assert_error(&revoked, StatusCode::UNAUTHORIZED, "unauthorized");
    let still = api.get("/api/v1/contacts", &api.admin).await;
    assert_eq!(still.status, StatusCode::OK);
    let listed = api.app.store.api_tokens().await.unwrap();
    assert!(
        listed
            .iter()
            .all(|t| !t.shown.is_empty() && t.shown.len() < 12)
    );
    assert!(
        listed
            .iter()
            .any(|t| t.name == "dashboard" && t.revoked_at.is_some())
    );
    assert!(
        listed
            .iter()
            .any(|t| t.name == "automation" && t.last_used_at.is_some())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_failure_is_json_with_a_code_and_a_message() {
    let api = Api::start().await;
    let admin = api.admin.as_str();
    assert_error(
        &api.get("/api/v1/no/such/route", admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.get("/api/v1/connections/nobody", admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let nul = api.get("/api/v1/contacts?search=a%00b", admin).await;
    assert_eq!(nul.status, StatusCode::OK, "{}", nul.text);
    assert_error(
        &api.get("/api/v1/runs?connection=nosuch", admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.get("/api/v1/runs/999999", admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.get("/api/v1/contacts/999999", admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.get("/api/v1/organizations/999999/licenses", admin)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.send(Method::PUT, "/api/v1/runs", Some(admin), None)
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_error(
        &api.get("/api/v1/runs/abc", admin).await,
        StatusCode::BAD_REQUEST,
        "bad_path",
    );
    for query in [
        "limit=abc",
        "limit=0",
        "limit=501",
        "cursor=bogus",
        "enabled=perhaps",
        "colour=blue",
    ] {
        assert_error(
            &api.get(&format!("/api/v1/contacts?{query}"), admin).await,
            StatusCode::BAD_REQUEST,
            "bad_query",
        );
    }
    // A refusal is in the API's words, never the framework's or serde's.
    for (query, named) in [
        ("limit=1&limit=2", "'limit' is given more than once"),
        ("limit=abc", "'limit'"),
        ("colour=blue", "'colour'"),
    ] {
        let answer = api.get(&format!("/api/v1/contacts?{query}"), admin).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_query");
        let message = answer.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(named), "{query}: {message}");
        for framework in ["Failed to deserialize", "invalid", "expected", "`"] {
            assert!(!message.contains(framework), "{query}: {message}");
        }
    }
    let path = api.get("/api/v1/runs/abc", admin).await;
    assert!(!path.text.contains("Cannot parse"), "{}", path.text);
    assert!(!path.text.contains("expected"), "{}", path.text);
    assert_error(
        &api.get("/api/v1/runs/1/records?outcome=vanished", admin)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_query",
    );
    let broken = api
        .http
        .post(format!("{}/api/v1/connections", api.base))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let broken = Answer {
        status: broken.status(),
        headers: broken.headers().clone(),
        text: broken.text().await.unwrap(),
    };
    assert_error(&broken, StatusCode::BAD_REQUEST, "bad_json");
    let untyped = api
        .http
        .post(format!("{}/api/v1/connections", api.base))
        .bearer_auth(admin)
        .body("{}")
        .send()
        .await
        .unwrap();
    let untyped = Answer {
        status: untyped.status(),
        headers: untyped.headers().clone(),
        text: untyped.text().await.unwrap(),
    };
    assert_error(&untyped, StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_json");
    let missing = api
        .send(
            Method::POST,
            "/api/v1/connections",
            Some(admin),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(&missing, StatusCode::UNPROCESSABLE_ENTITY, "bad_json");
    let tenant = api.app.tenant(0);
    let bad_id = api
        .send(
            Method::POST,
            "/api/v1/connections",
            Some(admin),
            Some(json!({"name": "x", "tenant_id": "not-a-guid", "client_id": tenant.client_id, "client_secret": "s3cret-value-long-enough"})),
        )
        .await;
    assert_error(&bad_id, StatusCode::BAD_REQUEST, "invalid_input");
    assert!(bad_id.text.contains("tenant"), "{}", bad_id.text);
    let taken = api
        .send(
            Method::POST,
            "/api/v1/connections",
            Some(admin),
            Some(json!({"name": "contoso", "tenant_id": tenant.tenant_id, "client_id": tenant.client_id, "client_secret": "s3cret-value-long-enough"})),
        )
        .await;
    assert_error(&taken, StatusCode::CONFLICT, "conflict");
    let schedule = api
        .send(
            Method::PATCH,
            "/api/v1/connections/contoso",
            Some(admin),
            Some(json!({"max_drop_percent": 50, "schedule": {"every": "1h", "cron": "0 * * * *"}})),
        )
        .await;
    assert_error(&schedule, StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(
        api.ok("/api/v1/connections/contoso").await["max_drop_percent"],
        20,
        "a refused change changes nothing"
    );
}

impl Api {
    /// Sends `body` as it is, with `content_type` if given.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("the server answers");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }
}

/// The message of a refusal, checked to be in the API's words: no serde or framework text.
fn words_of(answer: &Answer) -> String {
    let message = answer.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for framework in [
        "Failed to",
        "deserialize",
        "EOF",
        "`",
        "expected",
        "Invalid URL",
        "struct ",
        "i64",
    ] {
        assert!(!message.contains(framework), "{framework}: {message}");
    }
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn every_list_pages_by_cursor_and_refuses_a_bad_limit_or_cursor_by_name() {
    let api = Api::start().await;
    let org = api.organization_id().await;
    let contact = api.ok("/api/v1/contacts?limit=1").await["items"][0]["id"]
        .as_i64()
        .unwrap();
    let run = api.ok("/api/v1/runs").await["items"][0]["id"]
        .as_i64()
        .unwrap();
    let lists = [
        ("/api/v1/connections".to_string(), "/connections"),
        ("/api/v1/runs".into(), "/runs"),
        (format!("/api/v1/runs/{run}/records"), "/runs/{id}/records"),
        ("/api/v1/organizations".into(), "/organizations"),
        (
            format!("/api/v1/organizations/{org}/licenses"),
            "/organizations/{id}/licenses",
        ),
        ("/api/v1/tenants".into(), "/tenants"),
        ("/api/v1/review?all=true".into(), "/review"),
        ("/api/v1/contacts".into(), "/contacts"),
        (
            format!("/api/v1/contacts/{contact}/history"),
            "/contacts/{id}/history",
        ),
        ("/api/v1/accounts".into(), "/accounts"),
        ("/api/v1/bookings".into(), "/bookings"),
    ];
    let document = serde_json::to_value(web::api::openapi()).unwrap();
    for (path, template) in &lists {
        let page = api.ok(path).await;
        assert!(page["items"].is_array(), "{path}: {page}");
        assert!(
            page.as_object().unwrap().contains_key("next_cursor"),
            "{path}: {page}"
        );
        let join = if path.contains('?') { '&' } else { '?' };
        for (query, named) in [
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("limit=many", "'limit'"),
            ("cursor=bogus", "cursor 'bogus'"),
        ] {
            let answer = api.get(&format!("{path}{join}{query}"), &api.viewer).await;
            assert_error(&answer, StatusCode::BAD_REQUEST, "bad_query");
            let message = answer.json()["message"].as_str().unwrap().to_string();
            assert!(message.contains(named), "{path}?{query}: {message}");
        }
        // One item a page, to the end: every item once, each page with the next one's cursor.
        let all = page["items"].as_array().unwrap().len();
        let mut seen = 0;
        let mut next = Some(format!("{path}{join}limit=1"));
        while let Some(at) = next {
            let one = api.ok(&at).await;
            let items = one["items"].as_array().unwrap().len();
            assert!(items <= 1, "{at}: {one}");
            seen += items;
            next = one["next_cursor"]
                .as_str()
                .map(|cursor| format!("{path}{join}limit=1&cursor={cursor}"));
            assert!(seen <= all, "{at}");
        }
        assert_eq!(seen, all, "{path}");
        let parameters: Vec<&str> = document["paths"][*template]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{template} has parameters"))
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in ["cursor", "limit"] {
            assert!(parameters.contains(&name), "{template}: {parameters:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_the_api_cannot_read_is_refused_naming_the_field_and_the_fix() {
    let api = Api::start().await;
    let tenant = api.app.tenant(0);
    let whole = json!({"name": "second", "tenant_id": tenant.tenant_id, "client_id": tenant.client_id, "client_secret": "s3cret-value-long-enough"});
    let with = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut body = whole.as_object().unwrap().clone();
        change(&mut body);
        Value::Object(body)
    };
    for (body, status, named) in [
        (
            with(&|b| {
                b.remove("tenant_id");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["'tenant_id' is missing", "add it"],
        ),
        (
            with(&|b| {
                b.insert("name".into(), json!(5));
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["'name' is the number 5", "text in double quotes"],
        ),
        (
            with(&|b| {
                b.insert("colour".into(), json!("blue"));
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![
                "'colour' is not one this request takes",
                "leave it out",
                "'client_id'",
            ],
        ),
        (
            json!(["a", "list"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["The body is a list", "an object"],
        ),
    ] {
        let answer = api
            .send(
                Method::POST,
                "/api/v1/connections",
                Some(&api.admin),
                Some(body.clone()),
            )
            .await;
        assert_error(&answer, status, "bad_json");
        let message = words_of(&answer);
        for words in named {
            assert!(message.contains(words), "{body}: {message}");
        }
    }
    for (text, named) in [
        ("{\"name\": ", "ends at line 1, column 9"),
        (
            "{\"name\": 'x'}",
            "not well-formed JSON at line 1, column 10",
        ),
        ("", "The body is empty"),
    ] {
        let answer = api
            .raw(
                Method::POST,
                "/api/v1/connections",
                Some("application/json"),
                text.into(),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_json");
        let message = words_of(&answer);
        assert!(message.contains(named), "{text}: {message}");
    }
    let trailing = api
        .raw(
            Method::POST,
            "/api/v1/connections",
            Some("application/json"),
            format!("{whole} {{}}").into(),
        )
        .await;
    assert_error(&trailing, StatusCode::BAD_REQUEST, "bad_json");
    assert!(
        words_of(&trailing).contains("not well-formed JSON"),
        "{}",
        trailing.text
    );
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let answer = api
            .raw(
                Method::POST,
                "/api/v1/connections",
                content_type,
                whole.to_string().into(),
            )
            .await;
        assert_error(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_json");
        assert!(
            words_of(&answer).contains("Content-Type: application/json"),
            "{}",
            answer.text
        );
    }
    assert!(
        api.app.store.connection("second").await.unwrap().is_none(),
        "nothing refused was saved"
    );
    let charset = api
        .raw(
            Method::POST,
            "/api/v1/connections",
            Some("application/json; charset=utf-8"),
            whole.to_string().into(),
        )
        .await;
    assert_eq!(charset.status, StatusCode::CREATED, "{}", charset.text);

    let huge = api
        .raw(
            Method::POST,
            "/api/v1/connections",
            Some("application/json"),
            vec![b' '; 3 * 1024 * 1024],
        )
        .await;
    assert_error(&huge, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    assert!(words_of(&huge).contains("send less"), "{}", huge.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_status_under_the_api_is_json_even_before_a_handler() {
    let api = Api::start().await;
    // An address with bytes that are no UTF-8 text, or a part that is not a number.
    for (path, named) in [
        ("/api/v1/connections/%FF", "UTF-8"),
        ("/api/v1/runs/%FF", "UTF-8"),
        ("/api/v1/runs/abc", "'abc'"),
    ] {
        let answer = api.get(path, &api.admin).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_path");
        let message = words_of(&answer);
        assert!(message.contains(named), "{path}: {message}");
    }
    for path in ["/api/v1", "/api/v1/", "/api/v1/no/such", "/api/v1/%FF"] {
        let answer = api.get(path, &api.admin).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
    }
    let put = api
        .send(Method::PUT, "/api/v1/runs", Some(&api.admin), None)
        .await;
    assert_error(&put, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(put.headers["allow"], "GET,HEAD", "{:?}", put.headers);
    assert_eq!(put.headers["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_changes_syncs_cancels_and_decides() {
    let api = Api::start().await;
    let admin = Some(api.admin.as_str());
    let changed = api
        .send(
            Method::PATCH,
            "/api/v1/connections/contoso",
            admin,
            Some(json!({"max_drop_percent": 50, "audit_retention_days": 30, "schedule": {"every": "6h"}})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let changed = changed.json();
    assert_eq!(changed["max_drop_percent"], 50);
    assert_eq!(changed["audit_retention_days"], 30);
    assert!(
        changed["schedule"].as_str().unwrap().contains("6h"),
        "{changed}"
    );
    assert!(changed["next_run_at"].is_string());

    let queued = api
        .send(
            Method::POST,
            "/api/v1/connections/contoso/sync",
            admin,
            None,
        )
        .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text);
    let queued = queued.json();
    assert_eq!(queued["status"], "queued");
    let run = queued["run_id"].as_i64().unwrap();
    let joined = api
        .send(
            Method::POST,
            "/api/v1/connections/contoso/sync",
            admin,
            Some(json!({"clean": true})),
        )
        .await
        .json();
    assert_eq!(joined["run_id"], run);
    assert_eq!(joined["joined"], true);
    assert_eq!(
        api.ok(&format!("/api/v1/runs/{run}")).await["status"],
        "queued"
    );
    let cancelled = api
        .send(
            Method::POST,
            &format!("/api/v1/runs/{run}/cancel"),
            admin,
            None,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json()["outcome"], "dequeued");
    assert_eq!(
        api.ok(&format!("/api/v1/runs/{run}")).await["status"],
        "cancelled"
    );
    let again = api
        .send(
            Method::POST,
            &format!("/api/v1/runs/{run}/cancel"),
            admin,
            None,
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "conflict");

    let tenant = api.app.tenant_key(0);
    let decision = format!("/api/v1/tenants/{tenant}/decision");
    let decide = |body: Value| api.send(Method::POST, &decision, admin, Some(body));
    let organization = api.ok(&format!("/api/v1/tenants/{tenant}")).await["organization_id"]
        .as_i64()
        .unwrap();
    let unmatched = decide(json!({"action": "unmatch"})).await;
    assert_eq!(unmatched.status, StatusCode::OK, "{}", unmatched.text);
    assert_ne!(unmatched.json()["state"], "matched");
    let wrong = decide(json!({"action": "link", "organization_id": 999999})).await;
    assert_error(&wrong, StatusCode::BAD_REQUEST, "invalid_input");
    let odd = decide(json!({"action": "adopt"})).await;
    assert_error(&odd, StatusCode::BAD_REQUEST, "invalid_input");
    let linked = decide(json!({"action": "link", "organization_id": organization})).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.text);
    let linked = linked.json();
    assert_eq!(linked["state"], "matched");
    assert_eq!(linked["match_rule"], "person");

    let unknown_item = api
        .send(
            Method::POST,
            "/api/v1/review/999999",
            admin,
            Some(json!({"create": true})),
        )
        .await;
    assert_error(&unknown_item, StatusCode::NOT_FOUND, "not_found");
    let unclear = api
        .send(
            Method::POST,
            "/api/v1/review/999999",
            admin,
            Some(json!({"create": true, "link": 1})),
        )
        .await;
    assert_error(&unclear, StatusCode::BAD_REQUEST, "invalid_input");

    let removed = api
        .send(Method::DELETE, "/api/v1/connections/contoso", admin, None)
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert!(
        removed.json()["note"]
            .as_str()
            .unwrap()
            .contains("Entra ID")
    );
    assert_error(
        &api.get("/api/v1/connections/contoso", &api.admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert!(
        !api.ok("/api/v1/contacts").await["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "what it synced stays"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics() {
    let api = Api::start().await;
    let health = api.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = api.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json()["status"], "ready");

    let metrics = api.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK, "{}", metrics.text);
    let text = &metrics.text;
    for expected in [
        "m365sync_runs{connection=\"contoso\",status=\"succeeded\"} 1",
        "m365sync_run_duration_seconds_count{connection=\"contoso\"} 1",
        "m365sync_run_duration_seconds_bucket{connection=\"contoso\",le=\"+Inf\"} 1",
        "m365sync_step_duration_seconds_count{connection=\"contoso\",dataset=\"users\"} 1",
        "m365sync_graph_throttled_total{connection=\"contoso\"}",
        "m365sync_graph_retry_wait_seconds_total{connection=\"contoso\"}",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    let answered: u64 = text
        .lines()
        .filter(|l| {
            l.starts_with("m365sync_graph_requests_total{connection=\"contoso\",status=\"200\"}")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(answered > 10, "the sync's requests are counted:\n{text}");

    // Relayed by a proxy: the token decides.
    let relayed = api
        .http
        .get(format!("{}/metrics", api.base))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), StatusCode::UNAUTHORIZED);
    let relayed = api
        .http
        .get(format!("{}/metrics", api.base))
        .header("x-forwarded-for", "203.0.113.9")
        .bearer_auth(&api.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), StatusCode::OK);
}

/// The document in docs/ is the one the code makes: a change to the API that is not written
/// back there fails here. `M365SYNC_WRITE_OPENAPI=1 cargo test -p web --test api` rewrites it.
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_served_and_matches_the_copy_in_docs() {
    let document = web::api::openapi();
    let made = serde_json::to_string_pretty(&document).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("M365SYNC_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &made).unwrap();
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == made,
        "docs/openapi.json differs from what the code makes; run `M365SYNC_WRITE_OPENAPI=1 cargo test -p web --test api` and commit it"
    );

    let api = Api::start().await;
    let served = api
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(served.status, StatusCode::OK);
    let served = served.json();
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served, serde_json::from_str::<Value>(&made).unwrap());

    // Every documented route is a route: none answers "no such route".
    let readable = api.readable_paths().await;
    let paths = served["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    // Routes that need a connected account, which tests/accounts.rs signs in and exercises.
    let exercised_elsewhere = ["/accounts/{id}/free"];
    for (template, item) in paths {
        let shape: Vec<&str> = template.split('/').collect();
        if item.get("get").is_some() && !exercised_elsewhere.contains(&template.as_str()) {
            let concrete = readable.iter().any(|p| {
                let p = p.split('?').next().unwrap().trim_start_matches("/api/v1");
                let parts: Vec<&str> = p.split('/').collect();
                parts.len() == shape.len()
                    && parts
                        .iter()
                        .zip(&shape)
                        .all(|(a, b)| a == b || b.starts_with('{'))
            });
            assert!(concrete, "GET {template} is exercised by the tests");
        }
        for operation in item.as_object().unwrap().values() {
            assert!(operation["responses"].get("401").is_some(), "{template}");
            assert!(operation["security"].is_array(), "{template}");
        }
    }
}

/// A new organisation's name is checked as the pages and the command line check it: no NUL,
/// at most 200 characters, not blank, and no near-duplicate of a name taken.
#[tokio::test(flavor = "multi_thread")]
async fn an_organisation_made_by_the_api_gets_a_checked_name() {
    let api = Api::start().await;
    let admin = Some(api.admin.as_str());
    let tenant = api.app.tenant_key(0);
    let decision = format!("/api/v1/tenants/{tenant}/decision");
    let decide = |body: Value| api.send(Method::POST, &decision, admin, Some(body));
    let taken = api.app.store.create_organization("Acme Ltd").await.unwrap();
    let before = api.app.store.organizations().await.unwrap().len();
    for (name, says) in [
        ("x".repeat(2_000_000), "more than 200"),
        ("Fresh\u{0}Co".to_string(), "control character"),
        ("   ".to_string(), "give the organisation a name"),
        ("\u{200B}".to_string(), "give the organisation a name"),
    ] {
        let refused = decide(json!({"action": "create", "name": name})).await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "invalid_input");
        let message = refused.json()["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("name: "), "{message}");
        assert!(message.contains(says), "{message}");
    }
    for near in ["Acme  Ltd", "acme\u{200B} ltd", " ACME LTD\u{FEFF}"] {
        let refused = decide(json!({"action": "create", "name": near})).await;
        assert_error(&refused, StatusCode::CONFLICT, "conflict");
        let message = refused.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(&format!("id {taken}")), "{message}");
    }
    assert_eq!(
        api.app.store.organizations().await.unwrap().len(),
        before,
        "nothing was made"
    );
    let made = decide(json!({"action": "create", "name": "  Fresh \u{200B}  Co "})).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    assert_eq!(made.json()["organization"], "Fresh Co");
}
