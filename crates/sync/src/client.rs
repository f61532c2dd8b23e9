//! From a stored connection to a Graph client.

use domain::ClientSecret;
use graph::{AppCredentials, ClientSecretValue, GraphClient, GraphEndpoints, RetryPolicy};
use store::Connection;

use crate::Result;

pub fn graph_client(
    connection: &Connection,
    secret: &ClientSecret,
    retry: RetryPolicy,
) -> Result<GraphClient> {
    let endpoints = connection.cloud.endpoints();
    let scope = endpoints.graph_scope(&connection.cloud);
    let client = GraphClient::new(
        GraphEndpoints {
            login: endpoints.login,
            graph: endpoints.graph,
            scope,
        },
        AppCredentials {
            tenant: connection.tenant_id.to_string(),
            client_id: connection.client_id.to_string(),
            secret: ClientSecretValue::new(secret.expose()),
        },
        retry,
    )?;
    Ok(client)
}
