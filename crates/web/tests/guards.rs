//! The server as a browser or a hostile client meets it over TCP: which hosts it answers, the
//! headers on every response, and how long it keeps a connection that says nothing.

use std::net::SocketAddr;
use std::time::Duration;

use store::ContactFilter;
use testkit::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond any timeout the tests set: only a server that never lets go reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start(store: store::Store, options: web::ServeOptions) -> SocketAddr {
    let listener = web::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(web::serve(store, listener, options));
    addr
}

/// A store with a synced tenant behind a server that also answers `contacts.example.com` (any
/// port) and `m365.example:8443`.
async fn synced_server() -> (TestApp, SocketAddr) {
    let app = TestApp::with_users(5).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let options = web::ServeOptions {
        public_names: vec![
            "contacts.example.com".parse().unwrap(),
            "m365.example:8443".parse().unwrap(),
        ],
        ..web::ServeOptions::default()
    };
    let addr = start(app.store.clone(), options).await;
    (app, addr)
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `request` as it is and reads the answer until the server closes.
async fn send(addr: SocketAddr, request: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("the server answered and closed")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

async fn get(addr: SocketAddr, path: &str, host: &str) -> Answer {
    send(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_host_is_refused_and_reads_no_contact() {
    let (app, addr) = synced_server().await;
    let contacts = app
        .store
        .contacts_page(&ContactFilter::default(), 0, 100)
        .await
        .unwrap();
    assert!(!contacts.is_empty());
    let token = app
        .store
        .issue_api_token("guards", store::ApiRole::Viewer)
        .await
        .unwrap()
        .secret;
    let own = send(
        addr,
        &format!(
            "GET /api/v1/contacts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(own.body.contains(&contacts[0].display_name));

    let foreign = get(addr, "/api/v1/contacts", "evil.example").await;
    assert_eq!(foreign.status, 421, "{}", foreign.body);
    // Under /api/v1 a refusal is the API's JSON; a page's refusal is the error page.
    assert_eq!(
        foreign.header("content-type"),
        Some("application/json"),
        "{}",
        foreign.head
    );
    let said: serde_json::Value = serde_json::from_str(&foreign.body).unwrap();
    assert_eq!(said["code"], "misdirected", "{}", foreign.body);
    let page = get(addr, "/organizations", "evil.example").await;
    assert_eq!(page.status, 421, "{}", page.body);
    assert!(page.body.contains("<html"), "{}", page.body);
    assert!(page.body.contains("--public-name"), "{}", page.body);
    assert!(foreign.body.contains("evil.example"), "{}", foreign.body);
    assert!(foreign.body.contains("--public-name"), "{}", foreign.body);
    assert_eq!(
        foreign.body.trim_end().lines().count(),
        1,
        "{}",
        foreign.body
    );

    let absolute = send(
        addr,
        &format!(
            "GET http://evil.example/api/v1/contacts HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(absolute.status, 421, "{}", absolute.body);

    let hostless = send(addr, "GET /api/v1/contacts HTTP/1.0\r\n\r\n").await;
    assert_eq!(hostless.status, 400, "{}", hostless.body);
    assert!(
        hostless.body.contains("\"code\":\"bad_host\""),
        "{}",
        hostless.body
    );
    assert!(hostless.body.contains("Host"), "{}", hostless.body);

    for refused in [&foreign, &absolute, &hostless] {
        for contact in &contacts {
            assert!(!refused.body.contains(&contact.display_name));
            if let Some(upn) = &contact.user_principal_name {
                assert!(!refused.body.contains(upn.as_str()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn its_own_addresses_and_public_names_are_answered() {
    let (_app, addr) = synced_server().await;
    let port = addr.port();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "contacts.example.com".to_string(),
        "contacts.example.com:443".to_string(),
        "m365.example:8443".to_string(),
    ] {
        let answer = get(addr, "/login", &host).await;
        assert_eq!(answer.status, 200, "{host}: {}", answer.body);
        assert!(answer.body.contains("Log in"), "{host}");
    }
    for host in [
        format!("localhost:{}", port.wrapping_add(1)),
        format!("evil.example:{port}"),
        "m365.example:9999".to_string(),
        "m365.example".to_string(),
    ] {
        let answer = get(addr, "/", &host).await;
        assert_eq!(answer.status, 421, "{host}: {}", answer.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_out_of_time_is_told_so_in_the_shape_it_asked_for() {
    let app = TestApp::with_users(1).await;
    let token = app
        .store
        .issue_api_token("automation", store::ApiRole::Admin)
        .await
        .unwrap()
        .secret;
    let options = web::ServeOptions {
        request_timeout: Duration::from_millis(300),
        ..web::ServeOptions::default()
    };
    let addr = start(app.store.clone(), options).await;
    // A body announced and never sent in full keeps the request waiting past its time.
    let api = send(
        addr,
        &format!(
            "POST /api/v1/connections HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"name\""
        ),
    )
    .await;
    assert_eq!(api.status, 503, "{}", api.body);
    let said: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(said["code"], "timeout", "{}", api.body);
    assert!(
        said["message"].as_str().unwrap().contains("try again"),
        "{}",
        api.body
    );
    let page = send(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\nConnection: close\r\n\r\nname="
        ),
    )
    .await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("<html"), "{}", page.body);
    assert!(page.body.contains("try again"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let (_app, addr) = synced_server().await;
    let own = addr.to_string();
    let login = get(addr, "/login", &own).await;
    let answers = [
        ("page", login),
        ("api refusal", get(addr, "/api/v1/contacts", &own).await),
        ("404", get(addr, "/no/such/page", &own).await),
        (
            "page behind the login",
            get(addr, "/organizations/999999", &own).await,
        ),
        ("stylesheet", get(addr, "/assets/app.css", &own).await),
        ("refusal", get(addr, "/", "evil.example").await),
        ("script", get(addr, "/assets/htmx.min.js", &own).await),
    ];
    let statuses: Vec<u16> = answers.iter().map(|(_, a)| a.status).collect();
    assert_eq!(statuses, [200, 401, 404, 303, 200, 421, 200]);
    for (what, answer) in &answers {
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(
            answer.header("referrer-policy"),
            Some("no-referrer"),
            "{what}"
        );
        let csp = answer
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{what}: {csp}");
    }
    // The policy allows no inline style or script, so the pages must have none: every script
    // is the server's own file.
    let page = &answers[0].1.body;
    for inline in ["<style", "<script>", " style=", " onclick=", "javascript:"] {
        assert!(!page.contains(inline), "the page holds {inline:?}");
    }
    for script in page.split("<script").skip(1) {
        assert!(
            script.trim_start().starts_with("src=\"/assets/"),
            "{script}"
        );
    }
    assert!(page.contains("href=\"/assets/app.css\""));
    assert_eq!(
        answers[3].1.header("location"),
        Some("/login?next=%2Forganizations%2F999999")
    );
    let stylesheet = &answers[4].1;
    assert!(
        stylesheet
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/css"))
    );
    assert!(stylesheet.body.contains("border-collapse"));
}

async fn impatient_server() -> (testkit::StoreHome, SocketAddr) {
    let (store, home) = testkit::sqlite_store().await;
    let options = web::ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        ..web::ServeOptions::default()
    };
    (home, start(store, options).await)
}

/// Reads until the server closes the connection; an error (a reset) counts as closed too.
async fn closed_by_server(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut seen)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_sends_nothing_is_closed() {
    let (_home, addr) = impatient_server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    closed_by_server(&mut stream).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_sent_a_byte_at_a_time_is_dropped() {
    let (_home, addr) = impatient_server().await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    let drip = tokio::spawn(async move {
        // Never finishes the header line: one more byte every 50 ms while the server listens.
        for _ in 0..1000 {
            if writer.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut seen = Vec::new();
    let read = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut seen)).await;
    drip.abort();
    assert!(read.is_ok(), "the server kept the connection open");
    assert!(!String::from_utf8_lossy(&seen).contains(" 200 "));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_kept_alive_connection_is_closed() {
    let (_home, addr) = impatient_server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let seen = closed_by_server(&mut stream).await;
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
}
