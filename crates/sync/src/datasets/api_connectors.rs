//! API connectors: the web APIs that Entra ID's sign-up user flows call, with how each is
//! authenticated (a user name, or client certificates and when they expire). No secret is
//! returned by Microsoft, so none is kept.

use domain::{Dataset, InventoryItem};
use graph::models::ApiConnector;
use graph::{GraphClient, GraphError};
use serde_json::json;

use super::small::{fetch_all, write_listing};
use super::{DatasetSync, Outcome, Run};
use crate::Result;

/// API connectors (`APIConnectors.Read.All`).
pub(super) struct ApiConnectors;

impl DatasetSync for ApiConnectors {
    fn dataset(&self) -> Dataset {
        Dataset::ApiConnectors
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/identity/apiConnectors?$top=1")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let listed = list(&run.client).await;
        write_listing(run, Dataset::ApiConnectors, listed).await
    }
}

async fn list(client: &GraphClient) -> Result<Vec<InventoryItem>, GraphError> {
    let connectors = fetch_all::<ApiConnector>(client, "v1.0/identity/apiConnectors").await?;
    Ok(connectors.iter().map(api_connector_item).collect())
}

/// A connector as kept: its target, the kind of authentication, and each certificate's
/// validity as ISO 8601 times, so that one near expiry can be seen.
pub(crate) fn api_connector_item(c: &ApiConnector) -> InventoryItem {
    let auth = c.authentication_configuration.clone().unwrap_or_default();
    let kind = auth
        .odata_type
        .as_deref()
        .map(|t| t.trim_start_matches("#microsoft.graph.").to_string());
    let time = |seconds: Option<i64>| {
        seconds
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let mut certificates: Vec<serde_json::Value> = auth
        .certificate_list
        .iter()
        .map(|cert| {
            json!({
                "thumbprint": cert.thumbprint, "start": time(cert.not_before),
                "end": time(cert.not_after), "is_active": cert.is_active,
            })
        })
        .collect();
    certificates.sort_by(|a, b| a["thumbprint"].as_str().cmp(&b["thumbprint"].as_str()));
    let name = c
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(&c.id)
        .to_string();
    InventoryItem {
        key: c.id.clone(),
        name,
        document: json!({
            "id": c.id, "display_name": c.display_name, "target_url": c.target_url,
            "authentication": kind, "username": auth.username, "certificates": certificates,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_keeps_its_authentication_and_certificates_but_no_secret() {
        let connector: ApiConnector = serde_json::from_value(json!({
            "id": "be1f769b", "displayName": "Check loyalty number", "targetUrl": "https://api.contoso.example/check",
            "authenticationConfiguration": {
                "@odata.type": "#microsoft.graph.clientCertificateAuthentication",
                "certificateList": [{ "thumbprint": "0EB255CC", "notAfter": 1_800_000_000, "notBefore": 1_700_000_000, "isActive": true }]
            }
        }))
        .unwrap();
        let item = api_connector_item(&connector);
        assert_eq!(item.name, "Check loyalty number");
        assert_eq!(
            item.document["authentication"],
            "clientCertificateAuthentication"
        );
        assert_eq!(
            item.document["certificates"][0]["end"],
            "2027-01-15T08:00:00Z"
        );
        let basic: ApiConnector = serde_json::from_value(json!({
            "id": "a1", "displayName": " ", "authenticationConfiguration": {
                "@odata.type": "#microsoft.graph.basicAuthentication", "username": "flows", "password": null
            }
        }))
        .unwrap();
        let item = api_connector_item(&basic);
        assert_eq!(
            (item.name.as_str(), item.document["username"].as_str()),
            ("a1", Some("flows"))
        );
        assert!(!item.document.to_string().contains("password"));
    }
}
