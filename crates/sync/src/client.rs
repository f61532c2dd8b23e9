//! From a stored connection to a Graph client.

use std::sync::Arc;

use domain::{Credential, TenantId};
use graph::{
    AppCredentials, ClientCertificate, ClientCredential, GraphClient, GraphEndpoints, RetryPolicy,
};
use store::Connection;

use crate::{Result, SyncError};

/// CA certificates trusted beside the system's, for every Graph client this process makes: set
/// once at start-up from `--ca-cert` (a TLS-inspecting proxy, or the simulator over HTTPS).
static EXTRA_CA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Trusts the PEM certificates in `pem` from now on. Checked here, so a bad file is refused at
/// start-up rather than at the first request.
pub fn trust_extra_ca(pem: Vec<u8>) -> Result<()> {
    graph::parse_ca_bundle(&pem)?;
    let _ = EXTRA_CA.set(pem);
    Ok(())
}

/// The id of the tenant that owns `domain` in `cloud` (Microsoft takes either wherever it asks
/// for a tenant; m365sync keeps the id); `None` when Microsoft knows no tenant by that name.
pub async fn tenant_id_of_domain(cloud: &domain::Cloud, domain: &str) -> Result<Option<TenantId>> {
    let login = cloud.endpoints().login;
    let found =
        graph::tenant_id_of_domain(&login, domain, EXTRA_CA.get().map(Vec::as_slice)).await?;
    Ok(found.and_then(|id| TenantId::parse(&id).ok()))
}

/// The extra CA certificates trusted, if any were given.
pub(crate) fn extra_ca() -> Option<&'static [u8]> {
    EXTRA_CA.get().map(Vec::as_slice)
}

/// The connection's app in the connection's own tenant (a partner connection's: the partner's).
pub fn graph_client(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
) -> Result<GraphClient> {
    tenant_graph_client(connection, credential, retry, connection.tenant_id, None)
}

/// The connection's app signing in to `tenant`: a partner's customer, with its own token
/// endpoint and token.
pub(crate) fn tenant_graph_client(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
    tenant: TenantId,
    over: Option<&GraphClient>,
) -> Result<GraphClient> {
    let endpoints = connection.cloud.endpoints();
    let scope = endpoints.graph_scope(&connection.cloud);
    client_for(
        connection,
        credential,
        retry,
        GraphEndpoints {
            login: endpoints.login,
            graph: endpoints.graph,
            scope,
        },
        tenant,
        over,
    )
}

/// A customer's Graph client and, where the cloud has that API, its audit-feed client, both
/// over the HTTP client of `partner` (the partner's own client in the same run).
pub(crate) fn tenant_clients(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
    tenant: TenantId,
    partner: &GraphClient,
) -> Result<(GraphClient, Option<GraphClient>)> {
    let graph = tenant_graph_client(connection, credential, retry.clone(), tenant, Some(partner))?;
    let management =
        tenant_management_client(connection, credential, retry, tenant, Some(partner))?;
    Ok((graph, management))
}

/// The connection's app, signing in to `tenant`, against `endpoints`; over the HTTP client of
/// `over` where given, else over one of its own.
fn client_for(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
    endpoints: GraphEndpoints,
    tenant: TenantId,
    over: Option<&GraphClient>,
) -> Result<GraphClient> {
    let credentials = AppCredentials {
        tenant: tenant.to_string(),
        client_id: connection.client_id.to_string(),
        credential: match credential {
            Credential::Secret(secret) => {
                ClientCredential::Secret(graph::ClientSecretValue::new(secret.expose()))
            }
            Credential::Certificate(certificate) => ClientCredential::Certificate(Arc::new(
                ClientCertificate::from_pem(certificate.pem()).map_err(|e| {
                    SyncError::Certificate {
                        connection: connection.name.to_string(),
                        problem: e.to_string(),
                    }
                })?,
            )),
        },
    };
    let client = match over {
        Some(over) => over.alongside(endpoints, credentials, retry),
        None => GraphClient::trusting(
            endpoints,
            credentials,
            retry,
            EXTRA_CA.get().map(Vec::as_slice),
        )?,
    };
    Ok(client.counted_as(connection.name.as_str()))
}

/// A client for the Office 365 Management Activity API (the audit feed): the same app and
/// tenant, its own resource and token. `None` where the cloud has no such API m365sync knows.
pub fn management_client(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
) -> Result<Option<GraphClient>> {
    tenant_management_client(connection, credential, retry, connection.tenant_id, None)
}

fn tenant_management_client(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
    tenant: TenantId,
    over: Option<&GraphClient>,
) -> Result<Option<GraphClient>> {
    let (Some(root), Some(scope)) = (
        connection.cloud.management_url(),
        connection.cloud.management_scope(),
    ) else {
        return Ok(None);
    };
    let endpoints = GraphEndpoints {
        login: connection.cloud.endpoints().login,
        graph: root,
        scope,
    };
    let client = client_for(connection, credential, retry, endpoints, tenant, over)?;
    Ok(Some(client))
}
