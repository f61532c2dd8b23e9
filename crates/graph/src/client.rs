//! Requests to Microsoft Graph: tokens on demand, retries, paging one page at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Response, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tracing::{debug, info};

use crate::error::Excerpt;
use crate::observe::RequestCounters;
use crate::pacing::{Cost, Pacer};
use crate::retry::{RetryAfter, is_retryable_status};
use crate::token::{TokenErrorBody, TokenResponse};
use crate::{AccessToken, AppCredentials, GraphError, Result, RetryPolicy};

/// Where to ask for tokens and data, without trailing slashes.
#[derive(Debug, Clone)]
pub struct GraphEndpoints {
    pub login: String,
    pub graph: String,
    /// The `.default` scope of the Graph resource in this cloud.
    pub scope: String,
}

/// One app's view of one tenant. Clones share one token and one count against Microsoft's
/// budgets, so that a page fetched ahead in a task of its own spends from the same count.
#[derive(Clone)]
pub struct GraphClient(Arc<ClientState>);

impl std::ops::Deref for GraphClient {
    type Target = ClientState;
    fn deref(&self) -> &ClientState {
        &self.0
    }
}

/// What the clones of one [`GraphClient`] share.
#[doc(hidden)]
pub struct ClientState {
    http: reqwest::Client,
    endpoints: GraphEndpoints,
    credentials: AppCredentials,
    retry: RetryPolicy,
    token: Mutex<Option<AccessToken>>,
    /// This app's count in this tenant, shared by every request the client sends.
    pacer: Pacer,
    /// Where its answers and waits are counted, for `/metrics`.
    counters: Arc<RequestCounters>,
}

/// What one attempt came to, for the retry loop.
pub(crate) enum Attempt<T> {
    Done(T),
    Retry {
        status: Option<u16>,
        retry_after: Option<RetryAfter>,
        reason: String,
    },
    Fail(GraphError),
}

/// One page of a Graph collection as it was read: its items and where the listing goes on.
#[derive(Debug, Deserialize)]
pub struct PageBody<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorInner,
}

#[derive(Deserialize)]
struct GraphErrorInner {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, alias = "innererror", rename = "innerError")]
    inner: Option<GraphInnerError>,
}

#[derive(Deserialize)]
struct GraphInnerError {
    #[serde(rename = "request-id")]
    request_id: Option<String>,
}

impl GraphClient {
    /// Builds a client with its own connection pool. Redirects are never followed automatically:
    /// the report download is followed by hand so that the bearer token cannot go with it.
    pub fn new(
        endpoints: GraphEndpoints,
        credentials: AppCredentials,
        retry: RetryPolicy,
    ) -> Result<Self> {
        Self::trusting(endpoints, credentials, retry, None)
    }

    /// `new`, also trusting the CA certificates of `extra_ca_pem` beside the system's: for a
    /// TLS-inspecting proxy, or the simulator's own certificate.
    pub fn trusting(
        endpoints: GraphEndpoints,
        credentials: AppCredentials,
        retry: RetryPolicy,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("m365sync/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = extra_ca_pem {
            builder = builder.tls_certs_merge(parse_ca_bundle(pem)?);
        }
        let http = builder.build().map_err(|e| GraphError::Unreachable {
            url: endpoints.graph.clone(),
            attempts: 0,
            message: e.to_string(),
        })?;
        Ok(Self::with_http(http, endpoints, credentials, retry))
    }

    /// A client for another tenant or resource over this one's HTTP client (its connections
    /// and trusted certificates): building an HTTP client reads and parses the system's CA
    /// certificates, which a partner's run did twice for every customer. The new client has
    /// its own token and pacing. Meant for clients of one run, which lives on one runtime.
    pub fn alongside(
        &self,
        endpoints: GraphEndpoints,
        credentials: AppCredentials,
        retry: RetryPolicy,
    ) -> Self {
        Self::with_http(self.0.http.clone(), endpoints, credentials, retry)
    }

    pub fn with_http(
        http: reqwest::Client,
        endpoints: GraphEndpoints,
        credentials: AppCredentials,
        retry: RetryPolicy,
    ) -> Self {
        let pacer = Pacer::new(retry.pacing.clone());
        Self(Arc::new(ClientState {
            http,
            endpoints,
            credentials,
            retry,
            token: Mutex::new(None),
            pacer,
            counters: crate::observe::counters(""),
        }))
    }

    /// Counts this client's answers and waits under `label` (the connection it works for)
    /// rather than under no label. Meant for a client just made: its clones (pagers reading
    /// ahead) keep counting where the client counted when they were made.
    pub fn counted_as(mut self, label: &str) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(state) => state.counters = crate::observe::counters(label),
            None => tracing::warn!(
                label,
                "a shared client's requests stay counted where they were"
            ),
        }
        self
    }

    pub(crate) fn counters(&self) -> &RequestCounters {
        &self.counters
    }

    /// Tells the pacer how many users the tenant has: Microsoft's directory budget grows with
    /// it. Until told, the pacer keeps to the smallest.
    pub fn set_tenant_users(&self, users: u64) {
        self.pacer.set_tenant_users(users);
    }

    /// How long `requests` requests like `path_or_url` take within the budgets, and the budget
    /// that sets it; `None` when the client does not pace.
    pub fn paced_duration(
        &self,
        path_or_url: &str,
        requests: u64,
    ) -> Option<(Duration, crate::Budget)> {
        let url = self.absolute(path_or_url).ok()?;
        self.pacer.duration_of(&self.costs_of(&url), requests)
    }

    /// What a request to `url` spends of Microsoft's budgets: nothing beyond Graph's host.
    pub(crate) fn costs_of(&self, url: &str) -> Vec<Cost> {
        let Some(rest) = url.strip_prefix(self.endpoints.graph.as_str()) else {
            return Vec::new();
        };
        let rest = rest.trim_start_matches('/');
        let Some(relative) = rest
            .strip_prefix("v1.0/")
            .or_else(|| rest.strip_prefix("beta/"))
        else {
            return Vec::new();
        };
        crate::pacing::costs_of_relative(relative)
    }

    /// Waits until requests spending `costs` fit in the budgets, booking them. A `retry` has
    /// waited already what Graph asked for.
    pub(crate) async fn pace(&self, costs: &[Cost], retry: bool) {
        let wait = self.pacer.reserve(costs, Instant::now(), retry);
        if !wait.is_zero() {
            debug!(
                wait_ms = wait.as_millis() as u64,
                "pacing to Microsoft's limits"
            );
            self.counters.pacing_wait(wait);
            self.retry.wait(wait).await;
        }
    }

    /// Takes what Graph's answer says of the count: the share used, and a 429's wait.
    pub(crate) fn heard(
        &self,
        costs: &[Cost],
        status: u16,
        share: Option<&str>,
        retry_after: Option<&str>,
    ) {
        if costs.is_empty() {
            return;
        }
        let share = share.and_then(|s| s.trim().parse::<f64>().ok());
        let wait = (status == 429)
            .then(|| retry_after.and_then(crate::retry::parse_retry_after))
            .flatten()
            .map(|w| w.min(self.retry.max_retry_after));
        self.pacer
            .observe(costs, status, share, wait, Instant::now());
    }

    /// Whether requests spending `costs` can go in one batch without overdrawing a budget.
    pub(crate) fn fits_one_batch(&self, costs: &[Cost]) -> bool {
        self.pacer.fits_at_once(costs)
    }

    pub fn endpoints(&self) -> &GraphEndpoints {
        &self.endpoints
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A token for Graph, from the cache while it has more than two minutes to live.
    pub async fn token(&self) -> Result<AccessToken> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(token.clone());
        }
        let token = self.fetch_token().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    pub(crate) async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    async fn fetch_token(&self) -> Result<AccessToken> {
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.endpoints.login, self.credentials.tenant
        );
        self.with_retry(&url, || async {
            // Built per attempt: an assertion is single-use and short-lived.
            let mut form = vec![
                ("client_id", self.credentials.client_id.clone()),
                ("scope", self.endpoints.scope.clone()),
                ("grant_type", "client_credentials".to_string()),
            ];
            form.extend(self.credentials.proof(&url));
            let response = match self.http.post(&url).form(&form).send().await {
                Ok(r) => r,
                Err(e) => {
                    self.counters.unanswered();
                    return transport_failure(&e);
                }
            };
            let status = response.status().as_u16();
            self.counters.answered(status);
            if is_retryable_status(status) {
                return retry_answer(&response, "token endpoint busy");
            }
            let body = match response.bytes().await {
                Ok(b) => b,
                Err(e) => return transport_failure(&e),
            };
            if status == 200 {
                return match crate::text::from_json::<TokenResponse>(&body) {
                    Ok(parsed) => {
                        Attempt::Done(AccessToken::from_response(&parsed, Instant::now()))
                    }
                    Err(e) => Attempt::Fail(GraphError::Malformed {
                        url: url.clone(),
                        detail: format!("token response: {e}"),
                    }),
                };
            }
            let error: TokenErrorBody = crate::text::from_json(&body).unwrap_or_default();
            if error.error.is_empty() {
                return Attempt::Fail(GraphError::Malformed {
                    url: url.clone(),
                    detail: format!(
                        "token endpoint answered {status} with {}",
                        Excerpt(&String::from_utf8_lossy(&body))
                    ),
                });
            }
            let codes = error.codes();
            Attempt::Fail(GraphError::Token {
                problem: crate::TokenProblem::from_codes(&codes),
                status,
                oauth_error: error.error.clone(),
                aadsts: codes,
                description: error.summary(),
            })
        })
        .await
    }

    /// Runs attempts until one is done or fails for good, waiting between them as the policy and
    /// the server say; every wait is logged.
    pub(crate) async fn with_retry<T, F, Fut>(&self, url: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let max = self.retry.max_attempts.max(1);
        let mut n = 1;
        loop {
            match attempt().await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry {
                    status,
                    retry_after,
                    reason,
                } => {
                    if n >= max {
                        return Err(match status {
                            Some(last_status) => GraphError::Throttled {
                                attempts: n,
                                last_status,
                                url: url.to_string(),
                            },
                            None => GraphError::Unreachable {
                                url: url.to_string(),
                                attempts: n,
                                message: reason,
                            },
                        });
                    }
                    let wait = self.retry.delay_after(n, retry_after.as_ref(), url, status);
                    // A detail at the default verbosity: the run's outcome says what came of
                    // it (an error names the attempts), and -v shows each wait.
                    info!(
                        url,
                        attempt = n,
                        ?status,
                        wait_ms = wait.as_millis() as u64,
                        reason,
                        "retrying after a wait"
                    );
                    self.counters.retry_wait(wait);
                    self.retry.wait(wait).await;
                    n += 1;
                }
            }
        }
    }

    /// GETs a Graph URL (absolute, or a path under the Graph base) and parses the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, path_or_url: &str) -> Result<T> {
        let url = self.absolute(path_or_url)?;
        let body = self.get_bytes(&url).await?;
        crate::text::from_json(&body).map_err(|e| GraphError::Malformed {
            url,
            detail: e.to_string(),
        })
    }

    /// Lists a collection one page at a time, following `@odata.nextLink` until there is none.
    pub fn pages<T: DeserializeOwned + Send + 'static>(&self, path_or_url: &str) -> Pager<'_, T> {
        Pager {
            client: self.clone(),
            next: Some(self.absolute(path_or_url)),
            ahead: None,
            pages: 0,
            prefer: None,
            delta_link: None,
            _borrow: std::marker::PhantomData,
        }
    }

    /// GETs JSON and the value of one response header: the Management Activity API pages by a
    /// `NextPageUri` header instead of a link in the body.
    pub async fn get_json_and_header<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        header_name: &'static str,
    ) -> Result<(T, Option<String>)> {
        let url = self.absolute(path_or_url)?;
        let (body, header) = self
            .send_get(&url, |response| async move {
                let header = response
                    .headers()
                    .get(header_name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                match response.bytes().await {
                    Ok(b) => Attempt::Done((b, header)),
                    Err(e) => transport_failure(&e),
                }
            })
            .await?;
        let parsed = crate::text::from_json(&body).map_err(|e| GraphError::Malformed {
            url,
            detail: e.to_string(),
        })?;
        Ok((parsed, header))
    }

    /// POSTs with no body and reads the JSON answer (starting a subscription is idempotent, so it
    /// is retried like a GET).
    pub async fn post_empty<T: DeserializeOwned>(&self, path_or_url: &str) -> Result<T> {
        let url = self.absolute(path_or_url)?;
        let body = self
            .send_with(
                &url,
                |http, bearer| {
                    http.post(&url)
                        .header(header::AUTHORIZATION, bearer)
                        .header(header::CONTENT_LENGTH, "0")
                },
                read_body,
            )
            .await?;
        crate::text::from_json(&body).map_err(|e| GraphError::Malformed {
            url,
            detail: e.to_string(),
        })
    }

    /// Asks for one item of a resource to learn whether the app may read it.
    pub async fn probe(&self, path: &str) -> Result<()> {
        let url = self.absolute(path)?;
        self.send_get(&url, read_body).await.map(|_| ())
    }

    async fn get_bytes(&self, url: &str) -> Result<bytes::Bytes> {
        self.get_bytes_preferring(url, None).await
    }

    async fn get_bytes_preferring(&self, url: &str, prefer: Option<&str>) -> Result<bytes::Bytes> {
        self.send_get_preferring(url, prefer, read_body).await
    }

    /// GETs with the bearer token. Success (2xx and 3xx) goes to `read`; throttling and transport
    /// failures are retried; a 401 for an expired token is retried once with a new token; any
    /// other answer becomes a typed error.
    pub(crate) async fn send_get<T, R, RFut>(&self, url: &str, read: R) -> Result<T>
    where
        R: Fn(Response) -> RFut,
        RFut: std::future::Future<Output = Attempt<T>>,
    {
        self.send_get_preferring(url, None, read).await
    }

    /// `send_get` with a `Prefer` header (such as `odata.maxpagesize=999`).
    async fn send_get_preferring<T, R, RFut>(
        &self,
        url: &str,
        prefer: Option<&str>,
        read: R,
    ) -> Result<T>
    where
        R: Fn(Response) -> RFut,
        RFut: std::future::Future<Output = Attempt<T>>,
    {
        self.send_with(
            url,
            |http, bearer| {
                debug!(url, "GET");
                let request = http.get(url).header(header::AUTHORIZATION, bearer);
                match prefer {
                    Some(prefer) => request.header("prefer", prefer),
                    None => request,
                }
            },
            read,
        )
        .await
    }

    /// Sends the request `build` makes, with the bearer token. Success (2xx and 3xx) goes to
    /// `read`; throttling and transport failures are retried; a 401 for an expired token is
    /// retried once with a new token; any other answer becomes a typed error.
    pub(crate) async fn send_with<T, B, R, RFut>(&self, url: &str, build: B, read: R) -> Result<T>
    where
        B: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
        R: Fn(Response) -> RFut,
        RFut: std::future::Future<Output = Attempt<T>>,
    {
        let mut renewed = false;
        let costs = self.costs_of(url);
        loop {
            let token = self.token().await?;
            let bearer = token.bearer();
            let attempts = std::sync::atomic::AtomicU32::new(0);
            let outcome = self
                .with_retry(url, || async {
                    let retry = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0;
                    self.pace(&costs, retry).await;
                    let response = match build(&self.http, &bearer).send().await {
                        Ok(r) => r,
                        Err(e) => {
                            self.counters.unanswered();
                            return transport_failure(&e);
                        }
                    };
                    let status = response.status();
                    self.counters.answered(status.as_u16());
                    let header = |name| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|v: &header::HeaderValue| v.to_str().ok())
                    };
                    self.heard(
                        &costs,
                        status.as_u16(),
                        header(THROTTLE_SHARE),
                        header(header::RETRY_AFTER.as_str()),
                    );
                    if is_retryable_status(status.as_u16()) {
                        return retry_answer(&response, "throttled or unavailable");
                    }
                    if status.is_success() || status.is_redirection() {
                        return read(response).await;
                    }
                    Attempt::Fail(api_error(response, url).await)
                })
                .await;
            match outcome {
                Err(GraphError::Api { status: 401, .. }) if !renewed => {
                    // The token may have been revoked or expired early: one more try with a new one.
                    renewed = true;
                    self.forget_token().await;
                }
                other => return other,
            }
        }
    }

    /// The size of a collection (`/users/$count`). Counting is an advanced query: Graph answers
    /// it only with `ConsistencyLevel: eventual`, from an index that may lag a little.
    pub async fn count(&self, path_or_url: &str) -> Result<u64> {
        let url = self.absolute(path_or_url)?;
        let body = self
            .send_with(
                &url,
                |http, bearer| {
                    http.get(&url)
                        .header(header::AUTHORIZATION, bearer)
                        .header("consistencylevel", "eventual")
                },
                read_body,
            )
            .await?;
        let text = String::from_utf8_lossy(&body);
        text.trim_start_matches('\u{feff}')
            .trim()
            .parse()
            .map_err(|_| GraphError::Malformed {
                url,
                detail: format!("a count, but got {}", Excerpt(&text)),
            })
    }

    /// PATCHes a JSON body (Graph answers 204 No Content). Used only for what an admin asks for
    /// explicitly, such as the report-privacy setting.
    pub async fn patch_json(&self, path_or_url: &str, body: &serde_json::Value) -> Result<()> {
        let url = self.absolute(path_or_url)?;
        self.send_with(
            &url,
            |http, bearer| {
                http.patch(&url)
                    .header(header::AUTHORIZATION, bearer)
                    .json(body)
            },
            read_body,
        )
        .await?;
        Ok(())
    }

    /// Whether an absolute link points at this client's Graph host (scheme, host and port), the
    /// only place a stored link may be followed to.
    pub fn is_own_link(&self, link: &str) -> bool {
        is_absolute(link) && self.absolute(link).is_ok()
    }

    /// Resolves a path against the Graph base. An absolute URL must be on the Graph host: a
    /// nextLink pointing elsewhere would otherwise receive our bearer token.
    pub(crate) fn absolute(&self, path_or_url: &str) -> Result<String> {
        if is_absolute(path_or_url) {
            let same_origin = |a: &str, b: &str| {
                let (Ok(a), Ok(b)) = (url::Url::parse(a), url::Url::parse(b)) else {
                    return false;
                };
                a.scheme() == b.scheme()
                    && a.host_str() == b.host_str()
                    && a.port_or_known_default() == b.port_or_known_default()
            };
            if !same_origin(path_or_url, &self.endpoints.graph) {
                return Err(GraphError::ForeignLink {
                    link: path_or_url.to_string(),
                    graph: self.endpoints.graph.clone(),
                });
            }
            return Ok(path_or_url.to_string());
        }
        let path = path_or_url.trim_start_matches('/');
        Ok(format!("{}/{path}", self.endpoints.graph))
    }
}

/// Graph's word on how much of a limit is used, sent past 80 % of it (0.8 to 1.8).
pub(crate) const THROTTLE_SHARE: &str = "x-ms-throttle-limit-percentage";

/// Whether a link is an absolute http(s) URL; the scheme is case-insensitive, as in any URL.
fn is_absolute(link: &str) -> bool {
    let scheme = link.split_once("://").map(|(scheme, _)| scheme);
    scheme.is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
}

/// Reads PEM CA certificates; an error names what is wrong with them.
pub fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<reqwest::Certificate>> {
    let certificates = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| GraphError::BadCaCertificate(format!("not PEM certificates ({e})")))?;
    if certificates.is_empty() {
        return Err(GraphError::BadCaCertificate(
            "it holds no PEM certificate".into(),
        ));
    }
    Ok(certificates)
}

/// Reads a whole response body.
async fn read_body(response: Response) -> Attempt<bytes::Bytes> {
    match response.bytes().await {
        Ok(b) => Attempt::Done(b),
        Err(e) => transport_failure(&e),
    }
}

/// Whether a connection failed because the other end refused it (no process on that port).
fn refused(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = inner.source();
    }
    false
}

pub(crate) fn transport_failure<T>(error: &reqwest::Error) -> Attempt<T> {
    // Connection refused or reset, timeouts and bodies cut short are worth another try; a
    // certificate the machine does not trust will not become trusted by trying again.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    // rustls words every refused certificate this way (UnknownIssuer, Expired, NotValidForName…).
    if message.contains("invalid peer certificate") {
        let url = error.url().map(|u| u.to_string()).unwrap_or_default();
        return Attempt::Fail(GraphError::TlsUntrusted { url, message });
    }
    // A refused connection is an answer, not a loss on the way: nothing listens there (a
    // stopped proxy or simulator, a wrong URL). Microsoft's endpoints never refuse, so waiting
    // and trying again only delays saying so.
    if error.is_connect() && refused(error) {
        let url = error.url().map(|u| u.to_string()).unwrap_or_default();
        let place = error
            .url()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_else(|| url.clone());
        return Attempt::Fail(GraphError::Unreachable {
            url,
            attempts: 1,
            message: format!("nothing is listening at {place} (connection refused)"),
        });
    }
    Attempt::Retry {
        status: None,
        retry_after: None,
        reason: message,
    }
}

pub(crate) fn retry_answer<T>(response: &Response, reason: &str) -> Attempt<T> {
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| RetryAfter::read(String::from_utf8_lossy(v.as_bytes())));
    Attempt::Retry {
        status: Some(response.status().as_u16()),
        retry_after,
        reason: reason.to_string(),
    }
}

pub(crate) async fn api_error(response: Response, url: &str) -> GraphError {
    let status = response.status().as_u16();
    let header_request_id = response
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.bytes().await.unwrap_or_default();
    error_from_body(status, &body, header_request_id, url)
}

/// Graph's answer `status` with `body` as a typed error (also for the answers inside a `$batch`).
pub(crate) fn error_from_body(
    status: u16,
    body: &[u8],
    header_request_id: Option<String>,
    url: &str,
) -> GraphError {
    let parsed = crate::text::from_json::<GraphErrorBody>(body);
    // A delta token Graph no longer knows: the caller must list everything again.
    let code = parsed
        .as_ref()
        .map(|p| p.error.code.as_str())
        .unwrap_or_default();
    if status == 410
        || [
            "syncStateNotFound",
            "resyncRequired",
            "resyncApplyDifferences",
            "resyncUploadDifferences",
        ]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(code))
    {
        return GraphError::DeltaExpired {
            url: url.to_string(),
            code: code.to_string(),
        };
    }
    match parsed {
        Ok(parsed) => GraphError::Api {
            status,
            code: parsed.error.code,
            message: parsed.error.message,
            request_id: parsed
                .error
                .inner
                .and_then(|i| i.request_id)
                .or(header_request_id),
            url: url.to_string(),
        },
        Err(_) => GraphError::Api {
            status,
            code: reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error")
                .to_string(),
            message: Excerpt(&String::from_utf8_lossy(body)).to_string(),
            request_id: header_request_id,
            url: url.to_string(),
        },
    }
}

/// Page number `page` of a collection, from `url`: its items and the links on. Anything else
/// on it (`@odata.count`, `@odata.context`) is passed over unread. Public so that the parse
/// alone can be measured (`cargo bench -p graph`).
pub fn read_page<T: DeserializeOwned>(body: &[u8], url: &str, page: u64) -> Result<PageBody<T>> {
    crate::text::from_json(body).map_err(|e| GraphError::Malformed {
        url: url.to_string(),
        detail: format!("page {page}: {e}"),
    })
}

/// A collection being read page by page. The next page is fetched and parsed in a task of its
/// own while the caller works on the current one, so that downloading overlaps writing; and the
/// page after that is asked for as soon as the next one's bytes are in, before they are parsed,
/// so that under latency the chain of requests is not held up by parsing or by a slow writer. At
/// most three pages are in memory, and the raw bytes of a fourth: the caller's page, the next
/// one (with its raw bytes while it is parsed), and the raw bytes of the one after.
pub struct Pager<'a, T> {
    client: GraphClient,
    next: Option<Result<String>>,
    /// The next page, asked for as soon as its link was known.
    ahead: Option<tokio::task::JoinHandle<Result<ReadAhead<T>>>>,
    pages: u64,
    prefer: Option<String>,
    delta_link: Option<String>,
    /// Pagers are read within a step that holds its client; the borrow says so.
    _borrow: std::marker::PhantomData<&'a ()>,
}

impl<T> Drop for Pager<'_, T> {
    fn drop(&mut self) {
        // A step that stops early (cancelled, failed) does not wait for a page it will not read.
        if let Some(ahead) = self.ahead.take() {
            ahead.abort();
        }
    }
}

/// The bytes of a page being downloaded on a task of its own; stopped when dropped unread.
struct Download(tokio::task::JoinHandle<Result<bytes::Bytes>>);

impl Drop for Download {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Download {
    fn start(client: &GraphClient, url: String, prefer: Option<String>) -> Download {
        let client = client.clone();
        Download(tokio::spawn(async move {
            client.get_bytes_preferring(&url, prefer.as_deref()).await
        }))
    }

    async fn bytes(mut self, url: &str) -> Result<bytes::Bytes> {
        match (&mut self.0).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(GraphError::Unreachable {
                url: url.to_string(),
                attempts: 0,
                message: format!("the page was not fetched: {e}"),
            }),
        }
    }
}

/// A page read ahead, and what follows it.
struct ReadAhead<T> {
    page: PageBody<T>,
    following: Following,
}

enum Following {
    /// The next page's link, already asked for.
    Asked(String, Download),
    /// The next page's link, not yet asked for (or refused).
    Link(Result<String>),
    /// The last page.
    End,
}

/// The `@odata.nextLink` of a page, found without parsing it. Graph writes the link before the
/// items and other services after them, so only the first and last few kilobytes are searched:
/// a link elsewhere, or one with escapes in it, is left to the parser. The key's quotes cannot
/// occur unescaped inside a string, so a match is the key itself.
fn peek_next_link(body: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"@odata.nextLink\"";
    const END: usize = 8 * 1024;
    let head = &body[..body.len().min(END)];
    let tail_from = body.len().saturating_sub(END);
    let at = head.windows(KEY.len()).position(|w| w == KEY).or_else(|| {
        body[tail_from..]
            .windows(KEY.len())
            .rposition(|w| w == KEY)
            .map(|at| tail_from + at)
    })?;
    let rest = &body[at + KEY.len()..];
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    (rest[end] == b'"')
        .then(|| std::str::from_utf8(&rest[..end]).ok())
        .flatten()
}

/// Reads page number `number` from `download`: as soon as its bytes are in, the page after it
/// is asked for (its link found by [`peek_next_link`]); then the page is parsed, and the link
/// the parser found is the one that counts.
async fn read_ahead<T: DeserializeOwned>(
    client: GraphClient,
    url: String,
    prefer: Option<String>,
    download: Download,
    number: u64,
) -> Result<ReadAhead<T>> {
    let body = download.bytes(&url).await?;
    let asked = peek_next_link(&body)
        .and_then(|link| client.absolute(link).ok())
        .map(|next| {
            let download = Download::start(&client, next.clone(), prefer.clone());
            (next, download)
        });
    let page = read_page::<T>(&body, &url, number)?;
    drop(body);
    let following = match (page.next_link.as_deref().map(|l| client.absolute(l)), asked) {
        (Some(Ok(next)), Some((asked, download))) if next == asked => {
            Following::Asked(asked, download)
        }
        (Some(next), _) => Following::Link(next),
        (None, _) => Following::End,
    };
    Ok(ReadAhead { page, following })
}

impl<T: DeserializeOwned + Send + 'static> Pager<'_, T> {
    /// The next page's items, or `None` once the last page has been read. Pages may be empty.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>> {
        let number = self.pages.saturating_add(1);
        let ReadAhead { page, following } = match self.ahead.take() {
            Some(ahead) => match ahead.await {
                Ok(read) => read?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => {
                    return Err(GraphError::Unreachable {
                        url: self.client.endpoints.graph.clone(),
                        attempts: 0,
                        message: format!("page {number} was not fetched: {e}"),
                    });
                }
            },
            None => {
                let Some(next) = self.next.take() else {
                    return Ok(None);
                };
                let url = next?;
                let download = Download::start(&self.client, url.clone(), self.prefer.clone());
                read_ahead(
                    self.client.clone(),
                    url,
                    self.prefer.clone(),
                    download,
                    number,
                )
                .await?
            }
        };
        // A delta link is kept to be followed next time: one that leads elsewhere is refused
        // now, with the round it ends, rather than saved and carried there with our token.
        if page.next_link.is_none()
            && let Some(link) = &page.delta_link
        {
            self.client.absolute(link)?;
        }
        self.pages = number;
        match following {
            Following::Asked(url, download) => self.read_asked(url, download, number + 1),
            Following::Link(Ok(url)) => self.ask_ahead(url, number + 1),
            Following::Link(Err(e)) => self.next = Some(Err(e)),
            Following::End => self.delta_link = page.delta_link,
        }
        Ok(Some(page.value))
    }

    /// Asks for pages of up to `size` items (`Prefer: odata.maxpagesize`), for collections such
    /// as delta that take no `$top`.
    pub fn max_page_size(mut self, size: u32) -> Self {
        self.prefer = Some(format!("odata.maxpagesize={size}"));
        self
    }

    /// The pager with its first page already asked for on a task of its own, and no longer
    /// tied to a step: a step that must wait for another before it writes need not wait to
    /// read. Dropped unread, the request is stopped.
    pub fn started(mut self) -> Pager<'static, T> {
        match self.next.take() {
            Some(Ok(url)) if self.ahead.is_none() => {
                let number = self.pages.saturating_add(1);
                self.ask_ahead(url, number);
            }
            other => self.next = other,
        }
        Pager {
            client: self.client.clone(),
            next: self.next.take(),
            ahead: self.ahead.take(),
            pages: self.pages,
            prefer: self.prefer.take(),
            delta_link: self.delta_link.take(),
            _borrow: std::marker::PhantomData,
        }
    }

    /// Asks for page `number` at `url` on a task of its own, to be read by the next
    /// [`Pager::next_page`].
    fn ask_ahead(&mut self, url: String, number: u64) {
        let download = Download::start(&self.client, url.clone(), self.prefer.clone());
        self.read_asked(url, download, number);
    }

    /// Reads page `number`, already asked for, on a task of its own.
    fn read_asked(&mut self, url: String, download: Download, number: u64) {
        let read = read_ahead(
            self.client.clone(),
            url,
            self.prefer.clone(),
            download,
            number,
        );
        self.ahead = Some(tokio::spawn(read));
    }

    /// True once the last page has been read.
    pub fn is_done(&self) -> bool {
        self.next.is_none() && self.ahead.is_none()
    }

    /// The `@odata.deltaLink` of the last page of a delta round, once it has been read.
    pub fn delta_link(&self) -> Option<&str> {
        self.delta_link.as_deref()
    }

    pub fn pages_read(&self) -> u64 {
        self.pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::User;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn the_next_link_is_found_without_parsing_the_page() {
        let page =
            br#"{"value":[{"id":"a"}],"@odata.nextLink" : "https://g/v1.0/users?$skiptoken=x"}"#;
        assert_eq!(
            peek_next_link(page),
            Some("https://g/v1.0/users?$skiptoken=x")
        );
        // Written first, it is found too.
        let first = br#"{"@odata.nextLink":"https://g/next","value":[]}"#;
        assert_eq!(peek_next_link(first), Some("https://g/next"));
        // Absent, or only inside a string value, there is none.
        assert_eq!(
            peek_next_link(br#"{"value":[],"@odata.deltaLink":"https://g/d"}"#),
            None
        );
        let quoted = br#"{"value":[{"displayName":"\"@odata.nextLink\":\"x\""}]}"#;
        assert_eq!(peek_next_link(quoted), None);
        // A link with escapes in it is left to the parser.
        assert_eq!(
            peek_next_link(br#"{"@odata.nextLink":"https:\/\/g\/next"}"#),
            None
        );
        assert_eq!(peek_next_link(br#"{"@odata.nextLink":null}"#), None);
        // Far from either end it is not looked for.
        let mut middle = br#"{"value":[""#.to_vec();
        middle.extend(vec![b'x'; 20_000]);
        middle.extend(br#""],"@odata.nextLink":"https://g/next","pad":""#);
        middle.extend(vec![b'y'; 20_000]);
        middle.extend(br#""}"#);
        assert_eq!(peek_next_link(&middle), None);
    }

    fn client() -> GraphClient {
        GraphClient::new(
            GraphEndpoints {
                login: "https://login.example".into(),
                graph: "https://graph.example".into(),
                scope: "https://graph.example/.default".into(),
            },
            AppCredentials::with_secret("t", "c", "s"),
            RetryPolicy::default(),
        )
        .unwrap()
    }

    /// Any JSON number as Graph or a proxy might write it, huge and negative ones included.
    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            "-?[1-9][0-9]{0,60}(\\.[0-9]{1,5})?([eE][-+]?[0-9]{1,4})?",
        ]
    }

    proptest! {
        #[test]
        fn any_bytes_are_a_page_or_an_error_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let _ = read_page::<User>(&bytes, "u", 1);
            let _ = read_page::<Value>(&bytes, "u", u64::MAX);
        }

        #[test]
        fn well_formed_pages_read_back_whatever_their_count_says(
            ids in proptest::collection::vec("[a-f0-9-]{1,36}", 0..30),
            names in proptest::collection::vec(proptest::option::of(any::<String>()), 30),
            count in number(),
            next in proptest::option::of("/v1\\.0/users\\?\\$skiptoken=[A-Za-z0-9%]{0,40}"),
            delta in proptest::option::of(any::<String>()),
        ) {
            let value: Vec<Value> = ids
                .iter()
                .zip(&names)
                .map(|(id, name)| json!({"id": id, "displayName": name}))
                .collect();
            let mut page = json!({"@odata.context": "https://graph.example/v1.0/$metadata#users", "value": value});
            if let Some(next) = &next {
                page["@odata.nextLink"] = json!(format!("https://graph.example{next}"));
            }
            if let Some(delta) = &delta {
                page["@odata.deltaLink"] = json!(delta);
            }
            let text = page.to_string().replacen('{', &format!("{{\"@odata.count\":{count},"), 1);
            let read = read_page::<User>(text.as_bytes(), "u", 1).unwrap();
            prop_assert_eq!(
                read.value.iter().map(|u| (u.id.clone(), u.display_name.clone())).collect::<Vec<_>>(),
                ids.into_iter().zip(names).collect::<Vec<_>>()
            );
            prop_assert_eq!(read.delta_link, delta);
            let link = read.next_link.map(|link| client().absolute(&link));
            match (link, next) {
                (Some(Ok(absolute)), Some(next)) => {
                    prop_assert_eq!(absolute, format!("https://graph.example{next}"))
                }
                (None, None) => {}
                other => prop_assert!(false, "{:?}", other.0.map(|r| r.map_err(|e| e.to_string()))),
            }
        }

        #[test]
        fn any_link_is_followed_or_refused_without_panicking(link in any::<String>(), host in "[a-z.:0-9@\\[\\]]{0,20}") {
            let client = client();
            let _ = client.absolute(&link);
            let elsewhere = format!("https://{host}/v1.0/users");
            if let Ok(url) = client.absolute(&elsewhere) {
                prop_assert!(url::Url::parse(&url).is_ok_and(|u| u.host_str() == Some("graph.example")));
            }
        }

        #[test]
        fn any_error_body_becomes_an_error_without_panicking(
            status in any::<u16>(),
            body in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                (any::<String>(), any::<String>(), proptest::option::of(any::<String>())).prop_map(|(code, message, id)| {
                    json!({"error": {"code": code, "message": message, "innerError": {"request-id": id}}}).to_string().into_bytes()
                }),
            ],
        ) {
            let error = error_from_body(status, &body, Some("r".into()), "u");
            prop_assert!(!error.to_string().is_empty());
            let _ = (error.code(), error.fix());
        }
    }
}
