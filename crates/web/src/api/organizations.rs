//! Organisations: the client companies tenants are filed under.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::{OrganizationRow, Store};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiPath, ApiQuery, ApiResult, page_limit, page_of};

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: i64,
    pub name: String,
    /// Its first tenant (an organisation may have several: GET /tenants lists each with its
    /// organisation).
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub verified_domains: Vec<String>,
    pub default_domain: Option<String>,
    pub country: Option<String>,
    pub archived: bool,
    /// Contacts not archived.
    pub contacts: i64,
}

fn view(row: OrganizationRow) -> OrganizationView {
    OrganizationView {
        id: row.id,
        name: row.name,
        tenant_id: row.tenant_id,
        tenant_name: row.tenant_name,
        verified_domains: row.verified_domains,
        default_domain: row.default_domain,
        country: row.country,
        archived: row.archived,
        contacts: row.contacts,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrganizationsQuery {
    /// Include archived organisations.
    #[serde(default)]
    pub include_archived: bool,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationPage {
    pub items: Vec<OrganizationView>,
    pub next_cursor: Option<String>,
}

/// Organisations, by name.
#[utoipa::path(get, path = "/organizations", tag = "organizations", params(OrganizationsQuery),
    responses((status = 200, body = OrganizationPage)))]
pub async fn list_organizations(
    State(store): State<Store>,
    ApiQuery(query): ApiQuery<OrganizationsQuery>,
) -> ApiResult<Json<OrganizationPage>> {
    let limit = page_limit(query.limit)?;
    let mut organizations = store.organizations().await?;
    if !query.include_archived {
        organizations.retain(|o| !o.archived);
    }
    let (items, next_cursor) = page_of(organizations, query.cursor.as_deref(), limit)?;
    Ok(Json(OrganizationPage {
        items: items.into_iter().map(view).collect(),
        next_cursor,
    }))
}

/// One organisation.
#[utoipa::path(get, path = "/organizations/{id}", tag = "organizations",
    params(("id" = i64, Path, description = "The organisation's id")),
    responses((status = 200, body = OrganizationView), (status = 404, body = super::ErrorBody)))]
pub async fn get_organization(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<OrganizationView>> {
    let organization = store.organization(id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "There is no organisation {id}; GET /api/v1/organizations lists them."
        ))
    })?;
    Ok(Json(view(organization)))
}
