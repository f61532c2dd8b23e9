//! Connections at work: the connection test and the sync pipeline.
//!
//! Owns: turning a stored connection into a Graph client, diagnosing a connection (token,
//! permissions, a probe per dataset), comparing one contact with its user in Microsoft 365 now,
//! and running a sync: each dataset fetched page by page, normalised into `domain` records,
//! matched (tenant → organisation, user → contact) and applied to the store, with every run and
//! step logged; and delegated accounts at work (`accounts`): sign-in, token refresh and
//! rotation, and calendar bookings; the organisation report (`report`). It upholds the invariants of DESIGN.md: an
//! unchanged resync writes nothing, records are keyed by object id, only a complete listing
//! archives, and concealed report names attach nothing to anyone.

pub mod accounts;
mod client;
mod compare;
mod datasets;
mod devices;
mod diagnose;
mod engine;
mod filters;
pub mod insight;
pub mod inventory;
mod normalise;
pub mod partner;
pub mod report;
mod review;

pub use client::{graph_client, management_client, tenant_id_of_domain, trust_extra_ca};
pub use compare::{
    CompareError, Comparison, FieldComparison, LastChange, LicenseComparison, compare_contact,
};
pub use datasets::{AUDIT_CONTENT_TYPES, CONCEALED_SETTING};
pub use diagnose::{
    ConnectionTestReport, CustomerCheck, Problem, day_of, set_report_names, test_connection,
};
pub use engine::{
    DEFAULT_STEPS_AT_ONCE, DEFAULT_TENANTS_AT_ONCE, NoProgress, Progress, StepKey, StepReport,
    SyncEngine, SyncReport,
};
pub use filters::filter_problem;
/// How a connection test or a sync retries: named here so that callers need not know `graph`.
pub use graph::RetryPolicy;
/// What this process's Graph clients have counted, per connection, for metrics.
pub use graph::observe;
pub use normalise::{
    NormaliseError, contact_from_user, license_from_sku, mailbox_from_row, organization_from,
};
pub use review::settle_review;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "there is no connection named '{0}'; `m365sync connection list` shows them, `m365sync connection add` creates one"
    )]
    NoConnection(String),
    #[error(
        "the certificate saved for connection '{connection}' cannot be used: {problem}; replace it with `m365sync connection credential {connection} --certificate FILE`"
    )]
    Certificate { connection: String, problem: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Graph(#[from] graph::GraphError),
}

pub type Result<T, E = SyncError> = std::result::Result<T, E>;
