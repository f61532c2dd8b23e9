//! API tokens as a person makes and ends them: shown once, listed without the token, refused as
//! a duplicate while live, revoked by name; on SQLite and PostgreSQL.

use serde_json::Value;
use testkit::StoreKind;

use super::{m365sync, text};

async fn tokens_are_made_listed_and_revoked(kind: StoreKind) {
    let (db, _home, _dir) = super::jobs::store_at(kind).await;
    let made = m365sync(
        &db,
        &[
            "token",
            "create",
            "prometheus",
            "--role",
            "viewer",
            "--quiet",
        ],
        &[],
    );
    assert!(made.status.success(), "{:?}", text(&made));
    let token = text(&made).0.trim().to_string();
    assert!(token.starts_with("m365s_") && token.len() > 40, "{token}");

    let again = m365sync(
        &db,
        &["token", "create", "Prometheus", "--role", "admin"],
        &[],
    );
    assert_eq!(again.status.code(), Some(2), "{:?}", text(&again));
    assert!(
        text(&again).1.contains("token revoke"),
        "{:?}",
        text(&again)
    );
    let bad_role = m365sync(&db, &["token", "create", "x", "--role", "root"], &[]);
    assert_eq!(bad_role.status.code(), Some(2));

    let (plain, _) = text(&m365sync(&db, &["token", "list"], &[]));
    assert!(
        plain.starts_with("NAME") && plain.contains("prometheus"),
        "{plain}"
    );
    assert!(
        !plain.contains(&token),
        "the list never shows a token: {plain}"
    );
    let listed = m365sync(&db, &["token", "list", "--json"], &[]);
    assert!(listed.status.success(), "{:?}", text(&listed));
    let (out, _) = text(&listed);
    assert!(!out.contains(&token), "the list never shows a token: {out}");
    let items: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(items[0]["name"], "prometheus");
    assert_eq!(items[0]["role"], "viewer");
    assert!(token.starts_with(items[0]["starts_with"].as_str().unwrap()));
    assert!(items[0]["revoked_at"].is_null());

    let revoked = m365sync(&db, &["token", "revoke", "PROMETHEUS"], &[]);
    assert!(revoked.status.success(), "{:?}", text(&revoked));
    let twice = m365sync(&db, &["token", "revoke", "prometheus"], &[]);
    assert_eq!(twice.status.code(), Some(2), "{:?}", text(&twice));
    let listed: Value =
        serde_json::from_slice(&m365sync(&db, &["token", "list", "--json"], &[]).stdout).unwrap();
    assert!(listed[0]["revoked_at"].is_i64());
    // Its name is free again once it is revoked.
    let remade = m365sync(
        &db,
        &["token", "create", "prometheus", "--role", "viewer"],
        &[],
    );
    assert!(remade.status.success(), "{:?}", text(&remade));
    assert!(text(&remade).0.contains("shown this once"));
}

testkit::on_both_stores!(tokens_are_made_listed_and_revoked);
