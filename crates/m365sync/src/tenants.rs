//! `tenants` and `match`: which organisation each tenant is filed under, and a person's say.

use std::process::ExitCode;

use clap::{ArgGroup, Args};
use domain::TenantState;
use store::{Store, TenantChoice, TenantRow};

use crate::UsageError;
use crate::commands::open_store;

#[derive(Args)]
pub struct TenantsArgs {
    /// Only tenants in this state.
    #[arg(long, value_parser = ["matched", "suggested", "unmatched", "ignored"])]
    state: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(group(
    ArgGroup::new("decision")
        .required(true)
        .args(["accept", "organization", "create", "ignore", "unmatch"])
))]
pub struct MatchArgs {
    /// The tenant: its id, or its display name.
    tenant: String,
    /// Accept suggestion N of the tenant (1, the best, when N is left out).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1")]
    accept: Option<String>,
    /// File the tenant under this organisation, by name or id (`id:7` when a name is a number
    /// too); also changes a match.
    #[arg(long, value_name = "NAME_OR_ID")]
    organization: Option<String>,
    /// Create an organisation for the tenant, named NAME or else after the tenant.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    create: Option<String>,
    /// Leave the tenant alone: its syncs skip everything and it is not listed as unmatched.
    #[arg(long)]
    ignore: bool,
    /// Unlink the tenant from its organisation (or stop ignoring it): it awaits a decision, and
    /// the rules only suggest.
    #[arg(long)]
    unmatch: bool,
}

pub async fn tenants(db: &str, args: TenantsArgs) -> anyhow::Result<ExitCode> {
    let state = args.state.as_deref().and_then(TenantState::parse);
    let store = open_store(db).await?;
    let tenants = store.tenants(state).await?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&tenants)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if tenants.is_empty() {
        match state {
            Some(state) => out!("No tenant is {state}.")?,
            None => out!(
                "No tenants yet: a tenant appears with its connection's first sync (`m365sync sync NAME`)."
            )?,
        }
    }
    if tenants.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut table =
        crate::output::Table::new(&["TENANT", "TENANT ID", "STATE", "ORGANISATION", "CONNECTION"]);
    for t in &tenants {
        let organization = match (&t.organization, t.organization_id) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            _ => "-".into(),
        };
        table.row(vec![
            t.display_name
                .clone()
                .unwrap_or_else(|| "(not synced yet)".into()),
            t.tenant_id.clone(),
            t.state.to_string(),
            organization,
            t.connection
                .clone()
                .unwrap_or_else(|| "(a removed connection)".into()),
        ]);
    }
    table.print()?;
    // Suggestions are several per tenant: they follow the table rather than crowd it.
    for t in tenants.iter().filter(|t| !t.suggestions.is_empty()) {
        out!(
            "\nSuggested for {} ({}):",
            t.display_name.as_deref().unwrap_or("(not synced yet)"),
            t.tenant_id
        )?;
        for (n, s) in t.suggestions.iter().enumerate() {
            out!(
                "  {}. {} (organisation {}) · score {:.2} · {}",
                n + 1,
                s.organization,
                s.organization_id,
                s.score,
                s.rule.describe()
            )?;
        }
        out!(
            "  `m365sync match {} --accept` takes the first; --organization ID, --create or --ignore decide otherwise.",
            t.tenant_id
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn decide(db: &str, args: MatchArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let tenant = find_tenant(&store, &args.tenant).await?;
    let id = tenant.tenant_id.clone();
    let name = tenant.label().to_string();
    let choice = if let Some(raw) = &args.accept {
        TenantChoice::Link(accepted(&tenant, raw)?)
    } else if let Some(key) = &args.organization {
        let organization = find_organization(&store, key).await?;
        if tenant.state == TenantState::Matched && tenant.organization_id == Some(organization) {
            out!(
                "Tenant {name} ({id}) is already matched to organisation {organization}; nothing changed."
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        TenantChoice::Link(organization)
    } else if let Some(given) = &args.create {
        // `--create` alone takes the tenant's name; a NAME given is checked as typed.
        let wanted = match given.trim() {
            "" => domain::names::organization_name(
                tenant.display_name.as_deref().unwrap_or_default(),
            )
            .map_err(|problem| {
                UsageError(format!(
                    "tenant {id} has no name to use ({problem}), so the new organisation needs one: give --create NAME"
                ))
            })?,
            given => domain::names::organization_name(given)
                .map_err(|problem| UsageError(format!("--create: {problem}")))?,
        };
        if let Some(existing) = store.organizations_named(&wanted).await?.first() {
            return Err(UsageError(format!(
                "an organisation named '{wanted}' exists already (id {existing}; case, spaces and invisible characters aside); file the tenant under it with `m365sync match {id} --organization {existing}`, or give --create another name"
            ))
            .into());
        }
        TenantChoice::Create(wanted)
    } else if args.ignore {
        TenantChoice::Ignore
    } else {
        TenantChoice::Unmatch
    };
    let after = store.decide_tenant(&id, &choice).await?;
    let next = match &after.connection {
        Some(connection) => format!("`m365sync sync {connection}`"),
        None => "its connection's next sync".into(),
    };
    match after.state {
        TenantState::Matched => out!(
            "Tenant {name} ({id}) is now matched to organisation '{}' (id {}). Its records are filed there from {next} on.",
            after.organization.as_deref().unwrap_or_default(),
            after.organization_id.unwrap_or_default()
        )?,
        TenantState::Ignored => out!(
            "Tenant {name} ({id}) is ignored: its syncs skip everything. `m365sync match {id} --unmatch` brings it back for a decision."
        )?,
        TenantState::Suggested | TenantState::Unmatched => out!(
            "Tenant {name} ({id}) is {} and awaits a decision; the rules will only suggest for it. `m365sync tenants` shows its suggestions.",
            after.state
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The one tenant a person means: by id, else by display name.
async fn find_tenant(store: &Store, key: &str) -> anyhow::Result<TenantRow> {
    let mut found = store.find_tenants(key).await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(UsageError(format!(
            "no tenant '{key}' has been seen; `m365sync tenants` lists them by id and name (a tenant appears with its connection's first sync)"
        ))
        .into()),
        n => Err(UsageError(format!(
            "{n} tenants are named '{key}' ({}); give the tenant id instead",
            found
                .iter()
                .map(|t| t.tenant_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

/// The organisation of suggestion `raw` (counted from 1).
fn accepted(tenant: &TenantRow, raw: &str) -> anyhow::Result<i64> {
    let id = &tenant.tenant_id;
    if tenant.state == TenantState::Matched {
        return Err(UsageError(format!(
            "tenant {id} is already matched to organisation '{}'; to change it, give --organization NAME_OR_ID instead of --accept",
            tenant.organization.as_deref().unwrap_or_default()
        ))
        .into());
    }
    let count = tenant.suggestions.len();
    if count == 0 {
        return Err(UsageError(format!(
            "tenant {id} has no suggestion to accept; choose an organisation with --organization NAME_OR_ID, or make one with --create"
        ))
        .into());
    }
    let n: usize = raw.trim().parse().unwrap_or(0);
    match n.checked_sub(1).and_then(|i| tenant.suggestions.get(i)) {
        Some(s) => Ok(s.organization_id),
        None => Err(UsageError(format!(
            "--accept {raw}: tenant {id} has {count} suggestion(s); give --accept a number from 1 to {count} (`m365sync tenants` lists them)"
        ))
        .into()),
    }
}

/// An organisation by id or by name (as duplicates are told apart); `id:N` is only ever an id,
/// for when an organisation is named with a number that is another's id.
async fn find_organization(store: &Store, key: &str) -> anyhow::Result<i64> {
    let key = key.trim();
    if let Some(raw) = key.strip_prefix("id:") {
        let id = raw.trim().parse::<i64>().map_err(|_| {
            UsageError(format!(
                "--organization {key}: after `id:` comes an organisation's id, a whole number; `m365sync export organizations` lists them"
            ))
        })?;
        return match store.organization(id).await? {
            Some(found) => Ok(found.id),
            None => Err(UsageError(format!(
                "there is no organisation with id {id}; `m365sync export organizations` lists them by id and name"
            ))
            .into()),
        };
    }
    // Names are compared as duplicates are: case, spacing and invisible characters aside.
    let named = store.organizations_named(key).await?;
    let by_id = match key.parse::<i64>() {
        Ok(id) => store.organization(id).await?,
        Err(_) => None,
    };
    match (by_id, named.as_slice()) {
        (Some(by_id), [only]) if *only != by_id.id => Err(UsageError(format!(
            "'{key}' is both the id of organisation '{}' and the name of organisation {only}; give --organization id:{} or id:{only} for the one you mean",
            by_id.name, by_id.id
        ))
        .into()),
        (Some(by_id), _) => Ok(by_id.id),
        (None, [only]) => Ok(*only),
        (None, []) => Err(UsageError(format!(
            "there is no organisation '{key}'; `m365sync export organizations` lists them by id and name, or --create '{key}' makes it"
        ))
        .into()),
        (None, several) => Err(UsageError(format!(
            "{} organisations are named '{key}' (ids {}); give --organization one of their ids",
            several.len(),
            several
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}
