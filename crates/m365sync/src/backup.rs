//! `backup FILE`: a consistent copy of a SQLite store while it is in use, and the reminder that
//! the key sealing its secrets must be kept beside it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::UsageError;
use crate::commands::open_store;

#[derive(Args)]
pub struct BackupArgs {
    /// The new file to write the copy to (never overwritten). A PostgreSQL store is backed up
    /// with pg_dump instead; this command then prints the command to run.
    file: PathBuf,
}

pub async fn run(db: &str, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    store.backup_to(&args.file).await.map_err(|e| match e {
        store::StoreError::Location(message) | store::StoreError::Conflict(message) => {
            anyhow::Error::new(UsageError(message))
        }
        other => other.into(),
    })?;
    let key = match std::env::var(store::secrets::KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(_) => format!(
            "the value of {} (key id {})",
            store::secrets::KEY_ENV,
            store.key_id()
        ),
        None => format!(
            "the key file {} (key id {})",
            crate::config::key_file_for(db).display(),
            store.key_id()
        ),
    };
    out!(
        "Backed up the store {} to {}.",
        store.location(),
        args.file.display()
    )?;
    out!(
        "Keep {key} with it, apart from the copy: the connections' secrets in the backup open only with that key."
    )?;
    Ok(ExitCode::SUCCESS)
}
