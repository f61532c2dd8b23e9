//! One module per dataset, each behind `DatasetSync`: what it fetches (and so which permission
//! it needs), how the connection test probes it, and how one step of it runs: fetch, normalise,
//! plan, apply. The engine (`crate::engine`) runs them in order for each tenant; what they share
//! (the step's context, paged and whole listings, delta rounds) lives beside them here.

use domain::{Dataset, StepStatus, TenantId};
use graph::{GraphClient, GraphError};
use store::{Connection, RunWarning, StepCounts, StepTenant, Store};

use crate::Result;

mod api_connectors;
mod applications;
mod audit;
mod delta;
mod detected_apps;
mod devices;
mod directory_roles;
mod domains;
mod groups;
mod licenses;
mod mailboxes;
mod managed_devices;
mod organization;
mod paged;
mod service_health;
mod service_messages;
mod sign_ins;
mod small;
mod terms_of_use;
mod usage;
mod users;

pub(crate) use users::start_round as start_users_round;

pub use audit::AUDIT_CONTENT_TYPES;
pub use mailboxes::CONCEALED_SETTING;

/// One dataset's sync. Dispatched statically (`sync` below), so that a run's future stays
/// `Send` for whoever spawns it.
pub(crate) trait DatasetSync {
    fn dataset(&self) -> Dataset;
    /// The request the connection test makes to prove the dataset's permission works; `None`
    /// where the dataset is probed otherwise (audit, through the Management Activity API).
    fn probe(&self) -> Option<&'static str>;
    /// Runs the step for one tenant: fetch, normalise, plan, apply.
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome>;
}

/// Each dataset's module, named once: the connection test's probe and the step's run.
macro_rules! modules {
    ($($variant:ident => $module:ident :: $ty:ident),* $(,)?) => {
        /// The request that proves a dataset's permission works, where one does.
        pub(crate) fn probe(dataset: Dataset) -> Option<&'static str> {
            match dataset {
                $(Dataset::$variant => $module::$ty.probe(),)*
            }
        }

        /// Runs one dataset's step.
        pub(crate) async fn sync(dataset: Dataset, run: &mut Run<'_>) -> Result<Outcome> {
            match dataset {
                $(Dataset::$variant => {
                    debug_assert_eq!($module::$ty.dataset(), dataset);
                    $module::$ty.sync(run).await
                })*
            }
        }
    };
}

modules! {
    Organization => organization::Organization,
    Licenses => licenses::Licenses,
    Users => users::Users,
    Groups => groups::Groups,
    Mailboxes => mailboxes::Mailboxes,
    Domains => domains::Domains,
    ServiceHealth => service_health::ServiceHealth,
    ServiceMessages => service_messages::ServiceMessages,
    Applications => applications::Applications,
    TermsOfUse => terms_of_use::TermsOfUse,
    ApiConnectors => api_connectors::ApiConnectors,
    DirectoryRoles => directory_roles::DirectoryRoles,
    DetectedApps => detected_apps::DetectedApps,
    Devices => devices::Devices,
    ManagedDevices => managed_devices::ManagedDevices,
    SignInActivity => sign_ins::SignInActivity,
    Audit => audit::Audit,
    Usage => usage::Usage,
}

/// Tells a run's steps to stop at their next page boundary: someone cancelled the run, or its
/// worker lost the lease (the run was taken for interrupted, and must write no more).
#[derive(Debug, Clone, Default)]
pub(crate) struct StopSignal(std::sync::Arc<std::sync::atomic::AtomicU8>);

const GOING: u8 = 0;
const CANCELLED: u8 = 1;
const LEASE_LOST: u8 = 2;

impl StopSignal {
    pub(crate) fn cancel(&self) {
        let _ = self.0.compare_exchange(
            GOING,
            CANCELLED,
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
    pub(crate) fn lose(&self) {
        self.0
            .store(LEASE_LOST, std::sync::atomic::Ordering::SeqCst);
    }
    pub(crate) fn cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst) == CANCELLED
    }
    /// Why the run must stop, when it must.
    pub(crate) fn why(&self) -> Option<String> {
        match self.0.load(std::sync::atomic::Ordering::SeqCst) {
            CANCELLED => {
                Some("cancelled: stopped at a page boundary; what was committed is kept".into())
            }
            LEASE_LOST => {
                Some("stopped: the run's lease expired and it was taken for interrupted".into())
            }
            _ => None,
        }
    }
}

/// What a step came to, before it is logged.
pub(crate) struct Outcome {
    pub(crate) status: StepStatus,
    pub(crate) counts: StepCounts,
    pub(crate) message: Option<String>,
}

impl Outcome {
    pub(crate) fn done(counts: StepCounts, message: Option<String>) -> Self {
        Self {
            status: StepStatus::Succeeded,
            counts,
            message,
        }
    }
    pub(crate) fn failed(
        counts: StepCounts,
        error: &dyn std::fmt::Display,
        fix: Option<String>,
    ) -> Self {
        let message = match fix {
            Some(fix) => format!("{error}. {fix}"),
            None => error.to_string(),
        };
        Self {
            status: StepStatus::Failed,
            counts,
            message: Some(message),
        }
    }
    pub(crate) fn from_graph(counts: StepCounts, error: &GraphError) -> Self {
        Self::failed(counts, error, Some(error.fix()))
    }
}

/// One tenant's steps in progress: what every dataset's step reads and adds to.
pub(crate) struct Run<'a> {
    pub(crate) store: Store,
    /// Users per page of the users listing.
    pub(crate) page_size: u32,
    /// A person confirmed that a listing may archive most of a tenant's contacts.
    pub(crate) confirm_archive: bool,
    pub(crate) run_id: i64,
    /// The step going, whose records' outcomes are kept under it.
    pub(crate) step_id: i64,
    /// Checked at page boundaries.
    pub(crate) stop: StopSignal,
    /// Which users the connection keeps.
    pub(crate) user_filter: domain::filter::UserFilter,
    /// Who owns each contact field.
    pub(crate) field_mapping: domain::FieldMapping,
    pub(crate) client: GraphClient,
    /// The Management Activity API client, where the cloud has that API.
    pub(crate) management: Option<GraphClient>,
    /// List everything, ignoring delta links: a clean sync.
    pub(crate) full: bool,
    pub(crate) client_id: String,
    pub(crate) tenant_id: TenantId,
    /// As the partner's listing or the organisation step last named it.
    pub(crate) tenant_name: Option<String>,
    pub(crate) progress: crate::engine::TenantProgress<'a>,
    pub(crate) warnings: Vec<RunWarning>,
    pub(crate) organization_id: Option<i64>,
    /// Why the later steps are skipped when the tenant has no organisation to file them under.
    pub(crate) held: Option<String>,
    pub(crate) connection: Connection,
    /// The users round's first page, already asked for (see [`users::start_round`]).
    pub(crate) users_ahead: Option<users::UsersAhead>,
}

impl<'a> Run<'a> {
    /// Another lane of the same tenant's run: the same context, its own step and warnings.
    pub(crate) fn fork(&self) -> Run<'a> {
        Run {
            store: self.store.clone(),
            page_size: self.page_size,
            confirm_archive: self.confirm_archive,
            run_id: self.run_id,
            step_id: 0,
            stop: self.stop.clone(),
            user_filter: self.user_filter.clone(),
            field_mapping: self.field_mapping.clone(),
            client: self.client.clone(),
            management: self.management.clone(),
            full: self.full,
            client_id: self.client_id.clone(),
            tenant_id: self.tenant_id,
            tenant_name: self.tenant_name.clone(),
            progress: self.progress,
            warnings: Vec::new(),
            organization_id: self.organization_id,
            held: self.held.clone(),
            connection: self.connection.clone(),
            users_ahead: None,
        }
    }

    pub(crate) fn step_tenant(&self) -> StepTenant {
        StepTenant {
            tenant_id: self.tenant_id.to_string(),
            tenant_name: self.tenant_name.clone(),
        }
    }

    /// Where the step's records' outcomes are kept.
    pub(crate) fn record_step(&self, dataset: Dataset) -> store::RecordStep {
        store::RecordStep {
            run_id: self.run_id,
            step_id: self.step_id,
            tenant_id: self.tenant_id.to_string(),
            dataset: dataset.name().to_string(),
        }
    }

    /// The step's outcome when the run must stop here (cancelled, or its lease lost).
    pub(crate) fn stopped(&self, counts: StepCounts) -> Option<Outcome> {
        self.stop.why().map(|why| Outcome {
            status: StepStatus::Cancelled,
            counts,
            message: Some(why),
        })
    }

    /// The tenant has no organisation to file anything under: this step and every later one
    /// are skipped, saying why.
    pub(crate) fn hold(&mut self, why: String) -> Outcome {
        self.held = Some(why.clone());
        Outcome {
            status: StepStatus::Skipped,
            counts: StepCounts::default(),
            message: Some(why),
        }
    }
}
