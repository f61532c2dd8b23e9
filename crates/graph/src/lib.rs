//! A typed client for Microsoft identity and Microsoft Graph.
//!
//! Owns: client-credentials tokens with a secret or a certificate (cached until shortly before
//! expiry), the endpoints of each
//! cloud as given to it, GET with `$select` and paging by `@odata.nextLink` one page at a time,
//! throttling and retry (`Retry-After`, else exponential backoff with jitter), pacing to
//! Microsoft's documented limits per app and tenant so that throttling is rare, the usage-report
//! download (302 followed without the bearer token, CSV parsed by header name while streaming
//! from disk), classification of every failure into [`GraphError`] with a message and a fix, the
//! typed models of the payloads it reads, and counts of its answers and waits ([`observe`]);
//! delegated sign-in (authorization code with PKCE, validated id tokens, rotating refresh
//! tokens) and Outlook calendars (`delegated`, `calendar`).
//! It knows nothing of the store or of our records.

mod batch;
pub mod calendar;
mod certificate;
mod client;
pub mod delegated;
mod discovery;
mod error;
pub mod models;
pub mod observe;
mod pacing;
mod report;
mod retry;
pub mod text;
mod token;

pub use batch::MAX_BATCH;
pub use certificate::{AssertionAlgorithm, CertificateError, CertificateFacts, ClientCertificate};
pub use client::{GraphClient, GraphEndpoints, PageBody, Pager, parse_ca_bundle, read_page};
pub use discovery::tenant_id_of_domain;
pub use error::{GraphError, TokenProblem};
pub use pacing::{Budget, Budgets};
pub use report::{ReportFile, ReportRows};
pub use retry::{RetryPolicy, Sleeper, TokioSleeper};
pub use token::{AccessToken, AppCredentials, ClientCredential, ClientSecretValue};

pub type Result<T, E = GraphError> = std::result::Result<T, E>;
