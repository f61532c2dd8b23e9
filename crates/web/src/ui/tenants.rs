//! Tenants and matching: Unmatched, Suggested, Matched and Ignored tenants with the decisions
//! `m365sync match` takes, and the contact review queue `m365sync review` settles.

use super::PagePath as Path;
use super::PageQuery as Query;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use domain::TenantState;
use serde::Deserialize;
use store::{Resolution, TenantChoice};

use super::format::{Link, PageLink, clamped_page, page_number, pager, time};
use super::{Fields, Frame, UiState, Viewer, done, error_page, page, store_failure};

#[derive(Deserialize)]
pub(crate) struct TenantsQuery {
    state: Option<String>,
    notice: Option<String>,
    page: Option<String>,
}

/// Tenants on one page of the list.
const TENANTS_PAGE: i64 = 25;
/// Held users on one page of the review queue.
const REVIEW_PAGE: i64 = 20;

struct SuggestionView {
    organization_id: i64,
    organization: String,
    score: String,
    rule: String,
}

struct TenantView {
    tenant_id: String,
    name: String,
    state: &'static str,
    state_class: &'static str,
    domains: String,
    organization_id: Option<i64>,
    organization: String,
    connection: String,
    rule: String,
    suggestions: Vec<SuggestionView>,
}

#[derive(Template)]
#[template(path = "tenants.html")]
struct TenantsPage {
    frame: Frame,
    tabs: Vec<Link>,
    tenants: Vec<TenantView>,
    organizations: Vec<OrganizationOption>,
    review_count: i64,
    pages: Vec<PageLink>,
}

const STATES: [(&str, &str); 4] = [
    ("unmatched", "Unmatched"),
    ("suggested", "Suggested"),
    ("matched", "Matched"),
    ("ignored", "Ignored"),
];

/// How many organisations the "match to" list offers at a time: typing narrows it.
const ORGANIZATION_OPTIONS: i64 = 50;

/// One organisation the "match to" box offers. The box sends the name (`organization`), never
/// an id: a name such as "1" is a name. Ids travel only in `organization_id`, from the buttons
/// that accept a suggestion.
struct OrganizationOption {
    id: i64,
    name: String,
}

fn options(organizations: Vec<(i64, String)>) -> Vec<OrganizationOption> {
    organizations
        .into_iter()
        .map(|(id, name)| OrganizationOption { id, name })
        .collect()
}

/// The `<datalist>` alone, as the page itself includes it.
#[derive(Template)]
#[template(path = "organization_options.html")]
struct OrganizationOptions {
    organizations: Vec<OrganizationOption>,
}

#[derive(Deserialize)]
pub(crate) struct OptionsQuery {
    /// What has been typed in a "match to" box.
    organization: Option<String>,
}

/// The "match to" list narrowed to what has been typed, as the page's `<datalist>`: the
/// organisations are read from the store a few at a time, however many there are.
pub(crate) async fn organization_options(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<OptionsQuery>,
) -> Response {
    let typed = crate::query::search_text(query.organization.as_deref().unwrap_or_default());
    match ui
        .store
        .organization_names(&typed, ORGANIZATION_OPTIONS)
        .await
    {
        Ok(organizations) => page(&OrganizationOptions {
            organizations: options(organizations),
        }),
        Err(e) => store_failure(&viewer, e),
    }
}

pub(crate) async fn list(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<TenantsQuery>,
) -> Response {
    let wanted = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match TenantState::parse(text) {
            Some(state) => Some(state),
            None => {
                let allowed = STATES.map(|(key, _)| key);
                return super::unknown_value(&viewer, "state", text, &allowed);
            }
        },
    };
    let asked_page = page_number(query.page.as_deref());
    let loaded = async {
        Ok::<_, store::StoreError>((
            clamped_page(asked_page, TENANTS_PAGE, |offset| {
                ui.store.tenants_page(wanted, offset, TENANTS_PAGE)
            })
            .await?,
            ui.store.tenant_counts().await?,
            // The first names for the "match to" list; typing narrows it from the store.
            ui.store
                .organization_names("", ORGANIZATION_OPTIONS)
                .await?,
            ui.store.review_items_page(false, 0, 0).await?.1,
        ))
    }
    .await;
    let ((tenants, listed, number), counts, organizations, review_count) = match loaded {
        Ok(all) => all,
        Err(e) => return store_failure(&viewer, e),
    };
    let count = |state: TenantState| {
        counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    let mut tabs = vec![Link {
        key: "all".into(),
        label: format!("All ({})", counts.iter().map(|(_, n)| n).sum::<i64>()),
        href: "/tenants".into(),
        active: wanted.is_none(),
    }];
    for (key, label) in STATES {
        let state = TenantState::parse(key);
        tabs.push(Link {
            key: key.into(),
            label: format!("{label} ({})", state.map(count).unwrap_or(0)),
            href: format!("/tenants?state={key}"),
            active: wanted.is_some() && wanted == state,
        });
    }
    let pages = pager(number, listed, TENANTS_PAGE, |n| match wanted {
        Some(state) => format!("/tenants?state={}&page={n}", state_name(state)),
        None => format!("/tenants?page={n}"),
    });
    let views = tenants
        .iter()
        .map(|t| TenantView {
            tenant_id: t.tenant_id.clone(),
            name: t.label().to_string(),
            state: state_name(t.state),
            state_class: match t.state {
                TenantState::Matched => "good",
                TenantState::Ignored => "",
                _ => "warn",
            },
            domains: t.verified_domains.join(", "),
            organization_id: t.organization_id,
            organization: t.organization.clone().unwrap_or_default(),
            connection: t
                .connection
                .clone()
                .unwrap_or_else(|| "a removed connection".into()),
            rule: t
                .match_rule
                .map(|r| r.describe().to_string())
                .unwrap_or_default(),
            suggestions: t
                .suggestions
                .iter()
                .map(|s| SuggestionView {
                    organization_id: s.organization_id,
                    organization: s.organization.clone(),
                    score: format!("{:.0} %", s.score * 100.0),
                    rule: s.rule.describe().to_string(),
                })
                .collect(),
        })
        .collect();
    page(&TenantsPage {
        frame: viewer.frame("Tenants", "tenants").with_notice(query.notice),
        tabs,
        tenants: views,
        organizations: options(organizations),
        review_count,
        pages,
    })
}

fn state_name(state: TenantState) -> &'static str {
    match state {
        TenantState::Matched => "matched",
        TenantState::Suggested => "suggested",
        TenantState::Unmatched => "unmatched",
        TenantState::Ignored => "ignored",
    }
}

/// One decision on a tenant, as `m365sync match` takes it: link to an organisation (a
/// suggestion or any other, by id or name), create one, ignore, or undo.
pub(crate) async fn decide(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(tenant_id): Path<String>,
    fields: Fields,
) -> Response {
    let tenant = match ui.store.tenant(&tenant_id).await {
        Ok(Some(t)) => t,
        Ok(None) => return super::not_found(&viewer, "tenant"),
        Err(e) => return store_failure(&viewer, e),
    };
    let refuse =
        |message: String| error_page(Some(&viewer), StatusCode::UNPROCESSABLE_ENTITY, message);
    let choice = match fields.get("action") {
        "link" => {
            // An accepted suggestion names its organisation by id; the "match to" box by name.
            let by_id = fields.get("organization_id").trim();
            let name = fields.get("organization").trim();
            if !by_id.is_empty() {
                let found = match by_id.parse::<i64>() {
                    Ok(id) => match ui.store.organization(id).await {
                        Ok(found) => found.map(|o| o.id),
                        Err(e) => return store_failure(&viewer, e),
                    },
                    Err(_) => None,
                };
                match found {
                    Some(id) => TenantChoice::Link(id),
                    None => {
                        return refuse(format!(
                            "There is no organisation {by_id} (it may have been removed). Reload the page and pick one from the list."
                        ));
                    }
                }
            } else if name.is_empty() {
                return refuse("Give the organisation to match the tenant to: pick one from the list, or type its name.".into());
            } else {
                let named = match ui.store.organizations_named(name).await {
                    Ok(named) => named,
                    Err(e) => return store_failure(&viewer, e),
                };
                match named[..] {
                    [id] => TenantChoice::Link(id),
                    [] => {
                        return refuse(format!(
                            "No organisation is named '{name}'. Pick one from the list (the Organisations page shows them all), or create one."
                        ));
                    }
                    _ => {
                        return refuse(format!(
                            "{} organisations are named '{name}' (ids {}): accept one of the tenant's suggestions, or run `m365sync match {} --organization ID`.",
                            named.len(),
                            named
                                .iter()
                                .map(i64::to_string)
                                .collect::<Vec<_>>()
                                .join(", "),
                            tenant.tenant_id
                        ));
                    }
                }
            }
        }
        "create" => {
            // The box starts with the tenant's name; emptied, it is a question, not that name.
            let name = match domain::names::organization_name(fields.get("name")) {
                Ok(name) => name,
                Err(problem) => return refuse(super::upper_first(&problem) + "."),
            };
            let taken = match ui.store.organizations_named(&name).await {
                Ok(named) => !named.is_empty(),
                Err(e) => return store_failure(&viewer, e),
            };
            if taken {
                return refuse(format!(
                    "An organisation named '{name}' exists already (case, spaces and invisible characters aside): match the tenant to it, or give the new one another name."
                ));
            }
            TenantChoice::Create(name)
        }
        "ignore" => TenantChoice::Ignore,
        "unmatch" => TenantChoice::Unmatch,
        _ => {
            return refuse(
                "Choose what to do with the tenant: match, create, ignore or undo.".into(),
            );
        }
    };
    match ui.store.decide_tenant(&tenant_id, &choice).await {
        Ok(after) => {
            let notice = match after.state {
                // Matching moves no contact by itself: the next sync files them.
                TenantState::Matched => format!(
                    "Tenant {} is now matched to {}; its contacts move there with its next sync (start one from its connection to move them now).",
                    after.label(),
                    after.organization.as_deref().unwrap_or_default()
                ),
                TenantState::Ignored => {
                    format!("Tenant {} is ignored: its syncs skip it.", after.label())
                }
                _ => format!("Tenant {} awaits a decision again.", after.label()),
            };
            done(
                &format!("/tenants?state={}", state_name(after.state)),
                &notice,
            )
        }
        Err(e) => store_failure(&viewer, e),
    }
}

struct ReviewView {
    id: i64,
    display_name: String,
    upn: String,
    tenant_id: String,
    rule: String,
    created: String,
    candidates: Vec<(i64, String, String)>,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    frame: Frame,
    items: Vec<ReviewView>,
    total: i64,
    pages: Vec<PageLink>,
}

pub(crate) async fn review(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<TenantsQuery>,
) -> Response {
    let asked_page = page_number(query.page.as_deref());
    let loaded = clamped_page(asked_page, REVIEW_PAGE, |offset| {
        ui.store.review_items_page(false, offset, REVIEW_PAGE)
    })
    .await;
    let (items, total, number) = match loaded {
        Ok(found) => found,
        Err(e) => return store_failure(&viewer, e),
    };
    page(&ReviewPage {
        total,
        pages: pager(number, total, REVIEW_PAGE, |n| format!("/review?page={n}")),
        frame: viewer
            .frame("Contact review", "tenants")
            .with_notice(query.notice),
        items: items
            .into_iter()
            .map(|i| ReviewView {
                id: i.id,
                display_name: i.display_name,
                upn: i.user_principal_name,
                tenant_id: i.tenant_id,
                rule: i.rule,
                created: time(i.created_at),
                candidates: i
                    .candidates
                    .into_iter()
                    .map(|c| {
                        (
                            c.contact_id,
                            c.display_name,
                            c.email.or(c.user_principal_name).unwrap_or_default(),
                        )
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// Settles a held user as `m365sync review ITEM --link/--create` does.
pub(crate) async fn settle(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    fields: Fields,
) -> Response {
    let Ok(item) = id.parse::<i64>() else {
        return super::not_found(&viewer, "review item");
    };
    let resolution = if fields.flag("create") {
        Resolution::Create
    } else {
        match fields.get("contact").parse::<i64>() {
            Ok(contact) => Resolution::Link(contact),
            Err(_) => {
                return error_page(
                    Some(&viewer),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Choose the contact to link, or create a new one.",
                );
            }
        }
    };
    match sync::settle_review(&ui.store, item, resolution).await {
        Ok(contact) => done(
            "/review",
            &format!("Settled: the user is contact {contact} from now on."),
        ),
        Err(e) => error_page(
            Some(&viewer),
            StatusCode::CONFLICT,
            super::upper_first(&e.to_string()),
        ),
    }
}
