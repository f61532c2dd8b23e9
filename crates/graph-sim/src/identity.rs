//! The v2.0 token endpoint (client credentials) and the access tokens it issues.
//!
//! Refusals use Microsoft's shapes: `error`, `error_description` starting `AADSTS<code>: `,
//! `error_codes`, trace and correlation ids, with 400 or 401 as Microsoft sends them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::state::{Tenant, read};
use crate::{SimState, assertion};

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn aad_error(
    state: &SimState,
    status: StatusCode,
    error: &str,
    code: u64,
    text: &str,
) -> Response {
    let trace = state.request_id();
    let correlation = state.request_id();
    let timestamp = crate::state::civil_date((now_secs() / 86_400) as i64);
    let description = format!(
        "AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
    );
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("{}/error?code={code}", state.base_url),
    });
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) async fn token(
    State(state): State<Arc<SimState>>,
    Path(tenant_key): Path<String>,
    headers: axum::http::HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    state.count(|s| s.token_requests += 1);
    // Delegated grants name their tenant through the code or refresh token they carry, so they
    // are answered at `organizations` as at a tenant's own endpoint.
    if matches!(
        form.get("grant_type").map(String::as_str),
        Some("authorization_code" | "refresh_token")
    ) {
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
        return crate::delegated::token_grant(&state, &form, authorization);
    }
    let Some(tenant) = state.tenant(&tenant_key) else {
        return aad_error(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    for required in ["grant_type", "client_id", "scope"] {
        if field(required).is_empty() {
            return aad_error(
                &state,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                &format!("The request body must contain the following parameter: '{required}'."),
            );
        }
    }
    if field("grant_type") != "client_credentials" {
        return aad_error(
            &state,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type. This simulator issues client-credentials tokens.",
        );
    }
    let client_id = field("client_id").to_ascii_lowercase();
    // The app whose credentials are checked: the tenant's own, or a partner's multi-tenant app
    // where this tenant, its customer, has consented it.
    let app = if tenant.client_id.to_string() == client_id {
        tenant
    } else if let Some(partner_app) = state.consented_partner_app(tenant, &client_id) {
        partner_app
    } else {
        let known_elsewhere = state
            .tenants
            .iter()
            .any(|t| t.client_id.to_string() == client_id);
        return if known_elsewhere {
            aad_error(
                &state,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000229,
                &format!(
                    "The client application {client_id} is missing service principal in the tenant {}.",
                    tenant.id
                ),
            )
        } else {
            aad_error(
                &state,
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                    tenant.display_name
                ),
            )
        };
    };
    let assertion = field("client_assertion");
    // How the app proved itself, as the token's `appidacr` says: 1 secret, 2 certificate.
    let proof = if !assertion.is_empty() {
        if let Err(refusal) = check_assertion(&state, app, tenant, &form, assertion) {
            return aad_error(
                &state,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                refusal.code,
                &refusal.text,
            );
        }
        "2"
    } else {
        if let Some(response) = check_secret(&state, app, field("client_secret"), &client_id) {
            return response;
        }
        "1"
    };
    let scope = field("scope");
    if !scope.ends_with("/.default") || scope.split_whitespace().count() != 1 {
        return aad_error(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    let resource = scope.trim_end_matches("/.default");
    let now = now_secs();
    let lifetime = state.token_lifetime.as_secs();
    // A token carries only the roles of the resource it is for, as Entra issues them: the
    // Office 365 Management APIs' roles in its tokens, Microsoft Graph's in Graph's.
    let management = resource.contains("manage.office");
    let roles: Vec<String> = read(&tenant.roles)
        .iter()
        .filter(|r| crate::activity::MANAGEMENT_ROLES.contains(&r.as_str()) == management)
        .cloned()
        .collect();
    // The app's service principal in the tenant: one per (app, tenant), as Entra makes them.
    let principal_salt = if app.index == tenant.index {
        9
    } else {
        9 ^ (tenant.index << 8)
    };
    let service_principal =
        crate::people::guid(app.client_id.as_u128() as u64, principal_salt).to_string();
    let mut claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{}/", tenant.id),
        "iat": now, "nbf": now, "exp": now + lifetime,
        "appid": client_id, "appidacr": proof, "idtyp": "app",
        "oid": service_principal.clone(),
        "sub": service_principal,
        "tid": tenant.id.to_string(),
        "uti": state.request_id(),
        "ver": "1.0",
        // The simulator's own claim: which generation of the tenant's tokens this is, so that a
        // fault can expire every token issued so far.
        "sim_generation": tenant.token_generation.load(std::sync::atomic::Ordering::SeqCst),
    });
    // Microsoft leaves `roles` out entirely when nothing was consented.
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": sign(&state.signing_key, &claims),
    });
    (
        StatusCode::OK,
        [
            ("content-type", "application/json; charset=utf-8"),
            ("cache-control", "no-store, no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The secret check: absent, expired or wrong, each refused as Entra refuses it.
pub(crate) fn check_secret(
    state: &SimState,
    tenant: &Tenant,
    secret: &str,
    client_id: &str,
) -> Option<Response> {
    if secret.is_empty() {
        return Some(aad_error(
            state,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    if secret == tenant.expired_client_secret {
        return Some(aad_error(
            state,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            &format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app or consider using certificate credentials for added security."
            ),
        ));
    }
    if secret != tenant.client_secret {
        return Some(aad_error(
            state,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ));
    }
    None
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The certificate check: a signed assertion from a certificate registered on the app, naming
/// the token endpoint of the tenant asked (the app's own, or a customer's) as its audience.
fn check_assertion(
    state: &SimState,
    app: &Tenant,
    tenant: &Tenant,
    form: &HashMap<String, String>,
    assertion: &str,
) -> Result<(), assertion::Refusal> {
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(assertion::Refusal {
            code: 50027,
            text: format!("Invalid client_assertion_type: it must be '{JWT_BEARER}'."),
        });
    }
    let audience_ok = |audience: &str| {
        let Ok(url) = url::Url::parse(audience) else {
            return false;
        };
        let segments: Vec<&str> = url.path().trim_matches('/').split('/').collect();
        let endpoint = matches!(
            segments.as_slice(),
            [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"]
        );
        endpoint && state.tenant(segments[0]).is_some_and(|t| t.id == tenant.id)
    };
    let registered = read(&app.certificates).clone();
    assertion::verify(
        assertion,
        &app.client_id.to_string(),
        &registered,
        now_secs() as i64,
        audience_ok,
    )
}

pub(crate) fn sign(key: &[u8; 32], claims: &serde_json::Value) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256","kid":"m365sync-simulator"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(mac(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

fn mac(key: &[u8; 32], input: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

/// Why a bearer token was not accepted, in Graph's words.
pub(crate) enum TokenRejection {
    Missing,
    Invalid,
    Expired,
}

pub(crate) struct VerifiedToken {
    pub tenant_id: String,
    /// The app the token was issued to: Microsoft's limits count per app and tenant.
    pub app_id: String,
    pub roles: Vec<String>,
    pub generation: u64,
    /// The delegated permissions (`scp`) of a token issued to a signed-in user; empty for an
    /// app-only token.
    pub scopes: Vec<String>,
    /// The signed-in user's object id, for a delegated token.
    pub user_id: Option<String>,
}

pub(crate) fn verify(key: &[u8; 32], token: &str) -> Result<VerifiedToken, TokenRejection> {
    if token.is_empty() {
        return Err(TokenRejection::Missing);
    }
    let mut parts = token.rsplitn(2, '.');
    let (Some(signature), Some(signing_input)) = (parts.next(), parts.next()) else {
        return Err(TokenRejection::Invalid);
    };
    let given = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenRejection::Invalid)?;
    if given != mac(key, signing_input.as_bytes()) {
        return Err(TokenRejection::Invalid);
    }
    let payload = signing_input
        .split('.')
        .nth(1)
        .ok_or(TokenRejection::Invalid)?;
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRejection::Invalid)?,
    )
    .map_err(|_| TokenRejection::Invalid)?;
    if claims["exp"].as_u64().unwrap_or(0) <= now_secs() {
        return Err(TokenRejection::Expired);
    }
    Ok(VerifiedToken {
        tenant_id: claims["tid"].as_str().unwrap_or_default().to_string(),
        generation: claims["sim_generation"].as_u64().unwrap_or(0),
        app_id: claims["appid"].as_str().unwrap_or_default().to_string(),
        scopes: claims["scp"]
            .as_str()
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        user_id: claims["scp"]
            .is_string()
            .then(|| claims["oid"].as_str().map(str::to_string))
            .flatten(),
        roles: claims["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `/{tenant}/v2.0/.well-known/openid-configuration`: what Microsoft's client libraries read first
/// to learn where the token endpoint is.
pub(crate) async fn openid_configuration(
    State(state): State<Arc<SimState>>,
    Path(tenant_key): Path<String>,
) -> Response {
    let multi = matches!(
        tenant_key.to_ascii_lowercase().as_str(),
        "organizations" | "common"
    );
    let tenant_path = if multi {
        Some(tenant_key.to_ascii_lowercase())
    } else {
        state.tenant(&tenant_key).map(|t| t.id.to_string())
    };
    let Some(tenant_path) = tenant_path else {
        return aad_error(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    };
    let base = format!("{}/{tenant_path}", state.base_url);
    // At `organizations` the issuer is a template, filled with each token's tenant, as Entra's.
    let issuer = if multi {
        format!("{}/{{tenantid}}/v2.0", state.base_url)
    } else {
        format!("{base}/v2.0")
    };
    let body = json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{}/oidc/userinfo", state.base_url),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver", "oid"],
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    });
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// The signing keys document: the key of the id tokens. Access tokens are signed with a shared
/// secret that is never published: clients treat them as opaque, as Microsoft asks them to.
pub(crate) async fn signing_keys(State(state): State<Arc<SimState>>) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        crate::delegated::keys_document(&state).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::{SimConfig, TenantSpec};

    #[tokio::test]
    async fn a_partner_certificate_signs_in_to_a_consenting_customer_at_its_own_endpoint() {
        let config = SimConfig {
            tenants: vec![TenantSpec::with_users(1), TenantSpec::with_users(1)],
            partner: true,
            ..SimConfig::default()
        };
        let state = Arc::new(SimState::new(
            &config,
            "http://sim.test".into(),
            "http://download.sim.test".into(),
        ));
        let router = crate::api::router(state.clone());
        let issued = state.add_certificate("0", -1, 30).unwrap().unwrap();
        let (partner, customer) = (&state.tenants[0], &state.tenants[1]);
        let registered = read(&partner.certificates)[0].clone();
        let client = partner.client_id.to_string();
        let now = now_secs() as i64;
        let ask = |audience_tenant: String| {
            let assertion = assertion::signed(
                &issued.private_key_pem,
                &registered,
                json!({
                    "iss": client, "sub": client, "jti": "j", "nbf": now - 5, "iat": now - 5, "exp": now + 600,
                    "aud": format!("http://sim.test/{audience_tenant}/oauth2/v2.0/token"),
                }),
            );
            let form = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &client)
                .append_pair("scope", "https://graph.microsoft.com/.default")
                .append_pair("client_assertion_type", JWT_BEARER)
                .append_pair("client_assertion", &assertion)
                .finish();
            let request = Request::post(format!("/{}/oauth2/v2.0/token", customer.id))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (
                    status,
                    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
                )
            }
        };

        let (status, body) = ask(customer.id.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = verify(&state.signing_key, body["access_token"].as_str().unwrap())
            .ok()
            .unwrap();
        assert_eq!(token.tenant_id, customer.id.to_string());

        // An assertion made out to the partner's own endpoint is no good at the customer's.
        let (status, body) = ask(partner.id.to_string()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error_codes"], json!([700023]));
    }
}
