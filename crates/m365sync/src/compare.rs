//! `compare contact ID`: what the store holds of a contact beside what Microsoft 365 says of its
//! user now, field by field.

use std::process::ExitCode;

use clap::Subcommand;
use graph::RetryPolicy;
use sync::{CompareError, Comparison, LastChange};

use crate::UsageError;
use crate::commands::open_store;

#[derive(Subcommand)]
pub enum CompareCommand {
    /// Read the contact's user from Microsoft 365 now and show, field by field, what the store
    /// holds beside it, marking what differs and when each such field last changed.
    Contact {
        /// The contact's id (as `export contacts` shows it).
        id: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn compare(db: &str, command: CompareCommand) -> anyhow::Result<ExitCode> {
    let CompareCommand::Contact { id, json } = command;
    let store = open_store(db).await?;
    let retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let comparison = match sync::compare_contact(&store, id, retry).await {
        Ok(comparison) => comparison,
        Err(error @ CompareError::NoContact(_)) => return Err(UsageError(error.to_string()).into()),
        Err(error) => return Err(error.into()),
    };
    if json {
        out!("{}", serde_json::to_string_pretty(&comparison)?)?;
    } else {
        print(&comparison)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(c: &Comparison) -> std::io::Result<()> {
    let name = c
        .fields
        .iter()
        .find(|f| f.field == "displayName")
        .and_then(|f| f.stored.clone().or_else(|| f.microsoft.clone()))
        .unwrap_or_default();
    out!(
        "Contact {} ({name}) beside user {} of tenant {}, read now through connection '{}'{}:",
        c.contact_id,
        c.object_id,
        c.tenant_id,
        c.connection,
        if c.archived {
            "; the contact is archived"
        } else {
            ""
        }
    )?;
    let width = c.fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_string());
    for field in &c.fields {
        if !field.differs {
            out!("  {:width$}  {}", field.field, show(&field.stored))?;
            continue;
        }
        let indent = " ".repeat(width + 4);
        out!(
            "≠ {:width$}  in the store: {}",
            field.field,
            show(&field.stored)
        )?;
        out!("{indent}in Microsoft 365: {}", show(&field.microsoft))?;
        if let Some(change) = field.last_change {
            out!("{indent}last changed {}", changed(change))?;
        }
    }
    if !c.licenses.is_empty() {
        out!("Licences:")?;
    }
    for licence in &c.licenses {
        let (mark, note) = match (licence.stored, licence.microsoft) {
            (true, true) => (' ', ""),
            (false, true) => ('+', " (in Microsoft 365 only)"),
            _ => ('-', " (in the store only)"),
        };
        out!("{mark} {} · {}{note}", licence.part_number, licence.name)?;
    }
    match c.differences {
        0 => out!("The store holds what Microsoft 365 says now."),
        1 => out!(
            "1 field differs (≠); the next sync of connection '{}' brings in Microsoft 365's value.",
            c.connection
        ),
        n => out!(
            "{n} fields differ (≠); the next sync of connection '{}' brings in Microsoft 365's values.",
            c.connection
        ),
    }
}

fn changed(change: LastChange) -> String {
    let when = chrono::DateTime::from_timestamp_millis(change.changed_at)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    match change.run_id {
        Some(run) => format!("by run {run} on {when}"),
        None => format!("by hand on {when}"),
    }
}
