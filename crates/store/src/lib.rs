//! Everything m365sync keeps, on SQLite (the default) or PostgreSQL, behind one API.
//!
//! Owns: the schema and its forward-only migrations (one folder per backend), the repositories
//! for organisations, tenants, connections, contacts, licences, mailboxes, the audit trail and the
//! run log (with each record's outcome), delegated accounts with their sealed refresh tokens and
//! the bookings made with them, the run queue, the connections' schedules and caches,
//! and the encryption of secrets at rest. Each method is written once: the `on_pool!`/`on_tx!`
//! macros expand its body for each backend, so both are type-checked against their own driver.
//! It knows nothing of Graph: it stores the records of `domain`.

mod accounts;
mod audit;
mod backend;
mod connections;
mod contact_batch;
mod contacts;
mod devices;
mod error;
mod groups;
mod inventory;
mod licenses;
mod mailboxes;
mod migrate;
mod organizations;
mod owner;

pub mod queue;
mod review;
pub mod run_records;
mod runs;
mod schedules;
pub mod secrets;
mod tenants;
pub mod typed;
mod usage;

pub use accounts::{BookingRow, DelegatedAccount, NewAccount};
pub use audit::AuditQuery;
pub use backend::{Backend, Store, StoreOptions, check_location, default_key_file};
pub use connections::{
    CertificateSummary, Connection, ConnectionMode, NewConnection, OrganizationSetup,
};
pub use contact_batch::PlannedContact;
pub use contacts::{Checkpoint, ContactFilter, ContactRow, HandEdit, MailboxSummary};
pub use error::{Result, StoreError};
pub use groups::{GroupBatch, GroupMemberRow, GroupRow};
pub use inventory::InventoryRow;
pub use licenses::LicenseRow;
pub use mailboxes::{MailboxKind, MailboxRow};
pub use organizations::{OrganizationOutcome, OrganizationRow};
pub use owner::{Liveness, RunOwner};
pub use queue::{Cancelled, Claim, ClaimedRun, Lease, Queued, RunOptions, RunTrigger, Worker};
pub use review::{Candidate, ChangeRow, ImportBatch, ImportOutcome, Resolution, ReviewItem};
pub use run_records::{RecordOutcome, RecordStep, RunRecord, RunRecordRow};
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
