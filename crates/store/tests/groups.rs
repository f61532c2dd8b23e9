//! Groups and their memberships on both backends: rounds planned by `domain::groups` and applied
//! with their delta link, the readers, and the move of stored group documents into the tables.

use std::collections::{BTreeMap, HashSet};

use domain::groups::{GroupChange, GroupPlan, GroupRecord, GroupRound, plan_groups};
use domain::{ContactRecord, ObjectId, OrganizationRecord, TenantId, Upn};
use store::{Checkpoint, SecretKey, StepCounts, Store};
use testkit::StoreKind;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const STAFF: &str = "a0000000-0000-4000-8000-000000000001";
const FINANCE: &str = "a0000000-0000-4000-8000-000000000002";

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

fn user_id(n: u8) -> String {
    format!("11111111-2222-4333-8444-5555555555{n:02}")
}

fn group(id: &str, name: &str) -> GroupRecord {
    GroupRecord {
        object_id: id.into(),
        display_name: Some(name.into()),
        description: Some(format!("{name}, with a comma")),
        mail: Some(format!("{}@contoso.example", name.to_lowercase())),
        mail_enabled: Some(true),
        security_enabled: Some(false),
        group_types: vec!["DynamicMembership".into(), "Unified".into()],
        visibility: Some("private".into()),
        created: Some("2024-01-02T03:04:05Z".into()),
    }
}

/// A whole round's entry for a group: its properties and every member.
fn listed(record: GroupRecord, members: &[u8]) -> GroupChange {
    let mut change = GroupChange::default();
    change.group_seen(Some(record));
    for n in members {
        change.member_joined(user_id(*n), Some("user".into()));
    }
    change
}

fn link(n: u32) -> Checkpoint {
    Checkpoint {
        resource: "groups".into(),
        link: format!("https://graph.example/v1.0/groups/delta?$deltatoken={n}"),
    }
}

async fn organization(store: &Store) -> i64 {
    let record = OrganizationRecord {
        tenant_id: tenant(),
        display_name: "Contoso Ltd".into(),
        verified_domains: vec![],
        default_domain: None,
        country_letter_code: None,
    };
    store.apply_organization(&record).await.unwrap().id()
}

/// Plans a round as the sync does (reading what it names from the store) and applies it.
async fn round(
    store: &Store,
    org: i64,
    kind: GroupRound,
    changes: BTreeMap<String, GroupChange>,
    checkpoint: &Checkpoint,
) -> (GroupPlan, StepCounts) {
    let mut batch = store.group_batch(org, &tenant()).await.unwrap();
    let mut keys: HashSet<String> = changes.keys().cloned().collect();
    if kind == GroupRound::Whole {
        keys.extend(batch.active_keys().await.unwrap());
    }
    let stored = batch.stored(keys.iter().map(String::as_str)).await.unwrap();
    let members = batch
        .members(changes.keys().map(String::as_str))
        .await
        .unwrap();
    let plan = plan_groups(kind, &stored, &members, &changes);
    let counts = batch.apply(&plan, Some(checkpoint)).await.unwrap();
    batch.commit().await.unwrap();
    (plan, counts)
}

async fn members_of(store: &Store, group: &str) -> Vec<String> {
    let mut ids: Vec<String> = store
        .group_members(Some(&tenant()), true)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.group_id == group)
        .map(|m| m.member_id)
        .collect();
    ids.sort();
    ids
}

fn ids(list: &[u8]) -> Vec<String> {
    let mut ids: Vec<String> = list.iter().map(|n| user_id(*n)).collect();
    ids.sort();
    ids
}

async fn rounds_keep_groups_and_apply_memberships(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let org = organization(&store).await;

    // A whole round: both groups and all their members.
    let first = BTreeMap::from([
        (STAFF.to_string(), listed(group(STAFF, "Staff"), &[1, 2, 3])),
        (FINANCE.to_string(), listed(group(FINANCE, "Finance"), &[2])),
    ]);
    let (_, counts) = round(&store, org, GroupRound::Whole, first.clone(), &link(1)).await;
    assert_eq!((counts.created, counts.updated), (2, 0));
    let groups = store.groups(Some(&tenant()), false).await.unwrap();
    let names: Vec<(&str, u64)> = groups
        .iter()
        .map(|g| (g.group.name(), g.member_count))
        .collect();
    assert_eq!(names, [("Finance", 1), ("Staff", 3)]);
    // Every column reads back as it was written.
    assert_eq!(groups[1].group, group(STAFF, "Staff"));
    assert_eq!(members_of(&store, STAFF).await, ids(&[1, 2, 3]));
    assert_eq!(
        store.delta_link(&tenant(), "groups").await.unwrap(),
        Some(link(1).link)
    );

    // The same round again writes nothing.
    let (plan, counts) = round(&store, org, GroupRound::Whole, first, &link(2)).await;
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!((counts.unchanged, counts.writes()), (2, 0));

    // A changes round: one joins Staff, one leaves it; Finance is not named and stays as it is.
    let mut change = GroupChange::default();
    change.member_joined(user_id(4), Some("user".into()));
    change.member_left(user_id(1));
    let (plan, counts) = round(
        &store,
        org,
        GroupRound::Changes,
        BTreeMap::from([(STAFF.to_string(), change)]),
        &link(3),
    )
    .await;
    assert_eq!((plan.join.len(), plan.leave.len()), (1, 1));
    assert_eq!((counts.updated, counts.archived), (1, 0));
    assert_eq!(members_of(&store, STAFF).await, ids(&[2, 3, 4]));
    assert_eq!(members_of(&store, FINANCE).await, ids(&[2]));

    // A whole round (after the link expired) replaces Staff's list with what it names.
    let again = BTreeMap::from([
        (STAFF.to_string(), listed(group(STAFF, "Staff"), &[3, 5])),
        (FINANCE.to_string(), listed(group(FINANCE, "Finance"), &[2])),
    ]);
    let (plan, counts) = round(&store, org, GroupRound::Whole, again, &link(4)).await;
    assert_eq!((plan.join.len(), plan.leave.len()), (1, 2));
    assert_eq!((counts.updated, counts.unchanged), (1, 1));
    assert_eq!(members_of(&store, STAFF).await, ids(&[3, 5]));

    // Finance is deleted: archived, and shown with its last members only when asked.
    let mut deleted = GroupChange::default();
    deleted.group_removed();
    let (_, counts) = round(
        &store,
        org,
        GroupRound::Changes,
        BTreeMap::from([(FINANCE.to_string(), deleted)]),
        &link(5),
    )
    .await;
    assert_eq!(counts.archived, 1);
    let active = store.groups(Some(&tenant()), false).await.unwrap();
    assert_eq!(active.len(), 1);
    let all = store.groups(Some(&tenant()), true).await.unwrap();
    let finance = all.iter().find(|g| g.key() == FINANCE).unwrap();
    assert!(finance.archived);
    assert_eq!(finance.member_count, 1);
    assert!(
        store
            .group_members(Some(&tenant()), false)
            .await
            .unwrap()
            .iter()
            .all(|m| m.group_id == STAFF)
    );
    // Current memberships only follow active groups.
    assert!(
        store
            .groups_of_member(&tenant(), &user_id(2))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .members_of_groups(&tenant(), &["finance".into()])
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

async fn members_are_found_both_ways_and_named_from_contacts(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let org = organization(&store).await;
    let person = ContactRecord {
        tenant_id: tenant(),
        object_id: ObjectId::parse(&user_id(1)).unwrap(),
        user_principal_name: Upn::parse("adele@contoso.example").unwrap(),
        display_name: "Adele Vance".into(),
        given_name: None,
        surname: None,
        email: None,
        aliases: vec![],
        job_title: None,
        department: None,
        office_location: None,
        mobile_phone: None,
        business_phones: vec![],
        account_enabled: true,
        user_type: "Member".into(),
        license_sku_ids: vec![],
        disabled_plans: vec![],
    };
    store
        .apply_contact_changes(org, &tenant(), &[person], &[], None)
        .await
        .unwrap();
    let mut device = GroupChange::default();
    device.group_seen(Some(group(FINANCE, "Finance")));
    device.member_joined(user_id(1), Some("user".into()));
    device.member_joined(
        "d0000000-0000-4000-8000-000000000009".into(),
        Some("device".into()),
    );
    let changes = BTreeMap::from([
        (STAFF.to_string(), listed(group(STAFF, "Staff"), &[1, 2])),
        (FINANCE.to_string(), device),
    ]);
    round(&store, org, GroupRound::Whole, changes, &link(1)).await;

    let of_adele: Vec<String> = store
        .groups_of_member(&tenant(), &user_id(1).to_uppercase())
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.object_id)
        .collect();
    assert_eq!(of_adele, [FINANCE, STAFF]);
    // Chosen by display name or object id, whatever the case.
    let chosen = store
        .members_of_groups(&tenant(), &["STAFF".into()])
        .await
        .unwrap();
    assert_eq!(chosen, ids(&[1, 2]).into_iter().collect());
    let chosen = store
        .members_of_groups(&tenant(), &[FINANCE.to_uppercase()])
        .await
        .unwrap();
    assert_eq!(chosen.len(), 2);

    let rows = store.group_members(Some(&tenant()), false).await.unwrap();
    let adele = rows
        .iter()
        .find(|m| m.group_id == STAFF && m.member_id == user_id(1))
        .unwrap();
    assert_eq!(adele.display_name.as_deref(), Some("Adele Vance"));
    assert_eq!(
        adele.user_principal_name.as_deref(),
        Some("adele@contoso.example")
    );
    let laptop = rows
        .iter()
        .find(|m| m.member_type.as_deref() == Some("device"))
        .unwrap();
    assert_eq!(
        (laptop.group_name.as_str(), &laptop.display_name),
        ("Finance", &None)
    );
    store.close().await;
}

/// A round's link is saved with the writes it covers, or not at all.
async fn a_round_not_committed_leaves_no_trace(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let org = organization(&store).await;
    let changes = BTreeMap::from([(STAFF.to_string(), listed(group(STAFF, "Staff"), &[1]))]);
    {
        let mut batch = store.group_batch(org, &tenant()).await.unwrap();
        let plan = plan_groups(
            GroupRound::Whole,
            &Default::default(),
            &Default::default(),
            &changes,
        );
        batch.apply(&plan, Some(&link(1))).await.unwrap();
        // Dropped, as when the process dies before the commit.
    }
    assert!(store.groups(None, true).await.unwrap().is_empty());
    assert!(store.group_members(None, true).await.unwrap().is_empty());
    assert_eq!(store.delta_link(&tenant(), "groups").await.unwrap(), None);
    store.close().await;
}

/// Group documents whose fields have types no version wrote: the upgrade still runs, on both
/// backends alike, keeping what has the type its column needs and nothing else.
async fn group_documents_of_unexpected_types_do_not_stop_the_upgrade(kind: StoreKind) {
    let odd = serde_json::json!({
        "display_name": 42, "description": {"text": "no"}, "mail": ["staff@contoso.example"],
        "mail_enabled": "yes", "security_enabled": 1,
        "group_types": ["Unified", 3, "DynamicMembership", "Unified"],
        "visibility": true, "created": null,
        "members": [user_id(3), {"id": user_id(1).to_uppercase(), "type": "user"}, {"id": 7},
                    [user_id(4)], {"id": user_id(2), "type": 5}, null],
    });
    let flat = serde_json::json!({"display_name": "Flat", "group_types": "Unified",
        "members": {"id": user_id(5)}});
    let row = |key: &str, doc: &serde_json::Value| {
        format!(
            "INSERT INTO inventory (organization_id, tenant_id, dataset, item_key, name, document, fingerprint, archived, created_at, updated_at) \
             VALUES (1, '{TENANT}', 'groups', '{key}', 'n', '{doc}', 'f', FALSE, 10, 20)"
        )
    };
    let rows = vec![
        "INSERT INTO organizations (name, created_at, updated_at) VALUES ('Contoso', 1, 1)".into(),
        row(STAFF, &odd),
        row(FINANCE, &flat),
    ];
    let (store, _dir, _pg) = upgraded(kind, rows).await;
    let groups = store.groups(Some(&tenant()), true).await.unwrap();
    let staff = groups.iter().find(|g| g.key() == STAFF).unwrap();
    assert_eq!(
        staff.group,
        GroupRecord {
            object_id: STAFF.into(),
            display_name: None,
            description: None,
            mail: None,
            mail_enabled: None,
            security_enabled: None,
            group_types: vec!["DynamicMembership".into(), "Unified".into()],
            visibility: None,
            created: None,
        }
    );
    let flat = groups.iter().find(|g| g.key() == FINANCE).unwrap();
    assert_eq!(flat.group.display_name.as_deref(), Some("Flat"));
    assert!(flat.group.group_types.is_empty());
    let mut members: Vec<(String, String, Option<String>)> = store
        .group_members(Some(&tenant()), true)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.group_id, m.member_id, m.member_type))
        .collect();
    members.sort();
    assert_eq!(
        members,
        [
            (STAFF.to_string(), user_id(1), Some("user".into())),
            (STAFF.to_string(), user_id(2), None),
        ]
    );
    store.close().await;
}

testkit::on_both_stores!(
    rounds_keep_groups_and_apply_memberships,
    group_documents_of_unexpected_types_do_not_stop_the_upgrade,
    members_are_found_both_ways_and_named_from_contacts,
    a_round_not_committed_leaves_no_trace,
    a_store_with_group_documents_moves_them_into_the_tables,
);

/// The migrations before groups had tables of their own.
fn migrations_to_14(backend: &str) -> Vec<&'static str> {
    let sqlite = [
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/sqlite/0002_inventory.sql"),
        include_str!("../migrations/sqlite/0003_products.sql"),
        include_str!("../migrations/sqlite/0004_delta.sql"),
        include_str!("../migrations/sqlite/0005_certificates.sql"),
        include_str!("../migrations/sqlite/0006_mailbox_kinds.sql"),
        include_str!("../migrations/sqlite/0007_run_owners.sql"),
        include_str!("../migrations/sqlite/0008_contact_history.sql"),
        include_str!("../migrations/sqlite/0009_tenants.sql"),
        include_str!("../migrations/sqlite/0010_contact_aliases.sql"),
        include_str!("../migrations/sqlite/0011_partner.sql"),
        include_str!("../migrations/sqlite/0012_contact_lifecycle.sql"),
        include_str!("../migrations/sqlite/0013_user_filters.sql"),
        include_str!("../migrations/sqlite/0014_field_mapping.sql"),
    ];
    let postgres = [
        include_str!("../migrations/postgres/0001_init.sql"),
        include_str!("../migrations/postgres/0002_inventory.sql"),
        include_str!("../migrations/postgres/0003_products.sql"),
        include_str!("../migrations/postgres/0004_delta.sql"),
        include_str!("../migrations/postgres/0005_certificates.sql"),
        include_str!("../migrations/postgres/0006_mailbox_kinds.sql"),
        include_str!("../migrations/postgres/0007_run_owners.sql"),
        include_str!("../migrations/postgres/0008_contact_history.sql"),
        include_str!("../migrations/postgres/0009_tenants.sql"),
        include_str!("../migrations/postgres/0010_contact_aliases.sql"),
        include_str!("../migrations/postgres/0011_partner.sql"),
        include_str!("../migrations/postgres/0012_contact_lifecycle.sql"),
        include_str!("../migrations/postgres/0013_user_filters.sql"),
        include_str!("../migrations/postgres/0014_field_mapping.sql"),
    ];
    if backend == "sqlite" {
        sqlite.to_vec()
    } else {
        postgres.to_vec()
    }
}

/// Group documents as the JSON inventory held them, and a domain that must stay there.
fn old_rows() -> Vec<String> {
    let staff = serde_json::json!({
        "id": STAFF.to_uppercase(), "display_name": "Staff", "description": null, "mail": "staff@contoso.example",
        "kind": "microsoft365", "mail_enabled": true, "security_enabled": false,
        "group_types": ["DynamicMembership", "Unified"], "visibility": "private", "created": "2024-01-02T03:04:05Z",
        "member_count": 2,
        "members": [{"id": user_id(1), "type": "user"}, {"id": user_id(2).to_uppercase(), "type": null}],
    });
    let finance = serde_json::json!({
        "id": FINANCE, "display_name": "Finance", "mail_enabled": false, "security_enabled": true,
        "group_types": [], "visibility": null, "member_count": 0, "members": [],
    });
    let row = |key: &str, dataset: &str, doc: &serde_json::Value, archived: bool| {
        format!(
            "INSERT INTO inventory (organization_id, tenant_id, dataset, item_key, name, document, fingerprint, archived, created_at, updated_at) \
             VALUES (1, '{TENANT}', '{dataset}', '{key}', 'n', '{doc}', 'f', {archived}, 10, 20)"
        )
    };
    vec![
        "INSERT INTO organizations (name, created_at, updated_at) VALUES ('Contoso', 1, 1)".into(),
        row(&STAFF.to_uppercase(), "groups", &staff, false),
        row(FINANCE, "groups", &finance, true),
        row(
            "contoso.example",
            "domains",
            &serde_json::json!({"name": "contoso.example"}),
            false,
        ),
    ]
}

/// A store at schema 14 holding `rows`, opened (and so upgraded) by this version. The guards
/// keep its file or database alive as long as the store is used.
async fn upgraded(
    kind: StoreKind,
    rows: Vec<String>,
) -> (Store, tempfile::TempDir, Option<testkit::PostgresDatabase>) {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let mut pg = None;
    let mut statements: Vec<String> = migrations_to_14(match kind {
        StoreKind::Sqlite => "sqlite",
        StoreKind::Postgres => "postgres",
    })
    .into_iter()
    .map(str::to_string)
    .collect();
    statements.push(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
            .into(),
    );
    for version in 1..=14 {
        statements.push(format!(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ({version}, 0)"
        ));
    }
    statements.extend(rows);
    let location = match kind {
        StoreKind::Sqlite => {
            let path = dir.path().join("old.db");
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let mut old = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for sql in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut old)
                    .await
                    .unwrap();
            }
            old.close().await.unwrap();
            path.to_str().unwrap().to_string()
        }
        StoreKind::Postgres => {
            let database = testkit::PostgresDatabase::create().await.unwrap();
            let mut old = sqlx::PgConnection::connect(&database.url).await.unwrap();
            for sql in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut old)
                    .await
                    .unwrap();
            }
            old.close().await.unwrap();
            let url = database.url.clone();
            pg = Some(database);
            url
        }
    };
    let store = Store::open(&location, SecretKey::generate()).await.unwrap();
    (store, dir, pg)
}

async fn a_store_with_group_documents_moves_them_into_the_tables(kind: StoreKind) {
    let (store, _dir, _pg) = upgraded(kind, old_rows()).await;
    let groups = store.groups(Some(&tenant()), true).await.unwrap();
    assert_eq!(groups.len(), 2);
    let staff = groups.iter().find(|g| g.key() == STAFF).unwrap();
    assert_eq!(
        staff.group,
        GroupRecord {
            description: None,
            ..group(STAFF, "Staff")
        }
    );
    assert!(!staff.archived);
    assert_eq!(staff.member_count, 2);
    let finance = groups.iter().find(|g| g.key() == FINANCE).unwrap();
    assert!(finance.archived);
    assert_eq!(
        (
            finance.group.security_enabled,
            finance.group.mail_enabled,
            finance.group.group_types.len()
        ),
        (Some(true), Some(false), 0)
    );
    let members = store.group_members(Some(&tenant()), false).await.unwrap();
    let kinds: Vec<(String, Option<String>)> = members
        .into_iter()
        .map(|m| (m.member_id, m.member_type))
        .collect();
    assert_eq!(
        kinds,
        [(user_id(1), Some("user".into())), (user_id(2), None)]
    );
    // The documents left the inventory; other datasets stayed.
    assert!(
        store
            .inventory(Some(&tenant()), domain::Dataset::Groups, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .inventory(Some(&tenant()), domain::Dataset::Domains, true)
            .await
            .unwrap()
            .len(),
        1
    );
    // The next whole round that says the same writes nothing: the move kept every column.
    // The organisation the old rows were filed under.
    let org = 1;
    let mut same = GroupChange::default();
    same.group_seen(Some(GroupRecord {
        description: None,
        ..group(STAFF, "Staff")
    }));
    same.member_joined(user_id(1), Some("user".into()));
    same.member_joined(user_id(2), None);
    let mut finance_again = GroupChange::default();
    finance_again.group_seen(Some(finance.group.clone()));
    let (plan, _) = round(
        &store,
        org,
        GroupRound::Whole,
        BTreeMap::from([
            (STAFF.to_string(), same),
            (FINANCE.to_string(), finance_again),
        ]),
        &link(1),
    )
    .await;
    assert!(plan.join.is_empty() && plan.leave.is_empty(), "{plan:?}");
    assert!(plan.groups.archive.is_empty());
    store.close().await;
}
