//! A partner tenant (a Microsoft CSP with GDAP) and its customers: tenant 0's app is then
//! multi-tenant, `/tenantRelationships/delegatedAdminCustomers` and `/contracts` list the other
//! tenants, and each customer that has consented the app issues it tokens.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::RwLock;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};

use crate::SimState;
use crate::api::{Opened, Resource, graph_error, graph_ok, open, param, project};
use crate::people::{guid, hash3, mix};
use crate::state::{Tenant, read, write};

/// The permission a partner's app needs to list its GDAP customers.
pub const GDAP_ROLE: &str = "DelegatedAdminRelationship.Read.All";

/// Who the partner's customers are and which of them consented its app.
pub(crate) struct Partner {
    /// Customers (by tenant position) with a delegated admin relationship: what is listed.
    related: RwLock<BTreeSet<u64>>,
    /// Customers (by tenant position) whose admin consented the partner's app: who issues tokens.
    consented: RwLock<BTreeSet<u64>>,
}

impl Partner {
    /// Every other tenant, related and consented.
    pub(crate) fn of(tenants: u64) -> Self {
        let all: BTreeSet<u64> = (1..tenants).collect();
        Self {
            related: RwLock::new(all.clone()),
            consented: RwLock::new(all),
        }
    }
}

/// A customer of the partner, as `m365sync simulate --partner` announces it.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerInfo {
    pub tenant_id: String,
    pub display_name: String,
    pub domain: String,
    /// Listed by the partner's GDAP relationships.
    pub related: bool,
    /// Its admin consented the partner's app: it issues the app tokens.
    pub consented: bool,
}

impl SimState {
    /// The partner tenant (tenant 0), when the simulator has one.
    pub fn partner_tenant(&self) -> Option<&Tenant> {
        self.partner.as_ref().and_then(|_| self.tenants.first())
    }

    /// Every other tenant, with whether it is related to the partner and has consented its app.
    pub fn customers(&self) -> Vec<CustomerInfo> {
        let Some(partner) = &self.partner else {
            return vec![];
        };
        let (related, consented) = (read(&partner.related), read(&partner.consented));
        self.tenants
            .iter()
            .skip(1)
            .map(|t| CustomerInfo {
                tenant_id: t.id.to_string(),
                display_name: t.display_name.clone(),
                domain: t.custom_domain.clone(),
                related: related.contains(&t.index),
                consented: consented.contains(&t.index),
            })
            .collect()
    }

    /// The customer tenant `key` of the partner, or why there is none.
    fn customer(&self, key: &str) -> Result<(&Partner, &Tenant), String> {
        let Some(partner) = &self.partner else {
            return Err(
                "the simulator has no partner tenant: start it with `m365sync simulate --partner` (SimConfig.partner)"
                    .into(),
            );
        };
        let tenant = self
            .tenant(key)
            .ok_or_else(|| format!("no tenant '{key}': use its id, a domain or its position"))?;
        if tenant.index == 0 {
            return Err(format!(
                "tenant '{key}' is the partner itself; a customer is any other tenant"
            ));
        }
        Ok((partner, tenant))
    }

    /// Whether the customer's admin has consented the partner's app (and so issues it tokens).
    pub fn set_partner_consent(&self, key: &str, consented: bool) -> Result<(), String> {
        let (partner, tenant) = self.customer(key)?;
        let mut set = write(&partner.consented);
        if consented {
            set.insert(tenant.index);
        } else {
            set.remove(&tenant.index);
        }
        Ok(())
    }

    /// Adds or ends the partner's delegated admin relationship with the customer.
    pub fn set_partner_relationship(&self, key: &str, related: bool) -> Result<(), String> {
        let (partner, tenant) = self.customer(key)?;
        let mut set = write(&partner.related);
        if related {
            set.insert(tenant.index);
        } else {
            set.remove(&tenant.index);
        }
        Ok(())
    }

    /// The partner's app when `client_id` names it and `tenant` is a customer that consented it.
    pub(crate) fn consented_partner_app(
        &self,
        tenant: &Tenant,
        client_id: &str,
    ) -> Option<&Tenant> {
        let partner = self.partner.as_ref()?;
        let app = self.tenants.first()?;
        (tenant.index != 0
            && app.client_id.to_string() == client_id
            && read(&partner.consented).contains(&tenant.index))
        .then_some(app)
    }

    /// The customers the partner lists, in tenant order; none for any other tenant.
    fn related_customers(&self, caller: &Tenant) -> Vec<&Tenant> {
        match &self.partner {
            Some(partner) if caller.index == 0 => {
                let related = read(&partner.related);
                self.tenants
                    .iter()
                    .filter(|t| related.contains(&t.index))
                    .collect()
            }
            _ => vec![],
        }
    }
}

/// An id of something the partner holds about a customer, fixed by the seed.
fn object_id(partner: &Tenant, customer: &Tenant, salt: u64) -> uuid::Uuid {
    let h = hash3(partner.id.as_u128() as u64, customer.index, salt);
    guid(h, mix(h ^ salt))
}

const CUSTOMERS: Resource = Resource {
    roles: &[GDAP_ROLE, "DelegatedAdminRelationship.ReadWrite.All"],
    options: &["$select", "$top", "$skiptoken"],
    fields: &["id", "tenantId", "displayName"],
    type_name: "delegatedAdminCustomer",
};

const CONTRACTS: Resource = Resource {
    roles: &["Directory.Read.All", "Directory.ReadWrite.All"],
    options: &["$select", "$top", "$skiptoken"],
    fields: &[
        "id",
        "deletedDateTime",
        "contractType",
        "customerId",
        "defaultDomainName",
        "displayName",
    ],
    type_name: "contract",
};

/// `GET /tenantRelationships/delegatedAdminCustomers`: the partner's GDAP customers.
pub(crate) async fn delegated_admin_customers(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let opened = open(&state, &headers, raw.as_deref(), &CUSTOMERS);
    let (tenant, pairs, fields): Opened = match opened {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let items: Vec<Value> = state
        .related_customers(tenant)
        .into_iter()
        .map(|customer| {
            let id = customer.id.to_string();
            let tag = STANDARD.encode(format!("\"{}\"", object_id(tenant, customer, 0xe7a6)));
            json!({
                "@odata.type": "#microsoft.graph.delegatedAdminCustomer",
                "@odata.etag": format!("W/\"{tag}\""),
                "id": id, "tenantId": id, "displayName": customer.display_name,
            })
        })
        .collect();
    let context = format!(
        "{}/v1.0/tenantRelationships/$metadata#delegatedAdminCustomers",
        state.base_url
    );
    page(
        &state,
        &headers,
        tenant,
        Listing {
            path: "tenantRelationships/delegatedAdminCustomers",
            context,
            max_top: 300,
        },
        &pairs,
        fields.as_deref(),
        items,
    )
}

/// `GET /contracts`: the partner's customers as the directory records them, readable with
/// `Directory.Read.All` where the GDAP permission is missing.
pub(crate) async fn contracts(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields): Opened = match open(&state, &headers, raw.as_deref(), &CONTRACTS) {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let items: Vec<Value> = state
        .related_customers(tenant)
        .into_iter()
        .map(|customer| {
            json!({
                "id": object_id(tenant, customer, 0xc0).to_string(),
                "deletedDateTime": null,
                "contractType": "ResellerPartner",
                "customerId": customer.id.to_string(),
                "defaultDomainName": customer.custom_domain,
                "displayName": customer.display_name,
            })
        })
        .collect();
    let context = format!("{}/v1.0/$metadata#contracts", state.base_url);
    page(
        &state,
        &headers,
        tenant,
        Listing {
            path: "contracts",
            context,
            max_top: 999,
        },
        &pairs,
        fields.as_deref(),
        items,
    )
}

struct Listing {
    path: &'static str,
    context: String,
    max_top: usize,
}

/// One page of `items` after the request's skip token, `$top` at a time (100 unless asked).
fn page(
    state: &SimState,
    headers: &HeaderMap,
    tenant: &Tenant,
    listing: Listing,
    pairs: &[(String, String)],
    fields: Option<&[&str]>,
    items: Vec<Value>,
) -> Response {
    let bad = |message: String| {
        graph_error(
            state,
            headers,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &message,
        )
    };
    let top = match param(pairs, "$top") {
        None => 100,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=listing.max_top).contains(&n) => n,
            _ => {
                return bad(format!(
                    "Invalid page size specified: '{raw}'. Must be between 1 and {} inclusive.",
                    listing.max_top
                ));
            }
        },
    };
    let (start, number) = match param(pairs, "$skiptoken") {
        None => (0, 1),
        Some(token) => match crate::api::decode_skiptoken(token, tenant.index) {
            Some(position) => position,
            None => return bad("Invalid or expired skip token.".into()),
        },
    };
    let start = start as usize;
    let value: Vec<Value> = items
        .iter()
        .skip(start)
        .take(top)
        .map(|item| match fields {
            Some(f) => project(item.clone(), f),
            None => item.clone(),
        })
        .collect();
    let mut body = json!({ "@odata.context": listing.context, "value": value });
    if start + top < items.len() {
        let mut link = format!("{}/v1.0/{}?", state.base_url, listing.path);
        if let Some(select) = param(pairs, "$select") {
            link.push_str(&format!(
                "$select={}&",
                url::form_urlencoded::byte_serialize(select.as_bytes()).collect::<String>()
            ));
        }
        link.push_str(&format!(
            "$top={top}&$skiptoken={}",
            crate::api::encode_skiptoken(tenant.index, (start + top) as u64, number + 1)
        ));
        body["@odata.nextLink"] = json!(link);
    }
    graph_ok(state, headers, body.to_string())
}
