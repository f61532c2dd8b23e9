//! Keeps PostgreSQL's statistics of the tables a sync fills in step with their growth.
//!
//! PostgreSQL plans each query from statistics that autovacuum gathers about once a minute. A
//! first sync fills the contacts table from nothing to 100,000 rows within seconds, and all that
//! while the planner took a tenant for half a percent of a near-empty table: to find a page of 500
//! contacts by object id it read every contact of the tenant, a cost that grew with each page.
//! So a table is analysed once this process has added three times the rows it held when last
//! analysed (and at least [`FIRST_LOOK`]), that is once it has grown to four times that size: at
//! 2,000, 8,000 and 32,000 rows while it grows from nothing to 100,000; once for a table that was
//! large already. The planner scales the statistics by the table's current size in between. A
//! role that may not analyse the table (PostgreSQL warns and skips it) is not asked again.
//! SQLite needs none of this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::Pool;

/// Rows added before a table's statistics are first looked at.
const FIRST_LOOK: u64 = 2_000;

/// The tables a sync grows quickly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum GrowingTable {
    Contacts,
    Mailboxes,
}

impl GrowingTable {
    fn name(self) -> &'static str {
        match self {
            GrowingTable::Contacts => "contacts",
            GrowingTable::Mailboxes => "mailboxes",
        }
    }

    fn analyze(self) -> &'static str {
        match self {
            GrowingTable::Contacts => "ANALYZE contacts",
            GrowingTable::Mailboxes => "ANALYZE mailboxes",
        }
    }
}

#[derive(Default)]
struct Growth {
    /// Rows this process added since the table was last analysed.
    added: u64,
    /// Rows the table held when it was last analysed.
    held: u64,
    /// The role may not analyse the table: it is not asked again.
    refused: bool,
}

/// Shared by every clone of a store.
#[derive(Clone, Default)]
pub(crate) struct TableGrowth(Arc<Mutex<HashMap<GrowingTable, Growth>>>);

impl TableGrowth {
    /// Notes rows just committed to a table, and analyses it when they make it a different
    /// table from the one its statistics describe. A failure here costs only the plan's speed,
    /// so it is logged, not returned.
    pub(crate) async fn added(&self, pool: &Pool, table: GrowingTable, rows: u64) {
        let Pool::Postgres(pool) = pool else {
            return;
        };
        if rows == 0 {
            return;
        }
        let due = {
            let mut tables = self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let growth = tables.entry(table).or_default();
            growth.added += rows;
            let due = !growth.refused && growth.added >= FIRST_LOOK.max(growth.held * 3);
            if due {
                growth.added = 0;
            }
            due
        };
        if !due {
            return;
        }
        match analyse(pool, table).await {
            Ok(held) => {
                let mut tables = self
                    .0
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let growth = tables.entry(table).or_default();
                // Still never analysed after ANALYZE ran: PostgreSQL skipped a table the role
                // does not own.
                growth.refused = held < 0.0;
                growth.held = held.max(0.0) as u64;
            }
            Err(error) => {
                tracing::debug!(table = table.name(), %error, "could not refresh the table's statistics");
            }
        }
    }
}

/// Analyses the table, waiting at most a second for its lock (a manual VACUUM holds it), and
/// returns the rows PostgreSQL now believes it holds (-1 if it was never analysed).
async fn analyse(pool: &sqlx::PgPool, table: GrowingTable) -> Result<f32, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('lock_timeout', '1000', TRUE)")
        .execute(&mut *tx)
        .await?;
    sqlx::query(table.analyze()).execute(&mut *tx).await?;
    let held =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = CAST($1 AS regclass)")
            .bind(table.name())
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(held)
}
