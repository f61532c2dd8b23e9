//! One sync run: organisation, then licences, users, mailboxes and the tenant-wide inventories,
//! each a logged step.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Timelike;

use domain::{Dataset, InventoryItem, ObjectId, RunStatus, StepStatus, TenantId};
use graph::models::{
    APPLICATION_SELECT, ActivityContent, ActivitySubscription, Agreement, Application,
    DEVICE_SELECT, DetectedApp, Device, DirectoryObject, DirectoryRole, Domain, GROUP_SELECT,
    GroupDelta, MANAGED_DEVICE_SELECT, MailboxUsageRow, ManagedDevice, ORGANIZATION_SELECT,
    Organization, SIGN_IN_PAGE, SUBSCRIBED_SKU_SELECT, ServiceHealth, ServiceHealthIssue,
    ServiceUpdateMessage, SubscribedSku, USER_SELECT, User, UserSignIns,
};
use graph::{GraphClient, GraphError, RetryPolicy};
use serde::Serialize;
use serde::de::DeserializeOwned;
use store::{
    Connection, ConnectionMode, RunWarning, StepCounts, StepTenant, Store, SuggestionRow,
    TenantOutcome,
};
use tracing::{debug, info, instrument, warn};

use crate::inventory;
use crate::normalise::{self, NormaliseError};
use crate::partner;
use crate::{Result, SyncError, graph_client};

/// Rows of the mailbox report written per transaction.
const MAILBOX_BATCH: usize = 1_000;

pub const CONCEALED_SETTING: &str = "Microsoft 365 admin center › Settings › Org settings › Services › Reports › \"Display concealed user, group, and site names in all reports\"";

/// Told about a run as it goes, to draw progress. Every method has a silent default.
pub trait Progress: Send + Sync {
    /// A tenant's steps begin (a partner run has one tenant per customer).
    fn tenant_started(&self, _tenant: &StepTenant) {}
    fn step_started(&self, _dataset: Dataset) {}
    /// How many items the step expects, where Graph can say beforehand.
    fn expected(&self, _dataset: Dataset, _total: u64) {}
    fn items(&self, _dataset: Dataset, _done: u64) {}
    fn step_finished(&self, _step: &StepReport) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub dataset: Dataset,
    /// The tenant the step read: the connection's own, or one of a partner's customers.
    pub tenant_id: TenantId,
    pub tenant_name: Option<String>,
    pub status: StepStatus,
    #[serde(flatten)]
    pub counts: StepCounts,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub run_id: i64,
    pub status: RunStatus,
    pub steps: Vec<StepReport>,
    pub warnings: Vec<RunWarning>,
    /// Why the run failed before any step, when it did (a partner's customers not listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SyncReport {
    /// The run's first step of `dataset` (a direct run has one per dataset).
    pub fn step(&self, dataset: Dataset) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.dataset == dataset)
    }

    /// The step of `dataset` in `tenant`.
    pub fn step_in(&self, tenant: &TenantId, dataset: Dataset) -> Option<&StepReport> {
        self.steps
            .iter()
            .find(|s| s.dataset == dataset && s.tenant_id == *tenant)
    }
    /// Records written by the whole run.
    pub fn writes(&self) -> u64 {
        self.steps.iter().map(|s| s.counts.writes()).sum()
    }
}

/// Runs syncs against a store.
#[derive(Clone)]
pub struct SyncEngine {
    store: Store,
    retry: RetryPolicy,
    page_size: u32,
    /// A person confirmed that a listing may archive most of a tenant's contacts.
    confirm_archive: bool,
}

/// What a step came to, before it is logged.
struct Outcome {
    status: StepStatus,
    counts: StepCounts,
    message: Option<String>,
}

impl Outcome {
    fn done(counts: StepCounts, message: Option<String>) -> Self {
        Self {
            status: StepStatus::Succeeded,
            counts,
            message,
        }
    }
    fn failed(counts: StepCounts, error: &dyn std::fmt::Display, fix: Option<String>) -> Self {
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
    fn from_graph(counts: StepCounts, error: &GraphError) -> Self {
        Self::failed(counts, error, Some(error.fix()))
    }
}

struct Run<'a> {
    run_id: i64,
    /// Which users the connection keeps.
    user_filter: domain::filter::UserFilter,
    /// Who owns each contact field.
    field_mapping: domain::FieldMapping,
    client: GraphClient,
    /// The Management Activity API client, where the cloud has that API.
    management: Option<GraphClient>,
    /// List everything, ignoring delta links: a clean sync.
    full: bool,
    client_id: String,
    tenant_id: TenantId,
    /// As the partner's listing or the organisation step last named it.
    tenant_name: Option<String>,
    progress: &'a dyn Progress,
    warnings: Vec<RunWarning>,
    organization_id: Option<i64>,
    /// Why the later steps are skipped when the tenant has no organisation to file them under.
    held: Option<String>,
    connection: Connection,
}

/// A tenant about to be synced: its clients, and why they cannot sign in when they cannot.
struct Tenant {
    id: TenantId,
    name: Option<String>,
    client: GraphClient,
    management: Option<GraphClient>,
    /// Why the app could not get a token for it (a customer that has not consented the app).
    refused: Option<String>,
}

/// What a run has come to so far, across its tenants.
#[derive(Default)]
struct RunLog {
    steps: Vec<StepReport>,
    warnings: Vec<RunWarning>,
    /// Why the run could not even start on its tenants (a partner's customers not listed).
    message: Option<String>,
}

impl Run<'_> {
    fn step_tenant(&self) -> StepTenant {
        StepTenant {
            tenant_id: self.tenant_id.to_string(),
            tenant_name: self.tenant_name.clone(),
        }
    }

    /// The tenant has no organisation to file anything under: this step and every later one
    /// are skipped, saying why.
    fn hold(&mut self, why: String) -> Outcome {
        self.held = Some(why.clone());
        Outcome {
            status: StepStatus::Skipped,
            counts: StepCounts::default(),
            message: Some(why),
        }
    }
}

impl SyncEngine {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            retry: RetryPolicy::default(),
            page_size: 999,
            confirm_archive: false,
        }
    }

    /// Lets a complete listing archive most of a tenant's contacts, which is otherwise held as a
    /// likely mistake (a filter that matches nobody, a directory that answered nearly empty).
    pub fn confirming_archive(mut self, confirm: bool) -> Self {
        self.confirm_archive = confirm;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Users per page (1–999); small pages make paging visible in tests.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, 999);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Syncs every dataset the connection has chosen. The organisation step always runs first:
    /// everything else is filed under the organisation it finds.
    #[instrument(skip(self, progress), fields(connection = name))]
    pub async fn sync(&self, name: &str, progress: &dyn Progress) -> Result<SyncReport> {
        self.sync_with(name, progress, false).await
    }

    /// A sync that lists every user again instead of reading the changes since the last run
    /// (`full`), as a clean sync does. A direct connection syncs its own tenant; a partner
    /// connection lists the partner's customers and syncs each in turn, as a tenant of its own.
    pub async fn sync_with(
        &self,
        name: &str,
        progress: &dyn Progress,
        full: bool,
    ) -> Result<SyncReport> {
        let connection = self
            .store
            .connection(name)
            .await?
            .ok_or_else(|| SyncError::NoConnection(name.to_string()))?;
        let credential = self.store.connection_credential(&connection).await?;
        let client = graph_client(&connection, &credential, self.retry.clone())?;
        let run_id = self
            .store
            .start_run(
                connection.id,
                connection.name.as_str(),
                if full { "full" } else { "manual" },
            )
            .await?;
        let mut log = RunLog::default();
        match connection.mode {
            ConnectionMode::Direct => {
                let management =
                    crate::management_client(&connection, &credential, self.retry.clone())?;
                let tenant_name = self
                    .store
                    .tenant(&connection.tenant_id.to_string())
                    .await?
                    .and_then(|t| t.display_name);
                let tenant = Tenant {
                    id: connection.tenant_id,
                    name: tenant_name,
                    client,
                    management,
                    refused: None,
                };
                self.tenant_steps(run_id, &connection, tenant, progress, full, &mut log)
                    .await?;
            }
            ConnectionMode::Partner => {
                self.partner_run(
                    run_id,
                    &connection,
                    &credential,
                    &client,
                    progress,
                    full,
                    &mut log,
                )
                .await?;
            }
        }
        let statuses: Vec<StepStatus> = log.steps.iter().map(|s| s.status).collect();
        let status = if log.message.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::from_steps(&statuses)
        };
        let partner = connection.mode == ConnectionMode::Partner;
        let message = log.message.clone().or_else(|| {
            log.steps
                .iter()
                .find(|s| s.status == StepStatus::Failed)
                .and_then(|s| {
                    let message = s.message.clone()?;
                    // A partner run's message says which customer it is about.
                    Some(match (&s.tenant_name, partner) {
                        (Some(name), true) if !message.contains(name.as_str()) => {
                            format!("{name}: {message}")
                        }
                        _ => message,
                    })
                })
        });
        self.store
            .finish_run(run_id, status, &log.warnings, message.as_deref())
            .await?;
        Ok(SyncReport {
            run_id,
            status,
            steps: log.steps,
            warnings: log.warnings,
            message: log.message,
        })
    }

    /// A partner's run: its customers listed, then each synced as a tenant of its own with the
    /// same app, one after the other. A customer that cannot be signed in to fails its own
    /// steps, saying why; the others go on.
    #[allow(clippy::too_many_arguments)]
    async fn partner_run(
        &self,
        run_id: i64,
        connection: &Connection,
        credential: &domain::Credential,
        client: &GraphClient,
        progress: &dyn Progress,
        full: bool,
        log: &mut RunLog,
    ) -> Result<()> {
        let customers = match partner::discover(client, &connection.tenant_id).await {
            Ok(customers) => customers,
            Err(problem) => {
                log.message = Some(format!(
                    "the partner's customers could not be listed: {}. {}",
                    problem.message.trim_end_matches('.'),
                    problem.fix
                ));
                return Ok(());
            }
        };
        log.warnings.extend(customers.warnings());
        let listed: HashSet<String> = customers
            .list
            .iter()
            .map(|c| c.tenant_id.to_string())
            .collect();
        // Customers this connection synced before that the partner no longer lists.
        let partner_tenant = connection.tenant_id.to_string();
        for gone in self.store.tenants(None).await? {
            if gone.connection.as_deref() == Some(connection.name.as_str())
                && gone.tenant_id != partner_tenant
                && !listed.contains(&gone.tenant_id)
            {
                log.warnings.push(partner::no_longer_listed(&gone));
            }
        }
        for customer in customers.list {
            let retry = self.retry.clone();
            let clients =
                crate::client::tenant_clients(connection, credential, retry, customer.tenant_id);
            let tenant = match clients {
                Ok((client, management)) => {
                    let refused = match client.token().await {
                        Ok(_) => None,
                        Err(e) => Some(partner::refusal(connection, &customer, &e)),
                    };
                    Tenant {
                        id: customer.tenant_id,
                        name: Some(customer.display_name.clone()),
                        client,
                        management,
                        refused,
                    }
                }
                // The partner's own client was made with the same credential, so this cannot
                // happen; were it to, the customer is skipped alone.
                Err(e) => {
                    log.warnings.push(RunWarning {
                        code: "customer_unreachable".into(),
                        message: format!(
                            "customer {} ({}) was not synced: {e}",
                            customer.display_name, customer.tenant_id
                        ),
                    });
                    continue;
                }
            };
            self.tenant_steps(run_id, connection, tenant, progress, full, log)
                .await?;
        }
        Ok(())
    }

    /// One tenant's steps: the organisation first, then the connection's chosen datasets.
    async fn tenant_steps(
        &self,
        run_id: i64,
        connection: &Connection,
        tenant: Tenant,
        progress: &dyn Progress,
        full: bool,
        log: &mut RunLog,
    ) -> Result<()> {
        let mut run = Run {
            run_id,
            user_filter: connection.user_filter.clone(),
            field_mapping: connection.field_mapping.clone(),
            client: tenant.client,
            management: tenant.management,
            full,
            client_id: connection.client_id.to_string(),
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            progress,
            warnings: Vec::new(),
            organization_id: None,
            held: None,
            connection: connection.clone(),
        };
        progress.tenant_started(&run.step_tenant());
        for dataset in datasets_of(connection) {
            let step_id = self
                .store
                .start_step(run_id, dataset.name(), &run.step_tenant())
                .await?;
            progress.step_started(dataset);
            let outcome = if let Some(why) = &tenant.refused {
                if dataset == Dataset::Organization {
                    // Listed by the partner all the same: the customer shows among the tenants
                    // (by the name the listing gave), so that it is not forgotten.
                    if let Some(name) = &run.tenant_name {
                        let seen = domain::OrganizationRecord {
                            tenant_id: run.tenant_id,
                            display_name: name.clone(),
                            verified_domains: Vec::new(),
                            default_domain: None,
                            country_letter_code: None,
                        };
                        if let Err(e) = self.store.apply_tenant(connection, &seen).await {
                            warn!(tenant = %run.tenant_id, error = %e, "an unconsented customer could not be listed among the tenants");
                        }
                    }
                    Outcome {
                        status: StepStatus::Failed,
                        counts: StepCounts::default(),
                        message: Some(why.clone()),
                    }
                } else {
                    Outcome {
                        status: StepStatus::Skipped,
                        counts: StepCounts::default(),
                        message: Some("skipped: the app could not sign in to this tenant".into()),
                    }
                }
            } else if dataset != Dataset::Organization && run.organization_id.is_none() {
                Outcome {
                    status: StepStatus::Skipped,
                    counts: StepCounts::default(),
                    message: Some(match &run.held {
                        Some(why) => format!("skipped: {why}"),
                        None => "skipped: the organization step did not succeed".into(),
                    }),
                }
            } else {
                match self.step(&mut run, dataset).await {
                    Ok(outcome) => outcome,
                    // A store failure fails its step; the later steps still run (or say why
                    // they cannot), and the run is logged as failed on the way out.
                    Err(SyncError::Store(e)) => {
                        warn!(dataset = dataset.name(), error = %e, "the store failed during a step");
                        Outcome::failed(
                            StepCounts::default(),
                            &format!("the store failed: {e}"),
                            None,
                        )
                    }
                    Err(e) => Outcome::failed(StepCounts::default(), &e, None),
                }
            };
            self.store
                .finish_step(
                    step_id,
                    outcome.status,
                    outcome.counts,
                    outcome.message.as_deref(),
                    run.tenant_name.as_deref(),
                )
                .await?;
            let report = StepReport {
                dataset,
                tenant_id: run.tenant_id,
                tenant_name: run.tenant_name.clone(),
                status: outcome.status,
                counts: outcome.counts,
                message: outcome.message,
            };
            info!(dataset = dataset.name(), tenant = %run.tenant_id, status = %report.status, created = report.counts.created, updated = report.counts.updated,
                unchanged = report.counts.unchanged, archived = report.counts.archived, "step finished");
            progress.step_finished(&report);
            log.steps.push(report);
        }
        log.warnings.append(&mut run.warnings);
        Ok(())
    }

    async fn step(&self, run: &mut Run<'_>, dataset: Dataset) -> Result<Outcome> {
        match dataset {
            Dataset::Organization => self.organization(run).await,
            Dataset::Licenses => self.licenses(run).await,
            Dataset::Users => self.by_delta(run, USERS_RESOURCE).await,
            Dataset::Groups => self.by_delta(run, GROUPS_RESOURCE).await,
            Dataset::Mailboxes => self.mailboxes(run).await,
            Dataset::Domains
            | Dataset::ServiceHealth
            | Dataset::ServiceMessages
            | Dataset::Applications
            | Dataset::TermsOfUse
            | Dataset::DirectoryRoles
            | Dataset::DetectedApps => self.inventory(run, dataset).await,
            Dataset::Devices => {
                // As many as Intune's devices, or more: read and written a page at a time.
                let path = format!("v1.0/devices?$select={DEVICE_SELECT}&$top=999");
                self.paged_inventory(run, Dataset::Devices, &path, |page: Vec<Device>| {
                    page.iter().map(inventory::device_item).collect()
                })
                .await
            }
            Dataset::SignInActivity => self.sign_in_activity(run).await,
            Dataset::ManagedDevices => self.managed_devices(run).await,
            Dataset::Audit => self.audit(run).await,
            Dataset::Usage => self.usage(run).await,
        }
    }

    async fn organization(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let url = format!("v1.0/organization?$select={ORGANIZATION_SELECT}");
        let page: Vec<Organization> = match run.client.pages(&url).next_page().await {
            Ok(page) => page.unwrap_or_default(),
            Err(e) => return Ok(Outcome::from_graph(StepCounts::default(), &e)),
        };
        let Some(org) = page.first() else {
            return Ok(Outcome::failed(
                StepCounts::default(),
                &"Graph returned no organization for this tenant",
                None,
            ));
        };
        let record = match normalise::organization_from(org) {
            Ok(r) => r,
            Err(e) => return Ok(Outcome::failed(StepCounts::default(), &e, None)),
        };
        run.tenant_name = Some(record.display_name.clone());
        if record.tenant_id != run.tenant_id {
            return Ok(Outcome::failed(
                StepCounts::default(),
                &format!(
                    "the token is for tenant {} but the connection names {}",
                    record.tenant_id, run.tenant_id
                ),
                Some("Check the connection's tenant ID".into()),
            ));
        }
        let outcome = match self.store.apply_tenant(&run.connection, &record).await? {
            TenantOutcome::Matched { organization, .. } => organization,
            TenantOutcome::Awaiting { suggestions, .. } => {
                let why = awaiting_decision(&record, &suggestions);
                run.warnings.push(RunWarning {
                    code: "tenant_awaits_decision".into(),
                    message: why.clone(),
                });
                return Ok(run.hold(why));
            }
            TenantOutcome::Ignored => {
                let why = format!(
                    "tenant {} ({}) is ignored; `m365sync match {} --unmatch` brings it back for a decision",
                    record.display_name, record.tenant_id, record.tenant_id
                );
                return Ok(run.hold(why));
            }
        };
        run.organization_id = Some(outcome.id());
        let mut counts = StepCounts::default();
        match outcome {
            store::OrganizationOutcome::Created(_) => counts.created = 1,
            store::OrganizationOutcome::Updated(_) => counts.updated = 1,
            store::OrganizationOutcome::Unchanged(_) => counts.unchanged = 1,
        }
        Ok(Outcome::done(counts, None))
    }

    async fn licenses(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let url = format!("v1.0/subscribedSkus?$select={SUBSCRIBED_SKU_SELECT}");
        let mut pager = run.client.pages::<SubscribedSku>(&url);
        let mut records = Vec::new();
        loop {
            match pager.next_page().await {
                Ok(Some(page)) => {
                    for sku in &page {
                        match normalise::license_from_sku(run.tenant_id, sku) {
                            Ok(r) => records.push(r),
                            Err(e) => return Ok(Outcome::failed(StepCounts::default(), &e, None)),
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return Ok(Outcome::from_graph(StepCounts::default(), &e)),
            }
        }
        let organization_id = run.organization_id.unwrap_or_default();
        // A SKU the bundled catalogue does not know is reported once, when it first appears.
        let known: HashSet<String> = self
            .store
            .licenses(Some(&run.tenant_id), true)
            .await?
            .into_iter()
            .map(|l| l.sku_id)
            .collect();
        for record in records.iter().filter(|r| !known.contains(&r.sku_id)) {
            if domain::catalog::product_name(&record.sku_id, record.sku_part_number.as_str())
                .is_none()
            {
                run.warnings.push(RunWarning {
                    code: "sku_unknown".into(),
                    message: format!(
                        "new licence {} (SKU {}) is not in m365sync's catalogue of product names; it is shown by its part number",
                        record.sku_part_number, record.sku_id
                    ),
                });
            }
        }
        let counts = self
            .store
            .apply_licenses(organization_id, &run.tenant_id, &records)
            .await?;
        run.progress.items(Dataset::Licenses, records.len() as u64);
        Ok(Outcome::done(counts, None))
    }

    /// Users by delta query. With a stored link only the changes since the last round are read;
    /// otherwise (first run, `--full`, or a link Graph no longer knows) every user is listed and
    /// whoever the complete listing lacks is archived. The next round's link is saved in the same
    /// transaction as the data of the round's last page, so a crash never skips a change.
    /// A dataset read by delta: from the saved link, or whole when there is none (or the run is
    /// a clean one); a link Graph no longer knows means one more round, whole.
    async fn by_delta(&self, run: &mut Run<'_>, resource: &'static str) -> Result<Outcome> {
        let mut stored = if run.full {
            None
        } else {
            self.store.delta_link(&run.tenant_id, resource).await?
        };
        // A link saved against another Graph address (the connection was moved, or a demo's
        // simulator came back on another port) is never followed: it would carry our token
        // elsewhere, and Graph here would not know it anyway.
        if let Some(link) = stored.take_if(|link| !run.client.is_own_link(link)) {
            self.store
                .clear_delta_link(&run.tenant_id, resource)
                .await?;
            let host = url::Url::parse(&link)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| match u.port() {
                        Some(port) => format!("{h}:{port}"),
                        None => h.to_string(),
                    })
                })
                .unwrap_or_else(|| "an address that is not a URL".into());
            run.warnings.push(RunWarning {
                code: "delta_link_foreign".into(),
                message: format!(
                    "the saved {resource} delta link pointed at {host}, not this connection's Microsoft Graph address; it was dropped and all {resource} were listed again"
                ),
            });
        }
        match self.delta_round(run, resource, stored).await? {
            Round::Done(outcome) => Ok(outcome),
            Round::Expired => {
                self.store
                    .clear_delta_link(&run.tenant_id, resource)
                    .await?;
                run.warnings.push(RunWarning {
                    code: "delta_reset".into(),
                    message: format!("Microsoft Graph no longer knew the {resource} delta link (links expire after 7 days unused); all {resource} were listed again"),
                });
                match self.delta_round(run, resource, None).await? {
                    Round::Done(outcome) => Ok(outcome),
                    Round::Expired => Ok(Outcome::failed(
                        StepCounts::default(),
                        &"a fresh delta listing was refused as expired",
                        None,
                    )),
                }
            }
        }
    }

    async fn delta_round(
        &self,
        run: &mut Run<'_>,
        resource: &str,
        link: Option<String>,
    ) -> Result<Round> {
        match resource {
            GROUPS_RESOURCE => self.groups_round(run, link).await,
            _ => self.users_round(run, link).await,
        }
    }

    /// A groups round: the entries merged per group (one group's members can span pages),
    /// written after the last page, the link saved after the data it covers.
    async fn groups_round(&self, run: &mut Run<'_>, link: Option<String>) -> Result<Round> {
        let incremental = link.is_some();
        let url =
            link.unwrap_or_else(|| format!("v1.0/groups/delta?$select={GROUP_SELECT},members"));
        let mut pager = run.client.pages::<GroupDelta>(&url);
        let mut changes: BTreeMap<String, inventory::GroupChange> = BTreeMap::new();
        loop {
            let page = match pager.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(GraphError::DeltaExpired { .. }) if incremental => return Ok(Round::Expired),
                Err(e) => {
                    return Ok(Round::Done(Outcome::from_graph(StepCounts::default(), &e)));
                }
            };
            for entry in page {
                changes
                    .entry(entry.group.id.clone())
                    .or_default()
                    .merge(entry);
            }
        }
        let Some(checkpoint) = checkpoint_of(&pager, GROUPS_RESOURCE) else {
            return Ok(Round::Done(Outcome::failed(
                StepCounts::default(),
                &"the groups delta listing ended without a delta link",
                Some("Run the sync again; if it persists, report it with the run log".into()),
            )));
        };
        let organization_id = run.organization_id.unwrap_or_default();
        if incremental && changes.is_empty() {
            // Nothing changed: no need to read the stored groups, only to move the link on.
            self.store
                .apply_inventory(
                    organization_id,
                    &run.tenant_id,
                    Dataset::Groups,
                    &[],
                    Some(&checkpoint),
                )
                .await?;
            return Ok(Round::Done(Outcome::done(StepCounts::default(), None)));
        }
        let stored: HashMap<String, serde_json::Value> = if incremental {
            self.store
                .inventory_as_stored(Some(&run.tenant_id), Dataset::Groups, false)
                .await?
                .into_iter()
                .map(|row| (row.key, row.document))
                .collect()
        } else {
            HashMap::new()
        };
        let mut items = Vec::new();
        let mut deleted = HashSet::new();
        for (id, change) in &changes {
            if change.removed {
                deleted.insert(id.clone());
            } else {
                items.push(inventory::group_from_delta(id, change, stored.get(id)));
            }
        }
        let mut counts = self
            .store
            .apply_inventory(
                organization_id,
                &run.tenant_id,
                Dataset::Groups,
                &items,
                None,
            )
            .await?;
        run.progress.items(Dataset::Groups, items.len() as u64);
        // A whole round names every group; a changes round only the changed ones and the deleted.
        let mut seen: HashSet<String> = items.into_iter().map(|i| i.key).collect();
        if incremental {
            seen.extend(stored.into_keys());
        }
        seen.retain(|key| !deleted.contains(key));
        counts.archived = self
            .store
            .archive_inventory_not_in(&run.tenant_id, Dataset::Groups, &seen)
            .await?;
        self.store
            .apply_inventory(
                organization_id,
                &run.tenant_id,
                Dataset::Groups,
                &[],
                Some(&checkpoint),
            )
            .await?;
        Ok(Round::Done(Outcome::done(counts, None)))
    }

    async fn users_round(&self, run: &mut Run<'_>, link: Option<String>) -> Result<Round> {
        let incremental = link.is_some();
        if !incremental {
            // A full listing can show how far it has got; the count only serves the display,
            // so a tenant that will not count is no reason to stop.
            match run.client.count("v1.0/users/$count").await {
                Ok(total) => run.progress.expected(Dataset::Users, total),
                Err(e) => debug!(error = %e, "users could not be counted"),
            }
        }
        let url = link.unwrap_or_else(|| format!("v1.0/users/delta?$select={USER_SELECT}"));
        let mut pager = run.client.pages::<User>(&url).max_page_size(self.page_size);
        let organization_id = run.organization_id.unwrap_or_default();
        let facts = self
            .store
            .user_facts(&run.tenant_id, &run.user_filter)
            .await?;
        let mut filtered: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut filtered_sample: Vec<String> = Vec::new();
        let mut counts = StepCounts::default();
        let mut seen: HashSet<ObjectId> = HashSet::new();
        let mut skipped: Vec<String> = Vec::new();
        let mut held = 0u64;
        let mut deferred_archives: Vec<domain::plan::ContactAction> = Vec::new();
        loop {
            let page = match pager.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(GraphError::DeltaExpired { .. }) if incremental => return Ok(Round::Expired),
                // Nothing is archived and no link saved: the round did not finish (invariant 3).
                Err(e) => return Ok(Round::Done(Outcome::from_graph(counts, &e))),
            };
            let mut records = Vec::with_capacity(page.len());
            let mut removed = Vec::new();
            for user in &page {
                if let Some(removal) = &user.removed {
                    let reason = removal.get("reason").and_then(|r| r.as_str());
                    match ObjectId::parse(&user.id) {
                        Ok(id) => removed.push(domain::plan::Removal::from_reason(id, reason)),
                        Err(_) => {
                            skipped.push(format!("{} (removed, but its id is not a GUID)", user.id))
                        }
                    }
                    continue;
                }
                match normalise::contact_from_user(run.tenant_id, user) {
                    Ok(record) => {
                        seen.insert(record.object_id);
                        records.push(record);
                    }
                    Err(NormaliseError::UserNotStorable { id, reason }) => {
                        // Known by id, so it is not archived; but it cannot be stored as is.
                        if let Ok(object_id) = ObjectId::parse(&id) {
                            seen.insert(object_id);
                        }
                        skipped.push(format!("{id} ({reason})"));
                    }
                    Err(e) => {
                        let message = format!("page {} of users: {e}", pager.pages_read());
                        return Ok(Round::Done(Outcome::failed(counts, &message, None)));
                    }
                }
            }
            let checkpoint = (incremental && pager.is_done())
                .then(|| checkpoint_of(&pager, USERS_RESOURCE))
                .flatten();
            // Plan against what the store holds, under the tenant's lock, and apply the plan with
            // the checkpoint it covers: the store writes what the plan says and nothing else.
            let mut batch = self
                .store
                .contact_batch(organization_id, &run.tenant_id)
                .await?;
            let stored = batch.stored(&records, &removed, &run.field_mapping).await?;
            // The connection's filters: users they leave out are not written, and a contact
            // whose user leaves them is archived with the rule's reason.
            let mut kept = Vec::with_capacity(records.len());
            let mut left_out = Vec::new();
            for record in records {
                match run.user_filter.verdict(&record, &facts) {
                    None => kept.push(record),
                    Some(reason) => left_out.push((record, reason)),
                }
            }
            for (record, reason) in &left_out {
                *filtered.entry(reason.code()).or_default() += 1;
                if filtered_sample.len() < 5 {
                    filtered_sample.push(format!("{} ({reason})", record.user_principal_name));
                }
            }
            let out_ids: Vec<(ObjectId, domain::filter::SkipReason)> = left_out
                .iter()
                .map(|(r, reason)| (r.object_id, reason.clone()))
                .collect();
            let mut plan = domain::plan::plan_contacts(
                &kept,
                &removed,
                &stored,
                &run.field_mapping,
                store::now_millis(),
            );
            let out_of_scope = domain::plan::plan_out_of_scope(&out_ids, &stored).actions;
            if incremental {
                plan.actions.extend(out_of_scope);
            } else {
                // A whole listing archives with its last batch, where a mistake can be held.
                deferred_archives.extend(out_of_scope);
            }
            let applied = batch
                .apply(&plan, Some(run.run_id), checkpoint.as_ref())
                .await?;
            if !run.user_filter.is_empty() {
                let kept_ids: Vec<ObjectId> = kept.iter().map(|r| r.object_id).collect();
                batch.record_filtered(&left_out, &kept_ids).await?;
            }
            batch.commit().await?;
            counts += applied.counts;
            held += applied.held;
            run.progress.items(
                Dataset::Users,
                counts.created + counts.updated + counts.unchanged,
            );
        }
        if !incremental {
            let checkpoint = checkpoint_of(&pager, USERS_RESOURCE);
            let mut batch = self
                .store
                .contact_batch(organization_id, &run.tenant_id)
                .await?;
            let active = batch.active_linked().await?;
            let mut plan = domain::plan::plan_not_listed(&active, &seen);
            plan.actions.append(&mut deferred_archives);
            if !self.confirm_archive
                && domain::plan::looks_like_mass_archive(plan.actions.len(), active.len())
            {
                // Nothing archived and no link saved: the next sync lists everyone again.
                drop(batch);
                let archived_for = |not_listed: bool| {
                    plan.actions
                        .iter()
                        .filter(|a| {
                            matches!(a, domain::plan::ContactAction::Archive { reason, .. }
                                if (*reason == domain::plan::ArchiveReason::NotListed) == not_listed)
                        })
                        .count()
                };
                let message = format!(
                    "this listing would archive {} of the tenant's {} contacts ({} no longer listed, {} left out by the connection's filters), which looks like a mistake; nothing was archived",
                    plan.actions.len(),
                    active.len(),
                    archived_for(true),
                    archived_for(false),
                );
                return Ok(Round::Done(Outcome::failed(
                    counts,
                    &message,
                    Some(format!(
                        "Check the filters with `m365sync connection filter {}`; if the archiving is meant, run `m365sync sync {} --full --confirm-archive`",
                        run.connection.name, run.connection.name
                    )),
                )));
            }
            counts.archived += batch
                .apply(&plan, Some(run.run_id), checkpoint.as_ref())
                .await?
                .counts
                .archived;
            batch.commit().await?;
        }
        // Users deleted in Microsoft 365 more than 30 days ago were not restored: archived now.
        let mut batch = self
            .store
            .contact_batch(organization_id, &run.tenant_id)
            .await?;
        let marked = batch.marked_deleted().await?;
        let expired = domain::plan::plan_expired_deletions(&marked, store::now_millis());
        if !expired.actions.is_empty() {
            counts.archived += batch
                .apply(&expired, Some(run.run_id), None)
                .await?
                .counts
                .archived;
        }
        batch.commit().await?;
        if !filtered.is_empty() {
            let total: u64 = filtered.values().sum();
            let by_rule: Vec<String> = filtered
                .iter()
                .map(|(rule, n)| format!("{n} {rule}"))
                .collect();
            run.warnings.push(RunWarning {
                code: "users_filtered".into(),
                message: format!(
                    "{total} users were left out by the connection's filters ({}), e.g. {}; `m365sync export filtered-users` lists them with the reason",
                    by_rule.join(", "),
                    filtered_sample.join(", ")
                ),
            });
        }
        if held > 0 {
            run.warnings.push(RunWarning {
                code: "users_held_for_review".into(),
                message: format!(
                    "{held} users could each be more than one existing contact and were not written; decide with `m365sync review`"
                ),
            });
        }
        if !skipped.is_empty() {
            let sample: Vec<&str> = skipped.iter().take(5).map(String::as_str).collect();
            warn!(count = skipped.len(), "users skipped");
            run.warnings.push(RunWarning {
                code: "users_skipped".into(),
                message: format!(
                    "{} users could not be stored as they are (no usable user principal name, or a field no store keeps) and were left out: {}",
                    skipped.len(),
                    sample.join(", ")
                ),
            });
        }
        let message = if incremental {
            "changes since the last sync (delta)"
        } else {
            "full listing"
        };
        Ok(Round::Done(Outcome::done(
            counts,
            Some(message.to_string()),
        )))
    }

    async fn mailboxes(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let mut counts = StepCounts::default();
        let file = match run
            .client
            .download_report("reports/getMailboxUsageDetail(period='D7')")
            .await
        {
            Ok(f) => f,
            Err(e) => return Ok(Outcome::from_graph(counts, &e)),
        };
        let mut rows = match file.rows::<MailboxUsageRow>() {
            Ok(rows) => rows,
            Err(e) => return Ok(Outcome::from_graph(counts, &e)),
        };
        if !rows.headers().iter().any(|h| h == "User Principal Name") {
            return Ok(Outcome::failed(
                counts,
                &format!(
                    "the mailbox usage report has no 'User Principal Name' column (columns: {})",
                    rows.headers().join(", ")
                ),
                None,
            ));
        }
        let mut batch = Vec::with_capacity(MAILBOX_BATCH);
        let mut seen: HashSet<String> = HashSet::new();
        let (mut concealed, mut unreadable, mut read) = (0u64, 0u64, 0u64);
        loop {
            let row = match rows.next_row() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => return Ok(Outcome::from_graph(counts, &e)),
            };
            read += 1;
            match normalise::mailbox_from_row(run.tenant_id, &row) {
                Ok(record) => {
                    seen.insert(record.user_principal_name.key().to_string());
                    batch.push(record);
                }
                Err(NormaliseError::Concealed) => concealed += 1,
                Err(_) => unreadable += 1,
            }
            if batch.len() >= MAILBOX_BATCH {
                counts += self.store.apply_mailboxes(&run.tenant_id, &batch).await?;
                batch.clear();
                run.progress.items(Dataset::Mailboxes, read);
            }
        }
        counts += self.store.apply_mailboxes(&run.tenant_id, &batch).await?;
        run.progress.items(Dataset::Mailboxes, read);
        if concealed > 0 {
            // Rows that cannot be told apart cannot prove a mailbox gone: nothing is archived.
            run.warnings.push(RunWarning {
                code: "report_names_concealed".into(),
                message: format!(
                    "{concealed} of {read} mailbox report rows have concealed user names, so their figures were attached to nobody. \
                     To fix it, a global administrator turns off {CONCEALED_SETTING}, or runs `m365sync connection report-names NAME --show` (needs ReportSettings.ReadWrite.All)"
                ),
            });
            let message = format!("{concealed} rows with concealed names were not attached");
            return Ok(Outcome {
                status: if seen.is_empty() {
                    StepStatus::Skipped
                } else {
                    StepStatus::Succeeded
                },
                counts,
                message: Some(message),
            });
        }
        counts.archived = self
            .store
            .archive_mailboxes_not_in(&run.tenant_id, &seen)
            .await?;
        let message = (unreadable > 0).then(|| {
            format!("{unreadable} rows without a usable user principal name were skipped")
        });
        Ok(Outcome::done(counts, message))
    }
}

impl SyncEngine {
    /// Intune devices, written page by page (a tenant may have tens of thousands), then those
    /// the complete listing lacks archived.
    async fn managed_devices(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let path = format!(
            "v1.0/deviceManagement/managedDevices?$select={MANAGED_DEVICE_SELECT}&$top=999"
        );
        self.paged_inventory(
            run,
            Dataset::ManagedDevices,
            &path,
            |page: Vec<ManagedDevice>| page.iter().map(inventory::managed_device_item).collect(),
        )
        .await
    }

    /// A large tenant-wide collection read and written a page at a time, whatever the complete
    /// listing lacks archived at the end. A tenant without Entra ID P1/P2 skips the step with a
    /// note (only sign-in activity meets that).
    async fn paged_inventory<T: DeserializeOwned>(
        &self,
        run: &mut Run<'_>,
        dataset: Dataset,
        path: &str,
        to_items: impl Fn(Vec<T>) -> Vec<InventoryItem>,
    ) -> Result<Outcome> {
        let mut pager = run.client.pages::<T>(path);
        let mut counts = StepCounts::default();
        let mut seen = HashSet::new();
        let organization_id = run.organization_id.unwrap_or_default();
        loop {
            let page = match pager.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) if e.needs_premium() => {
                    run.warnings.push(RunWarning {
                        code: format!("{dataset}_needs_premium"),
                        message: format!("{dataset} was not read: the tenant has no Microsoft Entra ID P1 or P2 licence, which Microsoft requires for it"),
                    });
                    return Ok(Outcome {
                        status: StepStatus::Skipped,
                        counts,
                        message: Some(e.fix()),
                    });
                }
                Err(e) => return Ok(Outcome::from_graph(counts, &e)),
            };
            let items = to_items(page);
            seen.extend(items.iter().map(|i| i.key.clone()));
            counts += self
                .store
                .apply_inventory(organization_id, &run.tenant_id, dataset, &items, None)
                .await?;
            run.progress.items(dataset, seen.len() as u64);
        }
        counts.archived = self
            .store
            .archive_inventory_not_in(&run.tenant_id, dataset, &seen)
            .await?;
        Ok(Outcome::done(counts, None))
    }

    /// A large tenant-wide collection kept in a typed table: each page planned against the
    /// stored rows of its keys and applied in one transaction, then whatever the complete
    /// listing lacks archived. A tenant without Entra ID P1/P2 skips the step with a note.
    async fn paged_rows<T: DeserializeOwned, R: store::typed::TypedTable>(
        &self,
        run: &mut Run<'_>,
        dataset: Dataset,
        path: &str,
        to_records: impl Fn(Vec<T>) -> Vec<R>,
    ) -> Result<Outcome> {
        let mut pager = run.client.pages::<T>(path);
        let mut counts = StepCounts::default();
        let mut seen = HashSet::new();
        let organization_id = run.organization_id.unwrap_or_default();
        loop {
            let page = match pager.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) if e.needs_premium() => {
                    run.warnings.push(RunWarning {
                        code: format!("{dataset}_needs_premium"),
                        message: format!("{dataset} was not read: the tenant has no Microsoft Entra ID P1 or P2 licence, which Microsoft requires for it"),
                    });
                    return Ok(Outcome {
                        status: StepStatus::Skipped,
                        counts,
                        message: Some(e.fix()),
                    });
                }
                Err(e) => return Ok(Outcome::from_graph(counts, &e)),
            };
            let records = to_records(page);
            seen.extend(records.iter().map(|r| r.key().to_string()));
            let mut batch = self
                .store
                .row_batch::<R>(organization_id, &run.tenant_id)
                .await?;
            let stored = batch.stored(records.iter().map(|r| r.key())).await?;
            let plan = domain::rows::plan_page(&stored, records);
            counts += batch.apply(&plan, None).await?;
            batch.commit().await?;
            run.progress.items(dataset, seen.len() as u64);
        }
        let mut batch = self
            .store
            .row_batch::<R>(organization_id, &run.tenant_id)
            .await?;
        let active = batch.active_keys().await?;
        let plan: domain::rows::RowPlan<R> = domain::rows::plan_not_listed(&active, &seen);
        counts.archived = batch.apply(&plan, None).await?.archived;
        batch.commit().await?;
        Ok(Outcome::done(counts, None))
    }
}

/// The content types of the unified audit log that m365sync collects.
pub const AUDIT_CONTENT_TYPES: [&str; 4] = [
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
];

impl SyncEngine {
    /// The audit trail from the Office 365 Management Activity API: each content type's
    /// subscription started where it is not, then the blobs made available since the last run
    /// read in windows of at most 24 hours, no further back than 7 days. Each window's records
    /// are written with the window's end in one transaction, so a run resumes where the last
    /// stopped; records are keyed by their `Id`, so a blob read twice adds nothing.
    async fn audit(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let mut counts = StepCounts::default();
        let Some(client) = run.management.as_ref() else {
            return Ok(Outcome::failed(
                counts,
                &"the Office 365 Management Activity API is not available in this cloud",
                None,
            ));
        };
        let tenant = run.tenant_id;
        let root = format!("api/v1.0/{tenant}/activity/feed");
        // PublisherIdentifier is the tenant of whoever runs the integration; for a direct
        // connection that is the tenant itself. It apportions the API's quota.
        let publisher = format!("PublisherIdentifier={tenant}");
        let subscriptions: Vec<ActivitySubscription> = match client
            .get_json(&format!("{root}/subscriptions/list?{publisher}"))
            .await
        {
            Ok(list) => list,
            Err(e) => return Ok(Outcome::from_graph(counts, &e)),
        };
        for content_type in AUDIT_CONTENT_TYPES {
            let enabled = subscriptions.iter().any(|s| {
                s.content_type == content_type
                    && s.status
                        .as_deref()
                        .is_some_and(|st| st.eq_ignore_ascii_case("enabled"))
            });
            if !enabled {
                let started: Result<serde_json::Value, GraphError> = client
                    .post_empty(&format!(
                        "{root}/subscriptions/start?contentType={content_type}&{publisher}"
                    ))
                    .await;
                if let Err(e) = started {
                    return Ok(Outcome::from_graph(counts, &e));
                }
            }
        }
        let now = chrono::Utc::now()
            .with_nanosecond(0)
            .unwrap_or_else(chrono::Utc::now);
        let oldest = now - chrono::Duration::days(7) + chrono::Duration::minutes(5);
        let organization_id = run.organization_id.unwrap_or_default();
        for content_type in AUDIT_CONTENT_TYPES {
            let resource = format!("audit:{content_type}");
            let resume = self
                .store
                .delta_link(&tenant, &resource)
                .await?
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&chrono::Utc));
            let mut start = resume.unwrap_or(oldest).max(oldest);
            // The API wants windows of whole seconds with the start before the end; a window of
            // under a minute is left for the next run rather than asked for.
            while now - start >= chrono::Duration::minutes(1) {
                let end = (start + chrono::Duration::hours(24)).min(now);
                let window =
                    |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
                let mut next = Some(format!(
                    "{root}/subscriptions/content?contentType={content_type}&startTime={}&endTime={}&{publisher}",
                    window(start),
                    window(end)
                ));
                let mut items = Vec::new();
                while let Some(url) = next.take() {
                    let (blobs, next_page): (Vec<ActivityContent>, Option<String>) =
                        match client.get_json_and_header(&url, "NextPageUri").await {
                            Ok(page) => page,
                            Err(e) => return Ok(Outcome::from_graph(counts, &e)),
                        };
                    for blob in &blobs {
                        let records: Vec<serde_json::Value> =
                            match client.get_json(&blob.content_uri).await {
                                Ok(records) => records,
                                Err(e) => return Ok(Outcome::from_graph(counts, &e)),
                            };
                        items.extend(records.iter().filter_map(inventory::audit_item));
                    }
                    next = next_page;
                }
                let checkpoint = store::Checkpoint {
                    resource: resource.clone(),
                    link: end.to_rfc3339(),
                };
                counts += self
                    .store
                    .apply_inventory(
                        organization_id,
                        &tenant,
                        Dataset::Audit,
                        &items,
                        Some(&checkpoint),
                    )
                    .await?;
                run.progress
                    .items(Dataset::Audit, counts.created + counts.unchanged);
                start = end;
            }
        }
        Ok(Outcome::done(counts, None))
    }
}

/// What the usage reports delivered, across the three.
#[derive(Default)]
struct UsageTally {
    counts: StepCounts,
    /// Keys of the rows read, across the three reports: what a complete reading may keep.
    seen: HashSet<String>,
    rows: u64,
    concealed: u64,
    unnamed: u64,
}

impl SyncEngine {
    /// When each user last signed in, one row per user by object id. Needs AuditLog.Read.All
    /// and a tenant with Entra ID P1/P2; without the licence the step is skipped with a note,
    /// not failed, and nothing is archived.
    async fn sign_in_activity(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let path =
            format!("v1.0/users?$select=id,userPrincipalName,signInActivity&$top={SIGN_IN_PAGE}");
        self.paged_rows(
            run,
            Dataset::SignInActivity,
            &path,
            |page: Vec<UserSignIns>| page.iter().filter_map(inventory::sign_in_record).collect(),
        )
        .await
    }

    /// Usage: the active-user, app and email-activity reports, one row per user per report, so
    /// that one report never rewrites another's columns. Rows are planned and written a
    /// thousand at a time as the reports stream in; what none of the three names is archived
    /// only once all three were read whole. Like mailboxes, rows with concealed names are
    /// attached to nobody, and then nothing is archived either: such a listing cannot prove
    /// anyone gone.
    async fn usage(&self, run: &mut Run<'_>) -> Result<Outcome> {
        use domain::rows::RowPlan;
        use domain::usage::UsageRecord;
        let mut tally = UsageTally::default();
        for function in [
            "getOffice365ActiveUserDetail(period='D30')",
            "getM365AppUserDetail(period='D30')",
            "getEmailActivityUserDetail(period='D30')",
        ] {
            let file = match run
                .client
                .download_report(&format!("reports/{function}"))
                .await
            {
                Ok(f) => f,
                Err(e) => return Ok(Outcome::from_graph(tally.counts, &e)),
            };
            let read = match function.split('(').next() {
                Some("getOffice365ActiveUserDetail") => {
                    self.usage_rows(run, &file, inventory::usage::activity, &mut tally)
                        .await?
                }
                Some("getM365AppUserDetail") => {
                    self.usage_rows(run, &file, inventory::usage::apps, &mut tally)
                        .await?
                }
                _ => {
                    self.usage_rows(run, &file, inventory::usage::email, &mut tally)
                        .await?
                }
            };
            if let Err(e) = read {
                return Ok(Outcome::from_graph(tally.counts, &e));
            }
        }
        if tally.concealed > 0 {
            run.warnings.push(RunWarning {
                code: "report_names_concealed".into(),
                message: format!(
                    "{} of {} usage report rows have concealed user names, so they were attached to nobody. To fix it, a global administrator turns off {CONCEALED_SETTING}",
                    tally.concealed, tally.rows
                ),
            });
            let status = if tally.seen.is_empty() {
                StepStatus::Skipped
            } else {
                StepStatus::Succeeded
            };
            return Ok(Outcome {
                status,
                counts: tally.counts,
                message: Some(format!(
                    "{} rows with concealed names were not attached",
                    tally.concealed
                )),
            });
        }
        let mut batch = self
            .store
            .row_batch::<UsageRecord>(run.organization_id.unwrap_or_default(), &run.tenant_id)
            .await?;
        let active = batch.active_keys().await?;
        let plan: RowPlan<UsageRecord> = domain::rows::plan_not_listed(&active, &tally.seen);
        tally.counts.archived = batch.apply(&plan, None).await?.archived;
        batch.commit().await?;
        let message = (tally.unnamed > 0).then(|| {
            format!(
                "{} rows without a user principal name were skipped",
                tally.unnamed
            )
        });
        Ok(Outcome::done(tally.counts, message))
    }

    /// Streams one downloaded report into the usage table a thousand rows at a time, each
    /// thousand planned against the stored rows of its keys and written in one transaction.
    /// The outer error is the store's; the inner one the report's.
    async fn usage_rows<R: DeserializeOwned>(
        &self,
        run: &mut Run<'_>,
        file: &graph::ReportFile,
        to_record: fn(&R) -> Result<domain::usage::UsageRecord, inventory::usage::Skip>,
        tally: &mut UsageTally,
    ) -> Result<Result<(), GraphError>> {
        use domain::rows::Keyed;
        const USAGE_BATCH: usize = 1_000;
        let mut rows = match file.rows::<R>() {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(e)),
        };
        let organization_id = run.organization_id.unwrap_or_default();
        let mut records: Vec<domain::usage::UsageRecord> = Vec::with_capacity(USAGE_BATCH);
        loop {
            let row = match rows.next_row() {
                Ok(Some(row)) => Some(row),
                Ok(None) => None,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(row) = &row {
                tally.rows += 1;
                match to_record(row) {
                    Ok(record) => {
                        tally.seen.insert(record.key().to_string());
                        records.push(record);
                    }
                    Err(inventory::usage::Skip::Concealed) => tally.concealed += 1,
                    Err(inventory::usage::Skip::NoName) => tally.unnamed += 1,
                }
            }
            if records.len() >= USAGE_BATCH || (row.is_none() && !records.is_empty()) {
                let page = std::mem::replace(&mut records, Vec::with_capacity(USAGE_BATCH));
                let mut batch = self
                    .store
                    .row_batch::<domain::usage::UsageRecord>(organization_id, &run.tenant_id)
                    .await?;
                let stored = batch.stored(page.iter().map(|r| r.key())).await?;
                let plan = domain::rows::plan_page(&stored, page);
                tally.counts += batch.apply(&plan, None).await?;
                batch.commit().await?;
                run.progress.items(Dataset::Usage, tally.rows);
            }
            if row.is_none() {
                return Ok(Ok(()));
            }
        }
    }
}

/// The resource name delta links are kept under.
const USERS_RESOURCE: &str = "users";
const GROUPS_RESOURCE: &str = "groups";

/// How a delta round ended: with an outcome, or with a delta link Graph no longer knows.
enum Round {
    Done(Outcome),
    Expired,
}

fn checkpoint_of<T: DeserializeOwned>(
    pager: &graph::Pager<'_, T>,
    resource: &str,
) -> Option<store::Checkpoint> {
    pager.delta_link().map(|link| store::Checkpoint {
        resource: resource.to_string(),
        link: link.to_string(),
    })
}

/// Every item of a small tenant-wide collection, all pages read.
async fn fetch_all<T: DeserializeOwned>(
    client: &GraphClient,
    path: &str,
) -> Result<Vec<T>, GraphError> {
    let mut pager = client.pages::<T>(path);
    let mut items = Vec::new();
    while let Some(page) = pager.next_page().await? {
        items.extend(page);
    }
    Ok(items)
}

impl SyncEngine {
    /// A tenant-wide inventory: read whole (these collections are small; the members of each
    /// group, role or app come twenty to a `$batch`), written in batches, and whatever the
    /// complete listing lacks archived.
    async fn inventory(&self, run: &mut Run<'_>, dataset: Dataset) -> Result<Outcome> {
        let listed: Result<Vec<InventoryItem>, GraphError> = async {
            Ok(match dataset {
                Dataset::Domains => fetch_all::<Domain>(&run.client, "v1.0/domains")
                    .await?
                    .iter()
                    .map(inventory::domain_item)
                    .collect(),
                Dataset::ServiceHealth => {
                    let mut items: Vec<InventoryItem> = fetch_all::<ServiceHealth>(
                        &run.client,
                        "v1.0/admin/serviceAnnouncement/healthOverviews",
                    )
                    .await?
                    .iter()
                    .map(inventory::service_health_item)
                    .collect();
                    let issues = fetch_all::<ServiceHealthIssue>(
                        &run.client,
                        "v1.0/admin/serviceAnnouncement/issues",
                    )
                    .await?;
                    items.extend(issues.iter().map(inventory::service_issue_item));
                    items
                }
                Dataset::ServiceMessages => fetch_all::<ServiceUpdateMessage>(
                    &run.client,
                    "v1.0/admin/serviceAnnouncement/messages",
                )
                .await?
                .iter()
                .map(inventory::service_message_item)
                .collect(),
                Dataset::Applications => {
                    let apps = fetch_all::<Application>(
                        &run.client,
                        &format!("v1.0/applications?$select={APPLICATION_SELECT}"),
                    )
                    .await?;
                    let now = chrono::Utc::now();
                    for app in &apps {
                        run.warnings.extend(inventory::credential_warnings(
                            app,
                            &run.client_id,
                            now,
                        ));
                    }
                    apps.iter().map(inventory::application_item).collect()
                }
                Dataset::DirectoryRoles => {
                    let roles = fetch_all::<DirectoryRole>(&run.client, "v1.0/directoryRoles").await?;
                    let paths: Vec<String> = roles.iter().map(|r| format!("/directoryRoles/{}/members", r.id)).collect();
                    let members = run.client.batch_collections::<DirectoryObject>("v1.0", &paths).await?;
                    roles.iter().zip(&members).map(|(role, members)| inventory::directory_role_item(role, members)).collect()
                }
                Dataset::DetectedApps => {
                    let apps = fetch_all::<DetectedApp>(&run.client, "v1.0/deviceManagement/detectedApps?$top=999").await?;
                    let paths: Vec<String> = apps.iter().map(|a| format!("/deviceManagement/detectedApps/{}/managedDevices?$select=id&$top=999", a.id)).collect();
                    let devices = run.client.batch_collections::<DirectoryObject>("v1.0", &paths).await?;
                    apps.iter().zip(devices).map(|(app, devices)| inventory::detected_app_item(app, devices.into_iter().map(|d| d.id).collect())).collect()
                }
                Dataset::TermsOfUse => fetch_all::<Agreement>(
                    &run.client,
                    "v1.0/identityGovernance/termsOfUse/agreements",
                )
                .await?
                .iter()
                .map(inventory::agreement_item)
                .collect(),
                _ => Vec::new(),
            })
        }
        .await;
        let items = match listed {
            Ok(items) => items,
            Err(e) => return Ok(Outcome::from_graph(StepCounts::default(), &e)),
        };
        let organization_id = run.organization_id.unwrap_or_default();
        let mut counts = StepCounts::default();
        for batch in items.chunks(500) {
            counts += self
                .store
                .apply_inventory(organization_id, &run.tenant_id, dataset, batch, None)
                .await?;
        }
        run.progress.items(dataset, items.len() as u64);
        let seen: HashSet<String> = items.into_iter().map(|i| i.key).collect();
        counts.archived = self
            .store
            .archive_inventory_not_in(&run.tenant_id, dataset, &seen)
            .await?;
        Ok(Outcome::done(counts, None))
    }
}

/// What a person is asked to do about a tenant that awaits a decision, with the exact command.
fn awaiting_decision(record: &domain::OrganizationRecord, suggestions: &[SuggestionRow]) -> String {
    let tenant = &record.tenant_id;
    let name = &record.display_name;
    match suggestions.first() {
        Some(best) => format!(
            "tenant {name} ({tenant}) awaits a decision on its organisation: the best fit is '{}' ({:.2}, {}); accept it with `m365sync match {tenant} --accept`, or see the {} suggestion(s) with `m365sync tenants --state suggested`",
            best.organization,
            best.score,
            best.rule.describe(),
            suggestions.len()
        ),
        None => format!(
            "tenant {name} ({tenant}) awaits a decision on its organisation: none fits; create one with `m365sync match {tenant} --create`, or choose one with `m365sync match {tenant} --organization NAME`"
        ),
    }
}

/// The organisation first, then the connection's chosen datasets in pipeline order.
fn datasets_of(connection: &Connection) -> Vec<Dataset> {
    Dataset::ALL
        .into_iter()
        .filter(|d| *d == Dataset::Organization || connection.datasets.contains(d))
        .collect()
}
