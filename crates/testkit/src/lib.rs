//! Test support, shared by every crate's integration tests.
//!
//! Owns: a fresh store per test (SQLite in a temporary folder, or a PostgreSQL database of its
//! own that is dropped afterwards), the simulator on port 0, and `TestApp`, which ties the two
//! together with typed helpers (`app.add_connection(..)`, `app.sync(..)`). Logs stay quiet unless
//! `TEST_LOG` is set.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use domain::{ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, TenantId};
use graph::{RetryPolicy, Sleeper};
use graph_sim::{RunningSimulator, SimConfig, TenantInfo, TenantSpec};
use store::{Connection, NewConnection, SecretKey, Store};
use sync::{NoProgress, SyncEngine, SyncReport};

pub use graph_sim;

static LOGS: Once = Once::new();

fn init_logs() {
    LOGS.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                .unwrap_or_else(|_| "debug".into());
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// Says, in one line that the test harness does not capture, that a test is skipped for want
/// of a service; `scripts/test` counts these lines as skipped tests, not passed ones.
pub fn say_skipped(what: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {what}");
}

/// The server that creates and drops the per-test PostgreSQL databases.
pub fn postgres_admin_url() -> String {
    std::env::var("M365SYNC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A PostgreSQL database made for one test and dropped when this value is.
pub struct PostgresDatabase {
    pub url: String,
    name: String,
}

impl PostgresDatabase {
    /// Creates a database, or — where no PostgreSQL answers and this is not CI — says so in one
    /// line and returns `None` so the caller can skip. Under `CI=true` a missing server fails.
    pub async fn create() -> Option<Self> {
        use sqlx::Connection as _;
        let admin = postgres_admin_url();
        let mut conn = admin_connection().await?;
        let name = format!("m365sync_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin);
        Some(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee; use a thread with its own small runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Where a test's store lives; dropped with it.
pub enum StoreHome {
    Sqlite(tempfile::TempDir),
    Postgres(PostgresDatabase),
}

pub async fn sqlite_store() -> (Store, StoreHome) {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("m365sync.db");
    let store = Store::open(path.to_str().expect("utf-8 path"), SecretKey::generate())
        .await
        .expect("open sqlite store");
    (store, StoreHome::Sqlite(dir))
}

/// A SQLite store that may grow by only `headroom` pages (4 KiB each) past its empty schema:
/// writing more fails as a full disk does.
pub async fn sqlite_store_near_full(headroom: u32) -> (Store, StoreHome) {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("m365sync.db");
    let location = path.to_str().expect("utf-8 path");
    let key = SecretKey::generate();
    let empty = Store::open(location, key.clone())
        .await
        .expect("open sqlite store");
    // Closing the last connection checkpoints the log, so the file holds every page.
    empty.close().await;
    let pages = std::fs::metadata(&path).expect("store file").len() / 4096;
    let store = Store::open_with(
        location,
        key,
        store::StoreOptions {
            sqlite_max_pages: Some(pages as u32 + headroom),
        },
    )
    .await
    .expect("reopen sqlite store with a ceiling");
    (store, StoreHome::Sqlite(dir))
}

pub async fn postgres_store() -> Option<(Store, StoreHome)> {
    init_logs();
    let db = PostgresDatabase::create().await?;
    let store = Store::open(&db.url, SecretKey::generate())
        .await
        .expect("open postgres store");
    Some((store, StoreHome::Postgres(db)))
}

pub async fn simulator(config: SimConfig) -> RunningSimulator {
    init_logs();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
    graph_sim::start(config, addr)
        .await
        .expect("start simulator")
}

/// Records the waits a client would have made, and makes none: retry tests run instantly.
#[derive(Default, Clone)]
pub struct RecordingSleeper {
    pub waits: Arc<Mutex<Vec<Duration>>>,
}

impl RecordingSleeper {
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

impl Sleeper for RecordingSleeper {
    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        if let Ok(mut waits) = self.waits.lock() {
            waits.push(duration);
        }
        Box::pin(async {})
    }
}

/// A retry policy whose waits are recorded, not spent.
pub fn instant_retry(attempts: u32) -> (RetryPolicy, RecordingSleeper) {
    let sleeper = RecordingSleeper::default();
    let policy = RetryPolicy {
        max_attempts: attempts,
        sleeper: Arc::new(sleeper.clone()),
        ..RetryPolicy::default()
    };
    (policy, sleeper)
}

/// Which backend a test's store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// A fresh store of `kind`. Call it for PostgreSQL only after `postgres_answers()` said yes.
pub async fn store_of(kind: StoreKind) -> (Store, StoreHome) {
    match kind {
        StoreKind::Sqlite => sqlite_store().await,
        StoreKind::Postgres => postgres_store()
            .await
            .expect("PostgreSQL answered a moment ago"),
    }
}

/// Whether the PostgreSQL tests can run. Where no server answers and this is not CI, says so
/// in one line (the test then counts as skipped); under `CI=true` a missing server fails.
pub async fn postgres_answers() -> bool {
    use sqlx::Connection as _;
    match admin_connection().await {
        Some(conn) => {
            let _ = conn.close().await;
            true
        }
        None => false,
    }
}

/// A connection to the admin database; where none can be had, says so and gives `None` (or,
/// under `CI=true`, fails the test).
async fn admin_connection() -> Option<sqlx::PgConnection> {
    use sqlx::Connection as _;
    let admin = postgres_admin_url();
    let connect =
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&admin)).await;
    let why = match connect {
        Ok(Ok(conn)) => return Some(conn),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".to_string(),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL tests must run under CI=true, but {admin} does not answer: {why}");
    }
    say_skipped(&format!(
        "PostgreSQL test: no server at {admin} ({why}); set M365SYNC_TEST_POSTGRES to run it"
    ));
    None
}

/// Runs each named scenario, an `async fn(StoreKind)`, as two tests: `NAME::sqlite` and
/// `NAME::postgres` (skipped, with one line saying so, where no PostgreSQL answers outside CI).
/// On a multi-threaded runtime: a scenario may block a thread on the binary while the simulator
/// answers it from another.
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite() {
                    super::$scenario($crate::StoreKind::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    if $crate::postgres_answers().await {
                        super::$scenario($crate::StoreKind::Postgres).await
                    }
                }
            }
        )+
    };
}

/// A store, a simulator and a sync engine, wired together.
pub struct TestApp {
    pub store: Store,
    pub sim: RunningSimulator,
    pub engine: SyncEngine,
    pub sleeper: RecordingSleeper,
    _home: StoreHome,
}

impl TestApp {
    /// SQLite and a simulator with one tenant of `users` users.
    pub async fn with_users(users: u64) -> Self {
        Self::with_users_on(StoreKind::Sqlite, users).await
    }

    /// A store of `kind` and a simulator with one tenant of `users` users.
    pub async fn with_users_on(kind: StoreKind, users: u64) -> Self {
        Self::new_on(
            kind,
            SimConfig {
                seed: 7,
                tenants: vec![TenantSpec::with_users(users)],
                ..SimConfig::default()
            },
        )
        .await
    }

    pub async fn new(config: SimConfig) -> Self {
        Self::new_on(StoreKind::Sqlite, config).await
    }

    pub async fn new_on(kind: StoreKind, config: SimConfig) -> Self {
        let (store, home) = store_of(kind).await;
        Self::on(store, home, config).await
    }

    pub async fn on(store: Store, home: StoreHome, config: SimConfig) -> Self {
        let sim = simulator(config).await;
        let (retry, sleeper) = instant_retry(6);
        let engine = SyncEngine::new(store.clone())
            .with_retry(retry)
            .with_page_size(40);
        Self {
            store,
            sim,
            engine,
            sleeper,
            _home: home,
        }
    }

    pub fn tenant(&self, position: usize) -> TenantInfo {
        self.sim.tenants()[position].clone()
    }

    /// Adds a connection to the simulated tenant at `position`, with every dataset.
    pub async fn add_connection(&self, name: &str, position: usize) -> Connection {
        let tenant = self.tenant(position);
        self.add_connection_with(
            name,
            &tenant.tenant_id,
            &tenant.client_id,
            &tenant.client_secret,
            Dataset::ALL.to_vec(),
        )
        .await
    }

    pub async fn add_connection_with(
        &self,
        name: &str,
        tenant_id: &str,
        client_id: &str,
        secret: &str,
        datasets: Vec<Dataset>,
    ) -> Connection {
        self.store
            .add_connection(NewConnection {
                name: ConnectionName::parse(name).expect("name"),
                tenant_id: TenantId::parse(tenant_id).expect("tenant id"),
                client_id: ClientId::parse(client_id).expect("client id"),
                credential: Credential::Secret(ClientSecret::parse(secret).expect("secret")),
                cloud: Cloud::custom(&self.sim.url, &self.sim.url).expect("urls"),
                datasets,
            })
            .await
            .expect("add connection")
    }

    pub async fn sync(&self, name: &str) -> SyncReport {
        self.engine.sync(name, &NoProgress).await.expect("sync ran")
    }

    /// Forgets the connection's cached fetches, as `m365sync cache clear` does: the next sync
    /// reads every dataset, whatever its cache lifetime.
    pub async fn clear_cache(&self, name: &str) {
        let connection = self
            .store
            .connection(name)
            .await
            .expect("store answered")
            .expect("connection exists");
        self.store
            .clear_cache(&connection, None)
            .await
            .expect("cache cleared");
    }

    pub fn tenant_key(&self, position: usize) -> String {
        self.tenant(position).tenant_id
    }
}
