//! Delegated accounts through the pages and the API, against the simulator: connect (the test
//! plays the browser on the simulator's sign-in page), list, free slots, book, move, cancel and
//! remove; a tampered state, a replayed answer, a replayed code, another session's answer and a
//! declined consent each refused in words with the fix; a viewer reads but changes nothing; and
//! no page or API answer ever holds a token.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use store::{ApiRole, AppRole};
use testkit::TestApp;

/// What no answer may ever contain: the simulator's refresh tokens start `1.AR`, codes `1.AQ`,
/// access and id tokens are JWTs (`eyJ…` header, a dot, `…` payload, a dot). A JWT is told by
/// its shape: a random CSRF token or request id may well hold the letters `eyJ`.
fn assert_no_token(what: &str, text: &str) {
    for marker in ["1.AR", "1.AQ"] {
        assert!(
            !text.contains(marker),
            "{what}: a token leaked ({marker}): {text}"
        );
    }
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    for (at, _) in text.match_indices("eyJ") {
        let mut parts = text[at..].split('.');
        let header = parts.next().unwrap_or_default();
        let payload = parts.next();
        let looks_like_jwt = header.chars().all(base64url)
            && payload.is_some_and(|p| p.len() > 3 && p.chars().all(base64url))
            && parts.next().is_some();
        assert!(!looks_like_jwt, "{what}: a JWT leaked: {text}");
    }
}

struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

/// The server and a simulator, with a connection, an admin and a viewer logged in.
struct Site {
    app: TestApp,
    base: String,
    http: reqwest::Client,
    admin: Session,
    viewer: Session,
    person: String,
    second_person: String,
}

#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

async fn session(store: &store::Store, name: &str, role: AppRole) -> Session {
    let user = store
        .create_app_user(
            name,
            &web::hash_password("a long enough password").unwrap(),
            role,
        )
        .await
        .unwrap();
    let token = web::auth::random_token();
    let csrf = web::auth::random_token();
    store
        .create_app_session(
            &web::auth::token_hash(&token),
            user.id,
            &csrf,
            web::auth::SESSION_TIMES,
        )
        .await
        .unwrap();
    Session {
        cookie: format!("m365sync_session={token}"),
        csrf,
    }
}

impl Site {
    async fn start() -> Self {
        let app = TestApp::with_users(12).await;
        app.add_connection("contoso", 0).await;
        let listener = web::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(web::serve(
            app.store.clone(),
            listener,
            web::ServeOptions::default(),
        ));
        let people: Vec<String> = {
            let tenant = app.sim.state.tenant("0").unwrap();
            (0..12)
                .filter_map(|i| tenant.user(i))
                .filter(|u| u.has_mailbox && u.account_enabled)
                .map(|u| u.upn)
                .collect()
        };
        let admin = session(&app.store, "ana", AppRole::Admin).await;
        let viewer = session(&app.store, "victor", AppRole::Viewer).await;
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            admin,
            viewer,
            person: people[0].clone(),
            second_person: people[1].clone(),
            app,
        }
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.text().await.unwrap();
        assert_no_token(&location, &body);
        Answer {
            status,
            location,
            body,
        }
    }

    async fn get(&self, path: &str, who: &Session) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        Self::answer(
            self.http
                .get(url)
                .header("cookie", &who.cookie)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, who: &Session, form: &[(&str, &str)]) -> Answer {
        let mut fields: Vec<(&str, &str)> = vec![("csrf", who.csrf.as_str())];
        fields.extend_from_slice(form);
        Self::answer(
            self.http
                .post(format!("{}{path}", self.base))
                .header("cookie", &who.cookie)
                .form(&fields)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Starts a sign-in as `who` and returns the address of Microsoft's sign-in page.
    async fn start_sign_in(&self, who: &Session, hint: &str) -> String {
        let started = self
            .post(
                "/accounts/connect",
                who,
                &[("connection", "contoso"), ("login_hint", hint)],
            )
            .await;
        assert_eq!(started.status, StatusCode::OK, "{}", started.body);
        let link = started
            .body
            .split("data-testid=\"continue-sign-in\"")
            .next()
            .and_then(|before| before.rsplit("href=\"").next())
            .and_then(|rest| rest.split('"').next())
            .expect("a link to Microsoft")
            .replace("&#38;", "&")
            .replace("&amp;", "&");
        assert!(link.starts_with(&self.app.sim.url), "{link}");
        assert!(link.contains("code_challenge_method=S256"), "{link}");
        link
    }

    /// The browser at Microsoft: the sign-in page, then Accept (or Cancel); the address
    /// Microsoft sends it back to.
    async fn at_microsoft(&self, sign_in: &str, login: &str, consent: &str) -> String {
        let page = self
            .http
            .get(sign_in)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut form = hidden_fields(&page);
        form.push(("login".into(), login.into()));
        form.push(("consent".into(), consent.into()));
        let tenant = self.app.tenant(0).tenant_id;
        let answer = self
            .http
            .post(format!(
                "{}/{tenant}/oauth2/v2.0/authorize",
                self.app.sim.url
            ))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            302,
            "{sign_in}: {}",
            answer.text().await.unwrap_or_default()
        );
        let back = answer.headers()["location"].to_str().unwrap().to_string();
        assert!(
            back.starts_with(&format!("{}/integrations/office365/callback?", self.base)),
            "{back}"
        );
        back
    }

    /// Connects `person` as the admin; the account's id.
    async fn connect(&self, person: &str) -> i64 {
        let sign_in = self.start_sign_in(&self.admin, person).await;
        let back = self.at_microsoft(&sign_in, person, "accept").await;
        let done = self.get(&back, &self.admin).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert!(
            done.location.starts_with("/accounts?notice=Connected"),
            "{}",
            done.location
        );
        let id = self
            .app
            .store
            .accounts()
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.username.eq_ignore_ascii_case(person))
            .expect("the account is kept")
            .id;
        // The notice names the account kept, sealed by the server.
        let list = self.get(&done.location, &self.admin).await;
        assert!(
            list.body.contains(&format!("Connected {person} (tenant")),
            "{}",
            list.body
        );
        id
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_no_token(path, &text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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

fn query_value(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The booking form links of the free slots on a calendar page, in order.
fn book_links(page: &str) -> Vec<String> {
    let parts: Vec<&str> = page.split("data-testid=\"book-slot\"").collect();
    parts[..parts.len().saturating_sub(1)]
        .iter()
        .filter_map(|before| before.rsplit("href=\"").next())
        .filter_map(|rest| rest.split('"').next())
        .map(|link| link.replace("&#38;", "&").replace("&amp;", "&"))
        .collect()
}

fn first_book_link(page: &str) -> String {
    book_links(page).into_iter().next().expect("a slot to book")
}

fn field_value(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_connects_lists_finds_slots_books_moves_cancels_and_removes_in_the_pages() {
    let site = Site::start().await;
    let form = site.get("/accounts/connect", &site.admin).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body
            .contains(&format!("{}/integrations/office365/callback", site.base)),
        "the redirect URI to register is shown: {}",
        form.body
    );

    let id = site.connect(&site.person).await;
    let list = site.get("/accounts", &site.admin).await;
    assert!(list.body.contains(&site.person), "{}", list.body);
    assert!(list.body.contains("Calendars.ReadWrite"), "{}", list.body);
    assert!(list.body.contains("healthy"), "{}", list.body);
    assert!(
        list.body
            .contains(&format!("/accounts/connect?account={id}"))
    );

    // Free slots for tomorrow: the page lists them in the mailbox's zone, each with a Book link.
    let calendar = site
        .get(
            &format!("/accounts/{id}/calendar?date=tomorrow&days=2&length=45m"),
            &site.admin,
        )
        .await;
    assert_eq!(calendar.status, StatusCode::OK, "{}", calendar.body);
    assert!(
        calendar.body.contains("data-testid=\"slots\""),
        "{}",
        calendar.body
    );
    let book_link = first_book_link(&calendar.body);
    let form = site.get(&book_link, &site.admin).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let (start, end) = (
        field_value(&form.body, "start"),
        field_value(&form.body, "end"),
    );
    let request_id = field_value(&form.body, "request_id");
    let booking_form = [
        ("subject", "Housing appointment"),
        ("start", start.as_str()),
        ("end", end.as_str()),
        ("attendees", "resident@example.org"),
        ("location", "Room 1"),
        ("online", "1"),
        ("request_id", request_id.as_str()),
    ];
    let booked = site
        .post(&format!("/accounts/{id}/book"), &site.admin, &booking_form)
        .await;
    assert_eq!(booked.status, StatusCode::SEE_OTHER, "{}", booked.body);
    assert!(
        booked.location.contains("notice=Booked"),
        "{}",
        booked.location
    );
    // The confirmation is in the mailbox's zone, with its name.
    let confirmation = site.get(&booked.location, &site.admin).await;
    let notice = confirmation
        .body
        .split("data-testid=\"notice\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .expect("a notice");
    assert!(
        notice.starts_with("Booked ") && notice.contains("Housing appointment"),
        "{notice}"
    );
    // "… 10:00 – 10:30 (Europe/London)."
    let zone = notice.rsplit('(').next().unwrap();
    assert!(zone.contains('/') && zone.ends_with(")."), "{notice}");
    assert!(!notice.contains("UTC"), "{notice}");
    // The same form sent again (a double click, a retry) books nothing more.
    let again = site
        .post(&format!("/accounts/{id}/book"), &site.admin, &booking_form)
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let bookings = site.app.store.bookings().await.unwrap();
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    let booking = &bookings[0];
    assert_eq!(booking.state, "booked");

    // The booked slot is no longer offered.
    let calendar = site
        .get(
            &format!("/accounts/{id}/calendar?date=tomorrow&days=2&length=45m"),
            &site.admin,
        )
        .await;
    assert!(
        !calendar.body.contains(&book_link.replace('&', "&#38;")),
        "the booked slot is gone"
    );
    assert!(calendar.body.contains("Housing appointment"));

    // A second booking of the same slot is refused in words, and the form keeps what was typed.
    let clash = site
        .post(
            &format!("/accounts/{id}/book"),
            &site.admin,
            &[
                ("subject", "Double"),
                ("start", start.as_str()),
                ("end", end.as_str()),
                ("request_id", "another-request"),
            ],
        )
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.body);
    assert!(clash.body.contains("no longer free"), "{}", clash.body);
    assert!(clash.body.contains("value=\"Double\""));

    // Move it to the last free slot of the window.
    let move_form = site
        .get(&format!("/bookings/{}/move", booking.id), &site.admin)
        .await;
    assert_eq!(move_form.status, StatusCode::OK, "{}", move_form.body);
    assert_eq!(field_value(&move_form.body, "start"), start);
    let last_slot = book_links(&calendar.body).pop().expect("a later slot");
    let (new_start, new_end) = (
        query_value(&format!("{}{last_slot}", site.base), "start"),
        query_value(&format!("{}{last_slot}", site.base), "end"),
    );
    let moved = site
        .post(
            &format!("/bookings/{}/move", booking.id),
            &site.admin,
            &[("start", new_start.as_str()), ("end", new_end.as_str())],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    let after = site.app.store.booking(booking.id).await.unwrap();
    assert!(after.start_at > booking.start_at, "{after:?}");
    assert_eq!(after.state, "booked");

    // Cancel, after the confirmation page.
    let confirm = site
        .get(&format!("/bookings/{}/cancel", booking.id), &site.admin)
        .await;
    assert!(
        confirm.body.contains("attendees are told"),
        "{}",
        confirm.body
    );
    let cancelled = site
        .post(
            &format!("/bookings/{}/cancel", booking.id),
            &site.admin,
            &[("comment", "Sorry, the officer is away")],
        )
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::SEE_OTHER,
        "{}",
        cancelled.body
    );
    assert_eq!(
        site.app.store.booking(booking.id).await.unwrap().state,
        "cancelled"
    );
    let twice = site
        .post(
            &format!("/bookings/{}/cancel", booking.id),
            &site.admin,
            &[],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);

    // Remove, after a page that says how to revoke the consent at Microsoft.
    let confirm = site
        .get(&format!("/accounts/{id}/remove"), &site.admin)
        .await;
    assert!(
        confirm.body.contains("revokes nothing at Microsoft"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("Revoke sessions"));
    let removed = site
        .post(&format!("/accounts/{id}/remove"), &site.admin, &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    assert!(site.app.store.accounts().await.unwrap().is_empty());
    let list = site.get("/accounts", &site.admin).await;
    assert!(list.body.contains("accounts-empty"), "{}", list.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_state_replayed_answers_and_codes_and_declined_consent_are_refused_in_words() {
    let site = Site::start().await;
    let sign_in = site.start_sign_in(&site.admin, &site.person).await;
    let back = site.at_microsoft(&sign_in, &site.person, "accept").await;
    let code = query_value(&back, "code");
    let state = query_value(&back, "state");

    // The state tampered with: refused, nothing kept, and the real answer still works.
    let tampered = back.replace(&format!("state={}", state), "state=forged-state");
    assert_ne!(tampered, back);
    let refused = site.get(&tampered, &site.admin).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("does not belong to any sign-in"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("Nothing was saved"),
        "{}",
        refused.body
    );

    // The answer shown to another login session: refused, and left for the right one.
    let other = site.get(&back, &site.viewer).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.body);
    assert!(
        other.body.contains("another login session"),
        "{}",
        other.body
    );
    assert!(site.app.store.accounts().await.unwrap().is_empty());

    let done = site.get(&back, &site.admin).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(site.app.store.accounts().await.unwrap().len(), 1);

    // The same answer again (a reload, or someone who saw the address): refused.
    let replayed = site.get(&back, &site.admin).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.body
    );
    assert!(
        replayed.body.contains("work only once"),
        "{}",
        replayed.body
    );

    // The used code slipped into a new sign-in of this session: Microsoft refuses it.
    let fresh = site.start_sign_in(&site.admin, &site.person).await;
    let fresh_state = query_value(&fresh, "state");
    let replay = format!(
        "{}/integrations/office365/callback?code={}&state={}",
        site.base,
        web_encode(&code),
        web_encode(&fresh_state)
    );
    let refused = site.get(&replay, &site.admin).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("already used"), "{}", refused.body);
    assert!(refused.body.contains("AADSTS54005"), "{}", refused.body);

    // The person declines: said in words, with the fix in the pages' terms.
    let declined_sign_in = site.start_sign_in(&site.admin, &site.second_person).await;
    let declined = site
        .at_microsoft(&declined_sign_in, &site.second_person, "cancel")
        .await;
    assert!(declined.contains("error=access_denied"), "{declined}");
    let page = site.get(&declined, &site.admin).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(
        page.body.contains("declined the permissions"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Connect account"), "{}", page.body);
    assert!(
        !page.body.contains("m365sync account connect"),
        "{}",
        page.body
    );
    assert_eq!(site.app.store.accounts().await.unwrap().len(), 1);
}

fn web_encode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)])
        .unwrap()
        .trim_start_matches("v=")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_reads_the_accounts_but_changes_nothing() {
    let site = Site::start().await;
    let id = site.connect(&site.person).await;
    let list = site.get("/accounts", &site.viewer).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains(&site.person));
    assert!(!list.body.contains("data-testid=\"connect-account\""));
    assert!(!list.body.contains(&format!("/accounts/{id}/remove")));
    for path in [
        "/accounts/connect".to_string(),
        format!("/accounts/connect?account={id}"),
        format!("/accounts/{id}/remove"),
        format!("/accounts/{id}/book"),
    ] {
        let answer = site.get(&path, &site.viewer).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
    }
    for path in [
        "/accounts/connect".to_string(),
        format!("/accounts/{id}/remove"),
        format!("/accounts/{id}/book"),
        "/bookings/1/move".to_string(),
        "/bookings/1/cancel".to_string(),
    ] {
        let answer = site
            .post(
                &path,
                &site.viewer,
                &[("connection", "contoso"), ("subject", "x")],
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
    }
    // A form without its CSRF token is refused even for an admin.
    let forged = site
        .http
        .post(format!("{}/accounts/{id}/remove", site.base))
        .header("cookie", &site.admin.cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(site.app.store.accounts().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_that_needs_reconnecting_is_on_the_dashboard_with_its_fix() {
    let site = Site::start().await;
    let id = site.connect(&site.person).await;
    let dashboard = site.get("/", &site.admin).await;
    assert!(
        !dashboard.body.contains(&site.person),
        "a healthy account needs nothing"
    );
    site.app
        .store
        .mark_account_needs_reconnect(id, "the password was reset")
        .await
        .unwrap();
    let dashboard = site.get("/", &site.admin).await;
    assert!(
        dashboard.body.contains(&format!(
            "The connected account {} needs to be reconnected.",
            site.person
        )),
        "{}",
        dashboard.body
    );
    assert!(dashboard.body.contains("the password was reset"));
    assert!(
        dashboard
            .body
            .contains(&format!("/accounts/connect?account={id}"))
    );
    let list = site.get("/accounts", &site.admin).await;
    assert!(list.body.contains("needs reconnect"), "{}", list.body);
    // Its calendar says what to do instead of failing silently.
    let calendar = site
        .get(
            &format!("/accounts/{id}/calendar?date=tomorrow"),
            &site.admin,
        )
        .await;
    assert!(
        calendar.body.contains("needs to be connected again"),
        "{}",
        calendar.body
    );
    assert!(calendar.body.contains("Re-connect"), "{}", calendar.body);
    // Re-connecting brings it back, as the same account.
    let reconnect = site
        .get(&format!("/accounts/connect?account={id}"), &site.admin)
        .await;
    assert!(
        reconnect
            .body
            .contains(&format!("value=\"{}\"", site.person)),
        "{}",
        reconnect.body
    );
    assert_eq!(site.connect(&site.person).await, id);
    let dashboard = site.get("/", &site.admin).await;
    assert!(
        !dashboard.body.contains("needs reconnect"),
        "{}",
        dashboard.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lists_finds_books_moves_cancels_and_removes_with_typed_errors() {
    let site = Site::start().await;
    let id = site.connect(&site.person).await;
    let admin = site
        .app
        .store
        .issue_api_token("booking-form", ApiRole::Admin)
        .await
        .unwrap()
        .secret;
    let viewer = site
        .app
        .store
        .issue_api_token("reader", ApiRole::Viewer)
        .await
        .unwrap()
        .secret;
    use reqwest::Method;

    let (status, list) = site.api(Method::GET, "/accounts", &viewer, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["next_cursor"], Value::Null, "{list}");
    let list = &list["items"];
    assert_eq!(list[0]["username"], json!(site.person));
    assert_eq!(list[0]["token_health"], json!("healthy"));
    let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| !k.contains("token") || *k == "token_health"),
        "{keys:?}"
    );

    let (status, free) = site
        .api(
            Method::GET,
            &format!(
                "/accounts/{id}/free?date=tomorrow&days=2&length=1h&with=nobody@nowhere.example"
            ),
            &viewer,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{free}");
    assert!(!free["time_zone"].as_str().unwrap().is_empty());
    assert_eq!(
        free["unknown"][0]["address"],
        json!("nobody@nowhere.example")
    );
    // A meeting room counts too (getSchedule answers for room mailboxes): its daily noon
    // booking takes slots away, and its free/busy is read.
    let domain = site.person.rsplit_once('@').unwrap().1;
    let (status, with_room) = site
        .api(
            Method::GET,
            &format!("/accounts/{id}/free?date=tomorrow&days=2&length=1h&with=room2@{domain}"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{with_room}");
    assert_eq!(with_room["unknown"], json!([]), "{with_room}");
    let count = |v: &Value| v["slots"].as_array().unwrap().len();
    assert!(
        count(&with_room) < count(&free),
        "{} slots with the room, {} without",
        count(&with_room),
        count(&free)
    );
    let slot = free["slots"][0].clone();
    let (start, end) = (
        slot["start"].as_str().unwrap(),
        slot["end"].as_str().unwrap(),
    );

    let (status, bad) = site
        .api(
            Method::GET,
            &format!("/accounts/{id}/free?length=soon"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["code"], json!("invalid_input"));

    let booking = json!({
        "start": start, "end": end, "subject": "Housing appointment",
        "attendees": ["resident@example.org"], "online_meeting": true, "request_id": "form-42",
    });
    let (status, refused) = site
        .api(
            Method::POST,
            &format!("/accounts/{id}/bookings"),
            &viewer,
            Some(booking.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, booked) = site
        .api(
            Method::POST,
            &format!("/accounts/{id}/bookings"),
            &admin,
            Some(booking.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    assert_eq!(booked["state"], json!("booked"));
    let (status, retried) = site
        .api(
            Method::POST,
            &format!("/accounts/{id}/bookings"),
            &admin,
            Some(booking.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{retried}");
    assert_eq!(retried["id"], booked["id"], "a retry books nothing more");
    let mut clash = booking.clone();
    clash["request_id"] = json!("form-43");
    let (status, taken) = site
        .api(
            Method::POST,
            &format!("/accounts/{id}/bookings"),
            &admin,
            Some(clash),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");
    assert_eq!(taken["code"], json!("slot_taken"));

    let booking_id = booked["id"].as_i64().unwrap();
    let last = free["slots"].as_array().unwrap().last().unwrap().clone();
    let (status, moved) = site
        .api(
            Method::PATCH,
            &format!("/bookings/{booking_id}"),
            &admin,
            Some(json!({"start": last["start"], "end": last["end"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_ne!(moved["start"], booked["start"]);
    let (status, cancelled) = site
        .api(
            Method::POST,
            &format!("/bookings/{booking_id}/cancel"),
            &admin,
            Some(json!({"comment": "Sorry"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], json!("cancelled"));
    let (status, again) = site
        .api(
            Method::POST,
            &format!("/bookings/{booking_id}/cancel"),
            &admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, bookings) = site.api(Method::GET, "/bookings", &viewer, None).await;
    assert_eq!(status, StatusCode::OK);
    // Newest first: the refused clash is kept as failed, the booking as cancelled.
    let states: Vec<&str> = bookings["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "cancelled"], "{bookings}");

    site.app
        .store
        .mark_account_needs_reconnect(id, "the password was reset")
        .await
        .unwrap();
    let (status, needs) = site
        .api(Method::GET, &format!("/accounts/{id}/free"), &viewer, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{needs}");
    assert_eq!(needs["code"], json!("needs_reconnect"));
    assert!(needs["message"].as_str().unwrap().contains("Re-connect"));

    let (status, refused) = site
        .api(Method::DELETE, &format!("/accounts/{id}"), &viewer, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, removed) = site
        .api(Method::DELETE, &format!("/accounts/{id}"), &admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert!(
        removed["revoke_consent"]
            .as_str()
            .unwrap()
            .contains("myapps.microsoft.com")
    );
    let (status, gone) = site
        .api(Method::DELETE, &format!("/accounts/{id}"), &admin, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert_eq!(gone["code"], json!("not_found"));
}

/// An admin API token, and the first free hour-long slots from tomorrow for account `id`, with
/// the mailbox's zone.
async fn admin_and_slots(site: &Site, id: i64) -> (String, Vec<(String, String)>, String) {
    let admin = site
        .app
        .store
        .issue_api_token("booking-rules", ApiRole::Admin)
        .await
        .unwrap()
        .secret;
    let (status, free) = site
        .api(
            reqwest::Method::GET,
            &format!("/accounts/{id}/free?date=tomorrow&days=3&length=1h&step=1h"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{free}");
    let slots = free["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap().to_string(),
                s["end"].as_str().unwrap().to_string(),
            )
        })
        .collect::<Vec<_>>();
    assert!(slots.len() >= 3, "{free}");
    (
        admin,
        slots,
        free["time_zone"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_id_is_not_held_by_a_failed_attempt_and_is_refused_for_another_booking() {
    use reqwest::Method;
    let site = Site::start().await;
    let id = site.connect(&site.person).await;
    let (admin, slots, _) = admin_and_slots(&site, id).await;
    let body = |slot: &(String, String), request_id: &str| {
        json!({"start": slot.0, "end": slot.1, "subject": "Housing appointment",
               "attendees": ["resident@example.org"], "request_id": request_id})
    };
    let path = format!("/accounts/{id}/bookings");
    let (status, first) = site
        .api(Method::POST, &path, &admin, Some(body(&slots[0], "first")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    // The retried id first meets a taken slot, then is sent with a free one: it books that one,
    // and the store says the slot Outlook has.
    let (status, taken) = site
        .api(
            Method::POST,
            &path,
            &admin,
            Some(body(&slots[0], "retried")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");
    assert_eq!(taken["code"], json!("slot_taken"));
    let (status, second) = site
        .api(
            Method::POST,
            &path,
            &admin,
            Some(body(&slots[1], "retried")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["state"], json!("booked"));
    let kept = site
        .app
        .store
        .booking(second["id"].as_i64().unwrap())
        .await
        .unwrap();
    let start_of = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(kept.start_at, start_of(&slots[1].0), "{kept:?}");
    let (_, free) = site
        .api(
            Method::GET,
            &format!("/accounts/{id}/free?date=tomorrow&days=3&length=1h&step=1h"),
            &admin,
            None,
        )
        .await;
    let offered: Vec<&str> = free["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap())
        .collect();
    assert!(
        !offered.contains(&slots[1].0.as_str()),
        "Outlook has the second slot booked: {free}"
    );

    // The same id with another slot, or another subject, is refused; the same body again
    // returns the booking.
    let (status, reused) = site
        .api(
            Method::POST,
            &path,
            &admin,
            Some(body(&slots[2], "retried")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reused}");
    assert_eq!(reused["code"], json!("request_id_reused"));
    assert!(
        reused["message"]
            .as_str()
            .unwrap()
            .contains("already used for another booking"),
        "{reused}"
    );
    let mut renamed = body(&slots[1], "retried");
    renamed["subject"] = json!("Another subject");
    let (status, _) = site.api(Method::POST, &path, &admin, Some(renamed)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, again) = site
        .api(
            Method::POST,
            &path,
            &admin,
            Some(body(&slots[1], "retried")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], second["id"]);

    // A refused attempt is listed with its reason, in the mailbox's zone.
    let (status, _) = site
        .api(Method::POST, &path, &admin, Some(body(&slots[0], "clash")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, bookings) = site.api(Method::GET, "/bookings", &admin, None).await;
    let failed = bookings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["request_id"] == json!("clash"))
        .unwrap();
    assert_eq!(failed["state"], json!("failed"));
    assert!(
        failed["problem"]
            .as_str()
            .unwrap()
            .contains("no longer free"),
        "{failed}"
    );
    assert!(
        !failed["when"].as_str().unwrap().contains("UTC"),
        "{failed}"
    );
    let (status, refused) = site
        .api(
            Method::POST,
            &format!("/bookings/{}/cancel", failed["id"]),
            &admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("failed (the slot"), "{message}");
    assert!(!message.contains("was failed"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_out_of_hours_overlong_and_malformed_bookings_are_refused_with_the_limit() {
    use chrono::{Datelike, Duration, Utc};
    use reqwest::Method;
    let site = Site::start().await;
    let id = site.connect(&site.person).await;
    let (admin, slots, zone) = admin_and_slots(&site, id).await;
    let zone: domain::calendar::Tz = zone.parse().unwrap();
    let path = format!("/accounts/{id}/bookings");
    let book = |start: String, end: String, extra: Value| {
        let mut body = json!({"start": start, "end": end, "subject": "Appointment"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        site.api(Method::POST, &path, &admin, Some(body))
    };
    let refused = |answer: (StatusCode, Value), words: &str| {
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
        assert_eq!(answer.1["code"], json!("invalid_input"), "{}", answer.1);
        let message = answer.1["message"].as_str().unwrap().to_string();
        assert!(message.contains(words), "{words}: {message}");
        message
    };
    let today = Utc::now().with_timezone(&zone).date_naive();
    let local = |day: chrono::NaiveDate, time: &str| format!("{day}T{time}");

    // The past: yesterday, and earlier today.
    let yesterday = today - Duration::days(1);
    refused(
        book(
            local(yesterday, "10:00"),
            local(yesterday, "10:30"),
            json!({}),
        )
        .await,
        "in the past",
    );
    let (status, past_day) = site
        .api(
            Method::GET,
            &format!("/accounts/{id}/free?date={yesterday}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{past_day}");
    assert!(
        past_day["message"]
            .as_str()
            .unwrap()
            .contains("in the past")
    );
    let (_, today_free) = site
        .api(
            Method::GET,
            &format!("/accounts/{id}/free?date=today&length=15m&step=15m"),
            &admin,
            None,
        )
        .await;
    let now = Utc::now();
    for slot in today_free["slots"].as_array().unwrap() {
        let start = chrono::DateTime::parse_from_rfc3339(slot["start"].as_str().unwrap()).unwrap();
        assert!(start >= now - Duration::seconds(5), "{slot} is past");
    }

    // Outside working hours: 03:00 on a weekday, and a Saturday; allowed when meant.
    let saturday = (2..10)
        .map(|d| today + Duration::days(d))
        .find(|d| d.weekday() == chrono::Weekday::Sat)
        .unwrap();
    let weekday = (2..10)
        .map(|d| today + Duration::days(d))
        .find(|d| d.weekday() == chrono::Weekday::Wed)
        .unwrap();
    for (start, end) in [
        (local(weekday, "03:00"), local(weekday, "03:30")),
        (local(saturday, "10:00"), local(saturday, "10:30")),
    ] {
        let message = refused(
            book(start.clone(), end.clone(), json!({})).await,
            "outside the mailbox's working hours",
        );
        assert!(message.contains(zone.name()), "{message}");
        assert!(message.contains("Mon Tue Wed Thu Fri"), "{message}");
        let (status, meant) = book(start, end, json!({"outside_working_hours": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{meant}");
    }

    // Longer than 14 days: named, not sent to Microsoft.
    let message = refused(
        book(
            local(weekday, "10:00"),
            local(weekday + Duration::days(15), "10:00"),
            json!({"outside_working_hours": true}),
        )
        .await,
        "14 days",
    );
    assert!(message.starts_with("end:"), "{message}");

    // Texts and attendees.
    let (start, end) = slots[0].clone();
    refused(
        book(
            start.clone(),
            end.clone(),
            json!({"subject": "x".repeat(256)}),
        )
        .await,
        "255",
    );
    refused(
        book(start.clone(), end.clone(), json!({"subject": "two\nlines"})).await,
        "control character",
    );
    refused(
        book(
            start.clone(),
            end.clone(),
            json!({"location": "Room\u{1b}[31m"}),
        )
        .await,
        "control character",
    );
    refused(
        book(
            start.clone(),
            end.clone(),
            json!({"location": "r".repeat(256)}),
        )
        .await,
        "255",
    );
    let crowd: Vec<String> = (0..101).map(|i| format!("p{i}@example.org")).collect();
    refused(
        book(start.clone(), end.clone(), json!({"attendees": crowd})).await,
        "100",
    );
    refused(
        book(
            start.clone(),
            end.clone(),
            json!({"attendees": ["not an address"]}),
        )
        .await,
        "not an email address",
    );
    // Duplicates in any case and the organiser themself are dropped, and the booking is made.
    let (status, booked) = book(
        start,
        end,
        json!({"attendees": ["a@example.org", "A@Example.org", site.person.to_uppercase()]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");

    // A move into the past or out of hours is refused as a booking is.
    let moved = site
        .api(
            Method::PATCH,
            &format!("/bookings/{}", booked["id"]),
            &admin,
            Some(json!({"start": local(yesterday, "10:00"), "end": local(yesterday, "11:00")})),
        )
        .await;
    refused(moved, "in the past");
    let moved = site
        .api(
            Method::PATCH,
            &format!("/bookings/{}", booked["id"]),
            &admin,
            Some(json!({"start": local(saturday, "12:00"), "end": local(saturday, "13:00")})),
        )
        .await;
    refused(moved, "working hours");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_signed_in_as_someone_else_is_refused_and_leaves_both_as_they_were() {
    let site = Site::start().await;
    let id = site.connect(&site.person).await;
    site.app
        .store
        .mark_account_needs_reconnect(id, "the password was reset")
        .await
        .unwrap();
    let started = site
        .post(
            "/accounts/connect",
            &site.admin,
            &[
                ("connection", "contoso"),
                ("login_hint", site.person.as_str()),
                ("reconnecting", site.person.as_str()),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let link = started
        .body
        .split("data-testid=\"continue-sign-in\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let back = site
        .at_microsoft(&link, &site.second_person, "accept")
        .await;
    let refused = site.get(&back, &site.admin).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains(&format!(
            "You signed in as {}; to reconnect {}, sign in as {}",
            site.second_person, site.person, site.person
        )),
        "{}",
        refused.body
    );
    let accounts = site.app.store.accounts().await.unwrap();
    assert_eq!(accounts.len(), 1, "nobody else was added: {accounts:?}");
    assert_eq!(accounts[0].id, id);
    assert_eq!(
        accounts[0].state,
        domain::accounts::AccountState::NeedsReconnect
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_without_a_mailbox_is_refused_at_connect_with_what_to_do() {
    let site = Site::start().await;
    let tenant = site.app.sim.state.tenant("0").unwrap();
    let index = (0..12)
        .find(|&i| {
            tenant
                .user(i)
                .is_some_and(|u| u.has_mailbox && u.account_enabled && u.upn != site.person)
        })
        .unwrap();
    let person = tenant.user(index).unwrap().upn;
    let unlicensed = site
        .http
        .patch(format!("{}/_sim/tenants/0/users/{index}", site.app.sim.url))
        .json(&json!({"licenses": []}))
        .send()
        .await
        .unwrap();
    assert!(unlicensed.status().is_success());
    assert!(
        !site
            .app
            .sim
            .state
            .tenant("0")
            .unwrap()
            .user(index)
            .unwrap()
            .has_mailbox
    );
    let sign_in = site.start_sign_in(&site.admin, &person).await;
    let back = site.at_microsoft(&sign_in, &person, "accept").await;
    let refused = site.get(&back, &site.admin).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains("has no Exchange Online mailbox"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("licence that includes Exchange Online")
    );
    assert!(site.app.store.accounts().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn only_sealed_notices_show_and_missing_things_point_to_pages_not_commands() {
    let site = Site::start().await;
    let id = site.connect(&site.person).await;
    let forged = site
        .get(
            "/accounts?notice=Your%20account%20is%20locked%2C%20call%20555-0100",
            &site.admin,
        )
        .await;
    assert_eq!(forged.status, StatusCode::OK);
    assert!(!forged.body.contains("555-0100"), "{}", forged.body);
    let forged = site
        .get(
            &format!("/accounts/{id}/calendar?notice=Call%20555-0100"),
            &site.admin,
        )
        .await;
    assert!(!forged.body.contains("555-0100"), "{}", forged.body);

    for path in [
        "/bookings/999/move",
        "/bookings/999/cancel",
        "/accounts/999/calendar",
    ] {
        let missing = site.get(path, &site.admin).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !missing.body.contains("m365sync "),
            "{path}: {}",
            missing.body
        );
    }
    let token = site
        .app
        .store
        .issue_api_token("reader", ApiRole::Admin)
        .await
        .unwrap()
        .secret;
    let (status, missing) = site
        .api(
            reqwest::Method::PATCH,
            "/bookings/999",
            &token,
            Some(json!({"start": "2030-01-01T10:00", "end": "2030-01-01T11:00"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let message = missing["message"].as_str().unwrap();
    assert!(message.contains("GET /api/v1/bookings"), "{message}");
    assert!(!message.contains("m365sync "), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_started_on_one_server_process_is_finished_by_another() {
    let site = Site::start().await;
    let sign_in = site.start_sign_in(&site.admin, &site.person).await;
    let back = site.at_microsoft(&sign_in, &site.person, "accept").await;
    // A second server on the same store: a restart, or a second process behind the address.
    let listener = web::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(web::serve(
        site.app.store.clone(),
        listener,
        web::ServeOptions::default(),
    ));
    let done = site
        .get(&back.replacen(&site.base, &other, 1), &site.admin)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(
        done.location.contains("notice=Connected"),
        "{}",
        done.location
    );
    assert_eq!(site.app.store.accounts().await.unwrap().len(), 1);
    // Used once, whichever process is asked.
    let replayed = site.get(&back, &site.admin).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.body
    );
}

/// A booking of an account since removed is not tried with the connection's app (which Microsoft
/// refuses): moving or cancelling it is a conflict that says to connect the account again.
#[tokio::test(flavor = "multi_thread")]
async fn a_booking_of_a_removed_account_asks_for_the_account_again() {
    use reqwest::Method;
    let site = Site::start().await;
    let id = site.connect(&site.person).await;
    let (admin, slots, _) = admin_and_slots(&site, id).await;
    let (status, booked) = site
        .api(
            Method::POST,
            &format!("/accounts/{id}/bookings"),
            &admin,
            Some(
                json!({"start": slots[0].0, "end": slots[0].1, "subject": "Housing appointment",
                        "request_id": "before-removal"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let booking = booked["id"].as_i64().unwrap();
    let (status, removed) = site
        .api(Method::DELETE, &format!("/accounts/{id}"), &admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    let username = site.person.clone();

    let (status, moved) = site
        .api(
            Method::PATCH,
            &format!("/bookings/{booking}"),
            &admin,
            Some(json!({"start": slots[1].0, "end": slots[1].1})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{moved}");
    assert_eq!(moved["code"], json!("account_removed"), "{moved}");
    let message = moved["message"].as_str().unwrap();
    assert!(
        message.contains("was removed") && message.contains("Connect"),
        "{message}"
    );
    assert!(message.contains(username.as_str()), "{message}");
    let (status, cancelled) = site
        .api(
            Method::POST,
            &format!("/bookings/{booking}/cancel"),
            &admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{cancelled}");
    assert_eq!(cancelled["code"], json!("account_removed"), "{cancelled}");

    let page = site
        .post(
            &format!("/bookings/{booking}/move"),
            &site.admin,
            &[("start", slots[1].0.as_str()), ("end", slots[1].1.as_str())],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(page.body.contains("was removed"), "{}", page.body);
    let page = site
        .post(&format!("/bookings/{booking}/cancel"), &site.admin, &[])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(page.body.contains("Connect account"), "{}", page.body);
    // Nothing changed: the booking is as it was.
    assert_eq!(
        site.app.store.booking(booking).await.unwrap().state,
        "booked"
    );
}
