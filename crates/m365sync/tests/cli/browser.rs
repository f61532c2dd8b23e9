//! The web pages in a real headless Chromium (Debian's `chromium` driven through
//! `chromium-driver`): one browser, one `m365sync serve`, one simulator. A person sets up the
//! first admin, adds a connection to the simulator, tests and syncs it, resolves its unmatched
//! tenant, opens a contact, compares it with Microsoft 365, edits the connection (a certificate
//! uploaded from files), reads a run's log and an organisation's insight, makes and revokes an
//! API token; then the same pages are tried as an attacker and as a viewer. Every page visited is saved as a screenshot under the target directory.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use graph_sim::{SimConfig, TenantSpec};
use serde_json::json;

/// Where the screenshots go: `target/tmp/browser-screenshots/`.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots")
}

/// Kills a child process when the test ends, however it ends.
pub(super) struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The chromedriver to drive Chromium with; `None` (said in one line, or a failure under
/// `CI=true`) when it is not installed.
pub(super) fn chromedriver() -> Option<PathBuf> {
    let found = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but chromedriver is missing: install Debian's chromium and chromium-driver (scripts/test does)"
            );
        }
        testkit::say_skipped(
            "browser test: no chromedriver; install Debian's chromium and chromium-driver to run it",
        );
    }
    found
}

pub(super) struct Browser {
    pub(super) client: Client,
    base: String,
    shots: usize,
    /// Every page's source as seen, to check that none shows a secret.
    sources: Vec<(String, String)>,
}

impl Browser {
    /// Opens `path`, saves a screenshot named `name`, and keeps the source.
    async fn visit(&mut self, path: &str, name: &str) -> String {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        self.snap(name).await
    }

    /// A screenshot of the page as it is now, and its source; the page must fit the 1,366 px
    /// window (no table overflows it).
    async fn snap(&mut self, name: &str) -> String {
        let fits = self
            .client
            .execute(
                "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .expect("measure the page");
        assert_eq!(
            fits,
            json!(true),
            "{name}: the page is wider than the window"
        );
        self.shots += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let file = screenshot_dir().join(format!("{:02}-{name}.png", self.shots));
        std::fs::write(&file, png).expect("write screenshot");
        let source = self.client.source().await.expect("page source");
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        self.sources.push((url, source.clone()));
        source
    }

    pub(super) async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub(super) async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// Reloads `path` until `css` holds `wanted`, for what a worker finishes in the background.
    async fn wait_for_text(
        &mut self,
        path: &str,
        css: &str,
        wanted: &[&str],
        name: &str,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            self.client
                .goto(&format!("{}{path}", self.base))
                .await
                .expect("open");
            // Under load the page may answer before it shows the element (a busy server's
            // error page): that is one more reload, not a failure, until the deadline.
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if wanted.iter().any(|w| text.contains(w)) {
                self.snap(name).await;
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {css} still says {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The path the browser lands on after a form was sent, once it is under `prefix`: a click
    /// returns before the answer arrives, and a loaded machine answers late.
    pub(super) async fn landed_on(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let path = self
                .client
                .current_url()
                .await
                .expect("url")
                .path()
                .to_string();
            // Every path starts with "/": the home page is waited for by name.
            if path == prefix || (prefix != "/" && path.starts_with(prefix)) {
                return path;
            }
            assert!(Instant::now() < deadline, "still on {path}, not {prefix}…");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn cookie(&self, name: &str) -> String {
        self.client
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("cookie {name}: {e}"))
            .value()
            .to_string()
    }

    /// The CSRF token of the page shown (every signed-in page carries one in its logout form).
    async fn csrf(&self) -> String {
        self.client
            .find(Locator::Css("input[name=csrf]"))
            .await
            .expect("a CSRF field")
            .attr("value")
            .await
            .expect("its value")
            .expect("a token")
    }
}

/// `m365sync serve` on a free loopback port: its base URL and the set-up link it prints.
pub(super) fn start_server(db: &Path) -> (Reaped, String, String) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .arg("--db")
        .arg(db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("M365SYNC_SECRET_KEY")
        .env_remove("M365SYNC_PUBLIC_NAME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start m365sync serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let serving = lines.next().expect("a line").expect("text");
    assert!(serving.contains("serving"), "{serving}");
    let setup = lines.next().expect("the set-up line").expect("text");
    let link = setup
        .split_whitespace()
        .find(|w| w.contains("/setup/"))
        .unwrap_or_else(|| panic!("no set-up link in {setup:?}"))
        .to_string();
    // Keep reading so that the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Reaped(child), format!("http://127.0.0.1:{port}"), link)
}

pub(super) fn start_chromedriver(path: &Path) -> (Reaped, u16) {
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (Reaped(child), port)
}

pub(super) async fn open_browser(driver_port: u16, profile: &Path, base: String) -> Browser {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1366,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a Chromium session");
    Browser {
        client,
        base,
        shots: 0,
        sources: Vec::new(),
    }
}

/// Sends a form as the browser would, with this session's cookie, outside the browser.
async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let answer = http
        .post(format!("{base}{path}"))
        .header("cookie", format!("m365sync_session={cookie}"))
        .form(form)
        .send()
        .await
        .expect("answered");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_runs_m365sync_from_the_browser() {
    let Some(driver) = chromedriver() else {
        return;
    };
    std::fs::create_dir_all(screenshot_dir()).expect("screenshot folder");
    for old in std::fs::read_dir(screenshot_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_file(old.path());
    }
    let sim = testkit::simulator(SimConfig {
        seed: 5,
        tenants: vec![TenantSpec::with_users(30)],
        ..SimConfig::default()
    })
    .await;
    let tenant = sim.tenants()[0].clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, base, setup_link) = start_server(&dir.path().join("store.db"));
    let (_driver, driver_port) = start_chromedriver(&driver);
    let mut b = open_browser(driver_port, &dir.path().join("chromium"), base.clone()).await;
    let started = Instant::now();

    // A stranger is sent to the login page.
    let login = b.visit("/", "login").await;
    assert!(login.contains("Log in"), "{login}");
    assert!(b.client.current_url().await.unwrap().path() == "/login");
    let missing = b.visit("/no/such/page", "not-found").await;
    assert!(missing.contains("There is no such page"), "{missing}");

    // The first admin, through the one-time link.
    b.client
        .goto(&setup_link)
        .await
        .expect("open the set-up link");
    b.snap("setup").await;
    b.fill("#name", "ana").await;
    b.fill("#password", "correct horse battery").await;
    b.fill("#confirm", "correct horse battery").await;
    b.click("[data-testid=setup]").await;
    let dashboard = b.snap("dashboard-first").await;
    assert!(dashboard.contains("first admin"), "{dashboard}");
    assert!(b.text_of("[data-testid=who]").await.contains("ana (admin)"));
    b.client
        .goto(&setup_link)
        .await
        .expect("open the used link");
    let used = b.snap("setup-link-used").await;
    assert!(used.contains("does not work"), "{used}");

    // Add a connection to the simulator whose tenant waits for a decision.
    b.visit("/connections/new", "connection-new").await;
    b.fill("[data-testid=name]", "contoso").await;
    b.fill("[data-testid=tenant-id]", &tenant.tenant_id).await;
    b.fill("[data-testid=client-id]", &tenant.client_id).await;
    b.fill("[data-testid=secret]", &tenant.client_secret).await;
    b.client
        .find(Locator::Css("[data-testid=cloud] option[value=custom]"))
        .await
        .expect("custom cloud")
        .click()
        .await
        .expect("choose custom");
    b.fill("[data-testid=login-url]", &sim.url).await;
    b.fill("[data-testid=graph-url]", &sim.url).await;
    b.click("[data-testid=create-organization]").await;
    b.click("[data-testid=save]").await;
    let saved = b.snap("connection-saved").await;
    assert!(saved.contains("Connection saved"), "{saved}");
    assert!(
        b.text_of("[data-testid=credential-state]")
            .await
            .contains("secret is set")
    );

    // Test it: the diagnosis arrives in place (htmx).
    b.click("[data-testid=test]").await;
    b.client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("[data-testid=diagnosis-ok]"))
        .await
        .expect("the test passed");
    b.snap("connection-tested").await;
    let list = b.visit("/connections", "connections").await;
    assert!(list.contains("passed"), "{list}");

    // Sync it: the run is queued and serve's worker runs it.
    b.visit("/connections/contoso", "connection").await;
    b.click("[data-testid=sync-now]").await;
    b.snap("run-queued").await;
    let first_run = b.landed_on("/runs/").await;
    b.wait_for_text(
        &first_run,
        "[data-testid=run-status]",
        &["succeeded", "partial", "failed"],
        "run-finished",
    )
    .await;

    // The tenant waits under Tenants; create its organisation.
    let tenants = b
        .visit("/tenants?state=unmatched", "tenants-unmatched")
        .await;
    assert!(tenants.contains(&tenant.tenant_id), "{tenants}");
    b.click("[data-testid=create-org]").await;
    let decided = b.snap("tenant-matched").await;
    assert!(decided.contains("is now matched"), "{decided}");

    // Sync again: the contacts are filed under the organisation.
    b.visit("/connections/contoso", "connection-again").await;
    b.click("[data-testid=sync-now]").await;
    let second_run = b.landed_on("/runs/").await;
    assert_ne!(first_run, second_run);
    let status = b
        .wait_for_text(
            &second_run,
            "[data-testid=run-status]",
            &["succeeded", "partial", "failed"],
            "second-run",
        )
        .await;
    assert!(status.contains("succeeded"), "{status}");
    let log = b
        .visit(&format!("{second_run}?outcome=created"), "run-log-created")
        .await;
    assert!(
        log.contains("data-testid=\"records\""),
        "the run log lists records: {log}"
    );

    // Organisations → contacts → a contact.
    let orgs = b.visit("/organizations", "organizations").await;
    assert!(orgs.contains(&tenant.display_name), "{orgs}");
    b.click("[data-testid=organizations] a").await;
    b.snap("contacts").await;
    b.fill("[data-testid=contact-search]", "a").await;
    b.click("[data-testid=contact-search-go]").await;
    b.snap("contacts-searched").await;
    b.click("[data-testid=contact-link]").await;
    let contact = b.snap("contact").await;
    assert!(
        contact.contains("data-testid=\"contact-name\""),
        "{contact}"
    );
    assert!(contact.contains("Licences and products"));
    let contact_path = b.client.current_url().await.unwrap().path().to_string();
    let org_path = b
        .client
        .find(Locator::Css("main > a:nth-of-type(2)"))
        .await
        .expect("the organisation crumb")
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    for (tab, name) in [
        ("licenses", "licenses"),
        ("groups", "groups"),
        ("devices", "devices"),
        ("admins", "admins"),
        ("apps", "apps"),
        ("audit", "audit"),
        ("software", "software"),
        ("waste", "licence-waste"),
        ("trends", "trends"),
    ] {
        let shown = b.visit(&format!("{org_path}/{tab}"), name).await;
        assert!(!shown.contains("Something went wrong"), "{tab}: {shown}");
    }
    compare_and_edit(&mut b, &sim, &tenant, &contact_path, dir.path()).await;
    tokens(&mut b, &base).await;
    b.visit("/runs", "runs").await;
    let dashboard = b.visit("/", "dashboard").await;
    assert!(dashboard.contains("contoso"), "{dashboard}");

    // A user named like a script renders as text.
    b.visit("/settings", "settings").await;
    b.fill("[data-testid=new-user-name]", "<script>alert(1)</script>")
        .await;
    b.fill("[data-testid=new-user-password]", "viewer password 1")
        .await;
    b.client
        .find(Locator::Css(
            "[data-testid=new-user-role] option[value=viewer]",
        ))
        .await
        .expect("viewer role")
        .click()
        .await
        .expect("choose viewer");
    b.click("[data-testid=add-user]").await;
    let settings = b.snap("settings-user-added").await;
    assert!(
        settings.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{settings}"
    );
    assert!(!settings.contains("<script>alert(1)</script>"));
    assert!(b.client.get_alert_text().await.is_err(), "no script ran");
    let names: Vec<String> = {
        let mut names = Vec::new();
        for cell in b
            .client
            .find_all(Locator::Css("[data-testid=user-name]"))
            .await
            .unwrap()
        {
            names.push(cell.text().await.unwrap());
        }
        names
    };
    assert!(
        names.contains(&"<script>alert(1)</script>".to_string()),
        "{names:?}"
    );

    // A form without its CSRF token, or with another, is refused.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin_cookie = b.cookie("m365sync_session").await;
    let admin_csrf = b.csrf().await;
    let (status, body) = post(
        &http,
        &base,
        "/connections/contoso/sync",
        &admin_cookie,
        &[],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("security token"), "{body}");
    let (status, _) = post(
        &http,
        &base,
        "/connections/contoso/sync",
        &admin_cookie,
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &http,
        &base,
        "/settings/users",
        &admin_cookie,
        &[
            ("csrf", &admin_csrf),
            ("name", "eve"),
            ("password", "short"),
            ("role", "admin"),
        ],
    )
    .await;
    assert_eq!(
        status, 422,
        "with its token the form is read (and its short password refused)"
    );

    // The viewer reads every page and changes nothing.
    b.click("[data-testid=logout]").await;
    b.snap("logged-out").await;
    b.fill("#name", "<script>alert(1)</script>").await;
    b.fill("#password", "viewer password 1").await;
    b.click("[data-testid=login]").await;
    let viewer_home = b.snap("viewer-dashboard").await;
    assert!(viewer_home.contains("(viewer)"), "{viewer_home}");
    assert!(!viewer_home.contains("data-testid=\"add-connection\""));
    let connection = b.visit("/connections/contoso", "viewer-connection").await;
    assert!(
        !connection.contains("data-testid=\"sync-now\""),
        "no change offered to a viewer"
    );
    let forbidden = b.visit("/connections/new", "viewer-forbidden").await;
    assert!(forbidden.contains("Only admins"), "{forbidden}");
    let viewer_cookie = b.cookie("m365sync_session").await;
    let viewer_csrf = b.csrf().await;
    let run_id = second_run.trim_start_matches("/runs/");
    let tenant_path = format!("/tenants/{}", tenant.tenant_id);
    let changes: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/connections".into(), vec![("name", "x")]),
        ("/connections/contoso/edit".into(), vec![("schedule", "")]),
        ("/connections/contoso/test".into(), vec![]),
        ("/connections/contoso/sync".into(), vec![]),
        ("/connections/contoso/delete".into(), vec![]),
        (tenant_path, vec![("action", "ignore")]),
        ("/review/1".into(), vec![("create", "1")]),
        (format!("/runs/{run_id}/cancel"), vec![]),
        (
            "/settings/users".into(),
            vec![
                ("name", "mallory"),
                ("password", "long enough password"),
                ("role", "admin"),
            ],
        ),
        ("/settings/users/1/role".into(), vec![("role", "viewer")]),
        (
            "/settings/users/1/password".into(),
            vec![("password", "long enough password")],
        ),
        ("/settings/users/1/delete".into(), vec![]),
        (
            "/settings/tokens".into(),
            vec![("name", "sneaky"), ("role", "admin")],
        ),
        ("/settings/tokens/revoke".into(), vec![("name", "grafana")]),
    ];
    for (path, fields) in &changes {
        let mut form = vec![("csrf", viewer_csrf.as_str())];
        form.extend(fields.iter().copied());
        let (status, body) = post(&http, &base, path, &viewer_cookie, &form).await;
        assert_eq!(status, 403, "a viewer changed {path}: {body}");
        assert!(body.contains("Viewers can read"), "{path}: {body}");
    }
    let still = b
        .visit("/connections/contoso", "viewer-after-attempts")
        .await;
    assert!(
        still.contains("data-testid=\"connection-name\""),
        "the connection is still there"
    );
    let users = b.visit("/settings", "viewer-settings").await;
    assert!(!users.contains("mallory"), "{users}");

    // No page showed the secret.
    for (url, source) in &b.sources {
        assert!(
            !source.contains(&tenant.client_secret),
            "{url} shows the client secret"
        );
    }
    let elapsed = started.elapsed();
    eprintln!(
        "browser test: {} pages, {} screenshots in {}, {:.1} s",
        b.sources.len(),
        b.shots,
        screenshot_dir().display(),
        elapsed.as_secs_f64()
    );
    let _ = b.client.close().await;
}

/// Waits until `css` is on the page (a form's answer arrives after the click returns).
async fn wait_for(b: &Browser, css: &str) {
    b.client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
}

/// Compare a contact with Microsoft 365 before and after a change there; edit the connection
/// with a mistake (refused beside its field, nothing saved), then properly, a certificate
/// uploaded from its files; and compare again through the certificate.
async fn compare_and_edit(
    b: &mut Browser,
    sim: &graph_sim::RunningSimulator,
    tenant: &graph_sim::TenantInfo,
    contact_path: &str,
    dir: &Path,
) {
    b.visit(contact_path, "contact-again").await;
    b.click("[data-testid=compare]").await;
    wait_for(b, "[data-testid=compare-summary]").await;
    b.snap("compare-same").await;
    assert_eq!(
        b.text_of("[data-testid=compare-summary]").await,
        "The store holds what Microsoft 365 says now."
    );
    for user in 0..40 {
        sim.state.patch_user(
            &tenant.tenant_id,
            user,
            graph_sim::UserPatch {
                department: Some("Changed in Microsoft 365".into()),
                ..graph_sim::UserPatch::default()
            },
        );
    }
    b.click("[data-testid=compare-again]").await;
    wait_for(b, "[data-testid=differs]").await;
    let differs = b.snap("compare-differs").await;
    assert!(
        b.text_of("[data-testid=compare-summary]")
            .await
            .starts_with("1 field differs"),
        "{differs}"
    );
    assert!(
        b.text_of("[data-testid=differs]")
            .await
            .contains("Changed in Microsoft 365")
    );

    // A mistake is named beside its field, and what was typed stays.
    b.visit("/connections/contoso/edit", "connection-edit")
        .await;
    b.fill("[data-testid=include-domains]", "not a domain")
        .await;
    b.fill("[data-testid=lifetime-mailboxes]", "12h").await;
    b.click("[data-testid=save]").await;
    wait_for(b, "[data-testid=error-include-domains]").await;
    let refused = b.snap("connection-edit-refused").await;
    assert!(refused.contains("value=\"not a domain\""), "{refused}");
    assert!(
        b.text_of("[data-testid=error-include-domains]")
            .await
            .contains("is not a domain")
    );

    // Then properly: filters, cache, schedule and a certificate picked from its files.
    let issued = sim
        .state
        .add_certificate(&tenant.tenant_id, -1, 20)
        .expect("the tenant")
        .expect("a certificate");
    let certificate = dir.join("app.crt");
    let key = dir.join("app.key");
    std::fs::write(&certificate, &issued.certificate_pem).unwrap();
    std::fs::write(&key, &issued.private_key_pem).unwrap();
    b.fill("[data-testid=include-domains]", "").await;
    b.click("[data-testid=exclude-guests]").await;
    b.fill("[data-testid=schedule]", "every 6h").await;
    b.client
        .find(Locator::Css("[data-testid=certificate-file]"))
        .await
        .unwrap()
        .send_keys(certificate.to_str().unwrap())
        .await
        .expect("pick the certificate");
    b.client
        .find(Locator::Css("[data-testid=private-key-file]"))
        .await
        .unwrap()
        .send_keys(key.to_str().unwrap())
        .await
        .expect("pick the key");
    let deadline = Instant::now() + Duration::from_secs(10);
    while b
        .client
        .find(Locator::Css("[data-testid=private-key]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the key file never filled its field"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.snap("connection-edit-filled").await;
    b.click("[data-testid=save]").await;
    wait_for(b, "[data-testid=notice]").await;
    let saved = b.snap("connection-edited").await;
    assert!(saved.contains("new credential"), "{saved}");
    assert!(
        b.text_of("[data-testid=credential-state]")
            .await
            .contains(&issued.thumbprint)
    );
    let key_line = issued
        .private_key_pem
        .lines()
        .find(|l| !l.starts_with("-----"))
        .unwrap()
        .to_string();
    let again = b
        .visit("/connections/contoso/edit", "connection-edit-saved")
        .await;
    assert!(!again.contains(&key_line), "the private key is never shown");
    assert!(again.contains("name=\"lifetime.mailboxes\" value=\"12h\""));

    // Compare reads Microsoft 365 through the certificate now.
    b.visit(&format!("{contact_path}/compare"), "compare-by-certificate")
        .await;
    assert!(
        b.text_of("[data-testid=compare-summary]")
            .await
            .starts_with("1 field differs")
    );
}

/// An API token made under Settings is shown once, works, and stops working once revoked.
async fn tokens(b: &mut Browser, base: &str) {
    b.visit("/settings#tokens", "settings-tokens").await;
    b.fill("[data-testid=token-name]", "grafana").await;
    b.click("[data-testid=make-token]").await;
    wait_for(b, "[data-testid=issued-secret]").await;
    b.snap("token-made").await;
    let secret = b.text_of("[data-testid=issued-secret]").await;
    let http = reqwest::Client::new();
    let answer = |secret: String| {
        let http = http.clone();
        let url = format!("{base}/api/v1/organizations");
        async move {
            http.get(url)
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(answer(secret.clone()).await, 200);
    let listed = b.visit("/settings", "settings-token-listed").await;
    assert!(!listed.contains(&secret), "shown once only");
    b.click("[data-testid=revoke-token]").await;
    wait_for(b, "[data-testid=notice]").await;
    b.snap("token-revoked").await;
    assert_eq!(answer(secret).await, 401);
}
