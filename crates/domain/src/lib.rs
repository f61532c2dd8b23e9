//! The pure core of m365sync: types and rules that do no I/O.
//!
//! Owns the parsed identifiers (`TenantId`, `ClientId`, `ObjectId`, `Upn`, `SkuPartNumber`,
//! `ClientSecret`), the clouds and their endpoints, the datasets and the permissions they need,
//! the records we keep (contacts, licences, mailboxes, organisations, devices, groups, audit
//! records, what the usage reports and sign-in activity say of each user), when a connection's
//! schedule comes due and how long a dataset's fetch stays fresh, how a tenant is matched to an
//! organisation, how two versions of a record differ, how detected software consolidates into
//! products (`software`), where licences are wasted (`waste`), how a tenant's figures move over
//! time (`trends`), and the planner that turns what the store
//! holds and what Microsoft sent into what to do with each record (`plan`, `rows`). Every
//! adapter (`graph`, `store`, `sync`, `web`) builds on these; none of them is known here.

pub mod accounts;
pub mod audit;
pub mod cache;
pub mod calendar;
pub mod catalog;
pub mod cloud;
pub mod dataset;
pub mod devices;
pub mod filter;
pub mod groups;
pub mod ids;
pub mod import;
pub mod keys;
pub mod mapping;
pub mod matching;
pub mod names;
pub mod plan;
pub mod records;
pub mod rows;
pub mod schedule;
pub mod software;
pub mod status;
pub mod trends;
pub mod usage;
pub mod waste;

pub use audit::{AuditRecord, AuditRetention};
pub use cloud::{Cloud, Endpoints};
pub use dataset::Dataset;
pub use ids::{
    CertificateCredential, ClientId, ClientSecret, ConnectionName, Credential, InputError,
    ObjectId, SkuPartNumber, TenantId, Upn,
};
pub use mapping::FieldMapping;
pub use matching::{
    MatchRule, OrganizationCandidate, Standing, Suggestion, TenantDecision, TenantFacts,
    TenantState,
};
pub use records::{
    ContactRecord, InventoryItem, LicenseRecord, MailboxRecord, OrganizationRecord, ServicePlan,
    UnstorableField,
};
pub use schedule::Schedule;
pub use status::{RunStatus, StepStatus};
