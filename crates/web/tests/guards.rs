//! The server as a browser or a hostile client meets it over TCP: the headers on every response.

use std::net::SocketAddr;
use std::time::Duration;

use testkit::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond any timeout the tests set: only a server that never lets go reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start(store: store::Store) -> SocketAddr {
    let listener = web::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(web::serve(store, listener));
    addr
}

/// A store with a synced tenant behind a server.
async fn synced_server() -> (TestApp, SocketAddr) {
    let app = TestApp::with_users(5).await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    let addr = start(app.store.clone()).await;
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
async fn every_response_carries_the_security_headers() {
    let (_app, addr) = synced_server().await;
    let own = addr.to_string();
    let home = get(addr, "/", &own).await;
    let answers = [
        ("page", home),
        ("json", get(addr, "/api/v1/contacts", &own).await),
        ("404", get(addr, "/no/such/page", &own).await),
        (
            "missing record",
            get(addr, "/organizations/999999", &own).await,
        ),
        ("stylesheet", get(addr, "/assets/m365sync.css", &own).await),
    ];
    let statuses: Vec<u16> = answers.iter().map(|(_, a)| a.status).collect();
    assert_eq!(statuses, [200, 200, 404, 404, 200]);
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
    // The policy allows no inline style or script, so the pages must have none.
    let page = &answers[0].1.body;
    for inline in ["<style", "<script", " style="] {
        assert!(!page.contains(inline), "the page holds {inline:?}");
    }
    assert!(page.contains("href=\"/assets/m365sync.css\""));
    let stylesheet = &answers[4].1;
    assert!(
        stylesheet
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/css"))
    );
    assert!(stylesheet.body.contains("border-collapse"));
}
