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
        now.checked_add(Duration::from_secs(120))
            .is_some_and(|soon| soon < self.expires_at)
    }

    /// The token of a response received at `now`. A lifetime longer than
    /// [`MAX_TOKEN_LIFETIME`] is cut to it, so a stray `expires_in` can neither keep a token
    /// past its real end for long nor overflow the clock.
    pub(crate) fn from_response(body: &TokenResponse, now: Instant) -> Self {
        let claims = read_claims(&body.access_token);
        let lifetime = Duration::from_secs(body.expires_in.0).min(MAX_TOKEN_LIFETIME);
        Self {
            value: body.access_token.clone(),
            expires_at: now.checked_add(lifetime).unwrap_or(now),
            roles: claims.roles,
            tenant_id: claims.tid,
        }
    }
}

/// The longest an access token is kept: Entra issues them for one to 24 hours.
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default = "default_lifetime")]
    pub expires_in: Seconds,
}

fn default_lifetime() -> Seconds {
    Seconds(3599)
}

/// `expires_in`: a number on the v2 endpoint, a string on v1 and on some proxies. Whole seconds
/// are read exactly, a fraction is dropped, and a number too large for a `u64` is read as
/// `u64::MAX` (the token's lifetime is capped later); a negative one, or one that is not a number
/// at all, is an error that names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Whole(u64),
            Number(f64),
            Text(String),
        }
        let seconds = match Raw::deserialize(d) {
            Ok(Raw::Whole(n)) => return Ok(Seconds(n)),
            Ok(Raw::Number(n)) => n,
            Ok(Raw::Text(s)) => {
                let text = s.trim();
                if let Ok(n) = text.parse::<u64>() {
                    return Ok(Seconds(n));
                }
                text.parse::<f64>().map_err(|_| {
                    serde::de::Error::custom(format!(
                        "expires_in '{}' is not a number of seconds",
                        crate::error::Excerpt(&s)
                    ))
                })?
            }
            Err(_) => {
                return Err(serde::de::Error::custom(
                    "expires_in is neither a number nor a string of one",
                ));
            }
        };
        if seconds.is_nan() || seconds < 0.0 {
            return Err(serde::de::Error::custom(format!(
                "expires_in {seconds} is not a positive number of seconds"
            )));
        }
        // `as` saturates: infinity and anything past u64::MAX become u64::MAX.
        Ok(Seconds(seconds as u64))
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct TokenErrorBody {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: String,
    #[serde(default, deserialize_with = "lenient_codes")]
    pub error_codes: Vec<u64>,
}

/// `error_codes` as Microsoft sends them (numbers), or as a proxy might (numeric strings, `null`,
/// one number alone); anything that is not a code is left out rather than losing the whole refusal.
fn lenient_codes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    fn code(value: &serde_json::Value) -> Option<u64> {
        match value {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => items.iter().filter_map(code).collect(),
        other => code(&other).into_iter().collect(),
    })
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
    use proptest::prelude::*;

    fn expires_in(json: &str) -> Result<u64, String> {
        serde_json::from_str::<TokenResponse>(&format!(
            r#"{{"access_token":"x","expires_in":{json}}}"#
        ))
        .map(|r| r.expires_in.0)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn huge_and_negative_lifetimes_neither_panic_nor_outlive_a_day() {
        let now = Instant::now();
        for huge in [
            "1e300",
            "18446744073709551615",
            "\"1e400\"",
            "\"inf\"",
            "1.9e19",
        ] {
            let seconds = expires_in(huge).unwrap();
            assert_eq!(seconds, u64::MAX, "{huge}");
            let token = AccessToken::from_response(
                &TokenResponse {
                    access_token: "x".into(),
                    expires_in: Seconds(seconds),
                },
                now,
            );
            assert_eq!(token.expires_at, now + MAX_TOKEN_LIFETIME, "{huge}");
            assert!(token.is_fresh(now));
        }
        for bad in [
            "-1", "-1e300", "\"-5\"", "\"NaN\"", "\"\"", "null", "[]", "{}", "true",
        ] {
            let err = expires_in(bad).unwrap_err();
            assert!(err.contains("expires_in"), "{bad}: {err}");
        }
        assert_eq!(expires_in("3599.9"), Ok(3599));
        assert_eq!(expires_in("\" 86399 \""), Ok(86399));
    }

    #[test]
    fn odd_error_codes_keep_the_refusal_readable() {
        for codes in [
            "[7000215]",
            "[\"7000215\"]",
            "7000215",
            "[-1, \"x\", 1.5, null, {}, 7000215]",
        ] {
            let body: TokenErrorBody = serde_json::from_str(&format!(
                r#"{{"error":"invalid_client","error_description":"d","error_codes":{codes}}}"#
            ))
            .unwrap();
            assert_eq!(body.codes(), vec![7000215], "{codes}");
        }
        let body: TokenErrorBody = serde_json::from_str(
            r#"{"error":"invalid_client","error_description":"AADSTS99999999999999999999999: x","error_codes":null}"#,
        )
        .unwrap();
        assert_eq!(body.codes(), Vec::<u64>::new());
        assert_eq!(
            crate::TokenProblem::from_codes(&body.codes()),
            crate::TokenProblem::Other
        );
    }

    proptest! {
        #[test]
        fn whole_seconds_read_exactly_as_number_or_string(seconds in any::<u64>()) {
            prop_assert_eq!(expires_in(&seconds.to_string()), Ok(seconds));
            prop_assert_eq!(expires_in(&format!("\"{seconds}\"")), Ok(seconds));
        }

        #[test]
        fn any_lifetime_gives_a_token_of_at_most_a_day(
            value in prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
                any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
                "[-+]?[0-9]{1,40}(\\.[0-9]{0,5})?([eE][-+]?[0-9]{1,4})?",
            ],
        ) {
            let now = Instant::now();
            if let Ok(seconds) = expires_in(&value) {
                let token = AccessToken::from_response(
                    &TokenResponse { access_token: "x".into(), expires_in: Seconds(seconds) },
                    now,
                );
                prop_assert!(token.expires_at <= now + MAX_TOKEN_LIFETIME);
            }
        }

        #[test]
        fn any_token_or_error_body_is_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(response) = serde_json::from_slice::<TokenResponse>(&bytes) {
                AccessToken::from_response(&response, Instant::now());
            }
            let error: TokenErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
            crate::TokenProblem::from_codes(&error.codes());
            error.summary();
        }

        #[test]
        fn any_access_token_text_is_read_without_panicking(token in any::<String>(), claims in any::<String>()) {
            read_claims(&token);
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
            read_claims(&format!("h.{payload}.s"));
        }

        #[test]
        fn any_description_is_read_without_panicking(description in "(AADSTS)?\\PC{0,40}", codes in proptest::collection::vec(any::<u64>(), 0..4)) {
            let body = TokenErrorBody { error: "e".into(), error_description: description, error_codes: codes.clone() };
            let read = body.codes();
            if !codes.is_empty() {
                prop_assert_eq!(read, codes);
            }
            body.summary();
        }
    }

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
