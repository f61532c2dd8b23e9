//! Delegated sign-in: the v2.0 authorize endpoint with its sign-in and consent page, codes
//! redeemed with PKCE, refresh tokens that rotate, expire when idle and die with a revocation,
//! and id tokens signed with an RSA key published at the tenant's keys endpoint.
//!
//! Refusals use Microsoft's shapes: on the token endpoint the JSON of `identity::aad_error`; on
//! the authorize endpoint a redirect back to the app with `error` and `error_description`, or,
//! when the redirect URI cannot be trusted, an error page that stays at the simulator.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::SimState;
use crate::identity::{aad_error, now_secs};
use crate::people::SimUser;
use crate::state::{Tenant, lock};

/// The delegated permissions of Microsoft Graph the simulated app registration may ask for.
pub(crate) const GRAPH_SCOPES: &[&str] = &[
    "User.Read",
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite.Shared",
    "MailboxSettings.Read",
    "MailboxSettings.ReadWrite",
];
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
const GRAPH_RESOURCE: &str = "https://graph.microsoft.com/";
/// How long a code may wait to be redeemed (Microsoft: about 10 minutes).
const CODE_LIFETIME: i64 = 600;
/// A refresh token unused this long is refused (Microsoft's inactivity limit).
pub const REFRESH_IDLE_LIMIT_DAYS: i64 = 90;

struct PendingCode {
    tenant: u64,
    user: u64,
    client_id: String,
    redirect_uri: String,
    challenge: Option<(String, String)>,
    scopes: Vec<String>,
    nonce: Option<String>,
    issued: i64,
    redeemed: bool,
}

struct RefreshGrant {
    tenant: u64,
    user: u64,
    client_id: String,
    scopes: Vec<String>,
    issued: i64,
    last_used: i64,
    revoked: bool,
}

struct IdTokenKey {
    pair: RsaKeyPair,
    kid: String,
    jwk: serde_json::Value,
}

/// Everything the delegated flows remember between requests.
#[derive(Default)]
pub(crate) struct Delegated {
    key: OnceLock<Option<IdTokenKey>>,
    codes: Mutex<HashMap<String, PendingCode>>,
    refresh: Mutex<HashMap<String, RefreshGrant>>,
    /// (tenant, client id, user) that consented.
    consents: Mutex<HashSet<(u64, String, u64)>>,
    /// Seconds the identity clock runs ahead of the real one: how tests make tokens idle.
    clock_offset: AtomicI64,
}

impl Delegated {
    fn now(&self) -> i64 {
        now_secs() as i64 + self.clock_offset.load(Ordering::SeqCst)
    }

    /// The RSA key of the id tokens, made on first use (key generation is slow).
    fn key(&self) -> Option<&IdTokenKey> {
        self.key
            .get_or_init(|| {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).ok()?;
                let public = pair.public_key();
                let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
                let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
                let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(n.as_bytes())[..15]);
                let jwk = json!({
                    "kty": "RSA", "use": "sig", "kid": kid, "n": n, "e": e,
                    "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                });
                Some(IdTokenKey { pair, kid, jwk })
            })
            .as_ref()
    }

    /// Moves the identity clock `days` ahead: every refresh token ages with it.
    pub(crate) fn advance(&self, days: i64) {
        self.clock_offset.fetch_add(days * 86_400, Ordering::SeqCst);
    }

    /// Revokes every refresh token of a user, as "revoke sessions" or a password reset does.
    pub(crate) fn revoke_user(&self, tenant: u64, user: u64) -> usize {
        let mut refresh = lock(&self.refresh);
        let mut count = 0;
        for grant in refresh.values_mut() {
            if grant.tenant == tenant && grant.user == user && !grant.revoked {
                grant.revoked = true;
                count += 1;
            }
        }
        count
    }

    /// Withdraws a user's consent to every app: their refresh tokens stop working.
    pub(crate) fn withdraw_consent(&self, tenant: u64, user: u64) {
        lock(&self.consents).retain(|(t, _, u)| !(*t == tenant && *u == user));
    }

    /// How many live refresh tokens the simulator holds: a token handed out and forgotten by
    /// its client is not a leak here, but tests count them.
    pub(crate) fn live_refresh_tokens(&self) -> usize {
        lock(&self.refresh).values().filter(|g| !g.revoked).count()
    }
}

/// `/_sim/...`: moves the identity clock on.
pub(crate) fn advance_clock(state: &SimState, days: i64) {
    state.delegated.advance(days);
}

fn random_token(prefix: &str) -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let mut bytes = a.as_bytes().to_vec();
    bytes.extend_from_slice(b.as_bytes());
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The tenant a user of `upn` signs in to: from the path (a tenant id or domain), or for
/// `organizations`/`common` from the user's domain.
fn tenant_for<'a>(state: &'a SimState, tenant_key: &str, upn: &str) -> Option<&'a Tenant> {
    match tenant_key.to_ascii_lowercase().as_str() {
        "organizations" | "common" => {
            let domain = upn.rsplit_once('@').map(|(_, d)| d)?;
            state.tenant(domain)
        }
        _ => state.tenant(tenant_key),
    }
}

/// A user of `tenant` by user principal name, mail or id.
pub(crate) fn find_user(tenant: &Tenant, key: &str) -> Option<SimUser> {
    let key = key.trim().to_ascii_lowercase();
    if let Ok(id) = key.parse::<uuid::Uuid>() {
        return tenant
            .population
            .index_of(&id)
            .and_then(|index| tenant.user(index));
    }
    // Simulated tenants that sign people in are small; a scan is fine.
    (0..tenant.index_space().min(200_000))
        .filter_map(|i| tenant.user(i))
        .find(|u| {
            u.upn.eq_ignore_ascii_case(&key)
                || u.mail
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(&key))
        })
}

/// The app registration of `client_id`, whichever tenant it is registered in.
fn app_of<'a>(state: &'a SimState, client_id: &str) -> Option<&'a Tenant> {
    state
        .tenants
        .iter()
        .find(|t| t.client_id.to_string().eq_ignore_ascii_case(client_id))
}

/// Redirect URIs the simulated app registrations accept: loopback on any port and path, as
/// Entra accepts for `http://localhost` registrations.
fn redirect_allowed(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http"
            && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
            && u.fragment().is_none()
    })
}

/// Requested scopes in canonical form: OIDC ones as they are, Graph ones by short name.
fn parse_scopes(scope: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for raw in scope.split_whitespace() {
        let short = raw.strip_prefix(GRAPH_RESOURCE).unwrap_or(raw);
        let known = OIDC_SCOPES
            .iter()
            .chain(GRAPH_SCOPES)
            .find(|s| s.eq_ignore_ascii_case(short));
        match known {
            Some(s) => {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            None => return Err(raw.to_string()),
        }
    }
    Ok(out)
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response(),
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
    }
    // Entra sends the browser back with a 302.
    (StatusCode::FOUND, [("location", url.to_string())]).into_response()
}

fn redirect_error(
    state: &SimState,
    redirect_uri: &str,
    params: &HashMap<String, String>,
    error: &str,
    code: u64,
    text: &str,
) -> Response {
    let description = format!(
        "AADSTS{code}: {text} Trace ID: {} Correlation ID: {} Timestamp: {}",
        state.request_id(),
        state.request_id(),
        crate::state::civil_date((now_secs() / 86_400) as i64)
    );
    let mut pairs = vec![
        ("error", error),
        ("error_description", description.as_str()),
    ];
    if let Some(s) = params.get("state") {
        pairs.push(("state", s.as_str()));
    }
    redirect_with(redirect_uri, &pairs)
}

fn error_page(status: StatusCode, code: u64, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Sign in to your account</title></head><body><h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">AADSTS{code}: {}</p></body></html>",
        escape(text)
    );
    (status, Html(body)).into_response()
}

/// What the authorize request asks, checked before anything is shown.
struct AuthorizeRequest<'a> {
    app: &'a Tenant,
    redirect_uri: String,
    scopes: Vec<String>,
}

fn check_authorize<'a>(
    state: &'a SimState,
    params: &HashMap<String, String>,
) -> Result<AuthorizeRequest<'a>, Response> {
    let field = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let client_id = field("client_id");
    let Some(app) = app_of(state, client_id) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        ));
    };
    let redirect_uri = field("redirect_uri").to_string();
    if !redirect_allowed(&redirect_uri) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            50011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."
            ),
        ));
    }
    if field("response_type") != "code" {
        return Err(redirect_error(
            state,
            &redirect_uri,
            params,
            "unsupported_response_type",
            700054,
            "response_type 'code' is the one this app may use.",
        ));
    }
    let scopes = match parse_scopes(field("scope")) {
        Ok(scopes) => scopes,
        Err(unknown) => {
            return Err(redirect_error(
                state,
                &redirect_uri,
                params,
                "invalid_client",
                650053,
                &format!(
                    "The application asked for scope '{unknown}' that doesn't exist on the resource '00000003-0000-0000-c000-000000000000'."
                ),
            ));
        }
    };
    if scopes.is_empty() {
        return Err(redirect_error(
            state,
            &redirect_uri,
            params,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        ));
    }
    let method = field("code_challenge_method");
    if !field("code_challenge").is_empty() && !matches!(method, "" | "S256" | "plain") {
        return Err(redirect_error(
            state,
            &redirect_uri,
            params,
            "invalid_request",
            501491,
            &format!("Invalid code_challenge_method '{method}'. Use S256."),
        ));
    }
    Ok(AuthorizeRequest {
        app,
        redirect_uri,
        scopes,
    })
}

/// GET `/{tenant}/oauth2/v2.0/authorize`: the sign-in and consent page, or with `prompt=none`
/// a code at once where the user already consented.
pub(crate) async fn authorize_page(
    State(state): State<Arc<SimState>>,
    Path(tenant_key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let request = match check_authorize(&state, &params) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let field = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let hint = field("login_hint");
    if field("prompt") == "none" {
        let user =
            tenant_for(&state, &tenant_key, hint).and_then(|t| find_user(t, hint).map(|u| (t, u)));
        let Some((tenant, user)) = user else {
            return redirect_error(
                &state,
                &request.redirect_uri,
                &params,
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            );
        };
        let consented = lock(&state.delegated.consents).contains(&(
            tenant.index,
            request.app.client_id.to_string(),
            user.index,
        ));
        if !consented {
            return redirect_error(
                &state,
                &request.redirect_uri,
                &params,
                "consent_required",
                65001,
                "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
            );
        }
        return issue_code(&state, &params, &request, tenant, &user);
    }
    // `prompt=login` makes the user type who they are even when the app hinted it.
    let login = if field("prompt") == "login" { "" } else { hint };
    Html(sign_in_page(&tenant_key, &params, &request, login, None)).into_response()
}

fn sign_in_page(
    tenant_key: &str,
    params: &HashMap<String, String>,
    request: &AuthorizeRequest<'_>,
    login: &str,
    problem: Option<&str>,
) -> String {
    let hidden: String = params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "login" | "consent"))
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let permissions: String = request
        .scopes
        .iter()
        .map(|s| format!("<li class=\"permission\">{}</li>", escape(s)))
        .collect();
    let problem = problem
        .map(|p| format!("<p id=\"problem\" role=\"alert\">{}</p>", escape(p)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><title>Sign in to your account</title></head><body>\
<h1>Sign in</h1><p>{app} wants to:</p><ul id=\"permissions\">{permissions}</ul>{problem}\
<form method=\"post\" action=\"/{tenant}/oauth2/v2.0/authorize\">{hidden}\
<label>Email, phone, or Skype <input id=\"login\" name=\"login\" type=\"email\" value=\"{login}\"></label>\
<button id=\"accept\" name=\"consent\" value=\"accept\" type=\"submit\">Accept</button>\
<button id=\"cancel\" name=\"consent\" value=\"cancel\" type=\"submit\">Cancel</button>\
</form></body></html>",
        app = escape(&request.app.display_name),
        tenant = escape(tenant_key),
        login = escape(login),
    )
}

/// POST `/{tenant}/oauth2/v2.0/authorize`: the user's answer on the sign-in page.
pub(crate) async fn authorize_answer(
    State(state): State<Arc<SimState>>,
    Path(tenant_key): Path<String>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    let request = match check_authorize(&state, &params) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let field = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    if field("consent") != "accept" {
        return redirect_error(
            &state,
            &request.redirect_uri,
            &params,
            "access_denied",
            65004,
            "User declined to consent to access the app.",
        );
    }
    let login = field("login").trim();
    let found =
        tenant_for(&state, &tenant_key, login).and_then(|t| find_user(t, login).map(|u| (t, u)));
    let Some((tenant, user)) = found else {
        let page = sign_in_page(
            &tenant_key,
            &params,
            &request,
            login,
            Some("AADSTS50034: This username may be incorrect. Make sure you typed it correctly."),
        );
        return (StatusCode::OK, Html(page)).into_response();
    };
    if !user.account_enabled {
        let page = sign_in_page(
            &tenant_key,
            &params,
            &request,
            login,
            Some("AADSTS50057: The user account is disabled."),
        );
        return (StatusCode::OK, Html(page)).into_response();
    }
    lock(&state.delegated.consents).insert((
        tenant.index,
        request.app.client_id.to_string(),
        user.index,
    ));
    issue_code(&state, &params, &request, tenant, &user)
}

fn issue_code(
    state: &SimState,
    params: &HashMap<String, String>,
    request: &AuthorizeRequest<'_>,
    tenant: &Tenant,
    user: &SimUser,
) -> Response {
    let field = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let challenge = (!field("code_challenge").is_empty()).then(|| {
        let method = match field("code_challenge_method") {
            "" => "plain",
            m => m,
        };
        (field("code_challenge").to_string(), method.to_string())
    });
    let code = random_token("1.AQ");
    lock(&state.delegated.codes).insert(
        code.clone(),
        PendingCode {
            tenant: tenant.index,
            user: user.index,
            client_id: request.app.client_id.to_string(),
            redirect_uri: request.redirect_uri.clone(),
            challenge,
            scopes: request.scopes.clone(),
            nonce: params.get("nonce").cloned(),
            issued: state.delegated.now(),
            redeemed: false,
        },
    );
    let session = state.request_id();
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = params.get("state") {
        pairs.push(("state", s.as_str()));
    }
    pairs.push(("session_state", session.as_str()));
    redirect_with(&request.redirect_uri, &pairs)
}

/// The client's proof of itself on the token endpoint: `client_secret` in the body or HTTP
/// Basic, checked against the app's registration.
fn check_client(
    state: &SimState,
    form: &HashMap<String, String>,
    authorization: Option<&str>,
) -> Result<&'static str, Response> {
    let basic = authorization
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (client_id, secret) = match basic {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    let Some(app) = app_of(state, &client_id) else {
        return Err(aad_error(
            state,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    };
    if let Some(refusal) = crate::identity::check_secret(state, app, &secret, &client_id) {
        return Err(refusal);
    }
    Ok(if basic_used(authorization) {
        "client_secret_basic"
    } else {
        "client_secret_post"
    })
}

fn basic_used(authorization: Option<&str>) -> bool {
    authorization.is_some_and(|h| h.starts_with("Basic "))
}

fn client_id_of(form: &HashMap<String, String>, authorization: Option<&str>) -> String {
    if let Some(id) = authorization
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, _)| id.to_string()))
    {
        return id.to_ascii_lowercase();
    }
    form.get("client_id")
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default()
}

/// `grant_type=authorization_code` and `grant_type=refresh_token` on the token endpoint.
pub(crate) fn token_grant(
    state: &SimState,
    form: &HashMap<String, String>,
    authorization: Option<&str>,
) -> Response {
    if let Err(refusal) = check_client(state, form, authorization) {
        return refusal;
    }
    let client_id = client_id_of(form, authorization);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let delegated = &state.delegated;
    let now = delegated.now();
    let (tenant, user, scopes, nonce) = if field("grant_type") == "authorization_code" {
        let mut codes = lock(&delegated.codes);
        let Some(pending) = codes.get_mut(field("code")) else {
            return invalid_grant(
                state,
                70000,
                "The provided value for the 'code' parameter is not valid.",
            );
        };
        if pending.redeemed {
            return invalid_grant(
                state,
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            );
        }
        if now - pending.issued > CODE_LIFETIME {
            return invalid_grant(
                state,
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            );
        }
        if pending.client_id != client_id {
            return invalid_grant(
                state,
                70000,
                "The provided value for the 'code' parameter is not valid. The code was issued to a different client.",
            );
        }
        if pending.redirect_uri != field("redirect_uri") {
            return invalid_grant(
                state,
                500112,
                "The reply address does not match the reply address that was used to request the authorization code.",
            );
        }
        if let Some((challenge, method)) = &pending.challenge {
            let verifier = field("code_verifier");
            let computed = match method.as_str() {
                "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                _ => verifier.to_string(),
            };
            if verifier.is_empty() || &computed != challenge {
                // A wrong verifier burns the code, so that guessing is no use.
                pending.redeemed = true;
                return invalid_grant(
                    state,
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                );
            }
        }
        pending.redeemed = true;
        (
            pending.tenant,
            pending.user,
            pending.scopes.clone(),
            pending.nonce.clone(),
        )
    } else {
        let mut refresh = lock(&delegated.refresh);
        let Some(grant) = refresh.get_mut(field("refresh_token")) else {
            return invalid_grant(
                state,
                9002313,
                "Invalid request. Request is malformed or invalid: the refresh token is not one this directory issued.",
            );
        };
        if grant.client_id != client_id {
            return invalid_grant(
                state,
                70000,
                "The refresh token was issued to a different client.",
            );
        }
        if grant.revoked {
            return invalid_grant(
                state,
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
            );
        }
        let idle = now - grant.last_used;
        if idle > REFRESH_IDLE_LIMIT_DAYS * 86_400 {
            return invalid_grant(
                state,
                700082,
                &format!(
                    "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {}.00:00:00.",
                    crate::state::civil_date(grant.issued / 86_400),
                    REFRESH_IDLE_LIMIT_DAYS
                ),
            );
        }
        let consented = lock(&delegated.consents).contains(&(
            grant.tenant,
            grant.client_id.clone(),
            grant.user,
        ));
        if !consented {
            return invalid_grant(
                state,
                65001,
                "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
            );
        }
        grant.last_used = now;
        let mut scopes = grant.scopes.clone();
        if !field("scope").is_empty() {
            match parse_scopes(field("scope")) {
                Ok(asked) if asked.iter().all(|s| scopes.contains(s)) => scopes = asked,
                _ => {
                    return invalid_grant(
                        state,
                        65001,
                        "The user or administrator has not consented to use the application with the scopes asked. Send an interactive authorization request for this user and resource.",
                    );
                }
            }
            if !scopes.iter().any(|s| s == "offline_access") {
                scopes.push("offline_access".into());
            }
        }
        (grant.tenant, grant.user, scopes, None)
    };
    let Some(tenant) = state.tenants.get(tenant as usize) else {
        return invalid_grant(state, 90002, "The tenant no longer exists.");
    };
    let Some(user) = tenant.user(user) else {
        return invalid_grant(
            state,
            50034,
            "The user account does not exist in the directory anymore.",
        );
    };
    tokens(state, tenant, &user, &client_id, &scopes, nonce)
}

fn invalid_grant(state: &SimState, code: u64, text: &str) -> Response {
    aad_error(state, StatusCode::BAD_REQUEST, "invalid_grant", code, text)
}

fn tokens(
    state: &SimState,
    tenant: &Tenant,
    user: &SimUser,
    client_id: &str,
    scopes: &[String],
    nonce: Option<String>,
) -> Response {
    let now = now_secs();
    let lifetime = state.token_lifetime.as_secs();
    let graph: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|s| GRAPH_SCOPES.contains(s))
        .collect();
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{}/", tenant.id),
        "iat": now, "nbf": now, "exp": now + lifetime,
        "appid": client_id, "idtyp": "user",
        "name": user.display_name,
        "oid": user.id.to_string(),
        "scp": graph.join(" "),
        "sub": pairwise(user, client_id),
        "tid": tenant.id.to_string(),
        "upn": user.upn,
        "uti": state.request_id(),
        "ver": "1.0",
        "sim_generation": tenant.token_generation.load(Ordering::SeqCst),
    });
    let mut granted: Vec<String> = graph
        .iter()
        .map(|s| format!("{GRAPH_RESOURCE}{s}"))
        .collect();
    granted.extend(
        scopes
            .iter()
            .filter(|s| OIDC_SCOPES.contains(&s.as_str()))
            .cloned(),
    );
    let mut body = json!({
        "token_type": "Bearer",
        "scope": granted.join(" "),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": crate::identity::sign(&state.signing_key, &claims),
    });
    if scopes.iter().any(|s| s == "offline_access") {
        let refresh_token = random_token("1.AR");
        let issued = state.delegated.now();
        lock(&state.delegated.refresh).insert(
            refresh_token.clone(),
            RefreshGrant {
                tenant: tenant.index,
                user: user.index,
                client_id: client_id.to_string(),
                scopes: scopes.to_vec(),
                issued,
                last_used: issued,
                revoked: false,
            },
        );
        body["refresh_token"] = json!(refresh_token);
    }
    if scopes.iter().any(|s| s == "openid") {
        match id_token(state, tenant, user, client_id, scopes, nonce) {
            Some(token) => body["id_token"] = json!(token),
            None => {
                return aad_error(
                    state,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    90099,
                    "The id token could not be signed.",
                );
            }
        }
    }
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

/// The `sub` claim: the same user seen by different apps gets different subjects.
fn pairwise(user: &SimUser, client_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(format!("{}:{client_id}", user.id))[..24])
}

fn id_token(
    state: &SimState,
    tenant: &Tenant,
    user: &SimUser,
    client_id: &str,
    scopes: &[String],
    nonce: Option<String>,
) -> Option<String> {
    let key = state.delegated.key()?;
    let now = now_secs();
    let mut claims = json!({
        "aud": client_id,
        "iss": format!("{}/{}/v2.0", state.base_url, tenant.id),
        "iat": now, "nbf": now, "exp": now + 3600,
        "oid": user.id.to_string(),
        "sub": pairwise(user, client_id),
        "tid": tenant.id.to_string(),
        "ver": "2.0",
        "uti": state.request_id(),
    });
    if scopes.iter().any(|s| s == "profile") {
        claims["name"] = json!(user.display_name);
        claims["preferred_username"] = json!(user.upn);
    }
    if scopes.iter().any(|s| s == "email")
        && let Some(mail) = &user.mail
    {
        claims["email"] = json!(mail);
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.pair.public_modulus_len()];
    key.pair
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .ok()?;
    Some(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The published keys: the id tokens' RSA key. Access tokens stay opaque to clients, as
/// Microsoft asks, and are signed with a key that is never published.
pub(crate) fn keys_document(state: &SimState) -> serde_json::Value {
    match state.delegated.key() {
        Some(key) => json!({ "keys": [key.jwk] }),
        None => json!({ "keys": [] }),
    }
}
