//! `token create`, `token list` and `token revoke`: the bearer tokens programs use with the REST
//! API. A token is printed once, when it is made; the store keeps only its hash.

use std::process::ExitCode;

use clap::Subcommand;
use store::ApiRole;

use crate::UsageError;
use crate::commands::{local_time, open_store};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token for a program and print it, once: keep it in the program's secret store.
    Create {
        /// What the token is for, e.g. prometheus or backup-script; `token revoke` takes it.
        name: String,
        /// `viewer` reads everything and changes nothing; `admin` also changes (connections,
        /// syncs, matching).
        #[arg(long, value_parser = ["viewer", "admin"])]
        role: String,
        /// Print only the token, for a script to capture.
        #[arg(long)]
        quiet: bool,
    },
    /// List the tokens, live and revoked (never the tokens themselves).
    List {
        /// Print the tokens as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests with it are refused from now on.
    Revoke {
        /// The token's name, as `token list` shows it.
        name: String,
    },
}

pub async fn token(db: &str, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    match command {
        TokenCommand::Create { name, role, quiet } => {
            let role = ApiRole::parse(&role)
                .ok_or_else(|| UsageError(format!("--role {role}: give viewer or admin")))?;
            let issued = store
                .issue_api_token(&name, role)
                .await
                .map_err(|e| match e {
                    store::StoreError::Conflict(message) => UsageError(message).into(),
                    other => anyhow::Error::from(other),
                })?;
            if quiet {
                out!("{}", issued.secret)?;
            } else {
                out!(
                    "Token '{}' ({}) made. It is shown this once; keep it where the program keeps secrets:\n\n    {}\n\nSend it as the header `Authorization: Bearer TOKEN`. `m365sync token revoke '{}'` ends it.",
                    issued.token.name,
                    issued.token.role,
                    issued.secret,
                    issued.token.name
                )?;
            }
        }
        TokenCommand::List { json } => {
            let tokens = store.api_tokens().await?;
            if json {
                let items: Vec<serde_json::Value> = tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "name": t.name,
                            "role": t.role,
                            "starts_with": t.shown,
                            "created_at": t.created_at,
                            "last_used_at": t.last_used_at,
                            "revoked_at": t.revoked_at,
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&items)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            if tokens.is_empty() {
                out!(
                    "No API tokens yet. Make one with `m365sync token create NAME --role viewer` (or admin)."
                )?;
            }
            let mut table = crate::output::Table::new(&[
                "NAME",
                "ROLE",
                "STARTS WITH",
                "MADE",
                "LAST USED",
                "STATE",
            ]);
            for t in &tokens {
                table.row(vec![
                    t.name.clone(),
                    t.role.to_string(),
                    format!("{}…", t.shown),
                    local_time(t.created_at),
                    t.last_used_at
                        .map(local_time)
                        .unwrap_or_else(|| "never".into()),
                    match t.revoked_at {
                        Some(at) => format!("revoked {}", local_time(at)),
                        None => "live".into(),
                    },
                ]);
            }
            if !tokens.is_empty() {
                table.print()?;
            }
        }
        TokenCommand::Revoke { name } => {
            let revoked = store.revoke_api_token(&name).await.map_err(|e| match e {
                store::StoreError::NotFound(message) => UsageError(message).into(),
                other => anyhow::Error::from(other),
            })?;
            out!(
                "Token '{}' is revoked: requests with it are refused from now on.",
                revoked.name
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
