//! Client-credentials tokens from the Microsoft identity platform, and what they grant.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::ClientCertificate;

/// A client secret's value. Never printed.
#[derive(Clone)]
pub struct ClientSecretValue(String);

impl ClientSecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the app proves who it is.
#[derive(Debug, Clone)]
pub enum ClientCredential {
    Secret(ClientSecretValue),
    /// A certificate whose public part is uploaded to the app registration; each token request
    /// carries a fresh assertion signed with its key.
    Certificate(Arc<ClientCertificate>),
}

/// Who the app is and in which tenant it asks for a token.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// Tenant id or verified domain.
    pub tenant: String,
    pub client_id: String,
    pub credential: ClientCredential,
}

impl AppCredentials {
    pub fn with_secret(
        tenant: impl Into<String>,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            client_id: client_id.into(),
            credential: ClientCredential::Secret(ClientSecretValue::new(secret)),
        }
    }

    /// The form fields that prove the app's identity to the token endpoint at `token_url`.
    pub(crate) fn proof(&self, token_url: &str) -> Vec<(&'static str, String)> {
        match &self.credential {
            ClientCredential::Secret(secret) => {
                vec![("client_secret", secret.expose().to_string())]
            }
            ClientCredential::Certificate(certificate) => vec![
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
                ),
                (
                    "client_assertion",
                    certificate.assertion(token_url, &self.client_id),
                ),
            ],
        }
    }
}

/// An app-only access token and the application permissions (`roles`) it carries.
#[derive(Clone)]
pub struct AccessToken {
    value: String,
    pub expires_at: Instant,
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("roles", &self.roles)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.value)
    }

    /// Fresh enough to send: a margin keeps a token from expiring between check and use.
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        now + Duration::from_secs(120) < self.expires_at
    }

    pub(crate) fn from_response(body: &TokenResponse, now: Instant) -> Self {
        let claims = read_claims(&body.access_token);
        Self {
            value: body.access_token.clone(),
            expires_at: now + Duration::from_secs(body.expires_in.0),
            roles: claims.roles,
            tenant_id: claims.tid,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default = "default_lifetime")]
    pub expires_in: Seconds,
}

fn default_lifetime() -> Seconds {
    Seconds(3599)
}

/// `expires_in`: a number on the v2 endpoint, a string on v1 and on some proxies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let seconds = match Raw::deserialize(d)? {
            Raw::Number(n) => n,
            Raw::Text(s) => s.trim().parse::<f64>().map_err(|_| {
                serde::de::Error::custom(format!("expires_in '{s}' is not a number"))
            })?,
        };
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(serde::de::Error::custom("expires_in is negative"));
        }
        Ok(Seconds(seconds as u64))
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct TokenErrorBody {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub error_codes: Vec<u64>,
}

impl TokenErrorBody {
    /// The AADSTS codes, from `error_codes` or, failing that, from the description's prefix.
    pub fn codes(&self) -> Vec<u64> {
        if !self.error_codes.is_empty() {
            return self.error_codes.clone();
        }
        self.error_description
            .strip_prefix("AADSTS")
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse().ok())
            .into_iter()
            .collect()
    }

    /// The description's first line: Microsoft appends trace and correlation ids below it.
    pub fn summary(&self) -> String {
        self.error_description
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

#[derive(Deserialize, Default)]
struct Claims {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    tid: Option<String>,
}

/// Reads the claims of a JWT without checking its signature: the token is Graph's to validate;
/// we only want to know which permissions were granted, to explain a refusal before it happens.
fn read_claims(token: &str) -> Claims {
    let Some(payload) = token.split('.').nth(1) else {
        return Claims::default();
    };
    let trimmed = payload.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_is_accepted_as_number_or_string() {
        let a: TokenResponse =
            serde_json::from_str(r#"{"access_token":"x","expires_in":3599}"#).unwrap();
        let b: TokenResponse =
            serde_json::from_str(r#"{"access_token":"x","expires_in":"3599"}"#).unwrap();
        assert_eq!((a.expires_in.0, b.expires_in.0), (3599, 3599));
        assert!(
            serde_json::from_str::<TokenResponse>(r#"{"access_token":"x","expires_in":"soon"}"#)
                .is_err()
        );
    }

    #[test]
    fn roles_are_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"roles":["User.Read.All","Reports.Read.All"],"tid":"t"}"#);
        let body = TokenResponse {
            access_token: format!("h.{payload}.s"),
            expires_in: Seconds(10),
        };
        let token = AccessToken::from_response(&body, Instant::now());
        assert_eq!(token.roles, vec!["User.Read.All", "Reports.Read.All"]);
        assert_eq!(token.tenant_id.as_deref(), Some("t"));
        assert!(!token.is_fresh(Instant::now()));
        assert!(format!("{token:?}").find(&payload).is_none());
    }

    #[test]
    fn aadsts_code_is_found_in_description_when_codes_are_absent() {
        let body = TokenErrorBody {
            error: "invalid_client".into(),
            error_description: "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"
                .into(),
            error_codes: vec![],
        };
        assert_eq!(body.codes(), vec![7000215]);
        assert_eq!(
            body.summary(),
            "AADSTS7000215: Invalid client secret provided."
        );
    }
}
