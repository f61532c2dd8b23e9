//! The engine: one sync run over a connection's tenants (one for a direct connection, each
//! customer for a partner one), the organisation step first and then each chosen dataset's
//! module (`crate::datasets`), every step logged with its counts and message. A dataset fetched
//! for the tenant more recently than its cache lifetime is skipped, saying until when, except
//! in a clean (`--full`) run.

use std::collections::HashSet;
use std::time::Duration;

/// A tenant's independent steps run at most this many at once by default: enough to overlap
/// one step's waits with another's work, few enough for SQLite's one writer.
pub const DEFAULT_STEPS_AT_ONCE: usize = 4;
/// A partner's customers synced at once by default.
pub const DEFAULT_TENANTS_AT_ONCE: usize = 4;

use domain::cache::{CacheLifetimes, Freshness, describe_lifetime, freshness};
use domain::{Dataset, RunStatus, StepStatus, TenantId};
use futures_util::StreamExt;
use graph::{GraphClient, RetryPolicy};
use serde::Serialize;
use store::{
    Claim, ClaimedRun, Connection, ConnectionMode, Lease, Queued, RunOptions, RunTrigger,
    RunWarning, StepCounts, StepTenant, Store, Worker,
};
use tracing::{debug, info, instrument, warn};

use crate::datasets::{self, Outcome, Run, StopSignal};
use crate::partner;
use crate::{Result, SyncError, graph_client};

/// Which step a progress call is about: one dataset of one tenant. A partner run syncs several
/// customers side by side, each with steps of the same datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepKey {
    pub tenant_id: TenantId,
    pub dataset: Dataset,
}

impl StepReport {
    pub fn key(&self) -> StepKey {
        StepKey {
            tenant_id: self.tenant_id,
            dataset: self.dataset,
        }
    }
}

/// Told about a run as it goes, to draw progress. Every method has a silent default.
pub trait Progress: Send + Sync {
    /// A tenant's steps begin (a partner run has one tenant per customer).
    fn tenant_started(&self, _tenant: &StepTenant) {}
    fn step_started(&self, _step: StepKey) {}
    /// How many items the step expects, where Graph can say beforehand.
    fn expected(&self, _step: StepKey, _total: u64) {}
    fn items(&self, _step: StepKey, _done: u64) {}
    fn step_finished(&self, _step: &StepReport) {}
}

/// One tenant's view of a run's [`Progress`]: its steps say only their dataset.
#[derive(Clone, Copy)]
pub(crate) struct TenantProgress<'a> {
    inner: &'a dyn Progress,
    tenant_id: TenantId,
}

impl<'a> TenantProgress<'a> {
    pub(crate) fn new(inner: &'a dyn Progress, tenant_id: TenantId) -> Self {
        Self { inner, tenant_id }
    }

    fn key(&self, dataset: Dataset) -> StepKey {
        StepKey {
            tenant_id: self.tenant_id,
            dataset,
        }
    }

    pub(crate) fn step_started(&self, dataset: Dataset) {
        self.inner.step_started(self.key(dataset));
    }

    pub(crate) fn expected(&self, dataset: Dataset, total: u64) {
        self.inner.expected(self.key(dataset), total);
    }

    pub(crate) fn items(&self, dataset: Dataset, done: u64) {
        self.inner.items(self.key(dataset), done);
    }

    pub(crate) fn step_finished(&self, step: &StepReport) {
        self.inner.step_finished(step);
    }
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

/// The run's retries in one warning, rather than a line per wait: each wait is logged at `-v`
/// only, and what the run lost to them (if anything) is in its steps' outcomes.
fn retry_summary(requests: &graph::observe::RequestCounts) -> Option<RunWarning> {
    if requests.retry_waits == 0 {
        return None;
    }
    let mut causes: Vec<String> = requests
        .by_status
        .iter()
        .filter(|(status, _)| **status == 429 || **status >= 500)
        .map(|(status, count)| format!("{status} × {count}"))
        .collect();
    if requests.unanswered > 0 {
        causes.push(format!("no answer × {}", requests.unanswered));
    }
    let advice = if requests.throttled() > 0 {
        " If this happens on every run, spread the schedules of connections that share this \
         app registration, or give the connection longer cache lifetimes."
    } else {
        ""
    };
    let waits = match requests.retry_waits {
        1 => "1 wait".to_string(),
        n => format!("{n} waits"),
    };
    Some(RunWarning {
        code: "retried".into(),
        message: format!(
            "Microsoft asked m365sync to slow down or did not answer ({}); the requests were sent again after {waits} of {:.1} s in all, out of {} requests.{advice}",
            if causes.is_empty() {
                "answers that asked for a retry".to_string()
            } else {
                causes.join(", ")
            },
            requests.retry_wait_seconds,
            requests.requests(),
        ),
    })
}

/// Runs syncs against a store.
#[derive(Clone)]
pub struct SyncEngine {
    store: Store,
    retry: RetryPolicy,
    page_size: u32,
    /// A person confirmed that a listing may archive most of a tenant's contacts.
    confirm_archive: bool,
    /// How long a claim holds a run between renewals.
    lease: Duration,
    /// How many of one tenant's independent steps run at once.
    steps_at_once: usize,
    /// How many of a partner's customers are synced at once.
    tenants_at_once: usize,
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
    /// Why a tenant's steps were all skipped: it awaits a person's decision, or is ignored.
    held: Vec<String>,
}

impl SyncEngine {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            retry: RetryPolicy::default(),
            page_size: 999,
            confirm_archive: false,
            lease: store::queue::DEFAULT_LEASE,
            steps_at_once: DEFAULT_STEPS_AT_ONCE,
            tenants_at_once: DEFAULT_TENANTS_AT_ONCE,
        }
    }

    /// How many of a tenant's independent steps run side by side (at least one), and how many
    /// of a partner's customers. Every request still keeps to the tenant's budgets: the steps of
    /// one tenant share its client's count.
    pub fn with_concurrency(mut self, steps: usize, tenants: usize) -> Self {
        self.steps_at_once = steps.max(1);
        self.tenants_at_once = tenants.max(1);
        self
    }

    /// How long a claim holds a run before it must be renewed (short in tests of crashes).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(300));
        self
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
    /// (`full`), as a clean sync does, run here and now: queued as a person's run (joining one
    /// already queued for the connection), claimed by this process and run. A run of the
    /// connection still going elsewhere is not joined: it is refused, naming that run.
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
        // A credential that cannot be used is said now, before anything is queued.
        let credential = self.store.connection_credential(&connection).await?;
        graph_client(&connection, &credential, self.retry.clone())?;
        let queued = self.queue(&connection, RunTrigger::Manual, full).await?;
        let worker = Worker::current(self.lease);
        match self.store.claim_run(&worker, Some(queued.run_id)).await? {
            Claim::Claimed(claimed) => self.run_claimed(&worker, claimed, progress).await,
            refused => {
                if !queued.joined {
                    self.store.withdraw_run(queued.run_id).await?;
                }
                Err(SyncError::Store(store::queue::refusal(
                    connection.name.as_str(),
                    queued.run_id,
                    &refused,
                )))
            }
        }
    }

    /// Puts a run of the connection in the queue for a worker (joining one already queued).
    pub async fn queue(
        &self,
        connection: &Connection,
        trigger: RunTrigger,
        full: bool,
    ) -> Result<Queued> {
        let options = RunOptions {
            full,
            confirm_archive: self.confirm_archive,
        };
        Ok(self
            .store
            .enqueue_run(connection.id, connection.name.as_str(), trigger, options)
            .await?)
    }

    /// Claims the next queued run and runs it; `None` when nothing can run now.
    pub async fn work_once(
        &self,
        worker: &Worker,
        progress: &dyn Progress,
    ) -> Result<Option<SyncReport>> {
        match self.store.claim_run(worker, None).await? {
            Claim::Claimed(claimed) => Ok(Some(self.run_claimed(worker, claimed, progress).await?)),
            Claim::Busy { .. } | Claim::Nothing => Ok(None),
        }
    }

    /// Runs a claimed run, renewing its lease meanwhile. Someone's cancel, or a lease lost,
    /// stops it at the next page boundary.
    async fn run_claimed(
        &self,
        worker: &Worker,
        claimed: ClaimedRun,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        let stop = StopSignal::default();
        let renewal = tokio::spawn(renew_lease(
            self.store.clone(),
            worker.clone(),
            claimed.run_id,
            stop.clone(),
        ));
        // Every write of the run's steps checks that this worker still holds the lease; the
        // run's own closing (finish_run) checks it in its own way.
        let fenced = SyncEngine {
            store: self.store.fenced_to(claimed.run_id, worker),
            ..self.clone()
        };
        let ran = fenced.run_body(&claimed, progress, &stop).await;
        renewal.abort();
        match ran {
            Ok(report) => Ok(report),
            Err(e) => {
                // The run could not even start its steps (the connection was removed, its
                // credential cannot be read): it ends failed, saying why.
                let message = e.to_string();
                fenced
                    .store
                    .finish_run(claimed.run_id, RunStatus::Failed, &[], Some(&message))
                    .await?;
                Err(e)
            }
        }
    }

    async fn run_body(
        &self,
        claimed: &ClaimedRun,
        progress: &dyn Progress,
        stop: &StopSignal,
    ) -> Result<SyncReport> {
        let run_id = claimed.run_id;
        let full = claimed.options.full;
        let connection = self
            .store
            .connection(&claimed.connection_name)
            .await?
            .filter(|c| c.id == claimed.connection_id)
            .ok_or_else(|| SyncError::NoConnection(claimed.connection_name.clone()))?;
        let credential = self.store.connection_credential(&connection).await?;
        let requests_before = graph::observe::request_counts_of(connection.name.as_str());
        let client = graph_client(&connection, &credential, self.retry.clone())?;
        let engine = self
            .clone()
            .confirming_archive(claimed.options.confirm_archive || self.confirm_archive);
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
                engine
                    .tenant_steps(run_id, &connection, tenant, progress, full, stop, &mut log)
                    .await?;
            }
            ConnectionMode::Partner => {
                engine
                    .partner_run(
                        run_id,
                        &connection,
                        &credential,
                        &client,
                        progress,
                        full,
                        stop,
                        &mut log,
                    )
                    .await?;
            }
        }
        let requests =
            graph::observe::request_counts_of(connection.name.as_str()).since(&requests_before);
        log.warnings.extend(retry_summary(&requests));
        let statuses: Vec<StepStatus> = log.steps.iter().map(|s| s.status).collect();
        let status = if stop.cancelled() {
            RunStatus::Cancelled
        } else if log.message.is_some() || stop.why().is_some() {
            RunStatus::Failed
        } else {
            match RunStatus::from_steps(&statuses) {
                // A tenant whose users were written nowhere is not a run that did its work: a
                // script or an alert must see it, and the person must decide.
                RunStatus::Succeeded if !log.held.is_empty() => {
                    if statuses.contains(&StepStatus::Succeeded) {
                        RunStatus::Partial
                    } else {
                        RunStatus::Failed
                    }
                }
                status => status,
            }
        };
        let partner = connection.mode == ConnectionMode::Partner;
        let message = log
            .message
            .clone()
            .or_else(|| stop.why())
            .or_else(|| log.held.first().cloned())
            .or_else(|| {
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
        stop: &StopSignal,
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
        // Customers side by side, each with clients (and so budgets) of its own. The next
        // customer starts as soon as any one ends, not only the first listed of those going (a
        // large customer would hold back the rest); their steps are still logged in the order
        // the partner listed them.
        let mut customers_going =
            futures_util::stream::iter(customers.list.into_iter().enumerate())
                .map(|(position, customer)| async move {
                    let mut customer_log = RunLog::default();
                    let clients = crate::client::tenant_clients(
                        connection,
                        credential,
                        self.retry.clone(),
                        customer.tenant_id,
                        client,
                    );
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
                        // The partner's own client was made with the same credential, so this
                        // cannot happen; were it to, the customer is skipped alone.
                        Err(e) => {
                            customer_log.warnings.push(RunWarning {
                                code: "customer_unreachable".into(),
                                message: format!(
                                    "customer {} ({}) was not synced: {e}",
                                    customer.display_name, customer.tenant_id
                                ),
                            });
                            return Ok((position, customer_log));
                        }
                    };
                    self.tenant_steps(
                        run_id,
                        connection,
                        tenant,
                        progress,
                        full,
                        stop,
                        &mut customer_log,
                    )
                    .await?;
                    Ok::<_, SyncError>((position, customer_log))
                })
                .buffer_unordered(self.tenants_at_once);
        let mut ended = Vec::new();
        while let Some(customer) = customers_going.next().await {
            ended.push(customer?);
        }
        ended.sort_by_key(|(position, _)| *position);
        for (_, mut customer_log) in ended {
            log.steps.append(&mut customer_log.steps);
            log.warnings.append(&mut customer_log.warnings);
            log.held.append(&mut customer_log.held);
        }
        Ok(())
    }

    /// One tenant's steps: the organisation first, then the connection's chosen datasets, the
    /// independent ones side by side (see [`lanes`]).
    #[allow(clippy::too_many_arguments)]
    async fn tenant_steps(
        &self,
        run_id: i64,
        connection: &Connection,
        tenant: Tenant,
        progress: &dyn Progress,
        full: bool,
        stop: &StopSignal,
        log: &mut RunLog,
    ) -> Result<()> {
        let mut run = Run {
            store: self.store.clone(),
            page_size: self.page_size,
            confirm_archive: self.confirm_archive,
            run_id,
            step_id: 0,
            stop: stop.clone(),
            user_filter: connection.user_filter.clone(),
            field_mapping: connection.field_mapping.clone(),
            client: tenant.client,
            management: tenant.management,
            full,
            client_id: connection.client_id.to_string(),
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            progress: TenantProgress::new(progress, tenant.id),
            warnings: Vec::new(),
            organization_id: None,
            held: None,
            connection: connection.clone(),
            users_ahead: None,
        };
        progress.tenant_started(&run.step_tenant());
        let lifetimes = self.store.cache_lifetimes(connection.id).await?;
        let context = StepContext {
            connection,
            refused: tenant.refused.as_deref(),
            lifetimes: &lifetimes,
            full,
        };
        // The users' first page is asked for now: the organisation's step (and any step before
        // the users' in their lane) must be done before it is written, not before it is read.
        // Not where the users are kept cached: the step would not read it.
        let mut users_ahead = if datasets_of(connection).contains(&Dataset::Users)
            && context.refused.is_none()
            && stop.why().is_none()
            && (full || lifetimes.lifetime(Dataset::Users) == 0)
        {
            // Only a head start: a store that cannot say where the round starts now fails
            // the users step in its turn, not the tenant here.
            datasets::start_users_round(&run).await.unwrap_or_else(|e| {
                debug!(tenant = %run.tenant_id, error = %e, "the users' first page was not asked for ahead");
                None
            })
        } else {
            None
        };
        let organization = self.step(&mut run, Dataset::Organization, &context).await?;
        let mut steps = Vec::new();
        let mut warnings = std::mem::take(&mut run.warnings);
        let run = &run;
        let mut lanes_going =
            futures_util::stream::iter(lanes(&datasets_of(connection), &connection.user_filter))
                .map(|lane| {
                    let mut lane_run = run.fork();
                    if lane.contains(&Dataset::Users) {
                        lane_run.users_ahead = users_ahead.take();
                    }
                    let context = &context;
                    async move {
                        let mut steps = Vec::with_capacity(lane.len());
                        for dataset in lane {
                            steps.push(self.step(&mut lane_run, dataset, context).await?);
                        }
                        Ok::<_, SyncError>((steps, lane_run.warnings))
                    }
                })
                .buffer_unordered(self.steps_at_once);
        while let Some(lane) = lanes_going.next().await {
            let (lane_steps, mut lane_warnings) = lane?;
            steps.extend(lane_steps);
            warnings.append(&mut lane_warnings);
        }
        drop(lanes_going);
        // The report lists a tenant's steps in the order of `Dataset::ALL`, however they ended.
        steps.sort_by_key(|step: &StepReport| dataset_position(step.dataset));
        steps.insert(0, organization);
        warnings.extend(
            crate::insight::after_tenant(
                &self.store,
                run.organization_id,
                &run.tenant_id,
                run_id,
                &steps,
            )
            .await,
        );
        log.steps.extend(steps);
        log.warnings.append(&mut warnings);
        log.held.extend(run.held.clone());
        Ok(())
    }

    /// One step of a tenant: logged, then skipped (cancelled, unconsented, no organisation,
    /// cached) or run, and logged again with its outcome.
    async fn step(
        &self,
        run: &mut Run<'_>,
        dataset: Dataset,
        context: &StepContext<'_>,
    ) -> Result<StepReport> {
        let connection = context.connection;
        let step_id = self
            .store
            .start_step(run.run_id, dataset.name(), &run.step_tenant())
            .await?;
        run.progress.step_started(dataset);
        run.step_id = step_id;
        let outcome = if let Some(why) = run.stop.why() {
            Outcome {
                status: StepStatus::Cancelled,
                counts: StepCounts::default(),
                message: Some(why),
            }
        } else if let Some(why) = context.refused {
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
                    message: Some(why.to_string()),
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
        } else if let Some(fresh) = self
            .cached(
                connection,
                &run.tenant_id.to_string(),
                dataset,
                context.lifetimes,
                context.full,
            )
            .await?
        {
            fresh
        } else {
            let began = store::now_millis();
            let outcome = match datasets::sync(dataset, run).await {
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
            };
            // Fresh from when it was asked for: changes made during the step are read again.
            if outcome.status == StepStatus::Succeeded {
                self.store
                    .record_fetch(&run.tenant_id.to_string(), dataset, began)
                    .await?;
            }
            outcome
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
        run.progress.step_finished(&report);
        Ok(report)
    }
}

/// What every step of one tenant's run shares.
struct StepContext<'a> {
    connection: &'a Connection,
    /// Why the app could not sign in to the tenant, when it could not.
    refused: Option<&'a str>,
    lifetimes: &'a CacheLifetimes,
    full: bool,
}

/// The steps after the organisation's, grouped into lanes that may run side by side, the users'
/// lane first as the longest. Every dataset has a lane of its own, except where the
/// connection's user filter reads what another step stores: filtering by SKU needs the
/// licences' part numbers, leaving resource mailboxes out needs the mailbox report's kinds, so
/// those steps go before the users' in its lane. A mailbox is joined to its contact by name
/// when read, so either may be written first.
fn lanes(datasets: &[Dataset], filter: &domain::filter::UserFilter) -> Vec<Vec<Dataset>> {
    let wanted = |dataset: Dataset| datasets.contains(&dataset);
    let mut users = Vec::new();
    if wanted(Dataset::Users) {
        if !filter.skus.is_empty() && wanted(Dataset::Licenses) {
            users.push(Dataset::Licenses);
        }
        if filter.exclude_resource_mailboxes && wanted(Dataset::Mailboxes) {
            users.push(Dataset::Mailboxes);
        }
        users.push(Dataset::Users);
    }
    let others: Vec<Vec<Dataset>> = datasets
        .iter()
        .filter(|d| **d != Dataset::Organization && !users.contains(d))
        .map(|d| vec![*d])
        .collect();
    std::iter::once(users)
        .filter(|lane| !lane.is_empty())
        .chain(others)
        .collect()
}

fn dataset_position(dataset: Dataset) -> usize {
    Dataset::ALL
        .iter()
        .position(|d| *d == dataset)
        .unwrap_or(usize::MAX)
}

impl SyncEngine {
    /// The skipped step of a dataset whose last fetch for the tenant is still fresh; `None` when
    /// it is to be fetched (a clean run fetches everything).
    async fn cached(
        &self,
        connection: &Connection,
        tenant_id: &str,
        dataset: Dataset,
        lifetimes: &CacheLifetimes,
        full: bool,
    ) -> Result<Option<Outcome>> {
        let lifetime = lifetimes.lifetime(dataset);
        if full || lifetime == 0 {
            return Ok(None);
        }
        let fetched_at = self.store.dataset_fetched_at(tenant_id, dataset).await?;
        let (fetched_at, refreshes_at) = match freshness(lifetime, fetched_at, store::now_millis())
        {
            Freshness::Fetch => return Ok(None),
            Freshness::Fresh {
                fetched_at,
                refreshes_at,
            } => (fetched_at, refreshes_at),
        };
        Ok(Some(Outcome {
            status: StepStatus::Skipped,
            counts: StepCounts::default(),
            message: Some(format!(
                "cached: fetched {}, refreshes after {} (kept {}); `m365sync cache clear {} --dataset {}` fetches it on the next run",
                moment(fetched_at),
                moment(refreshes_at),
                describe_lifetime(lifetime),
                connection.name,
                dataset.name()
            )),
        }))
    }
}

/// A time as a run's message gives it: to the minute, in UTC.
fn moment(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "at an unreadable time".into())
}

/// The organisation first, then the connection's chosen datasets in pipeline order.
fn datasets_of(connection: &Connection) -> Vec<Dataset> {
    Dataset::ALL
        .into_iter()
        .filter(|d| *d == Dataset::Organization || connection.datasets.contains(d))
        .collect()
}

/// Renews a run's lease every third of its length until the run ends (the task is aborted
/// then). A cancel request or a lost lease is passed to the run through `stop`.
async fn renew_lease(store: Store, worker: Worker, run_id: i64, stop: StopSignal) {
    let every = worker.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match store.renew_lease(&worker, run_id).await {
            Ok(Lease::Held {
                cancel_requested: true,
            }) => stop.cancel(),
            Ok(Lease::Held { .. }) => {}
            Ok(Lease::Lost) => {
                stop.lose();
                return;
            }
            // The store did not answer this time; the lease has two more chances.
            Err(e) => warn!(run = run_id, error = %e, "a lease could not be renewed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::filter::UserFilter;

    const DEFAULT: [Dataset; 4] = [
        Dataset::Organization,
        Dataset::Licenses,
        Dataset::Users,
        Dataset::Mailboxes,
    ];

    #[test]
    fn without_a_filter_every_dataset_has_a_lane_and_the_users_go_first() {
        assert_eq!(
            lanes(&DEFAULT, &UserFilter::default()),
            vec![
                vec![Dataset::Users],
                vec![Dataset::Licenses],
                vec![Dataset::Mailboxes]
            ]
        );
    }

    #[test]
    fn a_filter_puts_the_steps_it_reads_before_the_users() {
        let by_sku = UserFilter {
            skus: vec!["ENTERPRISEPACK".into()],
            ..UserFilter::default()
        };
        assert_eq!(
            lanes(&DEFAULT, &by_sku),
            vec![
                vec![Dataset::Licenses, Dataset::Users],
                vec![Dataset::Mailboxes]
            ]
        );
        let no_resources = UserFilter {
            exclude_resource_mailboxes: true,
            skus: vec!["ENTERPRISEPACK".into()],
            ..UserFilter::default()
        };
        assert_eq!(
            lanes(&DEFAULT, &no_resources),
            vec![vec![Dataset::Licenses, Dataset::Mailboxes, Dataset::Users]]
        );
    }

    #[test]
    fn without_users_nothing_waits() {
        let filter = UserFilter {
            skus: vec!["ENTERPRISEPACK".into()],
            ..UserFilter::default()
        };
        assert_eq!(
            lanes(&[Dataset::Licenses, Dataset::Mailboxes], &filter),
            vec![vec![Dataset::Licenses], vec![Dataset::Mailboxes]]
        );
    }
}
