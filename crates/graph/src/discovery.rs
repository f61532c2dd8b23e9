//! A tenant's id from one of its domains, as Microsoft's identity platform publishes it in the
//! tenant's OpenID configuration (the issuer is `{login}/{tenant id}/v2.0`). Microsoft accepts a
//! tenant's domain wherever it takes the id; m365sync keys what it keeps by the id, so it asks once.

use std::time::Duration;

use serde::Deserialize;

use crate::Result;
use crate::client::Attempt;
use crate::client::parse_ca_bundle;
use crate::error::{Excerpt, GraphError};

#[derive(Deserialize)]
struct OpenIdConfiguration {
    issuer: String,
}

/// The id (a GUID, as text) of the tenant that owns `domain`, asked of the login endpoint
/// `login_base`; `None` when Microsoft knows no tenant by that name.
pub async fn tenant_id_of_domain(
    login_base: &str,
    domain: &str,
    extra_ca_pem: Option<&[u8]>,
) -> Result<Option<String>> {
    let url = format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        login_base.trim_end_matches('/'),
        domain.trim()
    );
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("m365sync/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = extra_ca_pem {
        builder = builder.tls_certs_merge(parse_ca_bundle(pem)?);
    }
    let unreachable = |message: String| GraphError::Unreachable {
        url: url.clone(),
        attempts: 1,
        message,
    };
    let http = builder.build().map_err(|e| unreachable(e.to_string()))?;
    let response =
        http.get(&url).send().await.map_err(|e| {
            match crate::client::transport_failure::<()>(&e) {
                Attempt::Fail(error) => error,
                Attempt::Retry { reason, .. } => unreachable(reason),
                Attempt::Done(()) => unreachable(e.to_string()),
            }
        })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    // Microsoft answers 400 (AADSTS90002) for a name it does not know.
    if status == reqwest::StatusCode::BAD_REQUEST || status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(GraphError::Malformed {
            url,
            detail: format!(
                "the OpenID configuration answered {status}: {}",
                Excerpt(&String::from_utf8_lossy(&body))
            ),
        });
    }
    let configuration: OpenIdConfiguration =
        crate::text::from_json(&body).map_err(|e| GraphError::Malformed {
            url: url.clone(),
            detail: format!("the OpenID configuration: {e}"),
        })?;
    // `{login}/{tenant id}/v2.0`: the segment before the version.
    let id = configuration
        .issuer
        .trim_end_matches('/')
        .rsplit('/')
        .nth(1)
        .map(str::to_string);
    match id {
        Some(id) if uuid_like(&id) => Ok(Some(id)),
        _ => Err(GraphError::Malformed {
            url,
            detail: format!(
                "the OpenID configuration's issuer '{}' names no tenant id",
                Excerpt(&configuration.issuer)
            ),
        }),
    }
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36
        && text.chars().enumerate().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        })
}
