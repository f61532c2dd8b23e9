//! Forward-only migrations, one folder per backend, applied in order on open. Each version is
//! applied once, whatever was applied before it: a version added later with a lower number is
//! still applied to a store that already has higher ones.

use crate::backend::{Pool, on_pool};
use crate::error::{Context, Executed, Result, StoreError};

struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_inventory.sql"),
        postgres: include_str!("../migrations/postgres/0002_inventory.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_products.sql"),
        postgres: include_str!("../migrations/postgres/0003_products.sql"),
    },
    Migration {
        version: 4,
        sqlite: include_str!("../migrations/sqlite/0004_delta.sql"),
        postgres: include_str!("../migrations/postgres/0004_delta.sql"),
    },
    Migration {
        version: 5,
        sqlite: include_str!("../migrations/sqlite/0005_certificates.sql"),
        postgres: include_str!("../migrations/postgres/0005_certificates.sql"),
    },
    Migration {
        version: 6,
        sqlite: include_str!("../migrations/sqlite/0006_mailbox_kinds.sql"),
        postgres: include_str!("../migrations/postgres/0006_mailbox_kinds.sql"),
    },
    Migration {
        version: 7,
        sqlite: include_str!("../migrations/sqlite/0007_run_owners.sql"),
        postgres: include_str!("../migrations/postgres/0007_run_owners.sql"),
    },
    Migration {
        version: 8,
        sqlite: include_str!("../migrations/sqlite/0008_contact_history.sql"),
        postgres: include_str!("../migrations/postgres/0008_contact_history.sql"),
    },
    Migration {
        version: 9,
        sqlite: include_str!("../migrations/sqlite/0009_tenants.sql"),
        postgres: include_str!("../migrations/postgres/0009_tenants.sql"),
    },
    Migration {
        version: 10,
        sqlite: include_str!("../migrations/sqlite/0010_contact_aliases.sql"),
        postgres: include_str!("../migrations/postgres/0010_contact_aliases.sql"),
    },
    Migration {
        version: 11,
        sqlite: include_str!("../migrations/sqlite/0011_partner.sql"),
        postgres: include_str!("../migrations/postgres/0011_partner.sql"),
    },
    Migration {
        version: 12,
        sqlite: include_str!("../migrations/sqlite/0012_contact_lifecycle.sql"),
        postgres: include_str!("../migrations/postgres/0012_contact_lifecycle.sql"),
    },
    Migration {
        version: 13,
        sqlite: include_str!("../migrations/sqlite/0013_user_filters.sql"),
        postgres: include_str!("../migrations/postgres/0013_user_filters.sql"),
    },
    Migration {
        version: 14,
        sqlite: include_str!("../migrations/sqlite/0014_field_mapping.sql"),
        postgres: include_str!("../migrations/postgres/0014_field_mapping.sql"),
    },
    Migration {
        version: 15,
        sqlite: include_str!("../migrations/sqlite/0015_devices.sql"),
        postgres: include_str!("../migrations/postgres/0015_devices.sql"),
    },
    Migration {
        version: 16,
        sqlite: include_str!("../migrations/sqlite/0016_groups.sql"),
        postgres: include_str!("../migrations/postgres/0016_groups.sql"),
    },
    Migration {
        version: 17,
        sqlite: include_str!("../migrations/sqlite/0017_usage.sql"),
        postgres: include_str!("../migrations/postgres/0017_usage.sql"),
    },
    Migration {
        version: 18,
        sqlite: include_str!("../migrations/sqlite/0018_audit.sql"),
        postgres: include_str!("../migrations/postgres/0018_audit.sql"),
    },
    Migration {
        version: 19,
        sqlite: include_str!("../migrations/sqlite/0019_queue.sql"),
        postgres: include_str!("../migrations/postgres/0019_queue.sql"),
    },
    Migration {
        version: 20,
        sqlite: include_str!("../migrations/sqlite/0020_run_records.sql"),
        postgres: include_str!("../migrations/postgres/0020_run_records.sql"),
    },
    Migration {
        version: 22,
        sqlite: include_str!("../migrations/sqlite/0022_drop_guard.sql"),
        postgres: include_str!("../migrations/postgres/0022_drop_guard.sql"),
    },
    Migration {
        version: 30,
        sqlite: include_str!("../migrations/sqlite/0030_app_users.sql"),
        postgres: include_str!("../migrations/postgres/0030_app_users.sql"),
    },
    Migration {
        version: 35,
        sqlite: include_str!("../migrations/sqlite/0035_api_tokens.sql"),
        postgres: include_str!("../migrations/postgres/0035_api_tokens.sql"),
    },
    Migration {
        version: 40,
        sqlite: include_str!("../migrations/sqlite/0040_delegated_accounts.sql"),
        postgres: include_str!("../migrations/postgres/0040_delegated_accounts.sql"),
    },
    Migration {
        version: 50,
        sqlite: include_str!("../migrations/sqlite/0050_software.sql"),
        postgres: include_str!("../migrations/postgres/0050_software.sql"),
    },
    Migration {
        version: 51,
        sqlite: include_str!("../migrations/sqlite/0051_snapshots.sql"),
        postgres: include_str!("../migrations/postgres/0051_snapshots.sql"),
    },
    Migration {
        version: 60,
        sqlite: include_str!("../migrations/sqlite/0060_booking_requests.sql"),
        postgres: include_str!("../migrations/postgres/0060_booking_requests.sql"),
    },
    Migration {
        version: 61,
        sqlite: include_str!("../migrations/sqlite/0061_pending_sign_ins.sql"),
        postgres: include_str!("../migrations/postgres/0061_pending_sign_ins.sql"),
    },
    Migration {
        version: 70,
        sqlite: include_str!("../migrations/sqlite/0070_license_trials.sql"),
        postgres: include_str!("../migrations/postgres/0070_license_trials.sql"),
    },
    Migration {
        version: 71,
        sqlite: include_str!("../migrations/sqlite/0071_software_reasons.sql"),
        postgres: include_str!("../migrations/postgres/0071_software_reasons.sql"),
    },
    Migration {
        version: 72,
        sqlite: include_str!("../migrations/sqlite/0072_booking_account_names.sql"),
        postgres: include_str!("../migrations/postgres/0072_booking_account_names.sql"),
    },
    Migration {
        version: 73,
        sqlite: include_str!("../migrations/sqlite/0073_unlinked_contact_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0073_unlinked_contact_indexes.sql"),
    },
    Migration {
        version: 74,
        sqlite: include_str!("../migrations/sqlite/0074_mailboxes_join_by_name.sql"),
        postgres: include_str!("../migrations/postgres/0074_mailboxes_join_by_name.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// Applies one migration inside an open transaction unless it was applied before.
macro_rules! apply_once {
    ($tx:expr, $sql:expr, $version:expr) => {{
        let found: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind($version)
                .fetch_optional(&mut *$tx)
                .await
                .doing("reading migrations")?;
        if found.is_none() {
            sqlx::raw_sql($sql)
                .execute(&mut *$tx)
                .await
                .doing("applying a migration")?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind($version)
                .bind(crate::now_millis())
                .execute(&mut *$tx)
                .await
                .doing("recording a migration")?;
        }
        found.is_none()
    }};
}

pub(crate) async fn run(pool: &Pool) -> Result<()> {
    run_up_to(pool, i64::MAX).await
}

/// The newest schema version this build knows.
pub fn newest_known() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Every schema version this build knows, oldest first.
pub fn known_versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

/// Applies the migrations up to `last` (all of them in use; tests stop earlier to make a store
/// as an older release left it). A store that holds a version this build does not know was
/// written by a newer m365sync: it is refused before anything is applied, since migrations run
/// forward only and an older build cannot know what the newer schema means.
pub(crate) async fn run_up_to(pool: &Pool, last: i64) -> Result<()> {
    on_pool!(pool, |p| sqlx::query(CREATE_TABLE)
        .execute(p)
        .await
        .done("creating the migrations table"))?;
    let applied: Vec<i64> = on_pool!(pool, |p| sqlx::query_scalar(
        "SELECT version FROM schema_migrations ORDER BY version"
    )
    .fetch_all(p)
    .await
    .doing("reading the schema version"))?;
    let unknown: Vec<String> = applied
        .iter()
        .filter(|v| !MIGRATIONS.iter().any(|m| m.version == **v))
        .map(i64::to_string)
        .collect();
    if !unknown.is_empty() {
        return Err(StoreError::Conflict(format!(
            "this store was upgraded by a newer m365sync: it has schema version {} and this m365sync {} knows versions up to {}. Nothing was changed. Run the newer m365sync (or restore a backup made before the upgrade); a store is never migrated backwards",
            unknown.join(", "),
            env!("CARGO_PKG_VERSION"),
            newest_known()
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version <= last) {
        let applied = match pool {
            Pool::Sqlite(p) => {
                let mut tx = p
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .doing("starting a migration")?;
                let applied = apply_once!(tx, migration.sqlite, migration.version);
                tx.commit().await.doing("committing a migration")?;
                applied
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await.doing("starting a migration")?;
                // Several workers may start together: one migrates, the others wait and skip.
                sqlx::query("SELECT pg_advisory_xact_lock(365365)")
                    .execute(&mut *tx)
                    .await
                    .doing("locking for migration")?;
                let applied = apply_once!(tx, migration.postgres, migration.version);
                tx.commit().await.doing("committing a migration")?;
                applied
            }
        };
        if applied {
            tracing::info!(version = migration.version, "applied migration");
        }
    }
    Ok(())
}

impl crate::Store {
    /// The migrations this m365sync knows that the store has not applied, oldest first: empty
    /// when the schema is current. Asking it also proves that the store answers.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        let applied: Vec<i64> = on_pool!(&self.pool, |p| sqlx::query_scalar(
            "SELECT version FROM schema_migrations"
        )
        .fetch_all(p)
        .await
        .doing("reading the applied migrations"))?;
        Ok(MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }
}
