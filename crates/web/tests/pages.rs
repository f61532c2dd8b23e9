//! The pages a person uses past the dashboard, over HTTP as a browser sends them: Compare,
//! connection editing, API tokens, numbered pages and an organisation's insight. Each route is
//! also tried as a viewer (403, nothing changed), without its CSRF token (403), and no page
//! ever holds a stored secret.

use std::net::SocketAddr;

use reqwest::StatusCode;
use store::{AppRole, ContactFilter};
use testkit::TestApp;

const ADMIN_PASSWORD: &str = "correct horse battery";
const VIEWER_PASSWORD: &str = "staple battery horse";

/// A synced tenant behind a server on port 0, with an admin and a viewer who can log in.
struct Site {
    app: TestApp,
    base: String,
    http: reqwest::Client,
}

/// One logged-in browser: its session cookie and the CSRF token its pages carry.
struct Session {
    cookie: String,
    csrf: String,
}

struct Page {
    status: StatusCode,
    location: String,
    text: String,
}

impl Site {
    async fn start(users: u64) -> Self {
        let app = TestApp::with_users(users).await;
        app.add_connection("contoso", 0).await;
        app.sync("contoso").await;
        for (name, password, role) in [
            ("ana", ADMIN_PASSWORD, AppRole::Admin),
            ("vic", VIEWER_PASSWORD, AppRole::Viewer),
        ] {
            let hash = web::hash_password(password).unwrap();
            app.store.create_app_user(name, &hash, role).await.unwrap();
        }
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
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn login(&self, name: &str, password: &str) -> Session {
        let form = self
            .http
            .get(format!("{}/login", self.base))
            .send()
            .await
            .unwrap();
        let token = cookie_of(&form, "m365sync_form");
        let answer = self
            .http
            .post(format!("{}/login", self.base))
            .header("cookie", format!("m365sync_form={token}"))
            .form(&[
                ("csrf", token.as_str()),
                ("name", name),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "logging in {name}");
        let cookie = format!(
            "m365sync_session={}",
            cookie_of(&answer, "m365sync_session")
        );
        let mut session = Session {
            cookie,
            csrf: String::new(),
        };
        let home = self.get(&session, "/settings").await;
        session.csrf = csrf_in(&home.text);
        session
    }

    async fn admin(&self) -> Session {
        self.login("ana", ADMIN_PASSWORD).await
    }

    async fn viewer(&self) -> Session {
        self.login("vic", VIEWER_PASSWORD).await
    }

    async fn get(&self, session: &Session, path: &str) -> Page {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &session.cookie)
            .send()
            .await
            .unwrap();
        page_of(answer).await
    }

    /// Sends a form with the session's CSRF token (unless `with_token` is false).
    async fn post(
        &self,
        session: &Session,
        path: &str,
        fields: &[(&str, &str)],
        with_token: bool,
    ) -> Page {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        if with_token {
            all.push(("csrf", session.csrf.as_str()));
        }
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &session.cookie)
            .form(&all)
            .send()
            .await
            .unwrap();
        page_of(answer).await
    }

    /// A contact's id by its user's position in the simulated tenant.
    async fn contact_of_user(&self, index: u64) -> i64 {
        let tenant = self.app.tenant_key(0);
        let user = self
            .app
            .sim
            .state
            .tenant(&tenant)
            .unwrap()
            .user(index)
            .unwrap();
        self.app
            .store
            .contacts_page(&ContactFilter::default(), 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.object_id.as_deref() == Some(&user.id.to_string()))
            .unwrap()
            .id
    }

    /// What no page may hold: the connection's client secret.
    fn secret(&self) -> String {
        self.app.tenant(0).client_secret
    }
}

fn cookie_of(response: &reqwest::Response, name: &str) -> String {
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

fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn page_of(answer: reqwest::Response) -> Page {
    let status = answer.status();
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Page {
        status,
        location,
        text: answer.text().await.unwrap(),
    }
}

/// The text of the element marked `data-testid="{id}"`, tags removed.
fn marked<'a>(html: &'a str, id: &str) -> Option<String> {
    let marker = format!("data-testid=\"{id}\"");
    let at = html.find(&marker)?;
    let open_end = at + html[at..].find('>')? + 1;
    let rest: &'a str = &html[open_end..];
    let mut depth = 0usize;
    let mut text = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '<' {
            let tag = &rest[i..];
            if tag.starts_with("</") {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            } else if !tag.starts_with("<input") && !tag.starts_with("<br") {
                depth += 1;
            }
            for (_, c) in chars.by_ref() {
                if c == '>' {
                    break;
                }
            }
            continue;
        }
        text.push(c);
    }
    Some(
        text.replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_sets_the_store_beside_microsoft_365_and_says_when_it_cannot_reach_it() {
    let site = Site::start(6).await;
    let admin = site.admin().await;
    let viewer = site.viewer().await;
    let id = site.contact_of_user(2).await;

    let contact = site.get(&admin, &format!("/contacts/{id}")).await;
    assert!(
        contact
            .text
            .contains(&format!("href=\"/contacts/{id}/compare\"")),
        "the contact page links to Compare"
    );
    let same = site.get(&viewer, &format!("/contacts/{id}/compare")).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(
        marked(&same.text, "compare-summary").unwrap(),
        "The store holds what Microsoft 365 says now."
    );
    assert!(!same.text.contains("data-testid=\"differs\""));

    let tenant = site.app.tenant_key(0);
    assert!(site.app.sim.state.patch_user(
        &tenant,
        2,
        graph_sim::UserPatch {
            department: Some("Comparisons".into()),
            ..graph_sim::UserPatch::default()
        },
    ));
    let differs = site.get(&admin, &format!("/contacts/{id}/compare")).await;
    assert_eq!(differs.status, StatusCode::OK, "{}", differs.text);
    let summary = marked(&differs.text, "compare-summary").unwrap();
    assert!(summary.starts_with("1 field differs"), "{summary}");
    let row = marked(&differs.text, "differs").unwrap();
    assert!(row.contains("department"), "{row}");
    assert!(row.contains("Comparisons"), "{row}");
    assert_eq!(differs.text.matches("data-testid=\"differs\"").count(), 1);
    assert!(differs.text.contains("data-testid=\"compare-licenses\""));

    // Microsoft out of reach: the connection now points at a port nobody answers.
    let mut settings = settings_of(&site.app.store.connection("contoso").await.unwrap().unwrap());
    settings.cloud = domain::Cloud::custom("http://127.0.0.1:9", "http://127.0.0.1:9").unwrap();
    site.app
        .store
        .set_connection_settings("contoso", &settings)
        .await
        .unwrap();
    let unreachable = site.get(&admin, &format!("/contacts/{id}/compare")).await;
    assert_eq!(
        unreachable.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        unreachable.text
    );
    let problem = marked(&unreachable.text, "compare-problem").unwrap();
    assert!(
        problem.starts_with("Microsoft 365 could not be reached to read this user"),
        "{problem}"
    );
    assert!(problem.contains("contoso"), "{problem}");

    let missing = site.get(&admin, "/contacts/999999/compare").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for page in [&same, &differs, &unreachable, &missing] {
        assert!(!page.text.contains(&site.secret()));
    }
}

fn settings_of(c: &store::Connection) -> store::ConnectionSettings {
    store::ConnectionSettings {
        cloud: c.cloud.clone(),
        datasets: c.datasets.clone(),
        user_filter: c.user_filter.clone(),
        field_mapping: c.field_mapping.clone(),
        cache_lifetimes: domain::cache::CacheLifetimes::default(),
    }
}

/// The edit form's fields as the page fills them for the saved connection, to change a few.
fn edit_fields(site: &Site) -> Vec<(String, String)> {
    let datasets = ["organization", "users", "licenses", "groups"];
    let mut fields: Vec<(String, String)> = vec![
        ("cloud".into(), "custom".into()),
        ("login_url".into(), site.app.sim.url.clone()),
        ("graph_url".into(), site.app.sim.url.clone()),
    ];
    fields.extend(
        datasets
            .iter()
            .map(|d| ("datasets".to_string(), d.to_string())),
    );
    fields
}

fn as_refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_is_edited_from_its_page_and_a_bad_submit_changes_nothing() {
    let site = Site::start(4).await;
    let admin = site.admin().await;
    let viewer = site.viewer().await;
    let before = site.app.store.connection("contoso").await.unwrap().unwrap();

    let form = site.get(&admin, "/connections/contoso/edit").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(
        form.text
            .contains(&format!("value=\"{}\"", site.app.sim.url))
    );
    assert!(
        form.text.contains("data-testid=\"lifetime-mailboxes\" ")
            || form
                .text
                .contains("name=\"lifetime.mailboxes\" value=\"24h\"")
    );
    assert!(!form.text.contains(&site.secret()));

    // Every kind of mistake at once: each is named beside its field, and nothing is saved.
    let mut bad = edit_fields(&site);
    bad.retain(|(k, _)| k != "datasets");
    bad.extend([
        (
            "include_domains".to_string(),
            "contoso.com, not a domain".to_string(),
        ),
        ("lifetime.mailboxes".to_string(), "soon".to_string()),
        ("owner.department".to_string(), "microsoft_365".to_string()),
        ("custom.department".to_string(), "\u{7}".to_string()),
        ("schedule".to_string(), "whenever".to_string()),
        ("secret".to_string(), " ".to_string()),
        (
            "private_key".to_string(),
            "-----BEGIN PRIVATE KEY-----".to_string(),
        ),
    ]);
    let refused = site
        .post(&admin, "/connections/contoso/edit", &as_refs(&bad), true)
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    for field in [
        "error-datasets",
        "error-include-domains",
        "error-lifetime-mailboxes",
        "error-custom-department",
        "error-schedule",
        "error-certificate",
    ] {
        let text = marked(&refused.text, field)
            .unwrap_or_else(|| panic!("{field} is shown: {}", refused.text));
        assert!(!text.trim().is_empty(), "{field}");
    }
    assert!(
        marked(&refused.text, "error-include-domains")
            .unwrap()
            .contains("'not a domain' is not a domain")
    );
    assert!(
        marked(&refused.text, "error-certificate")
            .unwrap()
            .contains("without its certificate")
    );
    let summary = marked(&refused.text, "form-error").unwrap();
    for named in [
        "the domains to keep",
        "the schedule",
        "the cache lifetime of mailboxes",
        "the datasets",
    ] {
        assert!(summary.contains(named), "{named}: {summary}");
    }
    assert!(
        refused.text.contains("value=\"contoso.com, not a domain\""),
        "what was typed is kept"
    );
    assert!(refused.text.contains("value=\"whenever\""));
    let after = site.app.store.connection("contoso").await.unwrap().unwrap();
    assert_eq!(after.datasets, before.datasets);
    assert_eq!(after.user_filter, before.user_filter);
    assert_eq!(after.cloud, before.cloud);

    // A filter naming a licence the tenant has not: refused as `connection filter` refuses it.
    let mut unknown = edit_fields(&site);
    unknown.push(("skus".into(), "NO_SUCH_SKU".into()));
    let refused = site
        .post(
            &admin,
            "/connections/contoso/edit",
            &as_refs(&unknown),
            true,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        marked(&refused.text, "error-filter")
            .unwrap()
            .contains("NO_SUCH_SKU")
    );

    // A good submit: every setting lands.
    let mut good = edit_fields(&site);
    good.extend([
        ("enabled_only".to_string(), "1".to_string()),
        ("exclude_guests".to_string(), "1".to_string()),
        (
            "exclude_domains".to_string(),
            "@Contoso.OnMicrosoft.com".to_string(),
        ),
        ("owner.jobTitle".to_string(), "local".to_string()),
        ("owner.department".to_string(), "microsoft_365".to_string()),
        ("custom.department".to_string(), "Cost centre".to_string()),
        ("lifetime.mailboxes".to_string(), "12h".to_string()),
        ("lifetime.users".to_string(), "0".to_string()),
        ("schedule".to_string(), "every 6h".to_string()),
    ]);
    // The viewer and a form without its token change nothing.
    let as_viewer = site
        .post(&viewer, "/connections/contoso/edit", &as_refs(&good), true)
        .await;
    assert_eq!(as_viewer.status, StatusCode::FORBIDDEN);
    let tokenless = site
        .post(&admin, "/connections/contoso/edit", &as_refs(&good), false)
        .await;
    assert_eq!(tokenless.status, StatusCode::FORBIDDEN);
    assert_eq!(
        site.app
            .store
            .connection("contoso")
            .await
            .unwrap()
            .unwrap()
            .user_filter,
        before.user_filter
    );
    assert_eq!(
        site.get(&viewer, "/connections/contoso/edit").await.status,
        StatusCode::FORBIDDEN
    );

    let saved = site
        .post(&admin, "/connections/contoso/edit", &as_refs(&good), true)
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert!(saved.location.starts_with("/connections/contoso?notice="));
    let after = site.app.store.connection("contoso").await.unwrap().unwrap();
    assert_eq!(after.datasets.len(), 4);
    assert!(after.user_filter.enabled_only && after.user_filter.exclude_guests);
    assert_eq!(
        after.user_filter.exclude_domains,
        vec!["contoso.onmicrosoft.com"]
    );
    assert!(after.field_mapping.is_local("jobTitle"));
    assert_eq!(
        after.field_mapping.placement("department"),
        Some(&domain::mapping::Placement::Custom("Cost centre".into()))
    );
    let lifetimes = site.app.store.cache_lifetimes(after.id).await.unwrap();
    assert_eq!(lifetimes.lifetime(domain::Dataset::Mailboxes), 12 * 3600);
    let schedule = site
        .app
        .store
        .schedules()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.connection_id == after.id)
        .unwrap();
    assert!(schedule.schedule.is_some());
    assert!(schedule.next_run_at.is_some());
    // The secret was left as it was: the connection still syncs.
    let report = site.app.sync("contoso").await;
    assert_eq!(
        report.step(domain::Dataset::Users).unwrap().status,
        domain::StepStatus::Succeeded,
        "{report:?}"
    );

    // The form shows what was saved.
    let again = site.get(&admin, "/connections/contoso/edit").await;
    assert!(again.text.contains("value=\"contoso.onmicrosoft.com\""));
    assert!(
        again
            .text
            .contains("name=\"lifetime.mailboxes\" value=\"12h\"")
    );
    assert!(again.text.contains("value=\"Cost centre\""));
}

/// The `<select>` marked `data-testid="{id}"`, up to its end.
fn select_of<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("data-testid=\"{id}\""))
        .unwrap_or_else(|| panic!("{id} is on the page"));
    let rest = &html[at..];
    &rest[..rest.find("</select>").unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edit_form_shows_every_field_mapping_as_saved_and_an_unchanged_save_keeps_it() {
    let site = Site::start(2).await;
    let admin = site.admin().await;
    let before = site.app.store.connection("contoso").await.unwrap().unwrap();
    let mut settings = settings_of(&before);
    settings
        .field_mapping
        .set_custom("department", "Dept")
        .unwrap();
    settings.field_mapping.set_local("surname").unwrap();
    site.app
        .store
        .set_connection_settings("contoso", &settings)
        .await
        .unwrap();

    let form = site.get(&admin, "/connections/contoso/edit").await;
    assert_eq!(form.status, StatusCode::OK);
    // A custom field is still filled by Microsoft 365, so it shows as Microsoft 365's.
    assert!(
        select_of(&form.text, "owner-department").contains("value=\"microsoft_365\" selected"),
        "{}",
        select_of(&form.text, "owner-department")
    );
    assert!(
        form.text
            .contains("name=\"custom.department\" value=\"Dept\"")
    );
    assert!(select_of(&form.text, "owner-surname").contains("value=\"local\" selected"));

    // Sending back what the page shows changes nothing.
    let mut unchanged = edit_fields(&site);
    for field in domain::mapping::MAPPABLE {
        let (owner, custom) = match field {
            "department" => ("microsoft_365", "Dept"),
            "surname" => ("local", ""),
            _ => ("microsoft_365", ""),
        };
        unchanged.push((format!("owner.{field}"), owner.into()));
        unchanged.push((format!("custom.{field}"), custom.into()));
    }
    let saved = site
        .post(
            &admin,
            "/connections/contoso/edit",
            &as_refs(&unchanged),
            true,
        )
        .await;
    assert!(saved.status.is_redirection(), "{}", saved.text);
    let after = site.app.store.connection("contoso").await.unwrap().unwrap();
    assert_eq!(after.field_mapping, settings.field_mapping);

    // An owner the form never offers is refused beside its field, and nothing is saved.
    let mut forged = unchanged.clone();
    forged.push(("owner.jobTitle".into(), "attacker".into()));
    forged.retain(|(k, v)| !(k == "owner.jobTitle" && v == "microsoft_365"));
    let refused = site
        .post(&admin, "/connections/contoso/edit", &as_refs(&forged), true)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let beside =
        marked(&refused.text, "error-owner-jobTitle").expect("the error is beside jobTitle");
    assert!(beside.contains("'attacker'"), "{beside}");
    let after = site.app.store.connection("contoso").await.unwrap().unwrap();
    assert_eq!(after.field_mapping, settings.field_mapping);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notice_shows_only_when_this_server_wrote_it() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    let lure = "Your+session+expired.+Log+in+at+evil.example";
    let login = site
        .http
        .get(format!("{}/login?notice={lure}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let login = login.text().await.unwrap();
    assert!(login.contains("Log in") && !login.contains("evil.example"));
    for path in [
        format!("/connections?notice={lure}"),
        format!("/runs?notice={lure}"),
        format!("/tenants?notice={lure}"),
        format!("/settings?notice={lure}"),
        format!("/?notice={lure}"),
        // A seal copied from nowhere is no seal.
        format!("/connections?notice={lure}%7C{}", "0".repeat(64)),
    ] {
        let page = site.get(&admin, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.text.contains("evil.example"), "{path}");
        assert!(marked(&page.text, "notice").is_none(), "{path}");
    }

    // A change's own note still shows where it leads.
    let mut edit = edit_fields(&site);
    edit.push(("schedule".into(), String::new()));
    let saved = site
        .post(&admin, "/connections/contoso/edit", &as_refs(&edit), true)
        .await;
    assert!(saved.location.contains("notice="), "{}", saved.location);
    let after = site.get(&admin, &saved.location).await;
    assert!(marked(&after.text, "notice").is_some(), "{}", after.text);
    // Its words changed by hand are not shown.
    let tampered = saved.location.replacen("notice=", "notice=Pay+now+", 1);
    let forged = site.get(&admin, &tampered).await;
    assert!(marked(&forged.text, "notice").is_none());
}

/// Sends the login form as `client` does, with `next` as the form's hidden field.
async fn send_login(
    site: &Site,
    client: &reqwest::Client,
    name: &str,
    password: &str,
    next: &str,
) -> Page {
    let form = client
        .get(format!("{}/login", site.base))
        .send()
        .await
        .unwrap();
    let token = cookie_of(&form, "m365sync_form");
    let answer = client
        .post(format!("{}/login", site.base))
        .header("cookie", format!("m365sync_form={token}"))
        .form(&[
            ("csrf", token.as_str()),
            ("name", name),
            ("password", password),
            ("next", next),
        ])
        .send()
        .await
        .unwrap();
    page_of(answer).await
}

#[tokio::test(flavor = "multi_thread")]
async fn after_login_only_a_plain_path_of_this_server_is_followed() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    // A tab or line break is dropped by browsers: `/\t/evil.example` is `//evil.example`.
    for hostile in [
        "/%09/evil.example",
        "/%0A/evil.example",
        "/%0D/evil.example",
        "/%01x",
        "/%7Fx",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
        "/%5C/evil.example",
        "https://evil.example/",
    ] {
        // Logged in already: straight on, to the dashboard.
        let page = site.get(&admin, &format!("/login?next={hostile}")).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{hostile}: {}",
            page.text
        );
        assert_eq!(page.location, "/", "{hostile}");
        // Not logged in: the form carries the dashboard, not the hostile address.
        let form = site
            .http
            .get(format!("{}/login?next={hostile}", site.base))
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), StatusCode::OK, "{hostile}");
        let form = form.text().await.unwrap();
        assert!(
            form.contains(r#"name="next" value="/""#),
            "{hostile}: {form}"
        );
    }
    // The form's field sent as it is by a hand-made POST.
    for hostile in [
        "/\t/evil.example",
        "/\n/x",
        "/\r/x",
        "/\u{1}x",
        "/\u{7f}x",
        "/\\evil",
    ] {
        let page = send_login(&site, &site.http, "ana", ADMIN_PASSWORD, hostile).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{hostile:?}: {}",
            page.text
        );
        assert_eq!(page.location, "/", "{hostile:?}");
    }
    // A page of this server is still where the login leads.
    let page = send_login(&site, &site.http, "ana", ADMIN_PASSWORD, "/runs?page=2").await;
    assert_eq!(page.location, "/runs?page=2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stranger_guessing_the_admin_password_locks_out_only_themselves() {
    let site = Site::start(1).await;
    // Another client address on the loopback network (Linux answers all of 127.0.0.0/8).
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    for name in ["ana", "ANA", " ana ", "Ana", "ana"] {
        let page = send_login(&site, &stranger, name, "a wrong guess!!", "/").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{name:?}");
    }
    // The brute-forcer is refused, even with the right password.
    let refused = send_login(&site, &stranger, "ana", ADMIN_PASSWORD, "/").await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.text
    );
    assert!(refused.text.contains("Try again in"), "{}", refused.text);
    // The admin, at another address, still logs in.
    let admin = send_login(&site, &site.http, "ana", ADMIN_PASSWORD, "/").await;
    assert_eq!(admin.status, StatusCode::SEE_OTHER, "{}", admin.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notice_shows_only_on_the_page_it_was_written_for_and_not_for_long() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    let mut edit = edit_fields(&site);
    edit.push(("schedule".into(), String::new()));
    let saved = site
        .post(&admin, "/connections/contoso/edit", &as_refs(&edit), true)
        .await;
    let (path, query) = saved.location.split_once('?').unwrap();
    assert_eq!(path, "/connections/contoso");
    let own = site.get(&admin, &saved.location).await;
    assert!(marked(&own.text, "notice").is_some(), "{}", own.text);
    // The same sealed notice on any other page shows nothing.
    for other in ["/", "/connections", "/tenants", "/settings", "/runs"] {
        let page = site.get(&admin, &format!("{other}?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{other}");
        assert!(marked(&page.text, "notice").is_none(), "{other}: {query}");
    }
    let login = site
        .http
        .get(format!("{}/login?{query}", site.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(marked(&login, "notice").is_none());
    // The seal carries its expiry, 10 minutes ahead; moving it, later or earlier, breaks it.
    let sealed: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let sealed = &sealed.iter().find(|(k, _)| k == "notice").unwrap().1;
    let mut parts: Vec<&str> = sealed.rsplitn(3, '|').collect();
    parts.reverse();
    let [text, expires, seal] = parts[..] else {
        panic!("text|expiry|seal: {sealed}")
    };
    let expires: u64 = expires.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 9 * 60..=now + 10 * 60 + 5).contains(&expires),
        "{expires} against {now}"
    );
    for moved in [expires + 365 * 86_400, now - 1] {
        let forged = format!("{text}|{moved}|{seal}");
        let page = site
            .get(
                &admin,
                &format!(
                    "{path}?{}",
                    serde_urlencoded::to_string([("notice", forged.as_str())]).unwrap()
                ),
            )
            .await;
        assert!(marked(&page.text, "notice").is_none(), "{forged}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_a_page_cannot_read_gets_the_error_page_in_words() {
    let site = Site::start(1).await;
    let viewer = site.viewer().await;
    let tenant = domain::TenantId::parse(&site.app.tenant_key(0)).unwrap();
    let org = site
        .app
        .store
        .organization_for_tenant(&tenant)
        .await
        .unwrap()
        .unwrap()
        .id;
    // A value the page does not know is named with the ones it takes, not shown as another.
    for (path, named) in [
        (
            "/runs/1?outcome=bogus".to_string(),
            "'bogus' is not a value of 'outcome'",
        ),
        (
            format!("/organizations/{org}?sort=evil"),
            "'evil' is not a value of 'sort'",
        ),
        (
            format!("/organizations/{org}?dir=sideways"),
            "'sideways' is not a value of 'dir'",
        ),
        (
            format!("/organizations/{org}?only=bogus"),
            "'bogus' is not a value of 'only'",
        ),
    ] {
        let page = site.get(&viewer, &path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        // The page escapes quotes, so compare the words as the page shows them.
        let named = named.replace('\'', "&#39;");
        assert!(page.text.contains(&named), "{path}: {}", page.text);
    }
    for path in [
        "/runs/1?outcome=created".to_string(),
        format!("/organizations/{org}?sort=upn&dir=desc&only=licensed"),
        format!("/organizations/{org}?q=&only=&sort=&dir="),
    ] {
        let page = site.get(&viewer, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
    }
    for path in [
        "/runs/1?page=2&page=3",
        "/organizations?page=1&page=2",
        "/tenants?state=new&state=matched",
    ] {
        let page = site.get(&viewer, path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.text.contains("<html"), "{path}: {}", page.text);
        assert!(page.text.contains("is given more than once"), "{path}");
        assert!(!page.text.contains("Failed to deserialize"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_tenant_state_or_connection_is_named_not_shown_as_an_empty_list() {
    let site = Site::start(1).await;
    let viewer = site.viewer().await;
    let state = site.get(&viewer, "/tenants?state=bogus").await;
    assert_eq!(state.status, StatusCode::BAD_REQUEST, "{}", state.text);
    assert!(
        state
            .text
            .contains("&#39;bogus&#39; is not a value of &#39;state&#39;"),
        "{}",
        state.text
    );
    for allowed in ["unmatched", "suggested", "matched", "ignored"] {
        assert!(state.text.contains(allowed), "{allowed}: {}", state.text);
    }
    for path in ["/tenants?state=matched", "/tenants?state="] {
        assert_eq!(
            site.get(&viewer, path).await.status,
            StatusCode::OK,
            "{path}"
        );
    }

    let runs = site.get(&viewer, "/runs?connection=nonexistent").await;
    assert_eq!(runs.status, StatusCode::NOT_FOUND, "{}", runs.text);
    assert!(
        runs.text
            .contains("No connection is named &#39;nonexistent&#39;"),
        "{}",
        runs.text
    );
    let own = site.get(&viewer, "/runs?connection=contoso").await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.text.contains("/runs/1"), "{}", own.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_the_command_line_also_takes_names_the_command_when_it_fails() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    let lone = site
        .app
        .store
        .create_organization("Lone Shop")
        .await
        .unwrap();
    let report = site
        .get(&admin, &format!("/organizations/{lone}/report.html"))
        .await;
    assert_eq!(report.status, StatusCode::CONFLICT, "{}", report.text);
    assert!(
        report.text.contains(&format!(
            "Or run `m365sync match TENANT --organization {lone}` on the server."
        )),
        "{}",
        report.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_or_method_a_page_cannot_take_gets_the_error_page() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    // Percent-encoded bytes that are no UTF-8 text: our page, in words, not the framework's.
    for path in [
        "/organizations/%FF",
        "/connections/%FF/edit",
        "/contacts/%C3%28",
        "/runs/%FF",
    ] {
        let page = site.get(&admin, path).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.text
        );
        assert!(page.text.contains("<html"), "{path}: {}", page.text);
        assert!(page.text.contains("UTF-8"), "{path}: {}", page.text);
        assert!(!page.text.contains("Invalid URL"), "{path}: {}", page.text);
    }

    // A method no page takes: our page, with the methods the address does take.
    for (method, path, allowed) in [
        (reqwest::Method::PUT, "/connections", "POST"),
        (reqwest::Method::DELETE, "/connections/contoso", "GET"),
        (reqwest::Method::PATCH, "/settings", "GET"),
    ] {
        let answer = site
            .http
            .request(method.clone(), format!("{}{path}", site.base))
            .header("cookie", &admin.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let allow = answer.headers()["allow"].to_str().unwrap().to_string();
        assert!(allow.contains(allowed), "{method} {path}: {allow}");
        let text = answer.text().await.unwrap();
        assert!(text.contains("<html"), "{method} {path}: {text}");
        assert!(text.contains(method.as_str()), "{method} {path}: {text}");
    }
    let contoso = site.app.store.connection("contoso").await.unwrap();
    assert!(contoso.is_some(), "a DELETE changed nothing");

    // GET on the address a form is sent to (a reload, a copied link) leads to the form's page
    // and does nothing.
    let runs_before = site.app.store.runs(None, 100).await.unwrap().len();
    for (path, page) in [
        ("/connections/contoso/sync", "/connections/contoso"),
        ("/connections/contoso/test", "/connections/contoso"),
        ("/runs/1/cancel", "/runs/1"),
        ("/tenants/some-tenant", "/tenants"),
        ("/review/1", "/review"),
        ("/settings/tokens", "/settings"),
        ("/settings/users/1/delete", "/settings"),
    ] {
        let answer = site.get(&admin, path).await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{path}: {}",
            answer.text
        );
        assert!(
            answer.location.starts_with(&format!("{page}?notice=")),
            "{path}: {}",
            answer.location
        );
        let shown = site.get(&admin, &answer.location).await;
        assert_eq!(shown.status, StatusCode::OK, "{path}");
        assert!(
            marked(&shown.text, "notice").is_some_and(|n| n.contains("nothing was changed")),
            "{path}: {}",
            shown.text
        );
    }
    assert_eq!(
        site.app.store.runs(None, 100).await.unwrap().len(),
        runs_before,
        "a GET queued no run"
    );
    assert_eq!(site.app.store.app_users().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_search_with_nul_and_a_typed_logout_address_get_pages() {
    let site = Site::start(3).await;
    let viewer = site.viewer().await;
    let tenant = domain::TenantId::parse(&site.app.tenant_key(0)).unwrap();
    let org = site
        .app
        .store
        .organization_for_tenant(&tenant)
        .await
        .unwrap()
        .unwrap()
        .id;
    for path in [
        format!("/organizations/{org}?q=a%00b"),
        format!("/organizations/{org}/audit?q=a%00b"),
    ] {
        let page = site.get(&viewer, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
    }

    let logout = site.get(&viewer, "/logout").await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER, "{}", logout.text);
    let pointed = site.get(&viewer, &logout.location).await;
    assert!(
        marked(&pointed.text, "notice").is_some_and(|n| n.contains("Log out button")),
        "{}",
        pointed.text
    );
    // A GET does not end the session: another site's link cannot log a person out.
    assert_eq!(site.get(&viewer, "/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organisation_made_from_a_tenant_needs_a_new_checked_name() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    let tenant = site.app.tenant_key(0);
    let path = format!("/tenants/{tenant}");
    let unmatched = site
        .post(&admin, &path, &[("action", "unmatch")], true)
        .await;
    assert_eq!(
        unmatched.status,
        StatusCode::SEE_OTHER,
        "{}",
        unmatched.text
    );
    let organizations = site.app.store.organizations().await.unwrap().len();

    // An emptied box is a question, not the tenant's name (which its first sync took).
    for blank in ["", "   ", "\u{200B}"] {
        let empty = site
            .post(
                &admin,
                &path,
                &[("action", "create"), ("name", blank)],
                true,
            )
            .await;
        assert_eq!(
            empty.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            empty.text
        );
        assert!(
            empty.text.contains("give the organisation a name"),
            "{}",
            empty.text
        );
        assert!(!empty.text.contains("exists already"), "{}", empty.text);
    }
    let own = site.app.tenant(0).display_name;
    let doubled = format!(" {}\u{200B} ", own.to_uppercase().replace(' ', "  "));
    let taken = site
        .post(
            &admin,
            &path,
            &[("action", "create"), ("name", &doubled)],
            true,
        )
        .await;
    assert_eq!(
        taken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        taken.text
    );
    assert!(taken.text.contains("exists already"), "{}", taken.text);
    let long = "n".repeat(201);
    for (name, says) in [
        (long.as_str(), "more than 200"),
        ("Fresh\u{0}Co", "control character"),
    ] {
        let refused = site
            .post(&admin, &path, &[("action", "create"), ("name", name)], true)
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.text.contains(says), "{says}: {}", refused.text);
    }
    assert_eq!(
        site.app.store.organizations().await.unwrap().len(),
        organizations,
        "nothing was made"
    );

    let made = site
        .post(
            &admin,
            &path,
            &[("action", "create"), ("name", "Fresh Co")],
            true,
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    let shown = site.get(&admin, &made.location).await;
    let notice = marked(&shown.text, "notice").unwrap();
    assert!(notice.contains("with its next sync"), "{notice}");

    // A name stored before names were checked, of any length, still makes a short header.
    site.app
        .store
        .decide_tenant(&tenant, &store::TenantChoice::Create("Å".repeat(40_000)))
        .await
        .unwrap();
    let tenant_id = domain::TenantId::parse(&tenant).unwrap();
    let org = site
        .app
        .store
        .organization_for_tenant(&tenant_id)
        .await
        .unwrap()
        .unwrap();
    let report = site
        .http
        .get(format!(
            "{}/organizations/{}/report.html",
            site.base, org.id
        ))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    let disposition = report.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.len() < 1024, "{} bytes", disposition.len());
    assert!(
        disposition.contains("filename*=UTF-8''report-%C3%A5%C3%A5"),
        "{disposition}"
    );
}

/// The "match to" box offers organisations as a person types, a few at a time from the store,
/// and matches by a name typed in any case.
#[tokio::test(flavor = "multi_thread")]
async fn match_to_offers_organisations_as_a_person_types() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    for n in 0..60 {
        site.app
            .store
            .create_organization(&format!("Client {n:02}"))
            .await
            .unwrap();
    }
    let wanted = site
        .app
        .store
        .create_organization("Ålborg Havn")
        .await
        .unwrap();
    let tenants = site.get(&admin, "/tenants").await;
    let offered = tenants.text.matches("<option value=").count();
    assert_eq!(offered, 50, "a first few, not every name");
    let typed = site
        .get(
            &admin,
            "/tenants/organization-options?organization=%C3%A5LBORG",
        )
        .await;
    assert_eq!(typed.status, StatusCode::OK, "{}", typed.text);
    assert!(
        typed.text.starts_with("<datalist id=\"organizations\""),
        "{}",
        typed.text
    );
    assert_eq!(
        typed.text.matches("<option value=").count(),
        1,
        "{}",
        typed.text
    );
    assert!(typed.text.contains("Ålborg Havn"), "{}", typed.text);

    let tenant = site.app.tenant_key(0);
    let path = format!("/tenants/{tenant}");
    let matched = site
        .post(
            &admin,
            &path,
            &[("action", "link"), ("organization", "ålborg havn")],
            true,
        )
        .await;
    assert_eq!(matched.status, StatusCode::SEE_OTHER, "{}", matched.text);
    let tenant_id = domain::TenantId::parse(&tenant).unwrap();
    let org = site
        .app
        .store
        .organization_for_tenant(&tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.id, wanted);
}

/// The options of a `<datalist>`: (value, data-id) of each.
fn options_of(html: &str) -> Vec<(String, String)> {
    html.split("<option value=\"")
        .skip(1)
        .map(|rest| {
            let value = rest.split('"').next().unwrap().to_string();
            let id = rest
                .split("data-id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_string();
            (value, id)
        })
        .collect()
}

/// "Match to" sends a name, an accepted suggestion an id: an organisation named "1" is never
/// taken for organisation 1, and the page and the list it fetches agree.
#[tokio::test(flavor = "multi_thread")]
async fn match_to_reads_a_name_as_a_name_and_a_suggestion_by_its_id() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    let tenant = site.app.tenant_key(0);
    let tenant_id = domain::TenantId::parse(&tenant).unwrap();
    let first = site
        .app
        .store
        .organization_for_tenant(&tenant_id)
        .await
        .unwrap()
        .unwrap();
    let named_one = site.app.store.create_organization("1").await.unwrap();
    let numbered = named_one.to_string();
    assert_ne!(first.name, numbered);
    // The first organisation's id, typed as a name, is not that organisation.
    let first_id = first.id.to_string();
    assert_ne!(first_id, numbered);

    // The page and the fragment offer the same thing: the name as the value, the id beside it.
    let page = site.get(&admin, "/tenants").await;
    let fragment = site
        .get(&admin, "/tenants/organization-options?organization=1")
        .await;
    let in_page = options_of(&page.text);
    let in_fragment = options_of(&fragment.text);
    assert!(
        in_page.contains(&("1".to_string(), numbered.clone())),
        "{in_page:?}"
    );
    assert!(
        in_page.contains(&(first.name.clone(), first_id.clone())),
        "{in_page:?}"
    );
    assert_eq!(in_fragment, vec![("1".to_string(), numbered.clone())]);

    let path = format!("/tenants/{tenant}");
    let matched = site
        .post(
            &admin,
            &path,
            &[("action", "link"), ("organization", "1")],
            true,
        )
        .await;
    assert_eq!(matched.status, StatusCode::SEE_OTHER, "{}", matched.text);
    let now = site
        .app
        .store
        .organization_for_tenant(&tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.id, named_one, "matched to the organisation named 1");

    // An id typed in the box is no name.
    let by_number = site
        .post(
            &admin,
            &path,
            &[("action", "link"), ("organization", &first_id)],
            true,
        )
        .await;
    if first_id != "1" {
        assert_eq!(by_number.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            by_number.text.contains("No organisation is named"),
            "{}",
            by_number.text
        );
    }
    // The id field, as an accepted suggestion sends it, finds by id.
    let accepted = site
        .post(
            &admin,
            &path,
            &[("action", "link"), ("organization_id", &first_id)],
            true,
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.text);
    let now = site
        .app
        .store
        .organization_for_tenant(&tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.id, first.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_new_connection_form_shows_every_mistake_beside_its_field_at_once() {
    let site = Site::start(1).await;
    let admin = site.admin().await;
    let before = site.app.store.connections().await.unwrap().len();
    let refused = site
        .post(
            &admin,
            "/connections",
            &[
                ("name", ""),
                ("tenant_id", "not a tenant"),
                ("client_id", "nor a client"),
                ("cloud", "custom"),
                ("login_url", "ftp://nowhere"),
                ("graph_url", ""),
                ("schedule", "whenever"),
            ],
            true,
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    for field in [
        "error-name",
        "error-tenant-id",
        "error-client-id",
        "error-cloud",
        "error-datasets",
        "error-secret",
        "error-schedule",
    ] {
        let text = marked(&refused.text, field)
            .unwrap_or_else(|| panic!("{field} is shown: {}", refused.text));
        assert!(!text.trim().is_empty(), "{field}");
    }
    assert!(!refused.text.contains("--login-url") && !refused.text.contains("--graph-url"));
    assert_eq!(site.app.store.connections().await.unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_replaces_the_secret_from_the_edit_page() {
    let site = Site::start(3).await;
    let admin = site.admin().await;
    let tenant = site.app.tenant_key(0);
    let issued = site
        .app
        .sim
        .state
        .add_certificate(&tenant, -1, 20)
        .unwrap()
        .unwrap();
    let mut fields = edit_fields(&site);
    fields.retain(|(k, _)| k != "datasets");
    fields.extend(
        site.app
            .store
            .connection("contoso")
            .await
            .unwrap()
            .unwrap()
            .datasets
            .iter()
            .map(|d| ("datasets".to_string(), d.name().to_string())),
    );
    // The certificate alone lacks its key: refused beside the field, nothing saved.
    let mut alone = fields.clone();
    alone.push(("certificate".into(), issued.certificate_pem.clone()));
    let refused = site
        .post(&admin, "/connections/contoso/edit", &as_refs(&alone), true)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        marked(&refused.text, "error-certificate")
            .unwrap()
            .contains("private key")
    );
    assert!(
        !refused.text.contains("BEGIN CERTIFICATE-----\n"),
        "the PEM is not sent back"
    );
    assert!(
        site.app
            .store
            .connection("contoso")
            .await
            .unwrap()
            .unwrap()
            .certificate
            .is_none()
    );

    fields.push(("certificate".into(), issued.certificate_pem.clone()));
    fields.push(("private_key".into(), issued.private_key_pem.clone()));
    let saved = site
        .post(&admin, "/connections/contoso/edit", &as_refs(&fields), true)
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let connection = site.app.store.connection("contoso").await.unwrap().unwrap();
    assert_eq!(
        connection.certificate.unwrap().thumbprint,
        issued.thumbprint
    );
    let shown = site.get(&admin, "/connections/contoso").await;
    assert!(
        marked(&shown.text, "credential-state")
            .unwrap()
            .contains(&issued.thumbprint)
    );
    let key_body: String = issued
        .private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .take(1)
        .collect();
    for path in [
        "/connections/contoso",
        "/connections/contoso/edit",
        "/connections",
    ] {
        let page = site.get(&admin, path).await;
        assert!(
            !page.text.contains(&key_body),
            "{path} holds the private key"
        );
        assert!(
            !page.text.contains(&site.secret()),
            "{path} holds the old secret"
        );
    }
    let report = site.app.sync("contoso").await;
    assert_eq!(
        report.step(domain::Dataset::Users).unwrap().status,
        domain::StepStatus::Succeeded,
        "the certificate signs in: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_are_made_shown_once_listed_and_revoked_from_settings() {
    let site = Site::start(2).await;
    let admin = site.admin().await;
    let viewer = site.viewer().await;

    let as_viewer = site
        .post(
            &viewer,
            "/settings/tokens",
            &[("name", "grafana"), ("role", "viewer")],
            true,
        )
        .await;
    assert_eq!(as_viewer.status, StatusCode::FORBIDDEN);
    let tokenless = site
        .post(
            &admin,
            "/settings/tokens",
            &[("name", "grafana"), ("role", "viewer")],
            false,
        )
        .await;
    assert_eq!(tokenless.status, StatusCode::FORBIDDEN);
    assert!(site.app.store.api_tokens().await.unwrap().is_empty());

    let unnamed = site
        .post(
            &admin,
            "/settings/tokens",
            &[("name", "  "), ("role", "viewer")],
            true,
        )
        .await;
    assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        marked(&unnamed.text, "token-error")
            .unwrap()
            .contains("is not a token name")
    );

    let made = site
        .post(
            &admin,
            "/settings/tokens",
            &[("name", "grafana"), ("role", "viewer")],
            true,
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    let secret = marked(&made.text, "issued-secret").unwrap();
    assert!(secret.starts_with("m365s_"), "{secret}");
    let api = |token: String| {
        let http = site.http.clone();
        let url = format!("{}/api/v1/organizations", site.base);
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(api(secret.clone()).await, StatusCode::OK);

    let twice = site
        .post(
            &admin,
            "/settings/tokens",
            &[("name", "Grafana"), ("role", "admin")],
            true,
        )
        .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(marked(&twice.text, "token-error").is_some());

    // Listed, never shown again, to an admin or a viewer.
    for session in [&admin, &viewer] {
        let listed = site.get(session, "/settings").await;
        assert!(marked(&listed.text, "tokens").unwrap().contains("grafana"));
        assert!(!listed.text.contains(&secret));
        assert!(!listed.text.contains("data-testid=\"issued-secret\""));
    }
    assert!(
        !site
            .get(&viewer, "/settings")
            .await
            .text
            .contains("data-testid=\"revoke-token\"")
    );

    let as_viewer = site
        .post(
            &viewer,
            "/settings/tokens/revoke",
            &[("name", "grafana")],
            true,
        )
        .await;
    assert_eq!(as_viewer.status, StatusCode::FORBIDDEN);
    assert_eq!(api(secret.clone()).await, StatusCode::OK);
    let revoked = site
        .post(
            &admin,
            "/settings/tokens/revoke",
            &[("name", "grafana")],
            true,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(api(secret.clone()).await, StatusCode::UNAUTHORIZED);
    let listed = site.get(&admin, "/settings").await;
    assert!(marked(&listed.text, "tokens").unwrap().contains("revoked"));
    let again = site
        .post(
            &admin,
            "/settings/tokens/revoke",
            &[("name", "grafana")],
            true,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

/// How many rows the table marked `data-testid="{id}"` has in its body.
fn rows_of(html: &str, id: &str) -> usize {
    let marker = format!("data-testid=\"{id}\"");
    let Some(at) = html.find(&marker) else {
        return 0;
    };
    let table = &html[at..];
    let end = table.find("</table>").unwrap_or(table.len());
    table[..end].matches("<tr>").count() - 1
}

#[tokio::test(flavor = "multi_thread")]
async fn long_lists_come_in_numbered_pages() {
    let site = Site::start(130).await;
    let viewer = site.viewer().await;
    for n in 0..55 {
        site.app
            .store
            .create_organization(&format!("Client {n:02}"))
            .await
            .unwrap();
    }
    let first = site.get(&viewer, "/organizations").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(rows_of(&first.text, "organizations"), 50);
    assert!(first.text.contains("href=\"/organizations?page=2\""));
    assert_eq!(marked(&first.text, "page-current").unwrap(), "1");
    let second = site.get(&viewer, "/organizations?page=2").await;
    assert_eq!(rows_of(&second.text, "organizations"), 6);
    assert_eq!(marked(&second.text, "page-current").unwrap(), "2");
    assert!(second.text.contains("Client 54") && !first.text.contains("Client 54"));
    let unreadable = site.get(&viewer, "/organizations?page=many").await;
    assert_eq!(rows_of(&unreadable.text, "organizations"), 50);

    // The first run created every user: its records come a hundred at a time.
    let run = site.app.store.runs(None, 1).await.unwrap()[0].id;
    let created = site
        .app
        .store
        .run_records(run, Some(store::RecordOutcome::Created))
        .await
        .unwrap()
        .len();
    assert!(created > 100, "{created}");
    let records = site
        .get(&viewer, &format!("/runs/{run}?outcome=created"))
        .await;
    assert_eq!(rows_of(&records.text, "records"), 100);
    assert!(
        records
            .text
            .contains(&format!("href=\"/runs/{run}?outcome=created&#38;page=2\"")),
        "the next page keeps the outcome"
    );
    let rest = site
        .get(&viewer, &format!("/runs/{run}?outcome=created&page=2"))
        .await;
    assert_eq!(rows_of(&rest.text, "records"), created - 100);

    // Audit activity: the search narrows, the count says how many match.
    let tenant = domain::TenantId::parse(&site.app.tenant_key(0)).unwrap();
    let org = site
        .app
        .store
        .organization_for_tenant(&tenant)
        .await
        .unwrap()
        .unwrap()
        .id;
    let audit = site
        .get(&viewer, &format!("/organizations/{org}/audit"))
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    let (_, total) = site.app.store.audit_page(&tenant, "", 0, 1).await.unwrap();
    assert!(audit.text.contains(&format!("{total} record")), "{total}");
    assert_eq!(rows_of(&audit.text, "audit") as i64, total.min(100));
    let none = site
        .get(
            &viewer,
            &format!("/organizations/{org}/audit?q=no+such+thing"),
        )
        .await;
    assert!(none.text.contains("data-testid=\"audit-empty\""));

    for path in [
        "/tenants",
        "/tenants?state=matched&page=3",
        "/review?page=2",
    ] {
        let page = site.get(&viewer, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
    }
}

/// A page number far past the end (even the largest number there is) shows the last page, never
/// a panic, and never a count beside an empty table.
#[tokio::test(flavor = "multi_thread")]
async fn a_page_past_the_end_shows_the_last_page() {
    let site = Site::start(120).await;
    let viewer = site.viewer().await;
    for n in 0..55 {
        site.app
            .store
            .create_organization(&format!("Client {n:02}"))
            .await
            .unwrap();
    }
    let tenant = domain::TenantId::parse(&site.app.tenant_key(0)).unwrap();
    let org = site
        .app
        .store
        .organization_for_tenant(&tenant)
        .await
        .unwrap()
        .unwrap()
        .id;
    let huge = i64::MAX;
    let contacts = site
        .get(&viewer, &format!("/organizations/{org}?page={huge}"))
        .await;
    assert_eq!(contacts.status, StatusCode::OK, "{}", contacts.text);
    let total = site
        .app
        .store
        .search_contacts(&store::ContactSearch {
            organization_id: Some(org),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .1;
    let last_page = (total + 49) / 50;
    let shown_on_last = total - (last_page - 1) * 50;
    assert_eq!(rows_of(&contacts.text, "contacts") as i64, shown_on_last);
    assert_eq!(
        marked(&contacts.text, "page-current").unwrap(),
        last_page.to_string()
    );
    assert!(
        contacts
            .text
            .contains(&format!("showing {}–{total}", (last_page - 1) * 50 + 1)),
        "{}",
        marked(&contacts.text, "contact-count").unwrap_or_default()
    );

    let organizations = site
        .get(&viewer, &format!("/organizations?page={huge}"))
        .await;
    assert_eq!(organizations.status, StatusCode::OK);
    assert_eq!(marked(&organizations.text, "page-current").unwrap(), "2");
    assert!(rows_of(&organizations.text, "organizations") > 0);

    let run = site.app.store.runs(None, 1).await.unwrap()[0].id;
    let records = site
        .get(&viewer, &format!("/runs/{run}?outcome=created&page={huge}"))
        .await;
    assert_eq!(records.status, StatusCode::OK);
    let created = site
        .app
        .store
        .run_records(run, Some(store::RecordOutcome::Created))
        .await
        .unwrap()
        .len();
    assert_eq!(rows_of(&records.text, "records"), (created - 1) % 100 + 1);

    let audit = site
        .get(&viewer, &format!("/organizations/{org}/audit?page={huge}"))
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(!audit.text.contains("data-testid=\"audit-empty\""));

    for path in [
        format!("/tenants?page={huge}"),
        format!("/review?page={huge}"),
    ] {
        let page = site.get(&viewer, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organisation_shows_its_software_waste_and_trends_and_hands_over_its_report() {
    let site = Site::start(20).await;
    let viewer = site.viewer().await;
    // A second sync after a change: two snapshots to draw a line through.
    let tenant_key = site.app.tenant_key(0);
    site.app.sim.state.add_user(&tenant_key).unwrap();
    site.app.clear_cache("contoso").await;
    site.app.sync("contoso").await;
    let tenant = domain::TenantId::parse(&tenant_key).unwrap();
    let org = site
        .app
        .store
        .organization_for_tenant(&tenant)
        .await
        .unwrap()
        .unwrap();

    let software = site
        .get(&viewer, &format!("/organizations/{}/software", org.id))
        .await;
    assert_eq!(software.status, StatusCode::OK, "{}", software.text);
    let products = site
        .app
        .store
        .software_products(Some(&tenant))
        .await
        .unwrap();
    let matched: Vec<_> = products.iter().filter(|p| p.product.matched).collect();
    assert!(!matched.is_empty(), "the simulator's devices run software");
    assert_eq!(rows_of(&software.text, "software-products"), {
        let mut names: Vec<&str> = matched.iter().map(|p| p.product.product.as_str()).collect();
        names.sort();
        names.dedup();
        names.len()
    });
    let first = &matched[0].product;
    let table = marked(&software.text, "software-products").unwrap();
    assert!(table.contains(&first.product), "{table}");
    if let Some(latest) = &first.latest_version {
        assert!(table.contains(latest.as_str()), "{table}");
    }

    let waste = site
        .get(&viewer, &format!("/organizations/{}/waste", org.id))
        .await;
    assert_eq!(waste.status, StatusCode::OK, "{}", waste.text);
    let tenants = site.app.store.tenants(None).await.unwrap();
    let expected = sync::report::waste_of(
        &site.app.store,
        &tenants,
        &domain::waste::PriceList::default(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(rows_of(&waste.text, "waste-seats"), expected.seats.len());
    assert_eq!(
        rows_of(&waste.text, "waste-findings"),
        expected.findings.len()
    );
    assert!(
        !expected.findings.is_empty(),
        "the simulated tenant wastes something"
    );

    let trends = site
        .get(&viewer, &format!("/organizations/{}/trends", org.id))
        .await;
    assert_eq!(trends.status, StatusCode::OK, "{}", trends.text);
    assert!(trends.text.contains("<svg") && trends.text.contains("<polyline"));
    assert!(
        trends.text.contains("2 snapshot(s)"),
        "two syncs, two snapshots"
    );

    let report = site
        .http
        .get(format!(
            "{}/organizations/{}/report.html",
            site.base, org.id
        ))
        .header("cookie", &viewer.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    let disposition = report
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"report-")
            && disposition.contains(".html\"; filename*=UTF-8''report-")
            && disposition.ends_with(".html"),
        "{disposition}"
    );
    let html = report.text().await.unwrap();
    assert!(html.contains(&org.name) && html.contains("<svg"));
    for page in [&software.text, &waste.text, &trends.text, &html] {
        assert!(!page.contains(&site.secret()));
    }
    let unlinked = site
        .app
        .store
        .create_organization("Nobody Yet")
        .await
        .unwrap();
    let refused = site
        .get(&viewer, &format!("/organizations/{unlinked}/report.html"))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.text.contains("not linked to a tenant"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_counts_what_waits_for_a_decision() {
    let site = Site::start(3).await;
    let viewer = site.viewer().await;
    let calm = site.get(&viewer, "/").await;
    assert!(!calm.text.contains("await a decision"), "{}", calm.text);
    site.app
        .store
        .decide_tenant(&site.app.tenant_key(0), &store::TenantChoice::Unmatch)
        .await
        .unwrap();
    let waiting = site.get(&viewer, "/").await;
    assert!(
        waiting
            .text
            .contains("1 tenant(s) await a decision on their organisation."),
        "{}",
        waiting.text
    );
    let tenants = site.get(&viewer, "/tenants").await;
    // Undone, the rules only suggest: the tenant waits as unmatched or suggested.
    let waiting_tabs = [
        marked(&tenants.text, "tab-unmatched").unwrap(),
        marked(&tenants.text, "tab-suggested").unwrap(),
    ];
    assert_eq!(
        waiting_tabs.iter().filter(|t| t.ends_with("(1)")).count(),
        1,
        "{waiting_tabs:?}"
    );
    assert!(marked(&tenants.text, "tab-all").unwrap().ends_with("(1)"));
    assert!(tenants.text.contains(&site.app.tenant_key(0)));
}
