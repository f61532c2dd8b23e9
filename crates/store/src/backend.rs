//! Opening the database, and the macros that run one query body on either backend.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

use crate::error::{Context, Result, StoreError};
use crate::secrets::{KEY_ENV, SecretCipher, envelope_key_id};
use crate::{SecretKey, migrate};

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// A SQLite write transaction with this process's writer turn (see [`WriterTurns`]), held until
/// the transaction ends. Fields drop in order: the transaction's rollback is queued first.
pub(crate) struct SqliteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: WriterTurn,
}

impl std::ops::Deref for SqliteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// SQLite admits one writer at a time, and a writer that finds the lock taken sleeps in its busy
/// handler for up to 100 ms before it looks again: with a partner's customers or a tenant's
/// datasets written side by side, most of a run went by in those sleeps. The writers of one
/// process take turns here instead, each woken the moment the one before is done; the busy
/// handler still arbitrates between processes.
#[derive(Clone, Default)]
pub(crate) struct WriterTurns(Arc<tokio::sync::Mutex<()>>);

/// One writer's turn; the next writer's begins when it is dropped. How long each was waited for
/// and held is logged (`M365SYNC_LOG=store::turns=debug`): a turn held much longer than its
/// statements took was held by a task waiting for its turn on the runtime.
pub(crate) struct WriterTurn {
    _held: Option<tokio::sync::OwnedMutexGuard<()>>,
    since: std::time::Instant,
}

impl Drop for WriterTurn {
    fn drop(&mut self) {
        if self._held.is_some() {
            tracing::debug!(target: "store::turns", held_us = self.since.elapsed().as_micros() as u64, "turn held");
        }
    }
}

impl WriterTurns {
    /// As long as SQLite itself would wait for its lock: a writer still waiting after that fails
    /// as SQLite's busy lock does, rather than hanging.
    const PATIENCE: Duration = Duration::from_secs(30);

    pub(crate) async fn take(&self, pool: &Pool) -> Result<WriterTurn> {
        if !matches!(pool, Pool::Sqlite(_)) {
            return Ok(WriterTurn {
                _held: None,
                since: std::time::Instant::now(),
            });
        }
        let asked = std::time::Instant::now();
        match tokio::time::timeout(Self::PATIENCE, self.0.clone().lock_owned()).await {
            Ok(turn) => {
                tracing::debug!(target: "store::turns", waited_us = asked.elapsed().as_micros() as u64, "turn waited");
                Ok(WriterTurn {
                    _held: Some(turn),
                    since: std::time::Instant::now(),
                })
            }
            Err(_) => Err(StoreError::Busy(format!(
                "another writer of this process held the store for {} s",
                Self::PATIENCE.as_secs()
            ))),
        }
    }
}

/// Runs `$body` with `$p` bound to the concrete pool of whichever backend is open.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::backend::Pool::Sqlite($p) => $body,
            $crate::backend::Pool::Postgres($p) => $body,
        }
    };
}

/// [`on_pool!`] for a statement that writes outside a transaction (it commits as it ends): on
/// SQLite it first waits for this process's writer turn (see [`WriterTurns`]).
macro_rules! write_on_pool {
    ($store:expr, |$p:ident| $body:expr) => {{
        let _turn = $store.writer_turn().await?;
        on_pool!(&$store.pool, |$p| $body)
    }};
}

/// Runs `$body` with `$c` bound to the connection of an open transaction.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::backend::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::backend::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
/// Fetches `$select WHERE tenant_id = <tenant> AND <column> IN (<keys>)` on a connection: the one
/// shape every page-sized lookup of existing rows takes. No keys ask for no rows, and no query is
/// sent: PostgreSQL refuses an empty `IN ()` that SQLite accepts.
///
/// Like every statement built with a `QueryBuilder` here, it is not kept in the connection's
/// statement cache (`persistent(false)`): a page-sized statement takes about 100 KB once
/// prepared, each page length is a statement of its own, and the cache (per connection) kept
/// hundreds of them, most of a sync's memory. Preparing one again costs far less than the
/// rows it writes.
macro_rules! fetch_in {
    ($c:expr, $select:literal, $column:literal, $tenant:expr, $keys:expr) => {{
        let query = sqlx::QueryBuilder::new(concat!($select, " WHERE tenant_id = "));
        fetch_in!(@keys $c, query, $column, $tenant, $keys)
    }};
    // With one more equality (`dataset = …`), so that the lookup uses the whole unique index.
    ($c:expr, $select:literal, $column:literal, $tenant:expr, $keys:expr, $also:literal = $value:expr) => {{
        let mut query = sqlx::QueryBuilder::new(concat!($select, " WHERE ", $also, " = "));
        query.push_bind($value.to_string()).push(" AND tenant_id = ");
        fetch_in!(@keys $c, query, $column, $tenant, $keys)
    }};
    (@keys $c:expr, $query:ident, $column:literal, $tenant:expr, $keys:expr) => {{
        let mut keys = $keys.into_iter().peekable();
        if keys.peek().is_none() {
            Ok(Vec::new())
        } else {
            let mut query = $query;
            query
                .push_bind($tenant.to_string())
                .push(concat!(" AND ", $column, " IN ("));
            let mut list = query.separated(", ");
            for key in keys {
                list.push_bind(key.to_string());
            }
            query.push(")");
            query.build().persistent(false).fetch_all($c).await
        }
    }};
}
/// Fetches `$before (<ids>) $after` on a connection: what a page of contacts shows beside its own
/// columns, read for exactly the page's contacts (a page sorted by name spans the whole id
/// range, and reading by range read every contact between its lowest and highest id). A page
/// holds at most a thousand contacts, well within both databases' limits on parameters.
macro_rules! fetch_ids {
    ($c:expr, $before:expr, $ids:expr, $after:literal) => {{
        let mut query = sqlx::QueryBuilder::new($before);
        query.push(" (");
        let mut list = query.separated(", ");
        for id in $ids {
            list.push_bind(*id);
        }
        query.push(concat!(") ", $after));
        query.build().persistent(false).fetch_all($c).await
    }};
}
pub(crate) use {fetch_ids, fetch_in, on_pool, on_tx, write_on_pool};

impl Tx {
    /// Serialises writers of one tenant's records. SQLite's `BEGIN IMMEDIATE` already admits one
    /// writer at a time; on PostgreSQL two runs of one tenant would otherwise both decide to
    /// insert the same object and one would fail on the unique key.
    pub(crate) async fn lock_tenant(&mut self, tenant: &str) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(tenant)
                .execute(&mut **t)
                .await
                .doing("locking the tenant's records")?;
        }
        Ok(())
    }

    /// Plans this transaction's lookups for rows that sit in memory. A page's rows are found by
    /// key; at PostgreSQL's default cost of a random page (4, set for spinning disks) the planner
    /// read every contact of the tenant instead to find a page of 500, a cost that grew with each
    /// page written. 1.1 is the usual figure for solid-state storage. Set for this transaction
    /// only (`SET LOCAL`): the server's and the role's settings hold everywhere else, and a
    /// connection pooler in front of PostgreSQL sees no startup option it may refuse.
    pub(crate) async fn plan_key_lookups(&mut self) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT set_config('random_page_cost', '1.1', TRUE)")
                .execute(&mut **t)
                .await
                .doing("planning the page's lookups")?;
        }
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.tx.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
        .doing("committing")
    }
}

/// Reads columns the same way from either backend's rows.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<Option<String>>;
    fn int(&self, column: &str) -> Result<Option<i64>>;
    fn flag(&self, column: &str) -> Result<Option<bool>>;

    fn text_req(&self, column: &str) -> Result<String> {
        self.text(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column} is empty")))
    }
    fn int_req(&self, column: &str) -> Result<i64> {
        self.int(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column} is empty")))
    }
    fn json_list(&self, column: &str) -> Result<Vec<String>> {
        match self.text(column)? {
            None => Ok(Vec::new()),
            Some(raw) => serde_json::from_str(&raw)
                .map_err(|e| StoreError::Corrupt(format!("{column}: {e}"))),
        }
    }
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<Option<String>> {
                self.try_get(column).doing("reading a row")
            }
            fn int(&self, column: &str) -> Result<Option<i64>> {
                self.try_get(column).doing("reading a row")
            }
            fn flag(&self, column: &str) -> Result<Option<bool>> {
                self.try_get(column).doing("reading a row")
            }
        }
    };
}
columns_for!(sqlx::sqlite::SqliteRow);
columns_for!(sqlx::postgres::PgRow);

/// Ways to open a store other than the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    /// A ceiling on a SQLite store's size, in pages of 4 KiB: reaching it fails a write as a
    /// full disk does. For keeping a store within a quota, and for testing that path.
    pub sqlite_max_pages: Option<u32>,
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store: a pool on one backend and the key that guards the secrets in it.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) cipher: SecretCipher,
    location: String,
    /// The run whose lease every write transaction of this handle must still hold.
    fence: Option<Arc<RunFence>>,
    /// How text is put in the order a person expects ("Émile" beside "Emma", not after "Zoe").
    natural_order: NaturalOrder,
    /// Shared by every clone of the store, so that its writers take turns.
    pub(crate) writers: WriterTurns,
    /// Shared by every clone of the store, so that a table is analysed once per growth.
    pub(crate) growth: crate::statistics::TableGrowth,
}

#[derive(Clone, Copy)]
enum NaturalOrder {
    /// SQLite's collation of ours, [`NATURAL_COLLATION`].
    Collation,
    /// PostgreSQL's ICU root collation.
    Icu,
    /// A PostgreSQL built without ICU: case set aside, accents still by code point.
    LowerCase,
}

/// The SQLite collation, registered on every connection, that orders text as people read it.
pub(crate) const NATURAL_COLLATION: &str = "natural_text";

/// Text compared as a person reads it: accents and case set aside first ("émile" between
/// "Emma" and "eve"), then the text itself, so that the order is total and stable.
pub(crate) fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    // Most names differ in their ASCII letters: compared without folding when both are ASCII.
    if a.is_ascii() && b.is_ascii() {
        return a
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
            .then_with(|| a.cmp(b));
    }
    crate::text_fold::folded(a)
        .cmp(&crate::text_fold::folded(b))
        .then_with(|| a.cmp(b))
}

/// A worker's claim on a run, checked at the start of each of its write transactions.
#[derive(Debug)]
struct RunFence {
    run_id: i64,
    holder: String,
}

impl Store {
    /// Opens (creating and migrating on first use) the store at `location`: a file path for
    /// SQLite, or a `postgres://` URL.
    pub async fn open(location: &str, key: SecretKey) -> Result<Self> {
        Self::open_with(location, key, StoreOptions::default()).await
    }

    /// Opens the store with options beyond the defaults. A store that holds secrets sealed with
    /// another key is refused.
    pub async fn open_with(location: &str, key: SecretKey, options: StoreOptions) -> Result<Self> {
        let pool = connect(location, options).await?;
        let sealed = sealed_key_ids(&pool).await?;
        check_key(location, &sealed, &key, "the key given")?;
        Self::ready(pool, key, location).await
    }

    /// Opens the store with its own key: `M365SYNC_SECRET_KEY`'s value if set (`env_key`), else
    /// the key in `key_file`. A key file is made only for a store that holds no sealed secret (a
    /// new one): a store with secrets whose key is missing or another is refused, naming the key
    /// id it needs and where it looked, so that secrets never end up under two keys.
    pub async fn open_keyed(
        location: &str,
        env_key: Option<String>,
        key_file: &Path,
        options: StoreOptions,
    ) -> Result<Self> {
        check_location(location)?;
        check_not_foreign(location).await?;
        let pool = connect(location, options).await?;
        let sealed = sealed_key_ids(&pool).await?;
        let (key, source) = match env_key.filter(|v| !v.trim().is_empty()) {
            Some(value) => (SecretKey::parse(&value, KEY_ENV)?, KEY_ENV.to_string()),
            None if key_file.exists() => (
                SecretKey::read_file(key_file)?,
                format!("the key file {}", key_file.display()),
            ),
            None if sealed.is_empty() => (
                SecretKey::create_file(key_file)?,
                format!("the new key file {}", key_file.display()),
            ),
            None => {
                return Err(StoreError::Secret(format!(
                    "the store {} holds secrets sealed with key {}, but {KEY_ENV} is unset and there is no key file at {}. Restore that file from your backup (or set {KEY_ENV} to the key); a new key would not open them",
                    redact_url(location),
                    list(&sealed),
                    key_file.display()
                )));
            }
        };
        check_key(location, &sealed, &key, &source)?;
        Self::ready(pool, key, location).await
    }

    async fn ready(pool: Pool, key: SecretKey, location: &str) -> Result<Self> {
        let store = Self {
            pool,
            cipher: SecretCipher::new(key),
            location: redact_url(location),
            fence: None,
            natural_order: NaturalOrder::LowerCase,
            writers: WriterTurns::default(),
            growth: Default::default(),
        };
        migrate::run(&store.pool).await?;
        let natural_order = match &store.pool {
            Pool::Sqlite(_) => NaturalOrder::Collation,
            // PostgreSQL orders by the database's collation, often "C" (by code point); its ICU
            // root collation orders as people read, where the server was built with ICU.
            Pool::Postgres(p) => {
                let icu: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')",
                )
                .fetch_one(p)
                .await
                .doing("looking for the ICU collation")?;
                if icu {
                    NaturalOrder::Icu
                } else {
                    NaturalOrder::LowerCase
                }
            }
        };
        Ok(Self {
            natural_order,
            ..store
        })
    }

    /// `expr` (SQL of ours, never a request's) as an `ORDER BY` term that puts text in the order
    /// people read it.
    pub(crate) fn in_natural_order(&self, expr: &str) -> String {
        match self.natural_order {
            NaturalOrder::Collation => format!("{expr} COLLATE {NATURAL_COLLATION}"),
            NaturalOrder::Icu => format!("{expr} COLLATE \"und-x-icu\""),
            NaturalOrder::LowerCase => format!("LOWER({expr})"),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Where the store is, with any password removed.
    pub fn location(&self) -> &str {
        &self.location
    }

    pub async fn close(&self) {
        on_pool!(&self.pool, |p| p.close().await)
    }

    /// Opens a write transaction. SQLite takes its write lock at once (`BEGIN IMMEDIATE`), so two
    /// writers queue instead of failing on a lock upgrade.
    ///
    /// A handle fenced to a run ([`fenced_to`](Self::fenced_to)) first checks, inside the
    /// transaction, that its worker still holds the run's lease, so that a worker whose lease
    /// expired (a paused machine, a lost network) and was taken over writes nothing more. On
    /// SQLite the write lock is held from `BEGIN IMMEDIATE`, and on PostgreSQL the run's row is
    /// locked `FOR SHARE`, so the lease cannot be taken until the transaction ends.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        let mut tx = match &self.pool {
            Pool::Sqlite(p) => {
                let turn = self.writers.take(&self.pool).await?;
                Tx::Sqlite(SqliteTx {
                    tx: p
                        .begin_with("BEGIN IMMEDIATE")
                        .await
                        .doing("starting a transaction")?,
                    _turn: turn,
                })
            }
            Pool::Postgres(p) => Tx::Postgres(p.begin().await.doing("starting a transaction")?),
        };
        if let Some(fence) = &self.fence {
            let held: Option<(i64,)> = match &mut tx {
                Tx::Sqlite(t) => sqlx::query_as(
                    "SELECT id FROM sync_runs WHERE id = $1 AND status = 'running' AND lease_owner = $2",
                )
                .bind(fence.run_id)
                .bind(&fence.holder)
                .fetch_optional(&mut **t)
                .await,
                Tx::Postgres(t) => sqlx::query_as(
                    "SELECT id FROM sync_runs WHERE id = $1 AND status = 'running' AND lease_owner = $2 FOR SHARE",
                )
                .bind(fence.run_id)
                .bind(&fence.holder)
                .fetch_optional(&mut **t)
                .await,
            }
            .doing("checking the run's lease")?;
            if held.is_none() {
                return Err(StoreError::LeaseLost {
                    run_id: fence.run_id,
                });
            }
        }
        Ok(tx)
    }

    /// The lease holder this handle is fenced to, if any.
    pub(crate) fn fence_holder(&self) -> Option<&str> {
        self.fence.as_deref().map(|fence| fence.holder.as_str())
    }

    /// This process's turn to write to a SQLite store outside a transaction (a statement of its
    /// own commits as it ends); none is needed on PostgreSQL.
    pub(crate) async fn writer_turn(&self) -> Result<WriterTurn> {
        self.writers.take(&self.pool).await
    }

    /// This store, for the worker that holds `run_id`: each write transaction opened through it
    /// is refused once the worker no longer holds the run's lease.
    pub fn fenced_to(&self, run_id: i64, worker: &crate::Worker) -> Store {
        Store {
            fence: Some(Arc::new(RunFence {
                run_id,
                holder: worker.holder(),
            })),
            ..self.clone()
        }
    }

    /// Table and column names, for the test that both backends have the same schema.
    pub async fn schema(&self) -> Result<Vec<(String, String)>> {
        let mut columns: Vec<(String, String)> = match &self.pool {
            Pool::Sqlite(p) => {
                let rows = sqlx::query(
                    "SELECT m.name AS t, c.name AS c FROM sqlite_master m JOIN pragma_table_info(m.name) c WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(p)
                .await
                .doing("reading the schema")?;
                rows.iter()
                    .map(|r| Ok((r.text_req("t")?, r.text_req("c")?)))
                    .collect::<Result<_>>()?
            }
            Pool::Postgres(p) => {
                let rows = sqlx::query(
                    "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns WHERE table_schema = current_schema()",
                )
                .fetch_all(p)
                .await
                .doing("reading the schema")?;
                rows.iter()
                    .map(|r| Ok((r.text_req("t")?, r.text_req("c")?)))
                    .collect::<Result<_>>()?
            }
        };
        columns.sort();
        Ok(columns)
    }
}

/// Closes a pool that no store owns (the upgrade tests make stores as older releases did).
#[cfg(test)]
pub(crate) async fn close(pool: &Pool) {
    on_pool!(pool, |p| p.close().await)
}

/// Opens a pool on the store's backend, creating a SQLite file that does not exist yet.
async fn connect(location: &str, limits: StoreOptions) -> Result<Pool> {
    if is_postgres(location) {
        let options = PgConnectOptions::from_str(location).map_err(|source| StoreError::Open {
            location: redact_url(location),
            fix: "Check the URL's form: postgres://user:password@host:port/database".into(),
            source,
        })?;
        check_postgres_answers(location, &options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                location: redact_url(location),
                fix:
                    "Check that PostgreSQL is running, the database exists and the user may connect"
                        .into(),
                source,
            })?;
        return Ok(Pool::Postgres(pool));
    }
    let path = sqlite_path(location);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        return Err(StoreError::Open {
            location: path.display().to_string(),
            fix: format!(
                "Create the folder {} first, or choose another --db path",
                parent.display()
            ),
            source: sqlx::Error::Protocol("the folder does not exist".into()),
        });
    }
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30))
        // A sync commits a page at a time, and each page touches pages of the contacts' indexes
        // all over: checkpointing after every 4 MiB of log (SQLite's default) copied the same
        // index pages into the database again and again. A larger log is copied less often, and
        // is cut back to that size once copied.
        .pragma("wal_autocheckpoint", "16384")
        .pragma("journal_size_limit", "67108864")
        .collation(NATURAL_COLLATION, natural_order);
    let options = match limits.sqlite_max_pages {
        Some(pages) => options.pragma("max_page_count", pages.to_string()),
        None => options,
    };
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            location: path.display().to_string(),
            fix: crate::error::open_advice(&source)
                .unwrap_or(
                    "Check that the path is a writable SQLite file (or a new one in a writable folder)",
                )
                .into(),
            source,
        })?;
    Ok(Pool::Sqlite(pool))
}

/// Connects once before the pool is made, so that a server that refuses or does not answer is
/// said at once and in words; the pool alone retries until its acquire timeout and then says
/// only "pool timed out".
async fn check_postgres_answers(location: &str, options: &PgConnectOptions) -> Result<()> {
    use sqlx::Connection as _;
    let place = format!("{}:{}", options.get_host(), options.get_port());
    let failed = |source: sqlx::Error, fix: String| StoreError::Open {
        location: redact_url(location),
        fix,
        source,
    };
    match tokio::time::timeout(
        POSTGRES_CONNECT_TIMEOUT,
        sqlx::PgConnection::connect_with(options),
    )
    .await
    {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(source)) => {
            let fix = match &source {
                sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => format!(
                    "Nothing is listening at {place}: start PostgreSQL there, or correct the host and port in the URL"
                ),
                sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                    "There is no PostgreSQL socket at {place}: start PostgreSQL, or correct the URL"
                ),
                sqlx::Error::Database(_) => format!(
                    "PostgreSQL at {place} refused the user or the database: check both, and that the database exists"
                ),
                _ => format!(
                    "Check that PostgreSQL is running at {place}, the database exists and the user may connect"
                ),
            };
            Err(failed(source, fix))
        }
        Err(_) => Err(failed(
            sqlx::Error::PoolTimedOut,
            format!(
                "Nothing answered at {place} within {} s: check the host and port, and any firewall between",
                POSTGRES_CONNECT_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// How long the first connection to PostgreSQL may take before the server is taken for absent.
const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The ids of the keys that sealed the store's secrets; none for a new store.
async fn sealed_key_ids(pool: &Pool) -> Result<BTreeSet<String>> {
    let has_connections: bool = match pool {
        Pool::Sqlite(p) => sqlx::query_scalar(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'connections'",
        )
        .fetch_one(p)
        .await
        .doing("looking for sealed secrets")?,
        Pool::Postgres(p) => sqlx::query_scalar("SELECT to_regclass('connections') IS NOT NULL")
            .fetch_one(p)
            .await
            .doing("looking for sealed secrets")?,
    };
    if !has_connections {
        return Ok(BTreeSet::new());
    }
    let envelopes: Vec<String> = on_pool!(pool, |p| {
        sqlx::query_scalar("SELECT client_secret FROM connections")
            .fetch_all(p)
            .await
            .doing("looking for sealed secrets")
    })?;
    Ok(envelopes
        .iter()
        .filter_map(|e| envelope_key_id(e))
        .map(str::to_string)
        .collect())
}

/// Refuses a key that did not seal the store's secrets.
fn check_key(
    location: &str,
    sealed: &BTreeSet<String>,
    key: &SecretKey,
    source: &str,
) -> Result<()> {
    let others: BTreeSet<String> = sealed
        .iter()
        .filter(|id| **id != key.id())
        .cloned()
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(StoreError::Secret(format!(
        "the store {} holds secrets sealed with key {}, but {source} is key {}. Use the key this store was made with ({KEY_ENV}, or the key file from your backup)",
        redact_url(location),
        list(&others),
        key.id()
    )))
}

fn list(ids: &BTreeSet<String>) -> String {
    ids.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Refuses a SQLite database that another program made, before anything is changed in it (not
/// even its journal mode): m365sync would add its tables to it. Ours has `schema_migrations`
/// with an `applied_at` column (a Rails database has the table, without that column).
async fn check_not_foreign(location: &str) -> Result<()> {
    use sqlx::Connection as _;
    if is_postgres(location) {
        return Ok(());
    }
    let path = sqlite_path(location);
    if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(());
    }
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(30));
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(|source| StoreError::Open {
            location: path.display().to_string(),
            fix: "Check that the path is a readable SQLite file".into(),
            source,
        })?;
    let read = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'),          (SELECT COUNT(*) FROM pragma_table_info('schema_migrations') WHERE name = 'applied_at')",
    )
    .fetch_one(&mut connection)
    .await;
    // SQLite says SQLITE_NOTADB (26) of a file without its header. The header is read through
    // SQLite rather than with a file of our own: closing any other handle on the file would drop
    // the locks this process's open stores hold on it, and another process closing the store
    // would then take the write-ahead log away from under them.
    let not_a_database = matches!(
        &read,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("26")
    );
    if not_a_database {
        let _ = connection.close().await;
        return Err(StoreError::Location(format!(
            "{} is not an m365sync store (it is not a SQLite database): choose another --db path, or a new file name to make a store",
            path.display()
        )));
    }
    let (tables, ours): (i64, i64) = read.doing("reading the store's tables")?;
    let _ = connection.close().await;
    if tables > 0 && ours == 0 {
        return Err(StoreError::Location(format!(
            "{} is a SQLite database of another program, not an m365sync store: choose another --db path",
            sqlite_path(location).display()
        )));
    }
    Ok(())
}

/// Refuses, before anything is created beside it, a SQLite path that cannot be a store: an
/// empty path, a folder, something other than a regular file, or one in a folder that does
/// not exist. (A file that is not a SQLite database is refused when SQLite first reads it.)
pub fn check_location(location: &str) -> Result<()> {
    if location.trim().is_empty() {
        return Err(StoreError::Location(
            "the store's location is empty: give a SQLite file path or a postgres:// URL".into(),
        ));
    }
    if is_postgres(location) {
        return Ok(());
    }
    let path = sqlite_path(location);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(StoreError::Location(format!(
            "the store {} cannot be created: the folder {} does not exist. Create it first, or choose another --db path",
            path.display(),
            parent.display()
        )));
    }
    if path.is_dir() {
        return Err(StoreError::Location(format!(
            "{} is a folder, not a store: give --db a file path such as {}",
            path.display(),
            path.join("m365sync.db").display()
        )));
    }
    if path.exists() && !path.is_file() {
        return Err(StoreError::Location(format!(
            "{} is not a regular file (a device, a pipe or a socket), so it cannot be a store: choose another --db path",
            path.display()
        )));
    }
    Ok(())
}

pub(crate) fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

fn sqlite_path(location: &str) -> PathBuf {
    let trimmed = location
        .strip_prefix("sqlite://")
        .or_else(|| location.strip_prefix("sqlite:"))
        .unwrap_or(location);
    Path::new(trimmed).to_path_buf()
}

/// The key file that belongs with a store when no key is given in the environment: beside a
/// SQLite file, or in the user's config folder for PostgreSQL.
pub fn default_key_file(location: &str) -> PathBuf {
    if is_postgres(location) {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        return base.join("m365sync").join("secret.key");
    }
    let mut path = sqlite_path(location).into_os_string();
    path.push(".key");
    PathBuf::from(path)
}

/// A store's location with any password in it replaced by `****`.
pub fn redact_url(location: &str) -> String {
    match url_password_span(location) {
        Some((start, end)) => format!("{}****{}", &location[..start], &location[end..]),
        None => location.to_string(),
    }
}

fn url_password_span(location: &str) -> Option<(usize, usize)> {
    let scheme_end = location.find("://")? + 3;
    // The user information ends at the last '@' before the path: a password may hold '@'.
    let authority_end = location[scheme_end..]
        .find(['/', '?'])
        .map_or(location.len(), |i| i + scheme_end);
    let at = location[scheme_end..authority_end].rfind('@')? + scheme_end;
    let colon = location[scheme_end..at].find(':')? + scheme_end;
    Some((colon + 1, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://u:p@ss@h:5432/db?x=a@b"),
            "postgres://u:****@h:5432/db?x=a@b"
        );
        assert_eq!(redact_url("/tmp/a.db"), "/tmp/a.db");
    }

    #[test]
    fn key_file_sits_beside_a_sqlite_file() {
        assert_eq!(
            default_key_file("/var/lib/m365sync/store.db"),
            PathBuf::from("/var/lib/m365sync/store.db.key")
        );
        assert!(default_key_file("postgres://h/db").ends_with("m365sync/secret.key"));
    }
}
