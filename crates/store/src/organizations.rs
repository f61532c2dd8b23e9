//! Organisations: client companies, each linked to at most one tenant.

use domain::matching::{OrganizationCandidate, OrganizationMatch, match_organization};
use domain::records::fingerprint;
use domain::{OrganizationRecord, TenantId};
use serde::Serialize;

use crate::backend::{Columns, on_pool, on_tx};
use crate::error::{Context, Executed, Result};
use crate::{Store, now_millis};

#[derive(Debug, Clone, Serialize)]
pub struct OrganizationRow {
    pub id: i64,
    pub name: String,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub verified_domains: Vec<String>,
    pub default_domain: Option<String>,
    pub country: Option<String>,
    pub archived: bool,
    /// Contacts not archived.
    pub contacts: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationOutcome {
    Created(i64),
    /// Linked to the tenant for the first time, or its tenant details changed.
    Updated(i64),
    Unchanged(i64),
}

impl OrganizationOutcome {
    pub fn id(self) -> i64 {
        match self {
            Self::Created(id) | Self::Updated(id) | Self::Unchanged(id) => id,
        }
    }
}

fn organization_from(row: &impl Columns) -> Result<OrganizationRow> {
    Ok(OrganizationRow {
        id: row.int_req("id")?,
        name: row.text_req("name")?,
        tenant_id: row.text("tenant_id")?,
        tenant_name: row.text("tenant_name")?,
        verified_domains: row.json_list("verified_domains")?,
        default_domain: row.text("default_domain")?,
        country: row.text("country")?,
        archived: row.flag("archived")?.unwrap_or(false),
        contacts: row.int("contacts")?.unwrap_or(0),
    })
}

macro_rules! select_organizations {
    ($tail:literal) => {
        concat!(
            "SELECT o.id, o.name, o.tenant_id, o.tenant_name, o.verified_domains, o.default_domain, o.country, o.archived, ",
            "(SELECT COUNT(*) FROM contacts c WHERE c.organization_id = o.id AND c.archived = FALSE) AS contacts FROM organizations o",
            $tail
        )
    };
}

impl Store {
    /// The organisations a tenant could belong to: the one linked to it and every unlinked one.
    pub async fn organization_candidates(
        &self,
        tenant_id: &TenantId,
    ) -> Result<Vec<OrganizationCandidate>> {
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query("SELECT id, name, tenant_id FROM organizations WHERE tenant_id = $1 OR tenant_id IS NULL")
                .bind(tenant_id.to_string())
                .fetch_all(p)
                .await
                .doing("finding organisations")?;
            rows.iter()
                .map(|r| {
                    Ok(OrganizationCandidate {
                        id: r.int_req("id")?,
                        name: r.text_req("name")?,
                        tenant_id: r.text("tenant_id")?,
                    })
                })
                .collect()
        })
    }

    /// Finds the tenant's organisation (linked, else by exact name, else a new one) and applies
    /// what the tenant says about itself. Deciding and writing happen in one transaction that
    /// is serialised per tenant, so two runs at once cannot both create an organisation. The
    /// organisation's own name is set only when it is created: it is the MSP's name for the
    /// client and may differ from the tenant's.
    pub async fn apply_organization(
        &self,
        record: &OrganizationRecord,
    ) -> Result<OrganizationOutcome> {
        let print = fingerprint(record);
        let domains =
            serde_json::to_string(&record.verified_domains).unwrap_or_else(|_| "[]".into());
        let now = now_millis();
        let tenant = record.tenant_id.to_string();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        let candidates: Vec<OrganizationCandidate> = on_tx!(&mut tx, |c| {
            let rows = sqlx::query("SELECT id, name, tenant_id FROM organizations WHERE tenant_id = $1 OR tenant_id IS NULL")
                .bind(&tenant)
                .fetch_all(c)
                .await
                .doing("finding organisations")?;
            rows.iter()
                .map(|r| {
                    Ok(OrganizationCandidate {
                        id: r.int_req("id")?,
                        name: r.text_req("name")?,
                        tenant_id: r.text("tenant_id")?,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let decision = match_organization(&tenant, &record.display_name, &candidates);
        let outcome = match decision {
            OrganizationMatch::Linked(id) | OrganizationMatch::ByName(id) => {
                let current: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
                    "SELECT fingerprint FROM organizations WHERE id = $1"
                )
                .bind(id)
                .fetch_one(c)
                .await
                .doing("reading an organisation"))?;
                if matches!(decision, OrganizationMatch::Linked(_))
                    && current.as_deref() == Some(print.as_str())
                {
                    OrganizationOutcome::Unchanged(id)
                } else {
                    on_tx!(&mut tx, |c| {
                        sqlx::query(
                        "UPDATE organizations SET tenant_id = $1, tenant_name = $2, verified_domains = $3, default_domain = $4, country = $5, fingerprint = $6, archived = FALSE, updated_at = $7 WHERE id = $8",
                    )
                    .bind(record.tenant_id.to_string())
                    .bind(&record.display_name)
                    .bind(&domains)
                    .bind(&record.default_domain)
                    .bind(&record.country_letter_code)
                    .bind(&print)
                    .bind(now)
                    .bind(id)
                    .execute(c).await.done("updating an organisation")
                    })?;
                    OrganizationOutcome::Updated(id)
                }
            }
            OrganizationMatch::Create => {
                let id: i64 = on_tx!(&mut tx, |c| {
                    sqlx::query_scalar(
                    "INSERT INTO organizations (name, tenant_id, tenant_name, verified_domains, default_domain, country, fingerprint, created_at, updated_at) VALUES ($1, $2, $1, $3, $4, $5, $6, $7, $7) RETURNING id",
                )
                .bind(&record.display_name)
                .bind(record.tenant_id.to_string())
                .bind(&domains)
                .bind(&record.default_domain)
                .bind(&record.country_letter_code)
                .bind(&print)
                .bind(now)
                .fetch_one(c)
                .await
                .doing("creating an organisation")
                })?;
                OrganizationOutcome::Created(id)
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Creates an organisation by hand (an MSP's client that has no tenant yet).
    pub async fn create_organization(&self, name: &str) -> Result<i64> {
        let now = now_millis();
        on_pool!(&self.pool, |p| {
            sqlx::query_scalar("INSERT INTO organizations (name, created_at, updated_at) VALUES ($1, $2, $2) RETURNING id")
            .bind(name.trim())
            .bind(now)
            .fetch_one(p)
            .await
            .doing("creating an organisation")
        })
    }

    pub async fn organizations(&self) -> Result<Vec<OrganizationRow>> {
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(select_organizations!(" ORDER BY o.name, o.id"))
                .fetch_all(p)
                .await
                .doing("listing organisations")?;
            rows.iter().map(organization_from).collect()
        })
    }

    pub async fn organization(&self, id: i64) -> Result<Option<OrganizationRow>> {
        on_pool!(&self.pool, |p| {
            let row = sqlx::query(select_organizations!(" WHERE o.id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await
                .doing("reading an organisation")?;
            row.as_ref().map(organization_from).transpose()
        })
    }

    pub async fn organization_for_tenant(
        &self,
        tenant_id: &TenantId,
    ) -> Result<Option<OrganizationRow>> {
        on_pool!(&self.pool, |p| {
            let row = sqlx::query(select_organizations!(" WHERE o.tenant_id = $1"))
                .bind(tenant_id.to_string())
                .fetch_optional(p)
                .await
                .doing("reading an organisation")?;
            row.as_ref().map(organization_from).transpose()
        })
    }
}
