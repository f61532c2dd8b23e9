//! `admin`: the people who log in to the web pages, managed from the server's shell (the first
//! admin, a forgotten password, a role).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use store::AppRole;

use crate::UsageError;
use crate::commands::open_store;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Add a person who can log in (an admin unless --role viewer).
    Create(CreateArgs),
    /// List the people who can log in.
    List {
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Set a person's password (their sessions end).
    Password(PasswordArgs),
    /// Change a person's role (their sessions end).
    Role {
        /// The name they log in with.
        name: String,
        /// `admin` (may change anything) or `viewer` (may only read).
        #[arg(value_parser = ["admin", "viewer"])]
        role: String,
    },
    /// Remove a person (never the last admin).
    Remove {
        /// The name they log in with.
        name: String,
    },
}

#[derive(Args)]
pub struct PasswordSource {
    /// Read the password from this environment variable (else from standard input; never on
    /// the command line, where other users see it).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

#[derive(Args)]
pub struct CreateArgs {
    /// The name they log in with.
    name: String,
    /// `admin` (may change anything) or `viewer` (may only read).
    #[arg(long, default_value = "admin", value_parser = ["admin", "viewer"])]
    role: String,
    #[command(flatten)]
    password: PasswordSource,
}

#[derive(Args)]
pub struct PasswordArgs {
    /// The name they log in with.
    name: String,
    #[command(flatten)]
    password: PasswordSource,
}

fn read_password(source: &PasswordSource) -> anyhow::Result<String> {
    if let Some(var) = &source.password_env {
        return std::env::var(var).map_err(|_| {
            UsageError(format!(
                "the environment variable {var} named by --password-env is not set; export it with the password first"
            ))
            .into()
        });
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let _ = write!(std::io::stderr(), "Password (it is shown as you type): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(UsageError(
            "no password was given; pipe it on standard input or name a variable with --password-env VAR".into(),
        )
        .into());
    }
    Ok(password)
}

fn hashed(source: &PasswordSource) -> anyhow::Result<String> {
    let password = read_password(source)?;
    web::hash_password(&password).map_err(|problem| UsageError(problem).into())
}

async fn user_named(store: &store::Store, name: &str) -> anyhow::Result<store::AppUser> {
    match store.app_user_credentials(name).await? {
        Some((user, _)) => Ok(user),
        None => Err(UsageError(format!(
            "there is no user named '{name}'; `m365sync admin list` lists them"
        ))
        .into()),
    }
}

pub async fn admin(db: &str, command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::Create(args) => {
            let name = web::check_user_name(&args.name).map_err(UsageError)?;
            let role = AppRole::parse(&args.role).unwrap_or(AppRole::Admin);
            let hash = hashed(&args.password)?;
            let store = open_store(db).await?;
            let user = store.create_app_user(&name, &hash, role).await?;
            out!(
                "Added {} as {}. They log in at the address `m365sync serve` prints.",
                user.name,
                user.role
            )?;
        }
        AdminCommand::List { json } => {
            let store = open_store(db).await?;
            let users = store.app_users().await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&users)?)?;
            } else if users.is_empty() {
                out!(
                    "Nobody can log in yet. Add an admin with `m365sync admin create NAME`, or open the set-up link `m365sync serve` prints."
                )?;
            } else {
                let mut table = crate::output::Table::new(&["NAME", "ROLE", "LAST LOGIN"]);
                for user in &users {
                    table.row(vec![
                        user.name.to_string(),
                        user.role.to_string(),
                        user.last_login_at
                            .map(crate::commands::local_time)
                            .unwrap_or_else(|| "never".into()),
                    ]);
                }
                table.print()?;
            }
        }
        AdminCommand::Password(args) => {
            let hash = hashed(&args.password)?;
            let store = open_store(db).await?;
            let user = user_named(&store, &args.name).await?;
            store.set_app_user_password(user.id, &hash).await?;
            out!(
                "Changed the password of {}; their sessions have ended.",
                user.name
            )?;
        }
        AdminCommand::Role { name, role } => {
            let store = open_store(db).await?;
            let user = user_named(&store, &name).await?;
            let role = AppRole::parse(&role).unwrap_or(AppRole::Viewer);
            let user = store.set_app_user_role(user.id, role).await?;
            out!(
                "{} is now {}; their sessions have ended.",
                user.name,
                user.role
            )?;
        }
        AdminCommand::Remove { name } => {
            let store = open_store(db).await?;
            let user = user_named(&store, &name).await?;
            store.remove_app_user(user.id).await?;
            out!("Removed {}.", user.name)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
