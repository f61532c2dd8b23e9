//! The REST API under `/api/v1`: the same data and actions as the command line, for programs.
//!
//! Owns the edge only: bearer-token checks (an admin token changes, a viewer token reads), typed
//! response bodies (never the store's rows as they are, never a stored secret), one JSON error
//! shape `{code, message}` for every failure (the framework's own rejections included), cursor
//! pagination, and the OpenAPI document, generated from the handlers' annotations. Every action
//! calls the store or sync function the command line calls.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, middleware};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use store::{ApiRole, ApiToken, Store, StoreError};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod accounts;
mod connections;
mod contacts;
mod datasets;
mod organizations;
mod runs;
mod tenants;

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1";

/// The request is for the API, so whatever answers it answers in JSON.
pub(crate) fn is_api_path(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Every failure, as the API answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, for programs: `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `bad_json`, `bad_query`, `bad_path`, `too_large`, `invalid_input`, `conflict`,
    /// `store_error`, `microsoft_error`, `bad_host`, `misdirected`, `timeout`,
    /// `too_many_requests`, `bad_request`, `server_error`; for accounts and calendars also
    /// `needs_reconnect`, `slot_taken`, `busy`.
    pub code: String,
    /// For people: what went wrong and what to do.
    pub message: String,
}

/// A failed request: a status and the body that explains it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    fn bad_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_query", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                code: self.code.to_string(),
                message: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(message) => Self::not_found(message),
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            other => {
                tracing::error!("store error: {other}");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_error",
                    format!("The store could not do it: {other}"),
                )
            }
        }
    }
}

impl From<domain::InputError> for ApiError {
    fn from(error: domain::InputError) -> Self {
        Self::invalid(format!("{}: {}. {}", error.field, error.problem, error.fix))
    }
}

impl From<sync::SyncError> for ApiError {
    fn from(error: sync::SyncError) -> Self {
        match error {
            sync::SyncError::NoConnection(_) => Self::not_found(error.to_string()),
            sync::SyncError::Store(e) => e.into(),
            sync::SyncError::Certificate { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            sync::SyncError::Graph(e) => Self::new(
                StatusCode::BAD_GATEWAY,
                "microsoft_error",
                format!("Microsoft 365 did not do it: {e}"),
            ),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The largest request body the API reads: a bigger one is refused before it is read whole.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A JSON request body whose refusals (no JSON content type, too large, broken JSON, a missing,
/// unknown or wrongly typed field) answer as [`ErrorBody`], naming the field and what to send.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_json",
                "The body must be JSON sent with the header Content-Type: application/json; add the header, or send the body as JSON.",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_json",
                        "The body could not be read to its end; send the request again.",
                    )
                }
            })?;
        let mut reader = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut reader)
            .map_err(|e| json_refusal(&e.path().to_string(), e.inner()))?;
        // Text after the JSON value (a second object, a stray bracket) is refused too.
        reader.end().map_err(|e| json_refusal(".", &e))?;
        Ok(Self(value))
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "The body is larger than {} MiB; send less at once.",
            MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
}

/// The request says its body is JSON: `application/json`, or a `+json` type.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// What is wrong with a JSON body, in the API's words: the field by its path (`schedule.every`)
/// and what to send instead; never serde's or the framework's text.
fn json_refusal(path: &str, inner: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    const DOCUMENT: &str =
        "the OpenAPI document (/api/v1/openapi.json) describes the body of each request";
    let at = format!("line {}, column {}", inner.line(), inner.column());
    let (status, message) = match inner.classify() {
        Category::Eof if inner.line() == 1 && inner.column() == 0 => (
            StatusCode::BAD_REQUEST,
            "The body is empty; send a JSON object.".to_string(),
        ),
        Category::Eof => (
            StatusCode::BAD_REQUEST,
            format!(
                "The body is not well-formed JSON: it ends at {at} before the JSON is complete; send a whole JSON object."
            ),
        ),
        Category::Syntax | Category::Io => (
            StatusCode::BAD_REQUEST,
            format!(
                "The body is not well-formed JSON at {at}; send a well-formed JSON object (names and text in double quotes, no trailing commas)."
            ),
        ),
        Category::Data => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} {}.",
                data_problem(path, &bare_message(inner)),
                upper_first(DOCUMENT)
            ),
        ),
    };
    ApiError::new(status, "bad_json", message)
}

/// serde_json's message without the position it appends.
fn bare_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// A field's problem as a sentence: `path` is where serde stopped (`.` for the body itself),
/// `message` the deserializer's own words.
fn data_problem(path: &str, message: &str) -> String {
    let field = |name: &str| match path {
        "." | "" => name.to_string(),
        parent => format!("{parent}.{name}"),
    };
    let here = match path {
        "." | "" => "The body".to_string(),
        _ => format!("The field '{path}'"),
    };
    if let Some(name) = between(message, "missing field `", "`") {
        return format!("The field '{}' is missing; add it.", field(name));
    }
    if let Some(name) = between(message, "duplicate field `", "`") {
        return format!("The field '{}' is given twice; give it once.", field(name));
    }
    if let Some(name) = between(message, "unknown field `", "`") {
        // The path already ends at the unknown field.
        let field = |name: &str| match path.rsplit_once('.') {
            _ if path == name => name.to_string(),
            Some((_, last)) if last == name => path.to_string(),
            _ => field(name),
        };
        let known = listed(message);
        return if known.is_empty() {
            format!(
                "The field '{}' is not one this request takes; leave it out.",
                field(name)
            )
        } else {
            format!(
                "The field '{}' is not one this request takes; leave it out (it takes {known}).",
                field(name)
            )
        };
    }
    if let Some(value) = between(message, "unknown variant `", "`") {
        return format!(
            "{here} is '{value}', which it cannot be; give one of {}.",
            listed(message)
        );
    }
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!(
            "{here} is {}; give {}.",
            found_words(found),
            expected_words(expected)
        );
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        // An object read from a list: the list is what is wrong, not its length.
        if expected.starts_with("struct ") {
            return format!("{here} is a list; give an object in {{ }}.");
        }
        return format!(
            "{here} has the wrong number of items; give {}.",
            expected_words(expected)
        );
    }
    // A message of the request's own checks (a custom deserializer): already in words.
    format!("{here} cannot be read: {message}; correct it.")
}

/// The names of serde's "expected one of `a`, `b`" as `'a', 'b'`.
fn listed(message: &str) -> String {
    let Some((_, names)) = message.split_once("expected one of ") else {
        return String::new();
    };
    names
        .split(", ")
        .map(|name| format!("'{}'", name.trim_matches('`')))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What serde found, as a person says it: `string "x"` → `the text "x"`.
fn found_words(found: &str) -> String {
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the text {text}");
    }
    for (prefix, words) in [
        ("integer ", "the number "),
        ("floating point ", "the number "),
        ("boolean ", ""),
    ] {
        if let Some(value) = found.strip_prefix(prefix) {
            return format!("{words}{}", value.trim_matches('`'));
        }
    }
    match found {
        "null" | "unit value" => "null".into(),
        "sequence" => "a list".into(),
        "map" => "an object".into(),
        other => other.into(),
    }
}

/// What serde expected, as a person says it: `u32` → `a whole number of 0 or more`.
fn expected_words(expected: &str) -> String {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number of 0 or more".into(),
        "f32" | "f64" => "a number".into(),
        "a string" | "a borrowed string" | "a character" => "text in double quotes".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list in [ ]".into(),
        "a map" => "an object in { }".into(),
        other if other.starts_with("struct ") => "an object in { }".into(),
        other if other.starts_with("a sequence") => "a list in [ ]".into(),
        other => other.into(),
    }
}

/// The text of `text` between `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn upper_first(text: &str) -> String {
    crate::ui::upper_first(text)
}

/// `Query<T>` whose refusals answer as [`ErrorBody`].
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_refusal(rejection)),
        }
    }
}

fn query_refusal(rejection: QueryRejection) -> ApiError {
    ApiError::bad_query(format!(
        "{}; the OpenAPI document (/api/v1/openapi.json) describes the parameters",
        crate::query::query_problem(&rejection)
    ))
}

/// `Path<T>` whose refusals answer as [`ErrorBody`].
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_refusal(rejection)),
        }
    }
}

fn path_refusal(rejection: PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_path",
        format!(
            "{}; the OpenAPI document (/api/v1/openapi.json) describes the address of each route",
            upper_first(&crate::query::path_problem(&rejection))
        ),
    )
}

/// Who is calling: the token that came with the request.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiToken);

/// Middleware: the request must carry a live API token; one that changes anything (any method
/// but GET and HEAD) needs an admin token.
async fn require_token(State(store): State<Store>, mut request: Request, next: Next) -> Response {
    let token = match bearer(request.headers()) {
        Some(secret) => match store.authenticate_api_token(secret).await {
            Ok(Some(token)) => token,
            Ok(None) => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "The bearer token is not one m365sync knows, or it was revoked; `m365sync token list` shows the live tokens, `m365sync token create NAME --role viewer` makes one.",
                )
                .into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "This API needs a token: make one with `m365sync token create NAME --role viewer` (or admin) and send it as the header Authorization: Bearer TOKEN.",
            )
            .into_response();
        }
    };
    let reads_only = matches!(*request.method(), Method::GET | Method::HEAD);
    if !reads_only && token.role != ApiRole::Admin {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "The token '{}' has the {} role, which may only read; {} {} changes something and needs a token with the admin role.",
                token.name,
                token.role,
                request.method(),
                request.uri().path()
            ),
        )
        .into_response();
    }
    request.extensions_mut().insert(Caller(token));
    next.run(request).await
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request has one.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The paging parameters of a list that takes no others.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 500 (100 unless given).
    pub limit: Option<i64>,
}

impl PageParams {
    /// One page of a list the store gives whole, as these parameters ask.
    pub(crate) fn page<T>(&self, all: Vec<T>) -> ApiResult<(Vec<T>, Option<String>)> {
        page_of(all, self.cursor.as_deref(), page_limit(self.limit)?)
    }
}

/// How many items a page holds unless asked: enough for a screen, small enough to be quick.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most items a page may hold.
pub const MAX_LIMIT: i64 = 500;

/// The page size asked for, checked.
pub(crate) fn page_limit(asked: Option<i64>) -> ApiResult<i64> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_query(format!(
            "limit {n} is out of range; give a number from 1 to {MAX_LIMIT}"
        ))),
    }
}

/// A cursor as the API hands it out: opaque to clients, a position to us.
pub(crate) fn cursor_of(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("after:{position}"))
}

/// The position a cursor stands for; `0` (the start) without one.
pub(crate) fn position_of(cursor: Option<&str>) -> ApiResult<i64> {
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(0);
    };
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("after:")?.parse::<i64>().ok())
        .filter(|position| *position >= 0)
        .ok_or_else(|| {
            ApiError::bad_query(format!(
                "cursor '{cursor}' is not one this API gave; pass the next_cursor of the previous page as it is, or leave cursor out to start at the beginning"
            ))
        })
}

/// One page of a list the store gives whole: items after `position`, and the cursor of the next
/// page when there is one.
pub(crate) fn page_of<T>(
    all: Vec<T>,
    cursor: Option<&str>,
    limit: i64,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let start = usize::try_from(position_of(cursor)?).unwrap_or(usize::MAX);
    let limit = usize::try_from(limit).unwrap_or(1);
    let total = all.len();
    let items: Vec<T> = all.into_iter().skip(start).take(limit).collect();
    let end = start.saturating_add(items.len());
    let next = (end < total).then(|| cursor_of(end as i64));
    Ok((items, next))
}

/// A time kept as milliseconds since 1970, as RFC 3339 in UTC.
pub(crate) fn time(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub(crate) fn maybe_time(millis: Option<i64>) -> Option<String> {
    millis.map(time)
}

/// Adds the bearer scheme, and the answers every operation may give, to the document.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `m365sync token create NAME --role viewer|admin`.",
                    ))
                    .build(),
            ),
        );
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                "ErrorBody",
                            ))))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path.ends_with("/openapi.json") {
                continue;
            }
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.patch, true),
                (&mut item.put, true),
                (&mut item.delete, true),
            ];
            for (operation, changes) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                let answers = &mut operation.responses.responses;
                answers
                    .entry("401".into())
                    .or_insert_with(|| error("No token, or one not known or revoked."));
                if changes {
                    answers.entry("403".into()).or_insert_with(|| {
                        error("The token has the viewer role; this needs an admin token.")
                    });
                }
                answers
                    .entry("400".into())
                    .or_insert_with(|| error("A path, query or body the API cannot read."));
                answers
                    .entry("500".into())
                    .or_insert_with(|| error("The store could not be read or written."));
                operation.security =
                    Some(vec![utoipa::openapi::security::SecurityRequirement::new::<
                        _,
                        _,
                        &str,
                    >("token", [])]);
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "m365sync",
        description = "The REST API of m365sync: connections to Microsoft 365 tenants, their sync runs and process log, organisations, tenants and matching, contacts with their Microsoft 365 overlay, each organisation's datasets, and people's connected accounts with their calendars (free slots, bookings). Every request needs a bearer token (`m365sync token create`); a viewer token reads, an admin token also changes. Lists are paged by cursor: pass a page's `next_cursor` as `cursor` for the next one.",
        license(name = "AGPL-3.0-only", identifier = "AGPL-3.0-only")
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The API's routes with their document.
fn documented() -> OpenApiRouter<Store> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            connections::list_connections,
            connections::create_connection
        ))
        .routes(routes!(
            connections::get_connection,
            connections::update_connection,
            connections::delete_connection
        ))
        .routes(routes!(connections::test_connection))
        .routes(routes!(connections::sync_connection))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::run_records))
        .routes(routes!(runs::cancel_run))
        .routes(routes!(organizations::list_organizations))
        .routes(routes!(organizations::get_organization))
        .routes(routes!(tenants::list_tenants))
        .routes(routes!(tenants::get_tenant))
        .routes(routes!(tenants::decide_tenant))
        .routes(routes!(tenants::review_items))
        .routes(routes!(tenants::settle_review_item))
        .routes(routes!(contacts::list_contacts))
        .routes(routes!(contacts::get_contact))
        .routes(routes!(contacts::contact_history))
        .routes(routes!(datasets::licenses))
        .routes(routes!(datasets::domains))
        .routes(routes!(datasets::groups))
        .routes(routes!(datasets::admins))
        .routes(routes!(datasets::devices))
        .routes(routes!(datasets::managed_devices))
        .routes(routes!(datasets::service_health))
        .routes(routes!(datasets::applications))
        .routes(routes!(datasets::terms_of_use))
        .routes(routes!(datasets::audit))
        .routes(routes!(accounts::list_accounts))
        .routes(routes!(accounts::remove_account))
        .routes(routes!(accounts::free_slots))
        .routes(routes!(accounts::book))
        .routes(routes!(accounts::list_bookings))
        .routes(routes!(accounts::move_booking))
        .routes(routes!(accounts::cancel_booking))
}

/// The OpenAPI 3.1 document of the API, as `/api/v1/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut document) = documented().split_for_parts();
    // After the routes are in: the answers every operation may give are added to each.
    CommonAnswers.modify(&mut document);
    document.servers = Some(vec![utoipa::openapi::Server::new(PREFIX)]);
    document
}

/// The API, to be nested at [`PREFIX`]: every route behind the token check but the document
/// itself, which holds no data.
pub(crate) fn router(store: Store) -> Router {
    let (routes, _) = documented().split_for_parts();
    let document = openapi();
    let document = serde_json::to_string_pretty(&document).unwrap_or_default();
    routes
        .route_layer(middleware::from_fn_with_state(store.clone(), require_token))
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document) }
            }),
        )
        .fallback(|| async { no_such_route() })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} is not allowed on {}; /api/v1/openapi.json lists the methods of each route.",
                    request.method(),
                    request.uri().path()
                ),
            )
        })
        .layer(middleware::map_response(json_failures))
        .layer(middleware::map_response(no_store))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(store)
}

/// Every failure under the API is [`ErrorBody`]: one that left a handler in another shape (a
/// framework's plain-text or empty refusal) is said again in JSON, by its status.
async fn json_failures(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (
            "not_found",
            "There is no such API route; /api/v1/openapi.json lists them all.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This method is not allowed on this route; /api/v1/openapi.json lists the methods of each route.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large().into_response();
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "bad_json",
            "The body must be JSON sent with the header Content-Type: application/json.",
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            "too_many_requests",
            "Too many requests; wait a moment, then send fewer at once.",
        ),
        s if s.is_server_error() => (
            "server_error",
            "The server could not answer; its log says why. Try again in a moment.",
        ),
        _ => (
            "bad_request",
            "The request cannot be answered as sent; the OpenAPI document (/api/v1/openapi.json) describes each route.",
        ),
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    // Headers the refusal carried (Allow, Retry-After) still hold.
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// The answer to an address under the API that names no route.
pub(crate) fn no_such_route() -> ApiError {
    ApiError::not_found("There is no such API route; /api/v1/openapi.json lists them all.")
}

/// API answers hold contacts' personal data: no cache may keep them.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The tenants filed under an organisation, or 404 when there is no such organisation.
pub(crate) async fn tenants_of_organization(
    store: &Store,
    organization_id: i64,
) -> ApiResult<Vec<domain::TenantId>> {
    if store.organization(organization_id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "There is no organisation {organization_id}; GET /api/v1/organizations lists them."
        )));
    }
    let tenants = store.tenants(None).await?;
    Ok(tenants
        .into_iter()
        .filter(|t| t.organization_id == Some(organization_id))
        .filter_map(|t| domain::TenantId::parse(&t.tenant_id).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        assert_eq!(position_of(Some(&cursor_of(42))).unwrap(), 42);
        assert_eq!(position_of(None).unwrap(), 0);
        for bad in ["42", "after:42", "%%%", &URL_SAFE_NO_PAD.encode("after:-1")] {
            let error = position_of(Some(bad)).unwrap_err();
            assert_eq!(error.code, "bad_query", "{bad}");
        }
    }

    #[test]
    fn whole_lists_are_paged_to_the_end() {
        let (first, next) = page_of((1..=5).collect(), None, 2).unwrap();
        assert_eq!(first, vec![1, 2]);
        let (second, next) = page_of((1..=5).collect(), next.as_deref(), 2).unwrap();
        assert_eq!(second, vec![3, 4]);
        let (last, next) = page_of((1..=5).collect(), next.as_deref(), 2).unwrap();
        assert_eq!(last, vec![5]);
        assert!(next.is_none());
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(page_limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(MAX_LIMIT + 1)).is_err());
    }

    #[tokio::test]
    async fn a_failure_in_another_shape_is_said_again_as_json_keeping_its_headers() {
        let plain = (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "30")],
            "Too Many Requests",
        )
            .into_response();
        let answer = json_failures(plain).await;
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers()[header::RETRY_AFTER], "30");
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "too_many_requests");
        assert!(body["message"].as_str().unwrap().contains("wait"));

        let empty = StatusCode::PAYLOAD_TOO_LARGE.into_response();
        let answer = json_failures(empty).await;
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "application/json");

        // JSON answers and successes pass as they are.
        let own = ApiError::not_found("There is no run 7; GET /api/v1/runs lists them.");
        let answer = json_failures(own.into_response()).await;
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("run 7"));
        let ok = json_failures("ok".into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer  m365s_abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("m365s_abc"));
        headers.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
