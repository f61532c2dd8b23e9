//! Tenants and matching: which organisation each tenant is filed under, a person's decision
//! about one, and the review queue of users a sync would not link alone.

use axum::Json;
use axum::extract::State;
use domain::TenantState;
use serde::{Deserialize, Serialize};
use store::{Store, TenantChoice, TenantRow};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, maybe_time, page_limit, page_of, time,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub tenant_id: String,
    /// The connection it was last seen through; none once that connection is removed.
    pub connection: Option<String>,
    /// Unknown until the tenant's first sync.
    pub display_name: Option<String>,
    pub verified_domains: Vec<String>,
    pub default_domain: Option<String>,
    /// `matched`, `suggested`, `unmatched` or `ignored`.
    pub state: String,
    pub organization_id: Option<i64>,
    pub organization: Option<String>,
    /// Best first.
    pub suggestions: Vec<SuggestionView>,
    /// Whether the rules may link it by themselves (false once a person has unlinked it).
    pub automatic: bool,
    /// How it came to be where it is: `tenant_id`, `domain`, `name`, `name_contains`,
    /// `similar_name`, `created` or `person`.
    pub match_rule: Option<String>,
    pub first_seen_at: Option<String>,
    pub last_seen_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionView {
    pub organization_id: i64,
    pub organization: String,
    pub score: f64,
    pub rule: String,
    /// The rule in words.
    pub why: String,
}

fn view(row: TenantRow) -> TenantView {
    TenantView {
        tenant_id: row.tenant_id,
        connection: row.connection,
        display_name: row.display_name,
        verified_domains: row.verified_domains,
        default_domain: row.default_domain,
        state: row.state.to_string(),
        organization_id: row.organization_id,
        organization: row.organization,
        suggestions: row
            .suggestions
            .into_iter()
            .map(|s| SuggestionView {
                organization_id: s.organization_id,
                organization: s.organization,
                score: s.score,
                rule: s.rule.as_str().to_string(),
                why: s.rule.describe().to_string(),
            })
            .collect(),
        automatic: row.automatic,
        match_rule: row.match_rule.map(|r| r.as_str().to_string()),
        first_seen_at: maybe_time(row.first_seen_at),
        last_seen_at: maybe_time(row.last_seen_at),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantsQuery {
    /// Only tenants in this state: matched, suggested, unmatched or ignored.
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    pub items: Vec<TenantView>,
    pub next_cursor: Option<String>,
}

/// The tenants seen, by display name.
#[utoipa::path(get, path = "/tenants", tag = "tenants", params(TenantsQuery),
    responses((status = 200, body = TenantPage)))]
pub async fn list_tenants(
    State(store): State<Store>,
    ApiQuery(query): ApiQuery<TenantsQuery>,
) -> ApiResult<Json<TenantPage>> {
    let limit = page_limit(query.limit)?;
    let state = query
        .state
        .as_deref()
        .map(|raw| {
            TenantState::parse(raw.trim()).ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!(
                        "state '{raw}' is not one; give matched, suggested, unmatched or ignored"
                    ),
                )
            })
        })
        .transpose()?;
    let tenants = store.tenants(state).await?;
    let (items, next_cursor) = page_of(tenants, query.cursor.as_deref(), limit)?;
    Ok(Json(TenantPage {
        items: items.into_iter().map(view).collect(),
        next_cursor,
    }))
}

async fn find(store: &Store, tenant_id: &str) -> ApiResult<TenantRow> {
    store.tenant(tenant_id.trim()).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "No tenant {tenant_id} has been seen; GET /api/v1/tenants lists those that have (a tenant appears with its connection's first sync)."
        ))
    })
}

/// One tenant, with its suggestions.
#[utoipa::path(get, path = "/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    responses((status = 200, body = TenantView), (status = 404, body = super::ErrorBody)))]
pub async fn get_tenant(
    State(store): State<Store>,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(view(find(&store, &tenant_id).await?)))
}

/// A person's decision about a tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `accept` a suggestion, `link` to an organisation (also changes a match), `create` an
    /// organisation for it, `ignore` it, or `unmatch` it (it awaits a decision again).
    pub action: String,
    /// `accept`: which suggestion, counted from 1 (the best, when left out).
    pub suggestion: Option<usize>,
    /// `link`: the organisation's id.
    pub organization_id: Option<i64>,
    /// `create`: the new organisation's name (the tenant's name when left out; not blank), at
    /// most 200 characters, no control characters; spaces are collapsed and invisible
    /// characters dropped.
    pub name: Option<String>,
}

/// Decides which organisation a tenant belongs to. Its records are filed there from its
/// connection's next sync on.
#[utoipa::path(post, path = "/tenants/{tenant_id}/decision", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    request_body = Decision,
    responses((status = 200, body = TenantView), (status = 404, body = super::ErrorBody)))]
pub async fn decide_tenant(
    State(store): State<Store>,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(decision): ApiJson<Decision>,
) -> ApiResult<Json<TenantView>> {
    let tenant = find(&store, &tenant_id).await?;
    let id = tenant.tenant_id.clone();
    let choice = match decision.action.trim() {
        "accept" => {
            if tenant.state == TenantState::Matched {
                return Err(ApiError::invalid(format!(
                    "action: tenant {id} is already matched; to change it, use action link with organization_id"
                )));
            }
            let count = tenant.suggestions.len();
            if count == 0 {
                return Err(ApiError::invalid(format!(
                    "action: tenant {id} has no suggestion to accept; use action link with organization_id, or create"
                )));
            }
            let n = decision.suggestion.unwrap_or(1);
            let chosen = n.checked_sub(1).and_then(|i| tenant.suggestions.get(i));
            let Some(chosen) = chosen else {
                return Err(ApiError::invalid(format!(
                    "suggestion: tenant {id} has {count} suggestion(s); give a number from 1 to {count}"
                )));
            };
            TenantChoice::Link(chosen.organization_id)
        }
        "link" => {
            let Some(organization) = decision.organization_id else {
                return Err(ApiError::invalid(
                    "organization_id: action link needs the organisation's id (GET /api/v1/organizations lists them)",
                ));
            };
            if store.organization(organization).await?.is_none() {
                return Err(ApiError::invalid(format!(
                    "organization_id: there is no organisation {organization}; GET /api/v1/organizations lists them"
                )));
            }
            TenantChoice::Link(organization)
        }
        "create" => {
            let wanted = match decision.name.as_deref() {
                Some(given) if given.trim().is_empty() => {
                    return Err(ApiError::invalid(
                        "name: it is blank; give the organisation a name, or leave name out to use the tenant's",
                    ));
                }
                Some(given) => domain::names::organization_name(given)
                    .map_err(|problem| ApiError::invalid(format!("name: {problem}")))?,
                None => {
                    let own = tenant.display_name.as_deref().unwrap_or_default();
                    domain::names::organization_name(own).map_err(|problem| {
                        ApiError::invalid(format!(
                            "name: tenant {id} has no name to use ({problem}), so the new organisation needs one"
                        ))
                    })?
                }
            };
            if let Some(existing) = store.organizations_named(&wanted).await?.first() {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "conflict",
                    format!(
                        "an organisation named '{wanted}' exists already (id {existing}; case, spaces and invisible characters aside); link the tenant to it with action link, or give another name"
                    ),
                ));
            }
            TenantChoice::Create(wanted)
        }
        "ignore" => TenantChoice::Ignore,
        "unmatch" => TenantChoice::Unmatch,
        other => {
            return Err(ApiError::invalid(format!(
                "action: '{other}' is not a decision; give accept, link, create, ignore or unmatch"
            )));
        }
    };
    Ok(Json(view(store.decide_tenant(&id, &choice).await?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewItemView {
    pub id: i64,
    pub tenant_id: String,
    pub object_id: String,
    pub user_principal_name: String,
    pub display_name: String,
    /// The rule under which the candidates matched.
    pub rule: String,
    /// `open`, or how it was settled: `linked`, `created`.
    pub state: String,
    pub candidates: Vec<CandidateView>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateView {
    pub contact_id: i64,
    pub display_name: String,
    pub email: Option<String>,
    pub user_principal_name: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// Settled items too.
    #[serde(default)]
    pub all: bool,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPage {
    pub items: Vec<ReviewItemView>,
    pub next_cursor: Option<String>,
}

/// Users a sync held back because more than one contact could be theirs.
#[utoipa::path(get, path = "/review", tag = "tenants", params(ReviewQuery),
    responses((status = 200, body = ReviewPage)))]
pub async fn review_items(
    State(store): State<Store>,
    ApiQuery(query): ApiQuery<ReviewQuery>,
) -> ApiResult<Json<ReviewPage>> {
    let limit = page_limit(query.limit)?;
    let items = store.review_items(query.all).await?;
    let (items, next_cursor) = page_of(items, query.cursor.as_deref(), limit)?;
    Ok(Json(ReviewPage {
        items: items
            .into_iter()
            .map(|item| ReviewItemView {
                id: item.id,
                tenant_id: item.tenant_id,
                object_id: item.object_id,
                user_principal_name: item.user_principal_name,
                display_name: item.display_name,
                rule: item.rule,
                state: item.state,
                candidates: item
                    .candidates
                    .into_iter()
                    .map(|c| CandidateView {
                        contact_id: c.contact_id,
                        display_name: c.display_name,
                        email: c.email,
                        user_principal_name: c.user_principal_name,
                    })
                    .collect(),
                created_at: time(item.created_at),
            })
            .collect(),
        next_cursor,
    }))
}

/// How to settle a review item: exactly one of `link` (the held user is this contact) or
/// `create: true` (a contact of their own).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    /// The contact the held user is.
    pub link: Option<i64>,
    /// The user is none of the candidates: give them a contact of their own.
    #[serde(default)]
    pub create: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Settled {
    pub item_id: i64,
    /// The contact the user is from now on.
    pub contact_id: i64,
}

/// Settles a review item: the held user is linked to a contact, or gets one of their own.
#[utoipa::path(post, path = "/review/{id}", tag = "tenants",
    params(("id" = i64, Path, description = "The review item's id")),
    request_body = Settlement,
    responses((status = 200, body = Settled), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody, description = "The item was settled already")))]
pub async fn settle_review_item(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(settlement): ApiJson<Settlement>,
) -> ApiResult<Json<Settled>> {
    let resolution = match (settlement.link, settlement.create) {
        (Some(contact), false) => store::Resolution::Link(contact),
        (None, true) => store::Resolution::Create,
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of link (the contact's id: the user is that contact) or create: true (a contact of their own)",
            ));
        }
    };
    let contact_id = sync::settle_review(&store, id, resolution).await?;
    Ok(Json(Settled {
        item_id: id,
        contact_id,
    }))
}
