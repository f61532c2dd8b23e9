//! Keeping a store safe over time: consistent copies of a SQLite store while it is in use, and
//! what a backup must be kept with (the key that seals its secrets).

use std::path::Path;

use crate::backend::Pool;
use crate::error::{Context, Result, StoreError};
use crate::{Backend, Store};

impl Store {
    /// The id of the key that seals this store's secrets (never the key).
    pub fn key_id(&self) -> String {
        self.cipher.key_id()
    }

    /// A key for `purpose` (say, sealing the notices of web pages) derived from the store's
    /// secret key, so that every process serving the same store agrees on it.
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.cipher.derived_key(purpose)
    }

    /// Writes a consistent copy of a SQLite store to `destination`, a new file, while other
    /// processes may go on reading and writing it: SQLite's `VACUUM INTO` reads one snapshot
    /// in a single transaction, so the copy holds every committed write up to that moment and
    /// no half of a later one. A PostgreSQL store is copied with `pg_dump` instead; asking for
    /// it here is refused with that command.
    pub async fn backup_to(&self, destination: &Path) -> Result<()> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(StoreError::Conflict(format!(
                "the store {} is on PostgreSQL: copy it with PostgreSQL's own tool, e.g. `pg_dump --format=custom --file=m365sync.dump 'postgres://…'`, and restore with `pg_restore`",
                self.location()
            )));
        };
        if destination.exists() {
            return Err(StoreError::Location(format!(
                "{} already exists: a backup is written only to a new file, so that none is overwritten; choose another name",
                destination.display()
            )));
        }
        if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(StoreError::Location(format!(
                "the folder {} does not exist: create it first, or choose another path for the backup",
                parent.display()
            )));
        }
        let Some(target) = destination.to_str() else {
            return Err(StoreError::Location(format!(
                "{} is not valid UTF-8: choose a path SQLite can be given",
                destination.display()
            )));
        };
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(pool)
            .await
            .doing("copying the store")?;
        Ok(())
    }

    /// Whether a backup of this store can be made with [`Store::backup_to`].
    pub fn backs_up_itself(&self) -> bool {
        self.backend() == Backend::Sqlite
    }
}
