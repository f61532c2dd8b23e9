//! From a stored connection to a Graph client.

use std::sync::Arc;

use domain::Credential;
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

pub fn graph_client(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
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
    )
}

/// The connection's app, signing in to its tenant, against `endpoints`.
fn client_for(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
    endpoints: GraphEndpoints,
) -> Result<GraphClient> {
    let credentials = AppCredentials {
        tenant: connection.tenant_id.to_string(),
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
    Ok(GraphClient::trusting(
        endpoints,
        credentials,
        retry,
        EXTRA_CA.get().map(Vec::as_slice),
    )?)
}

/// A client for the Office 365 Management Activity API (the audit feed): the same app and
/// tenant, its own resource and token. `None` where the cloud has no such API m365sync knows.
pub fn management_client(
    connection: &Connection,
    credential: &Credential,
    retry: RetryPolicy,
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
    let client = client_for(connection, credential, retry, endpoints)?;
    Ok(Some(client))
}
