//! Everything m365sync keeps, on SQLite (the default) or PostgreSQL, behind one API.
//!
//! Owns: the schema and its forward-only migrations (one folder per backend), the repositories
//! for organisations, tenants, connections, contacts, licences, mailboxes, the audit trail, the
//! consolidated software and the tenants' snapshots over time, the run log (with each record's
//! outcome), delegated accounts with their sealed refresh tokens and the bookings made with them,
//! the run queue, the connections' schedules and caches, the people who log in, their sessions
//! and API tokens, and the encryption of secrets at rest. Each method is written once: the
//! `on_pool!`/`on_tx!` macros expand its body for each backend, so both are type-checked against
//! their own driver.
//! It knows nothing of Graph: it stores the records of `domain`.

mod accounts;
mod api_tokens;
mod app_users;
mod audit;
mod backend;
mod connections;
mod contact_batch;
mod contacts;
mod devices;
mod error;
mod groups;
mod insight;
mod inventory;
mod licenses;
mod mailboxes;
mod maintenance;
mod migrate;
mod organizations;
mod owner;
mod text_fold;
#[cfg(test)]
mod upgrade_tests;

pub mod queue;
mod review;
pub mod run_records;
mod run_stats;
mod runs;
mod schedules;
pub mod secrets;
mod statistics;
mod tenants;
pub mod typed;
mod usage;

pub use accounts::{BookingRow, DelegatedAccount, NewAccount, NewBooking, PendingSignInRow};
pub use api_tokens::{ApiRole, ApiToken, IssuedToken, TOKEN_PREFIX, token_hash};
pub use app_users::{AppRole, AppSession, AppUser, SessionTimes};
pub use audit::AuditQuery;
pub use backend::{Backend, Store, StoreOptions, check_location, default_key_file, redact_url};
pub use connections::{
    CertificateSummary, Connection, ConnectionMode, ConnectionSettings, NewConnection,
    OrganizationSetup,
};
pub use contact_batch::{ContactBatch, PlannedContact, StoredSince};
pub use contacts::{
    Checkpoint, ContactFilter, ContactKind, ContactRow, ContactSearch, ContactSort, HandEdit,
    MailboxSummary,
};
pub use error::{Result, StoreError};
pub use groups::{GroupBatch, GroupMemberRow, GroupRow};
pub use insight::ConsolidationRow;
pub use inventory::InventoryRow;
pub use licenses::LicenseRow;
pub use mailboxes::{MailboxKind, MailboxRow};
pub use migrate::{known_versions, newest_known};
pub use organizations::{OrganizationOutcome, OrganizationRow};
pub use owner::{Liveness, RunOwner};
pub use queue::{Cancelled, Claim, ClaimedRun, Lease, Queued, RunOptions, RunTrigger, Worker};
pub use review::{Candidate, ChangeRow, ImportBatch, ImportOutcome, Resolution, ReviewItem};
pub use run_records::{RecordOutcome, RecordStep, RunRecord, RunRecordRow};
pub use run_stats::{DurationHistogram, RunStatusCount};
pub use runs::{RunRow, RunWarning, StepCounts, StepRow, StepTenant};
pub use schedules::{DueRun, ScheduleRow};
pub use secrets::SecretKey;
pub use tenants::{SuggestionRow, TenantChoice, TenantOutcome, TenantRow};

/// Milliseconds since 1970: how every time is kept.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
