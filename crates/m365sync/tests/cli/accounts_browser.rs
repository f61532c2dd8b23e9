//! A delegated account in a real headless Chromium: an admin connects a person's account (the
//! browser goes to the simulator's sign-in page and clicks its consent button), sees it listed,
//! finds free slots, books one, moves and cancels the booking, and removes the account. Every
//! page is saved as a screenshot, and none shows a token.

use std::path::{Path, PathBuf};

use fantoccini::Locator;

use super::browser::{Browser, chromedriver, open_browser, start_chromedriver, start_server};

/// Where the screenshots go: `target/tmp/accounts-browser-screenshots/`.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("accounts-browser-screenshots")
}

/// Saves a screenshot of the page shown, and returns its source (checked for tokens).
async fn shoot(b: &Browser, number: usize, name: &str) -> String {
    let png = b.client.screenshot().await.expect("screenshot");
    std::fs::write(
        screenshot_dir().join(format!("{number:02}-{name}.png")),
        png,
    )
    .expect("write screenshot");
    let source = b.client.source().await.expect("page source");
    // The simulator's refresh tokens start `1.AR`, codes `1.AQ`, access and id tokens `eyJ`.
    for marker in ["1.AR", "1.AQ", "eyJ"] {
        assert!(
            !source.contains(marker),
            "{name}: a token is in the page ({marker})"
        );
    }
    source
}

/// The `href` of the element `css`.
async fn href(b: &Browser, css: &str) -> String {
    b.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
        .attr("href")
        .await
        .expect("an href")
        .unwrap_or_else(|| panic!("{css} has no href"))
}

fn query_value(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_connects_an_account_and_books_in_its_calendar_from_the_browser() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let sim = super::sim(10).await;
    let person = {
        let tenant = sim.state.tenant("0").expect("a tenant");
        (0..10)
            .filter_map(|i| tenant.user(i))
            .find(|u| u.has_mailbox && u.account_enabled)
            .expect("a person with a mailbox")
            .upn
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("store.db");
    let (_server, base, setup_link) = start_server(&db);
    let secret = sim.tenants()[0].client_secret.clone();
    assert!(super::add(&db, &sim, "contoso", &secret).status.success());
    let (_driver, driver_port) = start_chromedriver(&driver);
    let b = open_browser(driver_port, &dir.path().join("chromium"), base.clone()).await;

    b.client.goto(&setup_link).await.expect("the set-up link");
    b.fill("#name", "ana").await;
    b.fill("#password", "correct horse battery").await;
    b.fill("#confirm", "correct horse battery").await;
    b.click("[data-testid=setup]").await;
    b.landed_on("/").await;

    // Connect: the form, the link to Microsoft, the consent button, and back to the list.
    b.client
        .goto(&format!("{base}/accounts"))
        .await
        .expect("accounts");
    let empty = shoot(&b, 1, "accounts-empty").await;
    assert!(empty.contains("No account is connected yet"), "{empty}");
    b.click("[data-testid=connect-account]").await;
    b.landed_on("/accounts/connect").await;
    b.fill("[data-testid=login-hint]", &person).await;
    let form = shoot(&b, 2, "connect-form").await;
    assert!(form.contains(&format!("{base}/integrations/office365/callback")));
    b.click("[data-testid=start-sign-in]").await;
    shoot(&b, 3, "continue-to-microsoft").await;
    b.click("[data-testid=continue-sign-in]").await;
    let sign_in_path = format!("/{}/oauth2/v2.0/authorize", sim.tenants()[0].tenant_id);
    b.landed_on(&sign_in_path).await;
    let consent = shoot(&b, 4, "microsoft-sign-in").await;
    assert!(consent.contains("Calendars.ReadWrite"), "{consent}");
    b.click("#accept").await;
    b.landed_on("/accounts").await;
    let list = shoot(&b, 5, "accounts-connected").await;
    assert!(list.contains("Connected"), "{list}");
    assert!(list.contains(&person), "{list}");
    assert!(list.contains("healthy"), "{list}");

    // Free slots tomorrow, then book the first.
    let calendar_link = href(&b, "[data-testid^=calendar-]").await;
    b.client
        .goto(&format!("{base}{calendar_link}"))
        .await
        .expect("calendar");
    b.fill("[data-testid=date]", "tomorrow").await;
    b.fill("[data-testid=days]", "2").await;
    b.fill("[data-testid=length]", "45m").await;
    b.click("[data-testid=find-slots]").await;
    b.client
        .wait()
        .for_element(Locator::Css("[data-testid=slots]"))
        .await
        .expect("free slots");
    shoot(&b, 6, "free-slots").await;
    let slots = b
        .client
        .find_all(Locator::Css("[data-testid=book-slot]"))
        .await
        .expect("slots");
    assert!(slots.len() > 2, "{} slots", slots.len());
    let later = slots
        .last()
        .expect("a last slot")
        .attr("href")
        .await
        .expect("href")
        .expect("a link");
    let later = format!("{base}{later}");
    b.click("[data-testid=book-slot]").await;
    b.landed_on("/accounts/").await;
    b.client
        .wait()
        .for_element(Locator::Css("[data-testid=subject]"))
        .await
        .expect("the booking form");
    b.fill("[data-testid=subject]", "Housing appointment").await;
    b.fill("[data-testid=attendees]", "resident@example.org")
        .await;
    b.click("[data-testid=online]").await;
    shoot(&b, 7, "book-form").await;
    b.click("[data-testid=save-booking]").await;
    b.client
        .wait()
        .for_element(Locator::Css("[data-testid=notice]"))
        .await
        .expect("booked");
    let booked = shoot(&b, 8, "booked").await;
    assert!(booked.contains("Booked"), "{booked}");
    assert!(booked.contains("Housing appointment"), "{booked}");

    // Move it to the last free slot.
    b.click("[data-testid^=move-]").await;
    b.landed_on("/bookings/").await;
    b.fill("[data-testid=start]", &query_value(&later, "start"))
        .await;
    b.fill("[data-testid=end]", &query_value(&later, "end"))
        .await;
    shoot(&b, 9, "move-form").await;
    b.click("[data-testid=save-booking]").await;
    b.landed_on("/accounts/").await;
    b.client
        .wait()
        .for_element(Locator::Css("[data-testid=notice]"))
        .await
        .expect("moved");
    let moved = shoot(&b, 10, "moved").await;
    assert!(moved.contains("Moved"), "{moved}");

    // Cancel it.
    b.click("[data-testid^=cancel-]").await;
    b.landed_on("/bookings/").await;
    shoot(&b, 11, "cancel-confirm").await;
    b.click("[data-testid=confirm-cancel]").await;
    b.landed_on("/accounts/").await;
    b.client
        .wait()
        .for_element(Locator::Css("[data-testid=notice]"))
        .await
        .expect("cancelled");
    let cancelled = shoot(&b, 12, "cancelled").await;
    assert!(cancelled.contains("Cancelled"), "{cancelled}");
    assert!(cancelled.contains("cancelled</span>"), "{cancelled}");

    // Remove the account.
    b.client
        .goto(&format!("{base}/accounts"))
        .await
        .expect("accounts");
    b.click("[data-testid^=remove-]").await;
    b.landed_on("/accounts/").await;
    let confirm = shoot(&b, 13, "remove-confirm").await;
    assert!(
        confirm.contains("revokes nothing at Microsoft"),
        "{confirm}"
    );
    b.click("[data-testid=confirm-remove]").await;
    b.client
        .wait()
        .for_element(Locator::Css("[data-testid=accounts-empty]"))
        .await
        .expect("removed");
    let removed = shoot(&b, 14, "removed").await;
    assert!(removed.contains("Removed"), "{removed}");
    let _ = b.client.close().await;
}
