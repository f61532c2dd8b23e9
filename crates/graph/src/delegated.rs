//! Delegated sign-in with the Microsoft identity platform: the authorization code flow with PKCE
//! and a `state` bound to one sign-in, the id token validated against the tenant's published
//! keys, and refresh tokens redeemed (each use returns a new one). The flows are the
//! `openidconnect` crate's; its HTTP goes through our reqwest client, which never follows a
//! redirect. Every refusal is explained in words with the fix, and no token or code ever
//! appears in an error's text.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreTokenResponse,
};
use openidconnect::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, IssuerUrl, JsonWebKeySetUrl, LoginHint, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use serde::Deserialize;

use crate::ClientCredential;

/// A token's value: a refresh or access token. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a delegated sign-in or refresh did not work, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum DelegatedError {
    #[error("Microsoft refused: {words} ({error}{}). {fix}", codes_text(.codes))]
    Refused {
        /// The OAuth error: `access_denied`, `invalid_grant`, `consent_required`…
        error: String,
        /// The AADSTS codes Microsoft gave.
        codes: Vec<u64>,
        words: String,
        fix: String,
    },
    #[error(
        "the answer from Microsoft does not belong to this sign-in (its state does not match the one sent). Start again with `m365sync account connect`; if it happens again, someone may be trying to slip their own sign-in into yours"
    )]
    StateMismatch,
    #[error(
        "the answer from Microsoft carries neither a code nor an error; start the sign-in again"
    )]
    NoCode,
    #[error(
        "Microsoft's id token could not be trusted: {0}. Nothing was saved; start the sign-in again, and if it persists check that the connection's cloud and tenant are right"
    )]
    IdToken(String),
    #[error(
        "Microsoft returned no refresh token. The sign-in must ask for offline_access; check that the app registration allows it"
    )]
    NoRefreshToken,
    #[error("could not reach Microsoft's identity platform at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("Microsoft's answer to the token request could not be read ({0}); try again later")]
    Unreadable(String),
    #[error("the connection's settings cannot make a sign-in: {0}")]
    Setup(String),
}

fn codes_text(codes: &[u64]) -> String {
    codes.iter().map(|c| format!(", AADSTS{c}")).collect()
}

impl DelegatedError {
    /// Whether only the person signing in again can fix it: the refresh token is dead.
    pub fn needs_reconnect(&self) -> bool {
        matches!(self, Self::Refused { error, .. } if matches!(error.as_str(), "invalid_grant" | "interaction_required" | "consent_required" | "login_required"))
    }

    pub fn codes(&self) -> &[u64] {
        match self {
            Self::Refused { codes, .. } => codes,
            _ => &[],
        }
    }

    /// A refusal from its OAuth `error` and `error_description` (which starts `AADSTS<n>: `).
    pub fn refused(error: &str, description: Option<&str>) -> Self {
        let codes = aadsts_codes(description.unwrap_or_default());
        let (words, fix) = explain(error, &codes);
        Self::Refused {
            error: error.to_string(),
            codes,
            words,
            fix,
        }
    }
}

fn aadsts_codes(description: &str) -> Vec<u64> {
    let mut codes = Vec::new();
    let mut rest = description;
    while let Some(at) = rest.find("AADSTS") {
        let digits: String = rest[at + 6..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if let Ok(code) = digits.parse() {
            codes.push(code);
        }
        rest = &rest[at + 6..];
    }
    codes
}

/// Where a person reads an explanation: the fix names what they can do there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    CommandLine,
    WebPages,
}

/// What a refusal means and how to fix it, for the command line. Microsoft asks clients to
/// branch on the codes, never on the description's text.
pub fn explain(error: &str, codes: &[u64]) -> (String, String) {
    explain_on(error, codes, Surface::CommandLine)
}

/// What a refusal means and how to fix it, with the fix in the terms of `surface`.
pub fn explain_on(error: &str, codes: &[u64], surface: Surface) -> (String, String) {
    let (reconnect, redirect_hint, credential_check, silent) = match surface {
        Surface::CommandLine => (
            "Connect the account again with `m365sync account connect`",
            "Add the redirect URI that `m365sync account connect` prints to the app registration (Authentication → Web → Redirect URIs)",
            "Fix the connection's client secret or certificate (`m365sync connection test` says which), then connect again",
            "without --prompt none",
        ),
        Surface::WebPages => (
            "Connect the account again (Accounts → Connect account, or Re-connect beside it)",
            "Add the redirect URI shown on the Connect account page to the app registration (Authentication → Web → Redirect URIs)",
            "Fix the connection's client secret or certificate (Test on the connection's page says which), then connect again",
            "with the prompt left empty or set to login",
        ),
    };
    let has = |c: u64| codes.contains(&c);
    let (words, fix): (&str, String) = if has(65004) || error == "access_denied" {
        (
            "the person declined the permissions the app asked for",
            format!(
                "{reconnect} and choose Accept; or an administrator grants consent for the whole organisation in the Entra admin center (Enterprise applications → the app → Permissions)"
            ),
        )
    } else if has(65001) || error == "consent_required" {
        (
            "the app has no consent for these permissions from this person or their organisation",
            format!(
                "{reconnect} and accept the permissions, or have an administrator grant admin consent for the app in the Entra admin center"
            ),
        )
    } else if has(50076) || has(50079) || error == "interaction_required" {
        (
            "the person's organisation requires multi-factor authentication or another interactive step",
            format!("{reconnect} and complete the sign-in in the browser"),
        )
    } else if has(700082) || has(70008) {
        (
            "the refresh token expired after going unused for Microsoft's 90-day limit",
            format!(
                "{reconnect}; keep `m365sync serve` running so that accounts are refreshed every week"
            ),
        )
    } else if has(50173) || has(50133) || has(50089) {
        (
            "the sign-in was revoked: the password was changed or reset, or an administrator revoked the person's sessions",
            reconnect.to_string(),
        )
    } else if has(54005) {
        (
            "the sign-in code was already used",
            "Start the sign-in again: a code works only once".to_string(),
        )
    } else if has(501481) || has(50148) {
        (
            "the PKCE code verifier does not match the challenge sent with the sign-in",
            "Start the sign-in again; if it persists, something between m365sync and Microsoft changes the requests".to_string(),
        )
    } else if has(50011) || has(500112) || has(50148) {
        (
            "the redirect URI is not one registered on the app",
            redirect_hint.to_string(),
        )
    } else if has(7000215) || has(7000218) || has(7000222) || error == "invalid_client" {
        (
            "the connection's app credential was not accepted",
            credential_check.to_string(),
        )
    } else if has(700016) || error == "unauthorized_client" {
        (
            "the app is not known in this tenant",
            "Check the connection's client id and tenant, and that the app registration is multi-tenant if people from other organisations connect".to_string(),
        )
    } else if has(650053) || error == "invalid_scope" || error == "invalid_client" {
        (
            "the app asked for a permission Microsoft Graph does not have",
            "Add the delegated permissions Calendars.ReadWrite and Calendars.ReadWrite.Shared to the app registration".to_string(),
        )
    } else if has(50034) {
        (
            "the user account does not exist in the directory",
            "Sign in with an account of the organisation".to_string(),
        )
    } else if has(50057) {
        (
            "the user account is disabled",
            "Ask an administrator to enable it, or connect another account".to_string(),
        )
    } else if error == "login_required" {
        (
            "nobody is signed in to Microsoft in this browser",
            format!("{reconnect} {silent}"),
        )
    } else if error == "invalid_grant" {
        (
            "the code or refresh token is no longer valid",
            reconnect.to_string(),
        )
    } else if error == "temporarily_unavailable" || error == "server_error" {
        (
            "Microsoft's sign-in service is unavailable for now",
            "Try again in a few minutes".to_string(),
        )
    } else {
        ("the sign-in did not succeed", reconnect.to_string())
    };
    (words.to_string(), fix)
}

/// Where the person is sent, and what must be kept until they come back: the state, the
/// nonce and the PKCE verifier of this one sign-in.
pub struct PendingSignIn {
    pub url: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

impl fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIn").finish_non_exhaustive()
    }
}

impl PendingSignIn {
    /// The state sent with the sign-in: what a callback is matched to its sign-in by.
    pub fn state(&self) -> &str {
        self.state.secret()
    }

    /// The nonce the id token must carry: a secret to keep (sealed) until Microsoft answers.
    pub fn nonce_secret(&self) -> &str {
        self.nonce.secret()
    }

    /// The PKCE verifier the code is redeemed with: a secret to keep (sealed) until then.
    pub fn verifier_secret(&self) -> &str {
        self.verifier.secret()
    }

    /// A sign-in kept elsewhere meanwhile (another process, a restart), as it was started.
    pub fn resume(url: String, state: String, nonce: String, verifier: String) -> Self {
        Self {
            url,
            state: CsrfToken::new(state),
            nonce: Nonce::new(nonce),
            verifier: PkceCodeVerifier::new(verifier),
        }
    }
}

/// The query Microsoft sends back to the redirect URI.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl Callback {
    pub fn from_query(query: &str) -> Self {
        let mut callback = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = Some(value.into_owned());
            match key.as_ref() {
                "code" => callback.code = value,
                "state" => callback.state = value,
                "error" => callback.error = value,
                "error_description" => callback.error_description = value,
                _ => {}
            }
        }
        callback
    }
}

/// A short-lived delegated access token.
#[derive(Clone, Debug)]
pub struct DelegatedAccessToken {
    pub value: SecretToken,
    pub expires_at: Instant,
}

/// Who signed in, from the validated id token, and their tokens.
#[derive(Debug)]
pub struct SignedIn {
    pub tenant_id: String,
    pub object_id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    pub refresh_token: SecretToken,
    pub access_token: DelegatedAccessToken,
}

/// What a refresh gave: a new access token and the refresh token that replaces the one used.
#[derive(Debug)]
pub struct Refreshed {
    pub access_token: DelegatedAccessToken,
    pub refresh_token: SecretToken,
    pub scopes: Vec<String>,
}

/// Microsoft's claims beyond the standard ones, read from an id token already verified.
#[derive(Deserialize)]
struct MicrosoftClaims {
    tid: String,
    oid: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
>;

/// An app registration signing people in: the authority, the app, where Microsoft sends them
/// back, and the delegated permissions asked for.
pub struct DelegatedApp {
    login: String,
    tenant: String,
    client_id: String,
    credential: ClientCredential,
    redirect_uri: String,
    scopes: Vec<String>,
    http: reqwest::Client,
}

impl fmt::Debug for DelegatedApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegatedApp")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl DelegatedApp {
    /// `login` is the cloud's login base (no trailing slash); `tenant` a tenant id, a verified
    /// domain, or `organizations`; `scopes` as Microsoft names them
    /// (`openid`, `https://graph.microsoft.com/Calendars.ReadWrite`).
    pub fn new(
        login: &str,
        tenant: &str,
        client_id: &str,
        credential: ClientCredential,
        redirect_uri: &str,
        scopes: Vec<String>,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self, DelegatedError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("m365sync/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = extra_ca_pem {
            builder = builder.tls_certs_merge(
                crate::parse_ca_bundle(pem).map_err(|e| DelegatedError::Setup(e.to_string()))?,
            );
        }
        let http = builder
            .build()
            .map_err(|e| DelegatedError::Setup(e.to_string()))?;
        Ok(Self {
            login: login.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            credential,
            redirect_uri: redirect_uri.to_string(),
            scopes,
            http,
        })
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    fn authority(&self) -> String {
        format!("{}/{}", self.login, self.tenant)
    }

    fn token_url(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.authority())
    }

    fn client(&self, keys: CoreJsonWebKeySet) -> Result<OidcClient, DelegatedError> {
        let setup = |e: &dyn fmt::Display| DelegatedError::Setup(e.to_string());
        let authority = self.authority();
        let client = CoreClient::new(
            ClientId::new(self.client_id.clone()),
            IssuerUrl::new(format!("{authority}/v2.0")).map_err(|e| setup(&e))?,
            keys,
        )
        .set_auth_uri(
            AuthUrl::new(format!("{authority}/oauth2/v2.0/authorize")).map_err(|e| setup(&e))?,
        )
        .set_token_uri(TokenUrl::new(self.token_url()).map_err(|e| setup(&e))?)
        .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| setup(&e))?)
        // Microsoft takes the client's proof in the body (secret or certificate assertion).
        .set_auth_type(AuthType::RequestBody);
        Ok(match &self.credential {
            ClientCredential::Secret(secret) => {
                client.set_client_secret(ClientSecret::new(secret.expose().to_string()))
            }
            ClientCredential::Certificate(_) => client,
        })
    }

    /// The client-assertion fields when the app proves itself with a certificate.
    fn assertion(&self) -> Vec<(&'static str, String)> {
        match &self.credential {
            ClientCredential::Secret(_) => Vec::new(),
            ClientCredential::Certificate(certificate) => vec![
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
                ),
                (
                    "client_assertion",
                    certificate.assertion(&self.token_url(), &self.client_id),
                ),
            ],
        }
    }

    /// A new sign-in: the URL to send the person to, with a fresh state, nonce and S256 PKCE
    /// challenge. `prompt` is Microsoft's (`login`, `consent`, `select_account`, `none`).
    pub fn start(
        &self,
        prompt: Option<&str>,
        login_hint: Option<&str>,
    ) -> Result<PendingSignIn, DelegatedError> {
        let client = self.client(CoreJsonWebKeySet::new(Vec::new()))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.scopes {
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        if let Some(prompt) = prompt {
            let prompt = match prompt {
                "login" => CoreAuthPrompt::Login,
                "consent" => CoreAuthPrompt::Consent,
                "select_account" => CoreAuthPrompt::SelectAccount,
                "none" => CoreAuthPrompt::None,
                other => {
                    return Err(DelegatedError::Setup(format!(
                        "'{other}' is not a prompt Microsoft knows; use login, consent, select_account or none"
                    )));
                }
            };
            request = request.add_prompt(prompt);
        }
        if let Some(hint) = login_hint {
            request = request.set_login_hint(LoginHint::new(hint.to_string()));
        }
        let (url, state, nonce) = request.url();
        Ok(PendingSignIn {
            url: url.to_string(),
            state,
            nonce,
            verifier,
        })
    }

    /// Finishes a sign-in from what Microsoft sent to the redirect URI: checks the state,
    /// redeems the code with the PKCE verifier, and validates the id token's signature (against
    /// the keys the tenant publishes), issuer, audience, lifetime and nonce.
    pub async fn finish(
        &self,
        pending: PendingSignIn,
        callback: &Callback,
    ) -> Result<SignedIn, DelegatedError> {
        let state_matches = callback.state.as_deref().is_some_and(|given| {
            constant_time_eq(given.as_bytes(), pending.state.secret().as_bytes())
        });
        if !state_matches {
            return Err(DelegatedError::StateMismatch);
        }
        if let Some(error) = &callback.error {
            return Err(DelegatedError::refused(
                error,
                callback.error_description.as_deref(),
            ));
        }
        let code = callback.code.clone().ok_or(DelegatedError::NoCode)?;
        let keys = self.keys().await?;
        let client = self.client(keys)?;
        let mut exchange = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(pending.verifier);
        for (name, value) in self.assertion() {
            exchange = exchange.add_extra_param(name, value);
        }
        let http = OidcHttp(self.http.clone());
        let response = exchange
            .request_async(&http)
            .await
            .map_err(|e| token_error(e, &self.token_url()))?;
        let id_token = response.id_token().ok_or_else(|| {
            DelegatedError::IdToken("the answer has no id token (was openid asked for?)".into())
        })?;
        // At `organizations` the issuer names the person's own tenant: checked by hand below.
        let verifier = client.id_token_verifier().require_issuer_match(false);
        let claims = id_token
            .claims(&verifier, &pending.nonce)
            .map_err(|e| DelegatedError::IdToken(e.to_string()))?;
        let extra = microsoft_claims(&id_token.to_string())?;
        let expected_issuer = format!("{}/{}/v2.0", self.login, extra.tid);
        if claims.issuer().as_str() != expected_issuer {
            return Err(DelegatedError::IdToken(format!(
                "it was issued by {} rather than {expected_issuer}",
                claims.issuer().as_str()
            )));
        }
        if is_guid(&self.tenant) && !self.tenant.eq_ignore_ascii_case(&extra.tid) {
            return Err(DelegatedError::IdToken(format!(
                "the person signed in to tenant {} rather than the connection's {}",
                extra.tid, self.tenant
            )));
        }
        let username = claims
            .preferred_username()
            .map(|u| u.as_str().to_string())
            .ok_or_else(|| {
                DelegatedError::IdToken(
                    "it names no preferred_username (was profile asked for?)".into(),
                )
            })?;
        let display_name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string());
        let refresh_token = response
            .refresh_token()
            .map(|t| SecretToken::new(t.secret().clone()))
            .ok_or(DelegatedError::NoRefreshToken)?;
        Ok(SignedIn {
            tenant_id: extra.tid,
            object_id: extra.oid,
            username,
            display_name,
            scopes: granted_scopes(&response),
            refresh_token,
            access_token: access_token_of(&response),
        })
    }

    /// Redeems a refresh token for an access token and the refresh token that replaces it.
    pub async fn refresh(&self, refresh_token: &SecretToken) -> Result<Refreshed, DelegatedError> {
        let client = self.client(CoreJsonWebKeySet::new(Vec::new()))?;
        let token = RefreshToken::new(refresh_token.expose().to_string());
        let mut request = client.exchange_refresh_token(&token);
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        for (name, value) in self.assertion() {
            request = request.add_extra_param(name, value);
        }
        let http = OidcHttp(self.http.clone());
        let response = request
            .request_async(&http)
            .await
            .map_err(|e| token_error(e, &self.token_url()))?;
        let next = response
            .refresh_token()
            .map(|t| SecretToken::new(t.secret().clone()))
            .ok_or(DelegatedError::NoRefreshToken)?;
        Ok(Refreshed {
            access_token: access_token_of(&response),
            refresh_token: next,
            scopes: granted_scopes(&response),
        })
    }

    async fn keys(&self) -> Result<CoreJsonWebKeySet, DelegatedError> {
        let url = format!("{}/discovery/v2.0/keys", self.authority());
        let keys_url =
            JsonWebKeySetUrl::new(url.clone()).map_err(|e| DelegatedError::Setup(e.to_string()))?;
        let http = OidcHttp(self.http.clone());
        CoreJsonWebKeySet::fetch_async(&keys_url, &http)
            .await
            .map_err(|e| DelegatedError::Unreachable {
                url,
                message: format!("the signing keys could not be read: {e}"),
            })
    }
}

fn is_guid(text: &str) -> bool {
    text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn microsoft_claims(jwt: &str) -> Result<MicrosoftClaims, DelegatedError> {
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| DelegatedError::IdToken("it is not a JWT".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| DelegatedError::IdToken("its claims are not base64url".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| DelegatedError::IdToken("it names no tid or oid".into()))
}

fn granted_scopes(response: &CoreTokenResponse) -> Vec<String> {
    response
        .scopes()
        .map(|scopes| scopes.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default()
}

fn access_token_of(response: &CoreTokenResponse) -> DelegatedAccessToken {
    let lifetime = response
        .expires_in()
        .unwrap_or(Duration::from_secs(3600))
        .min(Duration::from_secs(24 * 3600));
    DelegatedAccessToken {
        value: SecretToken::new(response.access_token().secret().clone()),
        expires_at: Instant::now() + lifetime,
    }
}

type TokenRequestError = RequestTokenError<
    TransportError,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
>;

/// A token-endpoint failure as our error. The response body is never quoted: a malformed answer
/// may still carry a token.
fn token_error(error: TokenRequestError, url: &str) -> DelegatedError {
    match error {
        RequestTokenError::ServerResponse(response) => DelegatedError::refused(
            response.error().as_ref(),
            response.error_description().map(String::as_str),
        ),
        RequestTokenError::Request(e) => DelegatedError::Unreachable {
            url: url.to_string(),
            message: e.to_string(),
        },
        RequestTokenError::Parse(e, _body) => {
            DelegatedError::Unreadable(format!("unexpected content at {}", e.path()))
        }
        RequestTokenError::Other(message) => DelegatedError::Unreadable(message),
    }
}

/// Our reqwest client as the `openidconnect` crate's HTTP client. A named type rather than a
/// closure, so that the futures of the flows are `Send` (a closure's are not provably so).
struct OidcHttp(reqwest::Client);

/// One exchange's answer, on its way.
type Exchange<'c> =
    Pin<Box<dyn Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send + 'c>>;

impl<'c> openidconnect::AsyncHttpClient<'c> for OidcHttp {
    type Error = TransportError;
    type Future = Exchange<'c>;

    fn call(&'c self, request: http::Request<Vec<u8>>) -> Self::Future {
        send(self.0.clone(), request)
    }
}

/// One HTTP exchange for the `openidconnect` crate, over our reqwest client.
fn send(http: reqwest::Client, request: http::Request<Vec<u8>>) -> Exchange<'static> {
    Box::pin(async move {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let mut builder = http.request(parts.method, &url).body(body);
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| TransportError(e.without_url().to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| TransportError(e.without_url().to_string()))?;
        let mut out = http::Response::builder().status(status);
        for (name, value) in &headers {
            out = out.header(name, value);
        }
        out.body(bytes.to_vec())
            .map_err(|e| TransportError(e.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_the_description_and_explained() {
        let error = DelegatedError::refused(
            "invalid_grant",
            Some("AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: x"),
        );
        assert_eq!(error.codes(), &[700082]);
        assert!(error.needs_reconnect());
        let text = error.to_string();
        assert!(text.contains("90-day"), "{text}");
        assert!(text.contains("m365sync account connect"), "{text}");
    }

    #[test]
    fn every_named_failure_has_its_own_words() {
        for (error, code, words) in [
            ("access_denied", 65004, "declined"),
            ("invalid_grant", 65001, "no consent"),
            ("interaction_required", 50076, "multi-factor"),
            ("invalid_grant", 50173, "revoked"),
            ("invalid_grant", 54005, "already used"),
            ("invalid_grant", 501481, "PKCE"),
        ] {
            let (said, _) = explain(error, &[code]);
            assert!(said.contains(words), "{code}: {said}");
        }
    }

    #[test]
    fn a_callback_query_is_read_whatever_its_order() {
        let callback = Callback::from_query("state=s%201&code=abc&session_state=x");
        assert_eq!(callback.code.as_deref(), Some("abc"));
        assert_eq!(callback.state.as_deref(), Some("s 1"));
        assert!(callback.error.is_none());
    }
}
