//! `connection …`, `sync`, `runs` and `run`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use domain::{
    CertificateCredential, ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset,
    TenantId,
};
use graph::RetryPolicy;
use store::{ConnectionMode, NewConnection, OrganizationSetup, Store};
use sync::{SyncEngine, day_of};

use crate::UsageError;
use crate::progress::TerminalProgress;

/// Opens the store, with the key from `M365SYNC_SECRET_KEY` or the key file that belongs to it,
/// and closes out any run a crashed process left behind.
pub async fn open_store(location: &str) -> anyhow::Result<Store> {
    if location.trim().is_empty() {
        return Err(UsageError(
            "--db is empty: give a SQLite file path or a postgres:// URL (or leave --db and M365SYNC_DB unset for m365sync.db)".into(),
        )
        .into());
    }
    let key_file = crate::config::key_file_for(location);
    let store = Store::open_keyed(
        location,
        std::env::var(store::secrets::KEY_ENV).ok(),
        &key_file,
        store::StoreOptions::default(),
    )
    .await
    .map_err(|e| match e {
        store::StoreError::Location(message) => anyhow::Error::new(UsageError(message)),
        other => other.into(),
    })?;
    match store.fail_interrupted_runs().await {
        Ok(0) => {}
        Ok(interrupted) => note!(
            "note: {interrupted} sync run(s) were interrupted earlier and are now marked failed"
        ),
        // A full disk must not also stop the commands that only read (runs, export): the runs
        // are closed by a later command, once there is room.
        Err(e) if e.is_full() => {
            note!("note: runs interrupted earlier could not be closed yet: {e}")
        }
        Err(e) => return Err(e.into()),
    }
    Ok(store)
}

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// Save a connection to a tenant. The secret is read from an environment variable or standard
    /// input, never from the command line (where other users and shell history could see it).
    Add(AddArgs),
    /// List the saved connections.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a connection: token, permissions, and a probe of each dataset.
    Test {
        /// The connection's name, as `connection list` shows it.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replace a connection's credential: a rotated secret, a renewed certificate, or a move from
    /// a secret to a certificate.
    Credential {
        /// The connection's name, as `connection list` shows it.
        name: String,
        #[command(flatten)]
        credential: CredentialArgs,
    },
    /// Choose which users the connection keeps (shown when no option is given). Users the
    /// filters leave out are not written; contacts whose user leaves them are archived with the
    /// reason; the next sync weighs every user again.
    Filter(FilterArgs),
    /// Who owns each contact field (shown with no option): Microsoft 365 (each sync writes it)
    /// or the technician (the sync fills it once, on creation, and never writes it after), and
    /// where Microsoft's value lands.
    Mapping(MappingArgs),
    /// How much of a tenant's contacts one run may take away (archive, or mark deleted) before
    /// it is held for a person (shown with no option). A run that finds nobody where there were
    /// people is always held.
    Guard {
        /// The connection's name, as `connection list` shows it.
        name: String,
        /// The share of the active contacts, in percent (0–100; 100 never holds). Default 20.
        #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
        max_drop: Option<u8>,
    },
    /// Show or conceal user names in the tenant's usage reports (Microsoft conceals them by
    /// default, and then mailbox and usage figures cannot be attached to anyone). This changes a
    /// tenant setting; the app needs ReportSettings.ReadWrite.All.
    ReportNames {
        /// The connection's name, as `connection list` shows it.
        name: String,
        /// Show real user names in reports.
        #[arg(long, conflicts_with = "conceal", required_unless_present = "conceal")]
        show: bool,
        /// Conceal them again.
        #[arg(long)]
        conceal: bool,
    },
    /// How long the connection keeps audit records (shown when no number is given). Each sync
    /// deletes its tenants' audit records older than this; 180 days unless set.
    AuditRetention {
        /// The connection's name, as `connection list` shows it.
        name: String,
        /// Days to keep, a whole number from 1 to 3650.
        days: Option<String>,
    },
    /// Sync the connection on its own: every interval, or on a cron pattern in a time zone.
    Schedule(crate::jobs::ScheduleArgs),
    /// Show the connection's cache lifetimes, or set one: a dataset fetched more recently than
    /// its lifetime is skipped by scheduled and manual runs (not by `sync --full`).
    Cache(crate::jobs::CacheArgs),
    /// Remove a connection. What it synced stays in the store.
    Remove {
        /// The connection's name, as `connection list` shows it.
        name: String,
    },
}

/// How the app proves who it is: a secret's Value (from the environment or standard input, never
/// the command line) or a certificate with its private key.
#[derive(Args)]
pub struct CredentialArgs {
    /// Read the client secret's Value from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["client_secret_stdin", "certificate"])]
    client_secret_env: Option<String>,
    /// Read the client secret's Value from standard input (one line).
    #[arg(long, conflicts_with = "certificate")]
    client_secret_stdin: bool,
    /// A PEM file with the certificate uploaded to the app registration, and its unencrypted
    /// private key unless --private-key names another file.
    #[arg(long, value_name = "FILE")]
    certificate: Option<std::path::PathBuf>,
    /// A PEM file with the certificate's private key, when it is not in the --certificate file.
    #[arg(long, value_name = "FILE", requires = "certificate")]
    private_key: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct FilterArgs {
    /// The connection's name, as `connection list` shows it.
    name: String,
    /// Only users whose account is enabled.
    #[arg(long)]
    enabled_only: bool,
    /// Only users with at least one licence.
    #[arg(long)]
    licensed_only: bool,
    /// Only holders of this licence (part number such as SPE_E3, or SKU id); repeatable.
    #[arg(long = "sku", value_name = "PART_NUMBER")]
    skus: Vec<String>,
    /// Leave guests out.
    #[arg(long)]
    exclude_guests: bool,
    /// Leave shared, room and equipment mailboxes out (as the mailbox report names them).
    #[arg(long)]
    exclude_resource_mailboxes: bool,
    /// Only users of this domain (and its subdomains); repeatable.
    #[arg(long = "include-domain", value_name = "DOMAIN")]
    include_domains: Vec<String>,
    /// Leave users of this domain (and its subdomains) out; repeatable.
    #[arg(long = "exclude-domain", value_name = "DOMAIN")]
    exclude_domains: Vec<String>,
    /// Only members of this group (its object id or display name, as the groups dataset syncs
    /// them); repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Keep every user again.
    #[arg(long, conflicts_with_all = ["enabled_only", "licensed_only", "skus", "exclude_guests", "exclude_resource_mailboxes", "include_domains", "exclude_domains", "groups"])]
    clear: bool,
}

#[derive(Args)]
pub struct MappingArgs {
    /// The connection's name, as `connection list` shows it.
    name: String,
    /// The technician owns these fields: no sync writes them after the contact exists.
    #[arg(long, value_name = "FIELD", num_args = 1..)]
    local: Vec<String>,
    /// Microsoft 365 owns these fields again, in the contact's own field.
    #[arg(long, value_name = "FIELD", num_args = 1..)]
    owned: Vec<String>,
    /// Microsoft's FIELD lands in the contact's custom field CUSTOM_NAME.
    #[arg(long = "to-custom", value_name = "FIELD=CUSTOM_NAME", num_args = 1..)]
    to_custom: Vec<String>,
    /// Back to the default: Microsoft 365 owns every field, in the contact's own field.
    #[arg(long, conflicts_with_all = ["local", "owned", "to_custom"])]
    reset: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl MappingArgs {
    /// The mapping asked for, from the one saved; `None` when only showing.
    fn apply(&self, saved: &domain::FieldMapping) -> anyhow::Result<Option<domain::FieldMapping>> {
        if self.reset {
            return Ok(Some(domain::FieldMapping::default()));
        }
        if self.local.is_empty() && self.owned.is_empty() && self.to_custom.is_empty() {
            return Ok(None);
        }
        let usage = |e: domain::InputError| UsageError(e.to_string());
        let mut mapping = saved.clone();
        for field in &self.owned {
            mapping.set_owned(field).map_err(usage)?;
        }
        for field in &self.local {
            mapping.set_local(field).map_err(usage)?;
        }
        for pair in &self.to_custom {
            let Some((field, custom)) = pair.split_once('=') else {
                return Err(UsageError(format!(
                    "--to-custom '{pair}' names no custom field; write FIELD=CUSTOM_NAME, e.g. department=\"Cost centre\""
                ))
                .into());
            };
            mapping.set_custom(field, custom).map_err(usage)?;
        }
        Ok(Some(mapping))
    }
}

fn show_mapping(name: &str, mapping: &domain::FieldMapping, json: bool) -> anyhow::Result<()> {
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "connection": name,
                "fields": mapping.ownership(),
            }))?
        )?;
        return Ok(());
    }
    out!("Contact fields of connection '{name}':")?;
    for o in mapping.ownership() {
        let owner = match o.owner {
            "local" => "local (the technician's; filled once, on creation)",
            _ => "Microsoft 365",
        };
        let lands = o
            .custom_field
            .as_deref()
            .map(|c| format!(", into custom field '{c}'"))
            .unwrap_or_default();
        out!("  {:<18} {owner}{lands}", o.field)?;
    }
    Ok(())
}

impl FilterArgs {
    fn filter(&self) -> anyhow::Result<Option<domain::filter::UserFilter>> {
        let domain = |option: &'static str, list: &[String]| -> anyhow::Result<Vec<String>> {
            list.iter()
                .map(|d| {
                    domain::filter::filter_domain(option, d).map_err(|e| {
                        UsageError(format!("{option} {}; {}", e.problem, e.fix)).into()
                    })
                })
                .collect()
        };
        let filter = domain::filter::UserFilter {
            enabled_only: self.enabled_only,
            licensed_only: self.licensed_only,
            skus: self
                .skus
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            exclude_guests: self.exclude_guests,
            exclude_resource_mailboxes: self.exclude_resource_mailboxes,
            include_domains: domain("--include-domain", &self.include_domains)?,
            exclude_domains: domain("--exclude-domain", &self.exclude_domains)?,
            groups: self
                .groups
                .iter()
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect(),
        };
        Ok(if self.clear || !filter.is_empty() {
            Some(filter)
        } else {
            None
        })
    }
}

#[derive(Args)]
pub struct AddArgs {
    /// A short name for the connection, e.g. contoso-prod.
    name: String,
    /// The Directory (tenant) ID, or one of the tenant's domains (contoso.onmicrosoft.com),
    /// which Microsoft turns into the ID.
    #[arg(long, value_name = "ID_OR_DOMAIN")]
    tenant_id: String,
    /// The Application (client) ID of the app registration.
    #[arg(long)]
    client_id: String,
    #[command(flatten)]
    credential: CredentialArgs,
    /// The tenant's cloud: global, usgov, usgov-dod or china.
    #[arg(long, default_value = "global", conflicts_with_all = ["login_url", "graph_url"])]
    cloud: String,
    /// A custom login base URL (a simulator or a proxy); needs --graph-url too.
    #[arg(long, requires = "graph_url")]
    login_url: Option<String>,
    /// A custom Microsoft Graph base URL; needs --login-url too.
    #[arg(long, requires = "login_url")]
    graph_url: Option<String>,
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "DATASET,…",
        default_value = "organization,licenses,users,mailboxes",
        help = datasets_help()
    )]
    datasets: Vec<String>,
    /// The organisation the tenant belongs to, by exact name: an existing one, or a new one of
    /// that name. Without it, the first sync finds it (or asks, with `m365sync tenants`).
    #[arg(long, value_name = "NAME", conflicts_with = "partner")]
    organization: Option<String>,
    /// Never create an organisation for the tenant: when none fits, it awaits a decision
    /// (`m365sync match`).
    #[arg(long)]
    no_create_organization: bool,
    /// Create an organisation for a customer that fits none (a partner connection's customers
    /// otherwise await a decision, `m365sync match`).
    #[arg(long, conflicts_with = "no_create_organization")]
    create_organization: bool,
    /// The tenant is a Microsoft partner's: sync each of its customers (listed by its GDAP
    /// relationships) with this multi-tenant app, consented in each customer's tenant.
    #[arg(long)]
    partner: bool,
}

/// The tenant `--tenant-id` names: its id, or one of its domains (as Microsoft accepts), which
/// Microsoft's identity platform turns into the id that m365sync keeps.
async fn tenant_of(given: &str, cloud: &Cloud) -> anyhow::Result<TenantId> {
    let not_an_id = match TenantId::parse(given) {
        Ok(id) => return Ok(id),
        Err(e) => e,
    };
    let domain = given.trim().trim_end_matches('.').to_lowercase();
    let looks_like_domain = domain.contains('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !looks_like_domain {
        return Err(not_an_id.into());
    }
    match sync::tenant_id_of_domain(cloud, &domain).await? {
        Some(id) => {
            note!("Tenant {domain} is {id}; the connection keeps the id.");
            Ok(id)
        }
        None => Err(UsageError(format!(
            "--tenant-id {domain}: Microsoft knows no tenant with that domain in the {} cloud; give the Directory (tenant) ID from the Overview page of the app registration, or a domain the tenant has verified",
            cloud.name()
        ))
        .into()),
    }
}

/// The help of `--datasets`: every dataset by name, from the one list the engine runs.
fn datasets_help() -> String {
    let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
    format!(
        "Datasets to sync, comma-separated, or `all` for every one: {}",
        names.join(", ")
    )
}

pub async fn connection(db: &str, command: ConnectionCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConnectionCommand::Add(args) => add(db, args).await,
        ConnectionCommand::List { json } => list(db, json).await,
        ConnectionCommand::Test { name, json } => test(db, &name, json).await,
        ConnectionCommand::Schedule(args) => crate::jobs::schedule(db, args).await,
        ConnectionCommand::Cache(args) => crate::jobs::cache(db, args).await,
        ConnectionCommand::ReportNames { name, show, .. } => {
            let store = open_store(db).await?;
            let connection = store
                .connection(&name)
                .await?
                .ok_or_else(|| sync::SyncError::NoConnection(name.clone()))?;
            let retry = RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            };
            match sync::set_report_names(&store, &connection, show, retry).await {
                Ok(()) => {
                    out!(
                        "Usage reports of tenant {} now {} user names. Microsoft may take a few minutes to apply it.",
                        connection.tenant_id,
                        if show { "show" } else { "conceal" }
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(sync::SyncError::Graph(e)) if e.status() == Some(403) => Err(anyhow::anyhow!(
                    "the app may not change the report setting of tenant {}: add Microsoft Graph › Application permissions › ReportSettings.ReadWrite.All and grant admin consent, or change it in the Microsoft 365 admin center",
                    connection.tenant_id
                )),
                Err(e) => Err(e.into()),
            }
        }
        ConnectionCommand::Guard { name, max_drop } => {
            let store = open_store(db).await?;
            let connection = store
                .connection(&name)
                .await?
                .ok_or_else(|| sync::SyncError::NoConnection(name.clone()))?;
            let guard = match max_drop {
                None => connection.drop_guard,
                Some(max_share_percent) => {
                    let guard = domain::plan::DropGuard { max_share_percent };
                    store.set_drop_guard(&name, guard).await?;
                    guard
                }
            };
            let rule = if guard.max_share_percent >= 100 {
                "never holds a run for how much it takes away".to_string()
            } else {
                format!(
                    "holds a run that would take away more than {}% of a tenant's contacts (or all of them) until `m365sync sync {name} --accept-drop`",
                    guard.max_share_percent
                )
            };
            out!("Connection '{name}' {rule}.")?;
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCommand::Filter(args) => {
            let wanted = args.filter()?;
            let store = open_store(db).await?;
            let connection = store
                .connection(&args.name)
                .await?
                .ok_or_else(|| sync::SyncError::NoConnection(args.name.clone()))?;
            match wanted {
                None => out!(
                    "Connection '{}' keeps {}.",
                    args.name,
                    connection.user_filter.describe()
                )?,
                Some(filter) => {
                    if let Some(problem) =
                        sync::filter_problem(&store, &connection, &filter).await?
                    {
                        return Err(
                            UsageError(format!("the filters were not saved: {problem}")).into()
                        );
                    }
                    store.set_user_filter(&args.name, &filter).await?;
                    out!(
                        "Connection '{}' now keeps {}. Its next sync weighs every user again: those left out are archived with the reason (`m365sync export filtered-users` lists them).",
                        args.name,
                        filter.describe()
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCommand::Mapping(args) => {
            let store = open_store(db).await?;
            let connection = store
                .connection(&args.name)
                .await?
                .ok_or_else(|| sync::SyncError::NoConnection(args.name.clone()))?;
            match args.apply(&connection.field_mapping)? {
                None => show_mapping(&args.name, &connection.field_mapping, args.json)?,
                Some(mapping) => {
                    store.set_field_mapping(&args.name, &mapping).await?;
                    show_mapping(&args.name, &mapping, args.json)?;
                    if !args.json {
                        out!(
                            "Saved. The next sync of '{}' weighs every user again under it.",
                            args.name
                        )?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCommand::Credential { name, credential } => {
            let credential = read_credential(&credential)?;
            let store = open_store(db).await?;
            let connection = store
                .connection(&name)
                .await?
                .ok_or_else(|| sync::SyncError::NoConnection(name.clone()))?;
            store
                .set_connection_credential(&connection, &credential)
                .await?;
            out!(
                "Saved the new {} for connection '{name}'. Next: `m365sync connection test {name}`.",
                credential.kind()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCommand::AuditRetention { name, days } => {
            let wanted = days
                .as_deref()
                .map(domain::AuditRetention::parse)
                .transpose()?;
            let store = open_store(db).await?;
            let connection = store
                .connection(&name)
                .await?
                .ok_or_else(|| sync::SyncError::NoConnection(name.clone()))?;
            match wanted {
                None => out!(
                    "Connection '{name}' keeps audit records for {}.",
                    connection.audit_retention
                )?,
                Some(retention) => {
                    store.set_audit_retention(&name, retention).await?;
                    out!(
                        "Connection '{name}' now keeps audit records for {retention}; its next sync deletes older ones."
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCommand::Remove { name } => {
            let store = open_store(db).await?;
            store.remove_connection(&name).await?;
            out!("Removed connection '{name}'. Its organisations and contacts stay in the store.")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_credential(args: &CredentialArgs) -> anyhow::Result<Credential> {
    if let Some(path) = &args.certificate {
        return read_certificate(path, args.private_key.as_deref());
    }
    let raw = match (&args.client_secret_env, args.client_secret_stdin) {
        (Some(var), _) => std::env::var(var).map_err(|_| {
            UsageError(format!("the environment variable {var} named by --client-secret-env is not set; export it with the secret's Value first"))
        })?,
        (None, true) => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                let _ = write!(
                    std::io::stderr(),
                    "Paste the client secret's Value and press Enter: "
                );
                let _ = std::io::stderr().flush();
            }
            let mut line = String::new();
            stdin.lock().read_line(&mut line).context("reading the client secret from standard input")?;
            line
        }
        (None, false) => {
            return Err(UsageError(
                "the credential is missing; give --client-secret-env VAR, --client-secret-stdin or --certificate FILE (never the secret itself on the command line)".into(),
            )
            .into());
        }
    };
    let secret = ClientSecret::parse(&raw)?;
    if secret.looks_like_secret_id() {
        note!(
            "warning: this secret looks like a Secret ID (a GUID), not the secret's Value; `m365sync connection test` will confirm"
        );
    }
    Ok(Credential::Secret(secret))
}

/// Reads and checks a certificate and its key now, so that a wrong file is refused when it is
/// given rather than at the first sync.
fn read_certificate(
    certificate: &std::path::Path,
    private_key: Option<&std::path::Path>,
) -> anyhow::Result<Credential> {
    let read = |flag: &str, path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!(
                "{flag} {}: {e}; give the path of a PEM file",
                path.display()
            ))
        })
    };
    let mut pem = read("--certificate", certificate)?;
    if let Some(key) = private_key {
        pem = format!("{}\n{}", read("--private-key", key)?, pem);
    }
    let parsed = graph::ClientCertificate::from_pem(&pem)
        .map_err(|e| UsageError(format!("--certificate {}: {e}", certificate.display())))?;
    let facts = parsed.facts();
    let now = chrono::Utc::now().timestamp();
    if facts.not_after <= now {
        return Err(UsageError(format!(
            "--certificate {}: the certificate (thumbprint {}) expired on {}; make a new one and upload it to the app registration",
            certificate.display(),
            facts.thumbprint,
            day_of(facts.not_after)
        ))
        .into());
    }
    note!(
        "Certificate {} (thumbprint {}), valid until {}. It must be uploaded to the app registration › Certificates & secrets.",
        facts.subject.as_deref().unwrap_or("without a common name"),
        facts.thumbprint,
        day_of(facts.not_after)
    );
    Ok(Credential::Certificate(CertificateCredential::new(
        pem,
        facts.thumbprint.clone(),
        facts.not_after,
    )))
}

async fn add(db: &str, args: AddArgs) -> anyhow::Result<ExitCode> {
    let name = ConnectionName::parse(&args.name)?;
    let client_id = ClientId::parse(&args.client_id)?;
    let cloud = match (&args.login_url, &args.graph_url) {
        (Some(login), Some(graph)) => Cloud::custom(login, graph)?,
        _ => Cloud::parse(&args.cloud)?,
    };
    let mut datasets = Vec::new();
    for raw in args.datasets.iter().filter(|d| !d.trim().is_empty()) {
        let chosen = if raw.trim().eq_ignore_ascii_case("all") {
            Dataset::ALL.to_vec()
        } else {
            vec![Dataset::parse(raw)?]
        };
        for dataset in chosen {
            if !datasets.contains(&dataset) {
                datasets.push(dataset);
            }
        }
    }
    let organization = match args.organization.as_deref() {
        Some(given) if given.trim().is_empty() => {
            return Err(UsageError(
                "--organization is empty: give the organisation's name, or leave it out to let the first sync find it".into(),
            )
            .into());
        }
        Some(given) => Some(
            domain::names::organization_name(given)
                .map_err(|problem| UsageError(format!("--organization: {problem}")))?,
        ),
        None => None,
    };
    let credential = read_credential(&args.credential)?;
    // Last of the checks: a domain costs a question to Microsoft.
    let tenant_id = tenant_of(&args.tenant_id, &cloud).await?;
    let store = open_store(db).await?;
    let organization = match organization {
        Some(wanted) => Some(check_named_organization(&store, &tenant_id, &wanted).await?),
        None => None,
    };
    let (mode, create_organization) = if args.partner {
        (ConnectionMode::Partner, args.create_organization)
    } else {
        (ConnectionMode::Direct, !args.no_create_organization)
    };
    let connection = store
        .add_connection_in(
            NewConnection {
                name,
                tenant_id,
                client_id,
                credential,
                cloud,
                datasets,
            },
            mode,
            OrganizationSetup {
                create_organization,
                organization: organization.clone(),
            },
        )
        .await?;
    match mode {
        ConnectionMode::Direct => out!(
            "Saved connection '{}' to tenant {} ({}). Next: `m365sync connection test {}`.",
            connection.name,
            connection.tenant_id,
            connection.cloud,
            connection.name
        )?,
        ConnectionMode::Partner => out!(
            "Saved partner connection '{}' to partner tenant {} ({}): each sync reads every customer it lists{}. Next: `m365sync connection test {}`.",
            connection.name,
            connection.tenant_id,
            connection.cloud,
            if create_organization {
                ""
            } else {
                ", and a new customer waits for `m365sync match` to file it under an organisation"
            },
            connection.name
        )?,
    }
    if let Some(wanted) = &organization {
        out!("Its tenant is filed under organisation '{wanted}'.")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses, before anything is saved, an organisation name that is not one organisation's, or a
/// tenant already filed under another organisation. The name to file under is the existing
/// organisation's as stored, when one is named `wanted` apart from case, spaces and invisible
/// characters, so that no near-duplicate is made.
async fn check_named_organization(
    store: &Store,
    tenant_id: &TenantId,
    wanted: &str,
) -> anyhow::Result<String> {
    let named = store.organizations_named(wanted).await?;
    if named.len() > 1 {
        return Err(UsageError(format!(
            "{} organisations are named '{wanted}'; add the connection without --organization, then file the tenant with `m365sync match {tenant_id} --organization ID` (`m365sync export organizations` shows the ids)",
            named.len()
        ))
        .into());
    }
    if let Some(tenant) = store.tenant(&tenant_id.to_string()).await?
        && let (Some(current), Some(name)) = (tenant.organization_id, &tenant.organization)
        && !named.contains(&current)
    {
        return Err(UsageError(format!(
            "tenant {tenant_id} is already filed under organisation '{name}'; leave out --organization, or change it with `m365sync match {tenant_id} --organization '{wanted}'`"
        ))
        .into());
    }
    match named.first() {
        Some(id) => Ok(store
            .organization(*id)
            .await?
            .map_or_else(|| wanted.to_string(), |o| o.name)),
        None => Ok(wanted.to_string()),
    }
}

async fn list(db: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let connections = store.connections().await?;
    let schedules: std::collections::HashMap<i64, store::ScheduleRow> = store
        .schedules()
        .await?
        .into_iter()
        .map(|row| (row.connection_id, row))
        .collect();
    let schedule_of = |id: i64| schedules.get(&id).and_then(|r| r.schedule.clone());
    let next_of = |id: i64| schedules.get(&id).and_then(|r| r.next_run_at);
    if json {
        let items: Vec<serde_json::Value> = connections
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name, "tenant_id": c.tenant_id, "client_id": c.client_id,
                    "cloud": c.cloud.name(), "endpoints": {"login": c.cloud.endpoints().login, "graph": c.cloud.endpoints().graph},
                    "mode": c.mode,
                    "datasets": c.datasets,
                    "create_organization": c.create_organization,
                    "user_filter": c.user_filter,
                    "last_tested_at": c.last_tested_at,
                    "last_test_passed": c.last_test_passed,
                    "audit_retention_days": c.audit_retention.days(),
                    "schedule": schedule_of(c.id),
                    "next_run_at": next_of(c.id),
                    "credential": match &c.certificate {
                        None => serde_json::json!({"kind": "secret"}),
                        Some(cert) => serde_json::json!({"kind": "certificate", "thumbprint": cert.thumbprint, "expires": day_of(cert.expires_at)}),
                    },
                })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&items)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if connections.is_empty() {
        out!(
            "No connections yet. Add one with `m365sync connection add NAME --tenant-id … --client-id … --client-secret-env VAR`."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::output::Table::new(&[
        "NAME",
        "MODE",
        "TENANT",
        "CLIENT",
        "CLOUD",
        "CREDENTIAL",
        "DATASETS",
        "KEEPS",
        "TESTED",
        "SCHEDULE",
    ]);
    for c in &connections {
        let datasets: Vec<&str> = c.datasets.iter().map(|d| d.name()).collect();
        let credential = match &c.certificate {
            None => "secret".to_string(),
            Some(cert) => format!(
                "certificate {} until {}",
                cert.thumbprint,
                day_of(cert.expires_at)
            ),
        };
        let tested = match (c.last_tested_at, c.last_test_passed) {
            (Some(at), Some(true)) => format!("last tested {} (passed)", local_time(at)),
            (Some(at), _) => format!("last tested {} (failed)", local_time(at)),
            (None, _) => "never tested".to_string(),
        };
        let schedule = match (schedule_of(c.id), next_of(c.id)) {
            (None, _) => "syncs when asked".to_string(),
            (Some(schedule), Some(next)) => {
                format!("syncs {schedule}, next {}", crate::jobs::moment(next))
            }
            (Some(schedule), None) => format!("syncs {schedule}, not due again"),
        };
        table.row(vec![
            c.name.to_string(),
            c.mode.to_string(),
            c.tenant_id.to_string(),
            c.client_id.to_string(),
            c.cloud.to_string(),
            credential,
            datasets.join(","),
            c.user_filter.describe(),
            tested,
            schedule,
        ]);
    }
    table.print()?;
    Ok(ExitCode::SUCCESS)
}

async fn test(db: &str, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let connection = store
        .connection(name)
        .await?
        .ok_or_else(|| sync::SyncError::NoConnection(name.to_string()))?;
    let retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let report = sync::test_connection(&store, &connection, retry).await?;
    if json {
        let body = serde_json::json!({
            "ok": report.ok,
            "problems": report.problems,
            "warnings": report.warnings,
            "granted_permissions": report.granted_permissions,
            "missing_permissions": report.missing_permissions,
            "datasets": report.datasets.iter().map(|(d, state)| serde_json::json!({"dataset": d, "state": state})).collect::<Vec<_>>(),
            "mode": connection.mode,
        });
        let mut body = body;
        if connection.mode == ConnectionMode::Partner {
            body["customers_listed_by"] = serde_json::json!(report.customers_listed_by);
            body["customers"] = serde_json::json!(report.customers);
        }
        out!("{}", serde_json::to_string_pretty(&body)?)?;
    } else if report.ok {
        out!(
            "Connection '{name}' works. Permissions granted: {}.",
            report.granted_permissions.join(", ")
        )?;
        for (dataset, state) in &report.datasets {
            out!("  {dataset}: {state}")?;
        }
        print_customers(&report)?;
    } else {
        out!(
            "Connection '{name}' has {} problem(s):",
            report.problems.len()
        )?;
        for problem in &report.problems {
            out!(
                "  [{}] {}\n      fix: {}",
                problem.code,
                problem.message,
                problem.fix
            )?;
        }
        if !report.granted_permissions.is_empty() {
            out!(
                "Permissions granted: {}.",
                report.granted_permissions.join(", ")
            )?;
        }
        print_customers(&report)?;
    }
    if !json {
        for warning in &report.warnings {
            out!(
                "warning [{}] {}\n      fix: {}",
                warning.code,
                warning.message,
                warning.fix
            )?;
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A partner connection's customers, one line each: ok, or what stops the app there.
fn print_customers(report: &sync::ConnectionTestReport) -> anyhow::Result<()> {
    if let Some(source) = &report.customers_listed_by {
        out!("Customers ({} listed by {source}):", report.customers.len())?;
    }
    for customer in &report.customers {
        let consent = customer
            .consent_url
            .as_deref()
            .map(|url| format!(" — consent: {url}"))
            .unwrap_or_default();
        out!(
            "  {} ({}): {}{consent}",
            customer.display_name,
            customer.tenant_id,
            customer.state
        )?;
    }
    Ok(())
}

#[derive(Args)]
pub struct SyncArgs {
    /// The connection to sync.
    name: String,
    /// Print the run as JSON instead of a summary.
    #[arg(long)]
    json: bool,
    /// List every user again instead of reading only the changes since the last sync (a clean
    /// sync; also what happens by itself when Microsoft forgets the delta link).
    #[arg(long)]
    full: bool,
    /// Let this sync take away more of the tenant's contacts than the connection's guard allows
    /// (held otherwise: a filter that matches nobody, or a nearly empty answer from Microsoft,
    /// would do it by mistake). See `m365sync connection guard`.
    #[arg(long, visible_alias = "confirm-archive")]
    accept_drop: bool,
    /// Only put the run in the queue, for a worker (`m365sync worker` or `serve`) to run; joins
    /// a run already queued for the connection.
    #[arg(long)]
    queue: bool,
}

pub async fn sync(db: &str, args: SyncArgs) -> anyhow::Result<ExitCode> {
    if args.queue {
        return queue(db, &args).await;
    }
    let progress = TerminalProgress::new(!args.json);
    let outcome = async {
        let store = open_store(db).await?;
        let engine = SyncEngine::new(store).confirming_archive(args.accept_drop);
        anyhow::Ok(engine.sync_with(&args.name, &progress, args.full).await?)
    }
    .await;
    progress.finish();
    let report = match outcome {
        Ok(report) => report,
        // A script reading `--json` gets JSON whatever happened; the sentence goes to stderr.
        Err(error) if args.json => {
            let failure = serde_json::json!({
                "run_id": null,
                "status": domain::RunStatus::Failed,
                "steps": [],
                "warnings": [],
                "error": crate::describe(&error),
            });
            // Whether or not anyone reads it, the error decides the exit code.
            let _ = out!("{}", serde_json::to_string_pretty(&failure)?);
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    let code = if report.status == domain::RunStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    // The run's outcome is the exit code even when nobody reads the report (`| head -c1`).
    match print_report(&report, args.json, progress.steps_shown_on_terminal()) {
        Err(_) if crate::output::reader_gone() => Ok(code),
        Err(e) => Err(e),
        Ok(()) => Ok(code),
    }
}

/// `sync --queue`: the run is queued for a worker, or joins the one already queued.
async fn queue(db: &str, args: &SyncArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let connection = store
        .connection(&args.name)
        .await?
        .ok_or_else(|| sync::SyncError::NoConnection(args.name.clone()))?;
    let queued = SyncEngine::new(store)
        .confirming_archive(args.accept_drop)
        .queue(&connection, store::RunTrigger::Manual, args.full)
        .await?;
    if args.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "run_id": queued.run_id,
                "status": "queued",
                "joined": queued.joined,
            }))?
        )?;
    } else if queued.joined {
        out!(
            "Run {} was already queued for connection '{}'; this request joined it. A worker runs it (`m365sync worker` or `m365sync serve`).",
            queued.run_id,
            args.name
        )?;
    } else {
        out!(
            "Run {} is queued for connection '{}'. A worker runs it (`m365sync worker` or `m365sync serve`).",
            queued.run_id,
            args.name
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's report on standard output. When each step's line was already shown on the same
/// terminal as it ended, only the outcome is added, so that no step is read twice.
fn print_report(report: &sync::SyncReport, json: bool, steps_shown: bool) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(report)?)?;
        return Ok(());
    }
    out!("Run {} {}.", report.run_id, report.status)?;
    if let Some(message) = &report.message {
        out!("  {message}")?;
    }
    let mut tenant = None;
    for step in report.steps.iter().filter(|_| !steps_shown) {
        let id = step.tenant_id.to_string();
        if tenant.as_ref() != Some(&id) {
            out!("  {}", tenant_line(&id, step.tenant_name.as_deref()))?;
            tenant = Some(id);
        }
        out!(
            "    {}",
            step_line(
                step.dataset.name(),
                step.status,
                &step.counts,
                step.message.as_deref()
            )
        )?;
    }
    for warning in &report.warnings {
        out!("warning [{}]: {}", warning.code, warning.message)?;
    }
    Ok(())
}

#[derive(Args)]
pub struct RunsArgs {
    /// Only this connection's runs.
    #[arg(long)]
    connection: Option<String>,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
    limit: i64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Close a run left running by a process that is gone where this machine cannot see (another
    /// machine, or a container that no longer exists), so that its connection can sync again.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["connection", "json"])]
    close: Option<i64>,
}

pub async fn runs(db: &str, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    if let Some(run) = args.close {
        store.close_run(run).await?;
        out!("Run {run} is closed as interrupted; its connection can sync again.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let runs = store.runs(args.connection.as_deref(), args.limit).await?;
    if let Some(name) = &args.connection
        && runs.is_empty()
    {
        check_connection_named(&store, name).await?;
    }
    if args.json {
        out!("{}", serde_json::to_string_pretty(&runs)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        out!("No runs yet: `m365sync sync NAME` runs one.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = store::now_millis();
    let mut table = crate::output::Table::new(&[
        "RUN",
        "CONNECTION",
        "KIND",
        "STATUS",
        "STARTED",
        "TOOK",
        "STEPS",
        "NOTE",
    ]);
    for run in &runs {
        let (started, took) = started_and_took(run, now);
        table.row(vec![
            run.id.to_string(),
            run.connection_name.clone(),
            run.kind.clone(),
            run.status.to_string(),
            started,
            took,
            steps_by_status(&run.steps),
            run_note(run),
        ]);
    }
    table.print()?;
    out!("`m365sync run RUN` shows a run's steps, warnings and the outcome of every record.")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct RunArgs {
    /// The run's number, as `m365sync runs` shows it.
    id: i64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Only the records with this outcome.
    #[arg(long, value_parser = outcome_of)]
    outcome: Option<store::RecordOutcome>,
}

fn outcome_of(text: &str) -> Result<store::RecordOutcome, String> {
    store::RecordOutcome::parse(text).ok_or_else(|| {
        let known: Vec<&str> = store::RecordOutcome::ALL
            .iter()
            .map(|o| o.as_str())
            .collect();
        format!(
            "'{text}' is not an outcome; give one of {}",
            known.join(", ")
        )
    })
}

/// One run: its steps with their counts, and under each step what it did to every record it
/// changed, left out, held or could not write. Unchanged records are counted, not listed.
pub async fn run(db: &str, args: RunArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let Some(run) = store.run(args.id).await? else {
        anyhow::bail!("there is no run {}; `m365sync runs` lists them", args.id);
    };
    let records = store.run_records(run.id, args.outcome).await?;
    if args.json {
        let steps: Vec<serde_json::Value> = run
            .steps
            .iter()
            .map(|step| {
                let mut value = serde_json::to_value(step).unwrap_or_default();
                let of_step: Vec<&store::RunRecordRow> = records
                    .iter()
                    .filter(|r| r.step_id == Some(step.id))
                    .collect();
                value["records"] = serde_json::json!(of_step);
                value
            })
            .collect();
        let mut body = serde_json::to_value(&run)?;
        body["steps"] = serde_json::Value::Array(steps);
        out!("{}", serde_json::to_string_pretty(&body)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = store::now_millis();
    out!(
        "Run {} · {} · {} · {}",
        run.id,
        run.connection_name,
        run.kind,
        run.status
    )?;
    out!("  {}", when_and_how_long(&run, now))?;
    if let Some(message) = &run.message {
        out!("  {message}")?;
    }
    let mut tenant = None;
    for step in &run.steps {
        if step.tenant_id.is_some() && tenant != step.tenant_id.as_ref() {
            let id = step.tenant_id.as_deref().unwrap_or_default();
            out!("  {}", tenant_line(id, step.tenant_name.as_deref()))?;
            tenant = step.tenant_id.as_ref();
        }
        out!(
            "    {}",
            step_line(
                &step.dataset,
                step.status,
                &step.counts,
                step.message.as_deref()
            )
        )?;
        for record in records.iter().filter(|r| r.step_id == Some(step.id)) {
            out!("      {}", record_line(record))?;
        }
        if args.outcome.is_none() && step.counts.unchanged > 0 {
            out!(
                "      {} unchanged (counted, not listed)",
                step.counts.unchanged
            )?;
        }
    }
    for warning in &run.warnings {
        out!("  warning [{}]: {}", warning.code, warning.message)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a run did to one record, on one line: the outcome, who, and the fields or the reason.
fn record_line(record: &store::RunRecordRow) -> String {
    let who = match &record.label {
        Some(label) => format!("{label} ({})", record.key),
        None => record.key.clone(),
    };
    let detail = &record.detail;
    let why = detail["why"].as_str().map(str::to_string);
    let said = match record.outcome {
        store::RecordOutcome::Updated => {
            let mut parts: Vec<String> = Vec::new();
            let shown = |value: &serde_json::Value| match value.as_str() {
                Some(text) => format!("\"{text}\""),
                None => "(empty)".to_string(),
            };
            for change in detail["fields"].as_array().into_iter().flatten() {
                parts.push(format!(
                    "{}: {} → {}",
                    change["field"].as_str().unwrap_or("?"),
                    shown(&change["old"]),
                    shown(&change["new"])
                ));
            }
            for change in detail["custom"].as_array().into_iter().flatten() {
                parts.push(format!(
                    "custom {}: {} → {}",
                    change["name"].as_str().unwrap_or("?"),
                    shown(&change["old"]),
                    shown(&change["new"])
                ));
            }
            if let Some(rule) = detail["linked_by"].as_str() {
                parts.push(format!("linked by {rule}"));
            }
            if detail["restored"].as_bool() == Some(true) {
                parts.push("restored".into());
            }
            Some(parts.join("; "))
        }
        store::RecordOutcome::Failed => {
            let mut text = why.unwrap_or_default();
            if let Some(code) = detail["graph_code"].as_str() {
                text.push_str(&format!(" [Graph error {code}]"));
            }
            if let Some(id) = detail["request_id"].as_str() {
                text.push_str(&format!(" [request-id {id}]"));
            }
            Some(text)
        }
        _ => why,
    };
    match said.filter(|s| !s.is_empty()) {
        Some(said) => format!("{:<8} {who} — {said}", record.outcome.as_str()),
        None => format!("{:<8} {who}", record.outcome.as_str()),
    }
}

/// When a run started (local time) and how long it took, or that it is still going or waiting.
/// The STARTED and TOOK cells of a run: when it started (or that it waits), and how long it
/// took (or has been running).
fn started_and_took(run: &store::RunRow, now: i64) -> (String, String) {
    match (run.started_at, run.finished_at) {
        (None, _) if run.status == domain::RunStatus::Queued => (
            run.queued_at
                .map(|queued| format!("queued {}", local_time(queued)))
                .unwrap_or_else(|| "queued".into()),
            "-".into(),
        ),
        (None, _) => ("never started".into(), "-".into()),
        (Some(started), None) => (
            local_time(started),
            format!("{} so far", duration_text(now.saturating_sub(started))),
        ),
        (Some(started), Some(finished)) => (
            local_time(started),
            duration_text(finished.saturating_sub(started)),
        ),
    }
}

/// How a run's steps ended, counted by status: "16 succeeded, 2 failed".
fn steps_by_status(steps: &[store::StepRow]) -> String {
    let mut counts: Vec<(domain::StepStatus, usize)> = Vec::new();
    for step in steps {
        match counts.iter_mut().find(|(status, _)| *status == step.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((step.status, 1)),
        }
    }
    if counts.is_empty() {
        return "-".into();
    }
    counts.sort_by_key(|(status, _)| status.to_string());
    counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a run ended as it did, or how many warnings it has, in one cell.
fn run_note(run: &store::RunRow) -> String {
    let mut note = run.message.clone().unwrap_or_default();
    if !run.warnings.is_empty() {
        let warnings = match run.warnings.len() {
            1 => "1 warning".to_string(),
            n => format!("{n} warnings"),
        };
        note = if note.is_empty() {
            warnings
        } else {
            format!("{note} ({warnings})")
        };
    }
    note
}

fn when_and_how_long(run: &store::RunRow, now: i64) -> String {
    match (run.started_at, run.finished_at) {
        (None, _) if run.status == domain::RunStatus::Queued => match run.queued_at {
            Some(queued) => format!("queued since {}", local_time(queued)),
            None => "queued".to_string(),
        },
        (None, _) => "never started".to_string(),
        (Some(started), None) => format!(
            "started {} · running for {}",
            local_time(started),
            duration_text(now.saturating_sub(started))
        ),
        (Some(started), Some(finished)) => format!(
            "started {} · took {}",
            local_time(started),
            duration_text(finished.saturating_sub(started))
        ),
    }
}

/// A time in milliseconds since 1970, in this machine's time zone, to the second.
pub fn local_time(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| millis.to_string())
}

/// A duration a person reads at a glance: 850 ms, 4.2 s, 3 min 12 s, 2 h 05 min.
pub fn duration_text(millis: i64) -> String {
    let millis = millis.max(0);
    let seconds = millis / 1000;
    match millis {
        0..1_000 => format!("{millis} ms"),
        1_000..60_000 => format!("{}.{} s", seconds, (millis % 1000) / 100),
        60_000..3_600_000 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// Fails when no connection has this name, naming the ones there are when they are few. Runs
/// of a connection removed since keep its name, so this is asked only when none is found.
async fn check_connection_named(store: &Store, name: &str) -> anyhow::Result<()> {
    if store.connection(name).await?.is_some() {
        return Ok(());
    }
    let names: Vec<String> = store
        .connections()
        .await?
        .into_iter()
        .map(|c| c.name.to_string())
        .collect();
    let known = match names.len() {
        0 => "there are no connections yet; `m365sync connection add` creates one".to_string(),
        1 => format!("the only connection is '{}'", names[0]),
        2..=5 => format!(
            "give one of {} to --connection",
            names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "`m365sync connection list` shows the names".to_string(),
    };
    anyhow::bail!("there is no connection named '{name}' and no run names it; {known}")
}

/// The tenant the steps below it belong to.
pub fn tenant_line(tenant_id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("tenant {name} ({tenant_id})"),
        None => format!("tenant {tenant_id}"),
    }
}

/// One step of a run on one line: dataset, status, counts, and the step's message if any.
pub fn step_line(
    dataset: &str,
    status: domain::StepStatus,
    counts: &store::StepCounts,
    message: Option<&str>,
) -> String {
    let message = message.map(|m| format!(" — {m}")).unwrap_or_default();
    format!("{dataset:<16} {:<9} {counts}{message}", status.as_str())
}
