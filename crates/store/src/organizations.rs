//! Organisations: client companies. Each may have several tenants (see `tenants`); the tenant
//! columns here are those of its first, kept for what reads them.

use domain::{OrganizationCandidate, TenantId};
use serde::Serialize;

use crate::backend::{Columns, on_pool, write_on_pool};
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
    /// Every organisation as the matcher sees it: with the domains known for it and the tenants
    /// linked to it.
    pub async fn organization_candidates(&self) -> Result<Vec<OrganizationCandidate>> {
        let mut tx = self.begin().await?;
        let candidates = crate::tenants::candidates(&mut tx).await?;
        tx.commit().await?;
        Ok(candidates)
    }

    /// Creates an organisation by hand (an MSP's client that has no tenant yet).
    pub async fn create_organization(&self, name: &str) -> Result<i64> {
        let now = now_millis();
        write_on_pool!(self, |p| {
            sqlx::query_scalar("INSERT INTO organizations (name, created_at, updated_at) VALUES ($1, $2, $2) RETURNING id")
            .bind(name.trim())
            .bind(now)
            .fetch_one(p)
            .await
            .doing("creating an organisation")
        })
    }

    /// Sets the domains known for an organisation (its own, beside those of its tenants): a
    /// tenant that has one of them verified is filed under it.
    pub async fn set_organization_domains(&self, id: i64, domains: &[String]) -> Result<()> {
        let mut domains: Vec<String> = domains
            .iter()
            .map(|d| d.trim().to_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        domains.sort();
        domains.dedup();
        let domains = serde_json::to_string(&domains).unwrap_or_else(|_| "[]".into());
        let changed = write_on_pool!(self, |p| sqlx::query(
            "UPDATE organizations SET verified_domains = $1, updated_at = $2 WHERE id = $3"
        )
        .bind(&domains)
        .bind(now_millis())
        .bind(id)
        .execute(p)
        .await
        .done("setting an organisation's domains"))?;
        if changed == 0 {
            return Err(crate::StoreError::NotFound(format!(
                "there is no organisation {id}; `m365sync export organizations` lists them"
            )));
        }
        Ok(())
    }

    pub async fn organizations(&self) -> Result<Vec<OrganizationRow>> {
        let sql = format!(
            "{} ORDER BY {}, o.id",
            select_organizations!(""),
            self.in_natural_order("o.name")
        );
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(p)
                .await
                .doing("listing organisations")?;
            rows.iter().map(organization_from).collect()
        })
    }

    /// Up to `limit` organisations, id and name, whose name holds `text` in any case (all of
    /// them for empty text), in the order people read: what a "match to" search offers as a
    /// person types, without reading every name of a long list.
    pub async fn organization_names(&self, text: &str, limit: i64) -> Result<Vec<(i64, String)>> {
        let search = crate::contacts::TextSearch::new(self.backend(), text);
        let test = search
            .as_ref()
            .map(|t| t.any_of(&["name"], "$1"))
            .unwrap_or_else(|| "($1 IS NULL)".into());
        let sql = format!(
            "SELECT id, name FROM organizations WHERE {test} ORDER BY {}, id LIMIT $2",
            self.in_natural_order("name")
        );
        let pattern = search.map(|t| t.pattern);
        on_pool!(&self.pool, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(pattern.as_deref())
                .bind(limit.max(0))
                .fetch_all(p)
                .await
                .doing("finding organisations by name")
        })
    }

    /// The organisations named `name` as people read it: case, white space and invisible
    /// characters set aside (see [`domain::names::organization_name_key`]), so that "Acme  Ltd"
    /// finds "acme ltd". A name is not unique in the store, so there may be several. Every name
    /// is read, since names stored before they were spelt one way may differ in any of these.
    pub async fn organizations_named(&self, name: &str) -> Result<Vec<i64>> {
        let wanted = domain::names::organization_name_key(name);
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let all: Vec<(i64, String)> = on_pool!(&self.pool, |p| {
            sqlx::query_as("SELECT id, name FROM organizations ORDER BY id")
                .fetch_all(p)
                .await
                .doing("finding organisations by name")
        })?;
        Ok(all
            .into_iter()
            .filter(|(_, other)| domain::names::organization_name_key(other) == wanted)
            .map(|(id, _)| id)
            .collect())
    }

    /// One page of the organisations, by name, and how many there are in all.
    pub async fn organizations_page(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<OrganizationRow>, i64)> {
        let sql = format!(
            "{} ORDER BY {}, o.id LIMIT $1 OFFSET $2",
            select_organizations!(""),
            self.in_natural_order("o.name")
        );
        let rows = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(p)
                .await
                .doing("listing a page of organisations")?;
            rows.iter()
                .map(organization_from)
                .collect::<Result<Vec<_>>>()
        })?;
        let total: i64 = on_pool!(&self.pool, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
                .fetch_one(p)
                .await
                .doing("counting organisations")
        })?;
        Ok((rows, total))
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
