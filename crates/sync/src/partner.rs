//! Partner connections: a Microsoft partner's multi-tenant app reading its customers' tenants.
//! The customers come from the partner's GDAP relationships (`delegatedAdminCustomers`), or from
//! its `/contracts` where the app may not read those; each customer is then signed in to with
//! the same app at its own token endpoint, which works once its admin has consented the app.

use std::collections::HashSet;

use domain::TenantId;
use graph::models::{CONTRACT_SELECT, Contract, DelegatedAdminCustomer};
use graph::{GraphClient, GraphError, TokenProblem};
use serde::de::DeserializeOwned;
use store::{Connection, RunWarning, TenantRow};

use crate::diagnose::{Problem, problem_from};

/// The permission that lists a partner's GDAP customers.
pub const GDAP_PERMISSION: &str = "DelegatedAdminRelationship.Read.All";

/// A customer tenant of the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub tenant_id: TenantId,
    pub display_name: String,
}

/// Which listing named the customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    DelegatedAdminCustomers,
    Contracts,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DelegatedAdminCustomers => "delegatedAdminCustomers",
            Self::Contracts => "contracts",
        }
    }
}

/// The partner's customers, each once, in the order listed.
#[derive(Debug, Clone)]
pub struct Customers {
    pub list: Vec<Customer>,
    pub source: Source,
    /// Entries whose tenant id could not be read, as Microsoft sent them.
    pub unreadable: Vec<String>,
}

impl Customers {
    /// What a run should say about the listing itself.
    pub fn warnings(&self) -> Vec<RunWarning> {
        let mut warnings = Vec::new();
        if self.source == Source::Contracts {
            warnings.push(RunWarning {
                code: "customers_from_contracts".into(),
                message: format!(
                    "the partner's customers were listed from /contracts because the app lacks {GDAP_PERMISSION} in the partner tenant; add that permission to list them by their GDAP relationships"
                ),
            });
        }
        if self.list.is_empty() {
            warnings.push(RunWarning {
                code: "no_customers".into(),
                message: format!(
                    "the partner tenant lists no customers ({}); a customer appears once its GDAP relationship is active",
                    self.source.as_str()
                ),
            });
        }
        for raw in &self.unreadable {
            warnings.push(RunWarning {
                code: "customer_unreadable".into(),
                message: format!(
                    "a customer listed with tenant id '{raw}' was left out: that is not a tenant id"
                ),
            });
        }
        warnings
    }
}

/// Every item of a paged listing.
async fn fetch_all<T: DeserializeOwned + Send + 'static>(
    client: &GraphClient,
    path: &str,
) -> Result<Vec<T>, GraphError> {
    let mut pager = client.pages::<T>(path);
    let mut items = Vec::new();
    while let Some(page) = pager.next_page().await? {
        items.extend(page);
    }
    Ok(items)
}

/// Whether Graph refused the call for want of a permission.
fn refused_for_permission(error: &GraphError) -> bool {
    matches!(error, GraphError::Api { status: 403, .. })
}

/// Lists the partner's customers with the partner's own client: by its GDAP relationships, or,
/// where the app may not read those, by its contracts. The partner itself is never one of them.
pub async fn discover(client: &GraphClient, partner: &TenantId) -> Result<Customers, Problem> {
    let listed = fetch_all::<DelegatedAdminCustomer>(
        client,
        "v1.0/tenantRelationships/delegatedAdminCustomers?$top=300",
    )
    .await;
    let (entries, source) = match listed {
        Ok(customers) => (
            customers
                .into_iter()
                .map(|c| (c.tenant_id, c.display_name))
                .collect::<Vec<_>>(),
            Source::DelegatedAdminCustomers,
        ),
        Err(error) if refused_for_permission(&error) => {
            let path = format!("v1.0/contracts?$select={CONTRACT_SELECT}&$top=999");
            match fetch_all::<Contract>(client, &path).await {
                Ok(contracts) => (
                    contracts
                        .into_iter()
                        .map(|c| (c.customer_id, c.display_name.or(c.default_domain_name)))
                        .collect(),
                    Source::Contracts,
                ),
                Err(error) if refused_for_permission(&error) => {
                    return Err(Problem {
                        code: "permission_missing".into(),
                        message: format!(
                            "the app may list neither the partner's GDAP customers ({GDAP_PERMISSION}) nor its contracts (Directory.Read.All)"
                        ),
                        fix: format!(
                            "Add Microsoft Graph › Application permissions › {GDAP_PERMISSION} to the app registration in the partner tenant and grant admin consent"
                        ),
                    });
                }
                Err(error) => return Err(problem_from(&error)),
            }
        }
        Err(error) => return Err(problem_from(&error)),
    };
    let mut seen = HashSet::new();
    let mut customers = Customers {
        list: Vec::new(),
        source,
        unreadable: Vec::new(),
    };
    for (raw, name) in entries {
        let Ok(tenant_id) = TenantId::parse(&raw) else {
            customers.unreadable.push(raw);
            continue;
        };
        if tenant_id == *partner || !seen.insert(tenant_id) {
            continue;
        }
        customers.list.push(Customer {
            tenant_id,
            display_name: name
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| tenant_id.to_string()),
        });
    }
    Ok(customers)
}

/// The page where a customer's admin consents the connection's app in their tenant.
pub fn consent_url(connection: &Connection, tenant: &TenantId) -> String {
    format!(
        "{}/{tenant}/adminconsent?client_id={}",
        connection.cloud.endpoints().login,
        connection.client_id
    )
}

/// Whether the token endpoint refused because the app was never consented in the tenant:
/// AADSTS7000229 (no service principal there), 700016 (the app is unknown there) or 65001
/// (consent required).
pub fn needs_consent(error: &GraphError) -> bool {
    match error {
        GraphError::Token {
            problem, aadsts, ..
        } => {
            matches!(
                problem,
                TokenProblem::AppNotConsented | TokenProblem::AppNotFound
            ) || aadsts.contains(&65001)
        }
        _ => false,
    }
}

/// What a customer's refused token request means, in one sentence with its fix.
pub fn refusal(connection: &Connection, customer: &Customer, error: &GraphError) -> String {
    if needs_consent(error) {
        format!(
            "the app is not consented in {}; send its admin this link: {}",
            customer.display_name,
            consent_url(connection, &customer.tenant_id)
        )
    } else {
        format!(
            "the app could not sign in to {}: {}. {}",
            customer.display_name,
            error.to_string().trim_end_matches('.'),
            error.fix()
        )
    }
}

/// The warning for a customer this connection synced before that the partner lists no more.
pub fn no_longer_listed(tenant: &TenantRow) -> RunWarning {
    RunWarning {
        code: "customer_not_listed".into(),
        message: format!(
            "customer {} ({}) is no longer listed among the partner's customers (its relationship ended?), so it was not synced; what was synced of it stays as it was, nothing archived",
            tenant.label(),
            tenant.tenant_id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_error(problem: TokenProblem, aadsts: Vec<u64>) -> GraphError {
        GraphError::Token {
            problem,
            status: 401,
            oauth_error: "invalid_client".into(),
            aadsts,
            description: "AADSTS…".into(),
        }
    }

    #[test]
    fn only_a_missing_consent_asks_for_the_admin_consent_link() {
        assert!(needs_consent(&token_error(
            TokenProblem::AppNotConsented,
            vec![7000229]
        )));
        assert!(needs_consent(&token_error(
            TokenProblem::AppNotFound,
            vec![700016]
        )));
        assert!(needs_consent(&token_error(
            TokenProblem::Other,
            vec![65001]
        )));
        assert!(!needs_consent(&token_error(
            TokenProblem::InvalidSecret,
            vec![7000215]
        )));
        assert!(!needs_consent(&GraphError::Api {
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: String::new(),
            request_id: None,
            url: String::new(),
        }));
    }
}
