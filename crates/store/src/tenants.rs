//! Tenants: the Microsoft 365 tenants seen through connections, and where each stands with its
//! organisation (`matched`, `suggested`, `unmatched`, `ignored`). The rules of `domain::matching`
//! decide; this applies their decision, or a person's, in one transaction serialised per tenant.

use std::collections::HashMap;

use domain::matching::{self, decide, suggest};
use domain::records::fingerprint;
use domain::{
    MatchRule, OrganizationCandidate, OrganizationRecord, Standing, Suggestion, TenantDecision,
    TenantFacts, TenantState,
};
use serde::Serialize;

use crate::backend::{Columns, Tx, on_pool, on_tx};
use crate::error::{Context, Executed, Result, StoreError};
use crate::{Connection, OrganizationOutcome, Store, now_millis};

/// An organisation proposed for a tenant, with its name as it is now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestionRow {
    pub organization_id: i64,
    pub organization: String,
    pub score: f64,
    pub rule: MatchRule,
}

/// A tenant as kept.
#[derive(Debug, Clone, Serialize)]
pub struct TenantRow {
    pub tenant_id: String,
    /// The connection it was last seen through (none once that connection is removed).
    pub connection: Option<String>,
    /// Unknown until the tenant's first sync.
    pub display_name: Option<String>,
    pub verified_domains: Vec<String>,
    pub default_domain: Option<String>,
    pub state: TenantState,
    pub organization_id: Option<i64>,
    pub organization: Option<String>,
    /// Best first.
    pub suggestions: Vec<SuggestionRow>,
    /// Whether the rules may link it by themselves (false once a person has unlinked it).
    pub automatic: bool,
    /// How it came to be where it is.
    pub match_rule: Option<MatchRule>,
    pub first_seen_at: Option<i64>,
    pub last_seen_at: Option<i64>,
}

impl TenantRow {
    /// The display name, or the id until the first sync tells the name.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.tenant_id)
    }
}

/// What the organisation step of a sync came to for the tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum TenantOutcome {
    /// Filed under an organisation, by this rule.
    Matched {
        organization: OrganizationOutcome,
        rule: MatchRule,
    },
    /// Awaiting a person's decision: nothing of the tenant may be written anywhere yet.
    Awaiting {
        state: TenantState,
        suggestions: Vec<SuggestionRow>,
    },
    /// A person said to leave it alone.
    Ignored,
}

/// A person's decision about a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantChoice {
    /// File it under this organisation (also how a match is changed).
    Link(i64),
    /// Create an organisation of this name and file it there.
    Create(String),
    /// Leave it alone: not synced, not asked about again.
    Ignore,
    /// Unlink it (or stop ignoring it): it awaits a decision, and the rules only suggest.
    Unmatch,
}

/// The tenant's row as the decision needs it.
#[derive(Debug, Clone)]
struct Stored {
    connection_id: Option<i64>,
    display_name: Option<String>,
    verified_domains: Vec<String>,
    default_domain: Option<String>,
    state: TenantState,
    organization_id: Option<i64>,
    suggestions: Vec<Suggestion>,
    automatic: bool,
    match_rule: Option<MatchRule>,
    first_seen_at: Option<i64>,
    last_seen_at: Option<i64>,
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("tenant {what}: {detail}"))
}

fn state_of(text: &str) -> Result<TenantState> {
    TenantState::parse(text).ok_or_else(|| corrupt("state", format!("'{text}' is unknown")))
}

fn rule_of(text: Option<String>) -> Result<Option<MatchRule>> {
    text.map(|t| MatchRule::parse(&t).ok_or_else(|| corrupt("rule", format!("'{t}' is unknown"))))
        .transpose()
}

fn suggestions_of(row: &impl Columns) -> Result<Vec<Suggestion>> {
    serde_json::from_str(&row.text_req("suggestions")?).map_err(|e| corrupt("suggestions", e))
}

fn stored_from(row: &impl Columns) -> Result<Stored> {
    Ok(Stored {
        connection_id: row.int("connection_id")?,
        display_name: row.text("display_name")?,
        verified_domains: row.json_list("verified_domains")?,
        default_domain: row.text("default_domain")?,
        state: state_of(&row.text_req("state")?)?,
        organization_id: row.int("organization_id")?,
        suggestions: suggestions_of(row)?,
        automatic: row.flag("automatic")?.unwrap_or(true),
        match_rule: rule_of(row.text("match_rule")?)?,
        first_seen_at: row.int("first_seen_at")?,
        last_seen_at: row.int("last_seen_at")?,
    })
}

const SELECT_STORED: &str = "SELECT connection_id, display_name, verified_domains, default_domain, state, organization_id, suggestions, automatic, match_rule, first_seen_at, last_seen_at FROM tenants WHERE tenant_id = $1";

const WRITE_TENANT: &str = "INSERT INTO tenants (tenant_id, connection_id, display_name, verified_domains, default_domain, state, organization_id, suggestions, automatic, match_rule, first_seen_at, last_seen_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (tenant_id) DO UPDATE SET connection_id = excluded.connection_id, display_name = excluded.display_name, verified_domains = excluded.verified_domains, \
     default_domain = excluded.default_domain, state = excluded.state, organization_id = excluded.organization_id, suggestions = excluded.suggestions, automatic = excluded.automatic, \
     match_rule = excluded.match_rule, first_seen_at = excluded.first_seen_at, last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at";

macro_rules! select_tenants {
    ($tail:literal) => {
        concat!(
            "SELECT t.tenant_id, c.name AS connection, t.display_name, t.verified_domains, t.default_domain, t.state, t.organization_id, o.name AS organization, ",
            "t.suggestions, t.automatic, t.match_rule, t.first_seen_at, t.last_seen_at ",
            "FROM tenants t LEFT JOIN connections c ON c.id = t.connection_id LEFT JOIN organizations o ON o.id = t.organization_id",
            $tail
        )
    };
}

async fn read_stored(tx: &mut Tx, tenant: &str) -> Result<Option<Stored>> {
    on_tx!(tx, |c| {
        let row = sqlx::query(SELECT_STORED)
            .bind(tenant)
            .fetch_optional(&mut *c)
            .await
            .doing("reading a tenant")?;
        row.as_ref().map(stored_from).transpose()
    })
}

async fn write_stored(tx: &mut Tx, tenant: &str, stored: &Stored, now: i64) -> Result<()> {
    let domains = serde_json::to_string(&stored.verified_domains).unwrap_or_else(|_| "[]".into());
    let suggestions = serde_json::to_string(&stored.suggestions).unwrap_or_else(|_| "[]".into());
    on_tx!(tx, |c| sqlx::query(WRITE_TENANT)
        .bind(tenant)
        .bind(stored.connection_id)
        .bind(&stored.display_name)
        .bind(&domains)
        .bind(&stored.default_domain)
        .bind(stored.state.as_str())
        .bind(stored.organization_id)
        .bind(&suggestions)
        .bind(stored.automatic)
        .bind(stored.match_rule.map(MatchRule::as_str))
        .bind(stored.first_seen_at)
        .bind(stored.last_seen_at)
        .bind(now)
        .execute(&mut *c)
        .await
        .done("saving a tenant"))?;
    Ok(())
}

/// Every organisation, with the domains known for it and the tenants linked to it.
pub(crate) async fn candidates(tx: &mut Tx) -> Result<Vec<OrganizationCandidate>> {
    let (orgs, links) = on_tx!(tx, |c| {
        let orgs = sqlx::query(
            "SELECT id, name, tenant_id, verified_domains FROM organizations ORDER BY id",
        )
        .fetch_all(&mut *c)
        .await
        .doing("finding organisations")?;
        let links = sqlx::query("SELECT tenant_id, organization_id, verified_domains FROM tenants WHERE state = 'matched'")
            .fetch_all(&mut *c)
            .await
            .doing("finding tenants' organisations")?;
        let orgs = orgs
            .iter()
            .map(|r| {
                Ok(OrganizationCandidate {
                    id: r.int_req("id")?,
                    name: r.text_req("name")?,
                    domains: r.json_list("verified_domains")?,
                    tenant_ids: r.text("tenant_id")?.into_iter().collect(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let links = links
            .iter()
            .map(|r| {
                Ok((
                    r.text_req("tenant_id")?,
                    r.int_req("organization_id")?,
                    r.json_list("verified_domains")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok::<_, StoreError>((orgs, links))
    })?;
    let mut by_id: HashMap<i64, OrganizationCandidate> =
        orgs.into_iter().map(|o| (o.id, o)).collect();
    for (tenant, organization, domains) in links {
        if let Some(org) = by_id.get_mut(&organization) {
            if !org.tenant_ids.contains(&tenant) {
                org.tenant_ids.push(tenant);
            }
            for domain in domains {
                if !org.domains.contains(&domain) {
                    org.domains.push(domain);
                }
            }
        }
    }
    let mut all: Vec<OrganizationCandidate> = by_id.into_values().collect();
    all.sort_by_key(|o| o.id);
    Ok(all)
}

fn named(suggestions: &[Suggestion], names: &HashMap<i64, String>) -> Vec<SuggestionRow> {
    suggestions
        .iter()
        .filter_map(|s| {
            Some(SuggestionRow {
                organization_id: s.organization_id,
                organization: names.get(&s.organization_id)?.clone(),
                score: s.score,
                rule: s.rule,
            })
        })
        .collect()
}

fn names_of(candidates: &[OrganizationCandidate]) -> HashMap<i64, String> {
    candidates.iter().map(|c| (c.id, c.name.clone())).collect()
}

/// Takes the tenant off any organisation whose own tenant columns are its: what the tenant said
/// of itself (name, domains) goes with it, so that no rule finds that organisation by them.
async fn release(tx: &mut Tx, tenant: &str, now: i64) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE organizations SET tenant_id = NULL, tenant_name = NULL, verified_domains = '[]', default_domain = NULL, fingerprint = NULL, updated_at = $1 WHERE tenant_id = $2"
    )
    .bind(now)
    .bind(tenant)
    .execute(&mut *c)
    .await
    .done("unlinking a tenant")
    })?;
    Ok(())
}

/// Files a tenant under an organisation by a person's word. The organisation takes the tenant
/// as its own when it has none; the tenant's records already kept move with it.
async fn link(
    tx: &mut Tx,
    tenant: &str,
    mut stored: Stored,
    organization: i64,
    now: i64,
) -> Result<()> {
    let own: Option<Option<String>> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT tenant_id FROM organizations WHERE id = $1"
    )
    .bind(organization)
    .fetch_optional(&mut *c)
    .await
    .doing("reading an organisation"))?;
    let Some(own) = own else {
        return Err(StoreError::NotFound(format!(
            "there is no organisation {organization}; `m365sync export organizations` lists them"
        )));
    };
    if stored.state == TenantState::Matched && stored.organization_id == Some(organization) {
        return Ok(());
    }
    release(tx, tenant, now).await?;
    if own.is_none() || own.as_deref() == Some(tenant) {
        let domains =
            serde_json::to_string(&stored.verified_domains).unwrap_or_else(|_| "[]".into());
        on_tx!(tx, |c| {
            sqlx::query(
            "UPDATE organizations SET tenant_id = $1, tenant_name = $2, verified_domains = $3, default_domain = $4, fingerprint = NULL, archived = FALSE, updated_at = $5 WHERE id = $6"
        )
        .bind(tenant)
        .bind(&stored.display_name)
        .bind(&domains)
        .bind(&stored.default_domain)
        .bind(now)
        .bind(organization)
        .execute(&mut *c)
        .await
        .done("linking an organisation")
        })?;
    }
    for table in [
        "UPDATE contacts SET organization_id = $1 WHERE tenant_id = $2",
        "UPDATE licenses SET organization_id = $1 WHERE tenant_id = $2",
        "UPDATE inventory SET organization_id = $1 WHERE tenant_id = $2",
    ] {
        on_tx!(tx, |c| sqlx::query(table)
            .bind(organization)
            .bind(tenant)
            .execute(&mut *c)
            .await
            .done("moving a tenant's records"))?;
    }
    stored.state = TenantState::Matched;
    stored.organization_id = Some(organization);
    stored.suggestions = Vec::new();
    stored.automatic = true;
    stored.match_rule = Some(MatchRule::Person);
    write_stored(tx, tenant, &stored, now).await
}

async fn insert_organization(tx: &mut Tx, name: &str, now: i64) -> Result<i64> {
    on_tx!(tx, |c| sqlx::query_scalar(
        "INSERT INTO organizations (name, created_at, updated_at) VALUES ($1, $2, $2) RETURNING id"
    )
    .bind(name.trim())
    .bind(now)
    .fetch_one(&mut *c)
    .await
    .doing("creating an organisation"))
}

/// For `connection add --organization NAME`: matches the tenant, before its first sync, to the
/// organisation of exactly that name, or to a new one.
pub(crate) async fn name_organization(
    tx: &mut Tx,
    tenant: &str,
    connection_id: i64,
    name: &str,
    now: i64,
) -> Result<()> {
    tx.lock_tenant(tenant).await?;
    let ids: Vec<i64> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT id FROM organizations WHERE name = $1 ORDER BY id"
    )
    .bind(name.trim())
    .fetch_all(&mut *c)
    .await
    .doing("finding an organisation"))?;
    let organization = match ids.as_slice() {
        [] => insert_organization(tx, name, now).await?,
        [only] => *only,
        several => {
            return Err(StoreError::Conflict(format!(
                "{} organisations are named '{}' (ids {}); give --organization one of their ids instead",
                several.len(),
                name.trim(),
                several
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let stored = match read_stored(tx, tenant).await? {
        Some(stored) => {
            if let Some(other) = stored.organization_id.filter(|o| *o != organization) {
                return Err(StoreError::Conflict(format!(
                    "tenant {tenant} is already matched to organisation {other}; change it with `m365sync match {tenant} --organization NAME`"
                )));
            }
            stored
        }
        None => Stored {
            connection_id: Some(connection_id),
            display_name: None,
            verified_domains: Vec::new(),
            default_domain: None,
            state: TenantState::Unmatched,
            organization_id: None,
            suggestions: Vec::new(),
            automatic: true,
            match_rule: None,
            first_seen_at: None,
            last_seen_at: None,
        },
    };
    link(tx, tenant, stored, organization, now).await
}

impl Store {
    /// Files a tenant, as a sync of `connection` saw it, under its organisation: the one it is
    /// linked to, else the one the rules find, else a new one where the connection allows it.
    /// Otherwise the tenant awaits a person's decision (with the rules' suggestions), or is
    /// ignored. The tenant's row is kept up to date whatever the outcome.
    pub async fn apply_tenant(
        &self,
        connection: &Connection,
        record: &OrganizationRecord,
    ) -> Result<TenantOutcome> {
        self.apply_tenant_as(Some(connection.id), connection.create_organization, record)
            .await
    }

    /// As [`Store::apply_tenant`], for a tenant seen through no saved connection; an outcome
    /// other than a match is refused. Creating is allowed.
    pub async fn apply_organization(
        &self,
        record: &OrganizationRecord,
    ) -> Result<OrganizationOutcome> {
        match self.apply_tenant_as(None, true, record).await? {
            TenantOutcome::Matched { organization, .. } => Ok(organization),
            TenantOutcome::Awaiting { .. } | TenantOutcome::Ignored => {
                Err(StoreError::Conflict(format!(
                    "tenant {} awaits a decision on its organisation; `m365sync tenants` shows it",
                    record.tenant_id
                )))
            }
        }
    }

    async fn apply_tenant_as(
        &self,
        connection_id: Option<i64>,
        may_create: bool,
        record: &OrganizationRecord,
    ) -> Result<TenantOutcome> {
        let tenant = record.tenant_id.to_string();
        let print = fingerprint(record);
        let domains =
            serde_json::to_string(&record.verified_domains).unwrap_or_else(|_| "[]".into());
        let now = now_millis();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        let before = read_stored(&mut tx, &tenant).await?;
        let candidates = candidates(&mut tx).await?;
        let standing = Standing {
            ignored: before
                .as_ref()
                .is_some_and(|s| s.state == TenantState::Ignored),
            automatic: before.as_ref().is_none_or(|s| s.automatic),
            may_create,
        };
        let facts = TenantFacts {
            tenant_id: tenant.clone(),
            display_name: record.display_name.clone(),
            verified_domains: record.verified_domains.clone(),
        };
        let decision = decide(&facts, standing, &candidates);
        let mut after = before.clone().unwrap_or(Stored {
            connection_id,
            display_name: None,
            verified_domains: Vec::new(),
            default_domain: None,
            state: TenantState::Unmatched,
            organization_id: None,
            suggestions: Vec::new(),
            automatic: true,
            match_rule: None,
            first_seen_at: None,
            last_seen_at: None,
        });
        after.connection_id = connection_id.or(after.connection_id);
        after.display_name = Some(record.display_name.clone());
        after.verified_domains = record.verified_domains.clone();
        after.default_domain = record.default_domain.clone();
        after.first_seen_at = after.first_seen_at.or(Some(now));
        after.last_seen_at = Some(now);
        let outcome = match decision {
            TenantDecision::Match {
                organization_id: id,
                rule,
            } => {
                let (own, current): (Option<String>, Option<String>) =
                    on_tx!(&mut tx, |c| sqlx::query_as(
                        "SELECT tenant_id, fingerprint FROM organizations WHERE id = $1"
                    )
                    .bind(id)
                    .fetch_one(&mut *c)
                    .await
                    .doing("reading an organisation"))?;
                let ours = own.as_deref() == Some(tenant.as_str());
                let organization = if ours && current.as_deref() == Some(print.as_str()) {
                    OrganizationOutcome::Unchanged(id)
                } else if ours || own.is_none() {
                    on_tx!(&mut tx, |c| {
                        sqlx::query(
                        "UPDATE organizations SET tenant_id = $1, tenant_name = $2, verified_domains = $3, default_domain = $4, country = $5, fingerprint = $6, archived = FALSE, updated_at = $7 WHERE id = $8",
                    )
                    .bind(&tenant)
                    .bind(&record.display_name)
                    .bind(&domains)
                    .bind(&record.default_domain)
                    .bind(&record.country_letter_code)
                    .bind(&print)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *c)
                    .await
                    .done("updating an organisation")
                    })?;
                    OrganizationOutcome::Updated(id)
                } else {
                    // Another tenant's organisation too: its own columns stay that tenant's.
                    let same = before.as_ref().is_some_and(|b| {
                        b.state == TenantState::Matched
                            && b.organization_id == Some(id)
                            && b.display_name == after.display_name
                            && b.verified_domains == after.verified_domains
                            && b.default_domain == after.default_domain
                    });
                    if same {
                        OrganizationOutcome::Unchanged(id)
                    } else {
                        OrganizationOutcome::Updated(id)
                    }
                };
                after.state = TenantState::Matched;
                after.organization_id = Some(id);
                after.suggestions = Vec::new();
                if rule != MatchRule::TenantId || after.match_rule.is_none() {
                    after.match_rule = Some(rule);
                }
                TenantOutcome::Matched { organization, rule }
            }
            TenantDecision::Create => {
                let fallback = record
                    .default_domain
                    .as_deref()
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or(&tenant);
                let made_name =
                    domain::names::organization_name_for_tenant(&record.display_name, fallback);
                let id: i64 = on_tx!(&mut tx, |c| {
                    sqlx::query_scalar(
                    "INSERT INTO organizations (name, tenant_id, tenant_name, verified_domains, default_domain, country, fingerprint, created_at, updated_at) VALUES ($1, $2, $8, $3, $4, $5, $6, $7, $7) RETURNING id",
                )
                .bind(&made_name)
                .bind(&tenant)
                .bind(&domains)
                .bind(&record.default_domain)
                .bind(&record.country_letter_code)
                .bind(&print)
                .bind(now)
                .bind(&record.display_name)
                .fetch_one(&mut *c)
                .await
                .doing("creating an organisation")
                })?;
                after.state = TenantState::Matched;
                after.organization_id = Some(id);
                after.suggestions = Vec::new();
                after.match_rule = Some(MatchRule::Created);
                TenantOutcome::Matched {
                    organization: OrganizationOutcome::Created(id),
                    rule: MatchRule::Created,
                }
            }
            TenantDecision::Await(suggestions) => {
                let state = if suggestions.is_empty() {
                    TenantState::Unmatched
                } else {
                    TenantState::Suggested
                };
                let rows = named(&suggestions, &names_of(&candidates));
                after.state = state;
                after.organization_id = None;
                after.suggestions = suggestions;
                TenantOutcome::Awaiting {
                    state,
                    suggestions: rows,
                }
            }
            TenantDecision::Ignored => TenantOutcome::Ignored,
        };
        write_stored(&mut tx, &tenant, &after, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Applies a person's decision about a tenant the store has seen (`tenant` is its id) and
    /// returns the tenant as it then is.
    pub async fn decide_tenant(&self, tenant: &str, choice: &TenantChoice) -> Result<TenantRow> {
        let tenant = tenant.trim().to_lowercase();
        let now = now_millis();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        let Some(mut stored) = read_stored(&mut tx, &tenant).await? else {
            return Err(StoreError::NotFound(format!(
                "no tenant {tenant} has been seen; `m365sync tenants` lists those that have (a tenant appears with its connection's first sync)"
            )));
        };
        match choice {
            TenantChoice::Link(organization) => {
                link(&mut tx, &tenant, stored, *organization, now).await?
            }
            TenantChoice::Create(name) => {
                let organization = insert_organization(&mut tx, name, now).await?;
                link(&mut tx, &tenant, stored, organization, now).await?
            }
            TenantChoice::Ignore => {
                release(&mut tx, &tenant, now).await?;
                stored.state = TenantState::Ignored;
                stored.organization_id = None;
                stored.match_rule = Some(MatchRule::Person);
                write_stored(&mut tx, &tenant, &stored, now).await?;
            }
            TenantChoice::Unmatch => {
                release(&mut tx, &tenant, now).await?;
                stored.state = TenantState::Unmatched;
                stored.organization_id = None;
                stored.automatic = false;
                stored.match_rule = Some(MatchRule::Person);
                // Unlinked first, so that its domains no longer count for the organisation.
                write_stored(&mut tx, &tenant, &stored, now).await?;
                let others = candidates(&mut tx).await?;
                let facts = TenantFacts {
                    tenant_id: tenant.clone(),
                    display_name: stored.display_name.clone().unwrap_or_default(),
                    verified_domains: stored.verified_domains.clone(),
                };
                stored.suggestions = suggest(&facts, &others);
                if !stored.suggestions.is_empty() {
                    stored.state = TenantState::Suggested;
                }
                write_stored(&mut tx, &tenant, &stored, now).await?;
            }
        }
        tx.commit().await?;
        self.tenant(&tenant)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("tenant {tenant} vanished")))
    }

    /// Tenants, by display name, in one state or all.
    pub async fn tenants(&self, state: Option<TenantState>) -> Result<Vec<TenantRow>> {
        let rows = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(select_tenants!(
                " WHERE ($1 IS NULL OR t.state = $1) ORDER BY COALESCE(t.display_name, t.tenant_id), t.tenant_id"
            ))
            .bind(state.map(TenantState::as_str))
            .fetch_all(p)
            .await
            .doing("listing tenants")?;
            rows.iter().map(tenant_from).collect::<Result<Vec<_>>>()
        })?;
        self.with_suggestion_names(rows).await
    }

    /// One page of the tenants in one state or all, by display name, and how many there are.
    pub async fn tenants_page(
        &self,
        state: Option<TenantState>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<TenantRow>, i64)> {
        let state = state.map(TenantState::as_str);
        let rows = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(select_tenants!(
                " WHERE ($1 IS NULL OR t.state = $1) ORDER BY COALESCE(t.display_name, t.tenant_id), t.tenant_id LIMIT $2 OFFSET $3"
            ))
            .bind(state)
            .bind(limit.max(0))
            .bind(offset.max(0))
            .fetch_all(p)
            .await
            .doing("listing a page of tenants")?;
            rows.iter().map(tenant_from).collect::<Result<Vec<_>>>()
        })?;
        let total: i64 = on_pool!(&self.pool, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE ($1 IS NULL OR state = $1)")
                .bind(state)
                .fetch_one(p)
                .await
                .doing("counting tenants")
        })?;
        Ok((self.with_suggestion_names(rows).await?, total))
    }

    /// How many tenants are in each match state (states without any are left out).
    pub async fn tenant_counts(&self) -> Result<Vec<(TenantState, i64)>> {
        let rows: Vec<(String, i64)> = on_pool!(&self.pool, |p| {
            sqlx::query_as("SELECT state, COUNT(*) FROM tenants GROUP BY state")
                .fetch_all(p)
                .await
                .doing("counting tenants by state")
        })?;
        rows.into_iter()
            .map(|(state, count)| {
                TenantState::parse(&state)
                    .map(|s| (s, count))
                    .ok_or_else(|| StoreError::Corrupt(format!("tenant state '{state}'")))
            })
            .collect()
    }

    /// One tenant by its id.
    pub async fn tenant(&self, tenant: &str) -> Result<Option<TenantRow>> {
        let row = on_pool!(&self.pool, |p| {
            let row = sqlx::query(select_tenants!(" WHERE t.tenant_id = $1"))
                .bind(tenant.trim().to_lowercase())
                .fetch_optional(p)
                .await
                .doing("reading a tenant")?;
            row.as_ref().map(tenant_from).transpose()
        })?;
        Ok(self
            .with_suggestion_names(row.into_iter().collect())
            .await?
            .pop())
    }

    /// The tenants a person may mean by `key`: the one of that id, else those whose display
    /// name is `key` (case, accents, punctuation and legal suffixes aside).
    pub async fn find_tenants(&self, key: &str) -> Result<Vec<TenantRow>> {
        if let Some(row) = self.tenant(key).await? {
            return Ok(vec![row]);
        }
        Ok(self
            .tenants(None)
            .await?
            .into_iter()
            .filter(|t| {
                t.display_name
                    .as_deref()
                    .is_some_and(|n| matching::same_name(n, key))
            })
            .collect())
    }

    async fn with_suggestion_names(
        &self,
        mut rows: Vec<(TenantRow, Vec<Suggestion>)>,
    ) -> Result<Vec<TenantRow>> {
        if rows.iter().all(|(_, s)| s.is_empty()) {
            return Ok(rows.drain(..).map(|(row, _)| row).collect());
        }
        let names: HashMap<i64, String> = on_pool!(&self.pool, |p| {
            let rows = sqlx::query("SELECT id, name FROM organizations")
                .fetch_all(p)
                .await
                .doing("reading organisations")?;
            rows.iter()
                .map(|r| Ok((r.int_req("id")?, r.text_req("name")?)))
                .collect::<Result<HashMap<_, _>>>()
        })?;
        Ok(rows
            .into_iter()
            .map(|(mut row, suggestions)| {
                row.suggestions = named(&suggestions, &names);
                row
            })
            .collect())
    }
}

fn tenant_from(row: &impl Columns) -> Result<(TenantRow, Vec<Suggestion>)> {
    Ok((
        TenantRow {
            tenant_id: row.text_req("tenant_id")?,
            connection: row.text("connection")?,
            display_name: row.text("display_name")?,
            verified_domains: row.json_list("verified_domains")?,
            default_domain: row.text("default_domain")?,
            state: state_of(&row.text_req("state")?)?,
            organization_id: row.int("organization_id")?,
            organization: row.text("organization")?,
            suggestions: Vec::new(),
            automatic: row.flag("automatic")?.unwrap_or(true),
            match_rule: rule_of(row.text("match_rule")?)?,
            first_seen_at: row.int("first_seen_at")?,
            last_seen_at: row.int("last_seen_at")?,
        },
        suggestions_of(row)?,
    ))
}
