//! Upgrades from every schema a release has had: a store left at each version, holding the
//! rows every version has (an organisation, a connection with its sealed secret, contacts, a
//! licence and its assignment, a mailbox, a run with a step), is opened by this build, migrated to
//! the newest schema, and still holds and serves each row. And a store from a newer build is
//! refused before anything in it is changed.

use crate::backend::{Pool, is_postgres};
use crate::migrate::{known_versions, newest_known, run_up_to};
use crate::secrets::SecretCipher;
use crate::{ContactFilter, SecretKey, Store, StoreOptions};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "Abc8Q~an-old-secret-value";

/// Where the test's databases live: a temp folder, or one PostgreSQL database whose schema is
/// emptied for each store (much quicker than a database each). Kept until the test ends.
enum Home {
    Sqlite { dir: tempfile::TempDir },
    Postgres { database: testkit::PostgresDatabase },
}

impl Home {
    async fn new(postgres: bool) -> Option<Self> {
        Some(if postgres {
            Self::Postgres {
                database: testkit::PostgresDatabase::create().await?,
            }
        } else {
            Self::Sqlite {
                dir: tempfile::tempdir().expect("temp dir"),
            }
        })
    }

    /// The location of an empty store, the `n`th of this test.
    async fn empty_store(&self, n: usize) -> String {
        match self {
            Self::Sqlite { dir } => dir.path().join(format!("old-{n}.db")).display().to_string(),
            Self::Postgres { database } => {
                let pool = pool_at(&database.url).await;
                if let Pool::Postgres(p) = &pool {
                    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                        .execute(p)
                        .await
                        .expect("empty the schema");
                }
                crate::backend::close(&pool).await;
                database.url.clone()
            }
        }
    }
}

async fn pool_at(location: &str) -> Pool {
    if is_postgres(location) {
        Pool::Postgres(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(location)
                .await
                .expect("connect to the test database"),
        )
    } else {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(location)
            .create_if_missing(true)
            .foreign_keys(true);
        Pool::Sqlite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .expect("open the test file"),
        )
    }
}

/// The rows every schema since the first has room for, written with the first schema's columns
/// (later versions only add columns with defaults, or move rows themselves).
async fn fill(pool: &Pool, cipher: &SecretCipher) {
    let sealed = cipher
        .seal(SECRET, "connections.client_secret:1")
        .expect("seal");
    let statements: Vec<(&str, Vec<String>)> = vec![
        (
            "INSERT INTO organizations (id, name, tenant_id, tenant_name, verified_domains, default_domain, created_at, updated_at) VALUES (1, 'Contoso Ltd', $1, 'Contoso', '[\"contoso.com\"]', 'contoso.com', 1000, 1000)",
            vec![TENANT.into()],
        ),
        (
            "INSERT INTO connections (id, name, tenant_id, client_id, client_secret, cloud, datasets, created_at, updated_at) VALUES (1, 'contoso', $1, $2, $3, '{\"kind\":\"global\"}', '[\"organization\",\"licenses\",\"users\",\"mailboxes\"]', 1000, 1000)",
            vec![TENANT.into(), CLIENT.into(), sealed],
        ),
        (
            "INSERT INTO contacts (id, organization_id, tenant_id, object_id, user_principal_name, upn_key, email, email_key, display_name, given_name, surname, job_title, business_phones, account_enabled, user_type, created_at, updated_at) VALUES (1, 1, $1, 'aaaaaaaa-0000-0000-0000-000000000001', 'Adele.Vance@contoso.com', 'adele.vance@contoso.com', 'Adele.Vance@contoso.com', 'adele.vance@contoso.com', 'Adele Vance', 'Adele', 'Vance', 'Retail Manager', '[\"+1 425 555 0109\"]', TRUE, 'Member', 1000, 1000)",
            vec![TENANT.into()],
        ),
        (
            "INSERT INTO contacts (id, organization_id, tenant_id, object_id, user_principal_name, upn_key, display_name, archived, archived_at, created_at, updated_at) VALUES (2, 1, $1, 'aaaaaaaa-0000-0000-0000-000000000002', 'Gone@contoso.com', 'gone@contoso.com', 'Gone User', TRUE, 2000, 1000, 2000)",
            vec![TENANT.into()],
        ),
        (
            "INSERT INTO licenses (id, organization_id, tenant_id, sku_id, sku_part_number, applies_to, capability_status, enabled_units, suspended_units, warning_units, consumed_units, fingerprint, created_at, updated_at) VALUES (1, 1, $1, 'c7df2760-2c81-4ef7-b578-5b5392b571df', 'ENTERPRISEPREMIUM', 'User', 'Enabled', 25, 0, 0, 1, 'f', 1000, 1000)",
            vec![TENANT.into()],
        ),
        (
            "INSERT INTO contact_licenses (contact_id, sku_id) VALUES (1, 'c7df2760-2c81-4ef7-b578-5b5392b571df')",
            vec![],
        ),
        (
            "INSERT INTO mailboxes (id, tenant_id, upn_key, user_principal_name, contact_id, display_name, is_deleted, storage_used_bytes, item_count, fingerprint, created_at, updated_at) VALUES (1, $1, 'adele.vance@contoso.com', 'Adele.Vance@contoso.com', 1, 'Adele Vance', FALSE, 1048576, 42, 'f', 1000, 1000)",
            vec![TENANT.into()],
        ),
        (
            "INSERT INTO sync_runs (id, connection_id, connection_name, kind, status, message, started_at, finished_at) VALUES (1, 1, 'contoso', 'manual', 'succeeded', NULL, 1000, 5000)",
            vec![],
        ),
        (
            "INSERT INTO sync_steps (id, run_id, dataset, status, created, started_at, finished_at) VALUES (1, 1, 'users', 'succeeded', 2, 1000, 5000)",
            vec![],
        ),
    ];
    for (sql, binds) in statements {
        macro_rules! run {
            ($p:expr) => {{
                let mut query = sqlx::query(sql);
                for value in &binds {
                    query = query.bind(value.as_str());
                }
                query
                    .execute($p)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }};
        }
        match pool {
            Pool::Sqlite(p) => run!(p),
            Pool::Postgres(p) => run!(p),
        }
    }
    // PostgreSQL's identities must move past the ids given by hand, as a real store's had.
    if let Pool::Postgres(p) = pool {
        for table in [
            "organizations",
            "connections",
            "contacts",
            "licenses",
            "mailboxes",
            "sync_runs",
            "sync_steps",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            )))
            .execute(p)
            .await
            .unwrap_or_else(|e| panic!("moving {table}'s identity: {e}"));
        }
    }
}

/// What the store at the newest schema must still hold and do.
async fn check(store: &Store, from: i64) {
    let organizations = store.organizations().await.expect("organizations");
    assert_eq!(organizations.len(), 1, "from version {from}");
    assert_eq!(organizations[0].name, "Contoso Ltd", "from version {from}");

    let connection = store
        .connection("contoso")
        .await
        .expect("read the connection")
        .unwrap_or_else(|| panic!("the connection is gone after upgrading from {from}"));
    assert_eq!(connection.tenant_id.to_string(), TENANT);
    match store
        .connection_credential(&connection)
        .await
        .unwrap_or_else(|e| panic!("the secret does not open after upgrading from {from}: {e}"))
    {
        domain::Credential::Secret(secret) => assert_eq!(secret.expose(), SECRET),
        domain::Credential::Certificate(_) => panic!("the secret became a certificate"),
    }

    let filter = ContactFilter {
        include_archived: true,
        ..ContactFilter::default()
    };
    let contacts = store
        .contacts_page(&filter, 0, 100)
        .await
        .unwrap_or_else(|e| panic!("contacts after upgrading from {from}: {e}"));
    assert_eq!(contacts.len(), 2, "from version {from}");
    let adele = contacts
        .iter()
        .find(|c| c.display_name == "Adele Vance")
        .unwrap_or_else(|| panic!("Adele is gone after upgrading from {from}"));
    assert_eq!(adele.job_title.as_deref(), Some("Retail Manager"));
    assert!(!adele.archived, "from version {from}");
    assert!(
        contacts
            .iter()
            .any(|c| c.display_name == "Gone User" && c.archived),
        "the archived contact stays archived after upgrading from {from}"
    );

    let mailboxes = store
        .mailboxes(None, crate::MailboxKind::Live, false)
        .await
        .unwrap_or_else(|e| panic!("mailboxes after upgrading from {from}: {e}"));
    assert_eq!(mailboxes.len(), 1, "from version {from}");
    assert_eq!(mailboxes[0].storage_used_bytes, Some(1_048_576));
    assert_eq!(
        mailboxes[0].contact_object_id.as_deref(),
        Some("aaaaaaaa-0000-0000-0000-000000000001"),
        "Adele's mailbox is hers after upgrading from {from}"
    );

    let licenses = store.licenses(None, true).await.expect("licenses");
    assert_eq!(licenses.len(), 1, "from version {from}");

    let runs = store.runs(Some("contoso"), 10).await.expect("runs");
    assert_eq!(runs.len(), 1, "from version {from}");
    assert_eq!(runs[0].steps.len(), 1, "from version {from}");

    // And it works: a new connection is saved beside the old one, and both are listed.
    store
        .add_connection(crate::NewConnection {
            name: domain::ConnectionName::parse("fabrikam").expect("name"),
            tenant_id: domain::TenantId::parse("0b1c2d3e-1111-2222-3333-444455556666")
                .expect("tenant"),
            client_id: domain::ClientId::parse(CLIENT).expect("client"),
            credential: domain::Credential::Secret(
                domain::ClientSecret::parse("Xyz8Q~a-new-secret").expect("secret"),
            ),
            cloud: domain::Cloud::Global,
            datasets: domain::Dataset::ALL.to_vec(),
        })
        .await
        .unwrap_or_else(|e| panic!("adding a connection after upgrading from {from}: {e}"));
    assert_eq!(store.connections().await.expect("connections").len(), 2);
}

async fn from_every_earlier_schema(postgres: bool) {
    let versions = known_versions();
    let earlier = &versions[..versions.len() - 1];
    assert!(earlier.len() >= 20, "the released schemas are all tried");
    let Some(home) = Home::new(postgres).await else {
        return;
    };
    for (n, &version) in earlier.iter().enumerate() {
        let location = home.empty_store(n).await;
        let key = SecretKey::generate();
        let pool = pool_at(&location).await;
        run_up_to(&pool, version)
            .await
            .unwrap_or_else(|e| panic!("making a store at version {version}: {e}"));
        fill(&pool, &SecretCipher::new(key.clone())).await;
        crate::backend::close(&pool).await;
        let store = Store::open_with(&location, key, StoreOptions::default())
            .await
            .unwrap_or_else(|e| panic!("opening a store of version {version}: {e}"));
        check(&store, version).await;
        store.close().await;
    }
}

#[tokio::test]
async fn a_sqlite_store_of_every_earlier_schema_upgrades_with_its_data() {
    from_every_earlier_schema(false).await;
}

#[tokio::test]
async fn a_postgres_store_of_every_earlier_schema_upgrades_with_its_data() {
    from_every_earlier_schema(true).await;
}

async fn newer_store_is_refused(postgres: bool) {
    let Some(home) = Home::new(postgres).await else {
        return;
    };
    let location = home.empty_store(0).await;
    // A store a newer build upgraded from an older schema: it holds a version this build does
    // not know, and lacks versions this build would apply.
    let older = known_versions()[known_versions().len() / 2];
    let pool = pool_at(&location).await;
    run_up_to(&pool, older).await.expect("an older store");
    let newer = newest_known() + 1000;
    macro_rules! on {
        ($p:expr, $sql:expr) => {{
            sqlx::query_scalar::<_, i64>($sql)
                .bind(newer)
                .fetch_all($p)
                .await
                .expect("the schema versions")
        }};
    }
    const INSERT: &str =
        "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0) RETURNING version";
    const APPLIED: &str =
        "SELECT version FROM schema_migrations WHERE version <> $1 ORDER BY version";
    match &pool {
        Pool::Sqlite(p) => on!(p, INSERT),
        Pool::Postgres(p) => on!(p, INSERT),
    };
    crate::backend::close(&pool).await;

    let error =
        match Store::open_with(&location, SecretKey::generate(), StoreOptions::default()).await {
            Ok(_) => panic!("a store of a newer schema was opened"),
            Err(e) => e.to_string(),
        };
    assert!(
        error.contains(&format!("schema version {newer}")),
        "{error}"
    );
    assert!(error.contains("newer m365sync"), "{error}");
    assert!(error.contains("never migrated backwards"), "{error}");

    // Refused before anything was applied.
    let pool = pool_at(&location).await;
    let applied = match &pool {
        Pool::Sqlite(p) => on!(p, APPLIED),
        Pool::Postgres(p) => on!(p, APPLIED),
    };
    crate::backend::close(&pool).await;
    assert_eq!(
        applied.last(),
        Some(&older),
        "nothing was migrated: {applied:?}"
    );
}

#[tokio::test]
async fn a_sqlite_store_from_a_newer_build_is_refused() {
    newer_store_is_refused(false).await;
}

#[tokio::test]
async fn a_postgres_store_from_a_newer_build_is_refused() {
    newer_store_is_refused(true).await;
}
