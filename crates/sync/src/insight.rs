//! What a run leaves behind beside the records: each tenant's software consolidated into
//! products when its detected apps changed (or on demand), and a dated snapshot of its
//! headline figures after its steps all did their work. Neither can fail a run: a fault here
//! is a warning in the run's log, and the records stay as the steps wrote them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use domain::software::{Consolidation, RuleSet};
use domain::trends::SnapshotWrite;
use domain::{Dataset, StepStatus, TenantId};
use store::{RunWarning, Store};

use crate::StepReport;

/// The environment variable naming an admin's own software rule file, read before the bundled
/// one so that its rules win.
pub const RULES_ENV: &str = "M365SYNC_SOFTWARE_RULES";

/// A rule file that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(
        "the software rule file {path} cannot be read: {source}; give the path of a TOML rule file (`--rules FILE` or {RULES_ENV})"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] domain::software::RuleError),
}

/// The rules in force: the bundled ones, after the admin's file when one is given (or named
/// by `M365SYNC_SOFTWARE_RULES`).
pub fn software_rules(file: Option<&Path>) -> Result<RuleSet, RulesError> {
    let from_env = std::env::var_os(RULES_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let Some(path) = file.map(Path::to_path_buf).or(from_env) else {
        return Ok(RuleSet::bundled());
    };
    let text = std::fs::read_to_string(&path).map_err(|source| RulesError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(RuleSet::with_admin_file(
        &path.display().to_string(),
        &text,
    )?)
}

/// One tenant's consolidation and what it cost.
pub struct Consolidated {
    pub consolidation: Consolidation,
    /// Reading the detected apps and devices, consolidating and saving.
    pub took: Duration,
    /// Consolidating alone (the rules over every app), without the store.
    pub rules_took: Duration,
}

/// Consolidates a tenant's detected apps as the store holds them, and keeps the result.
pub async fn consolidate_tenant(
    store: &Store,
    organization_id: i64,
    tenant_id: &TenantId,
    rules: &RuleSet,
) -> store::Result<Consolidated> {
    let began = Instant::now();
    let apps = store.detected_apps_of(tenant_id).await?;
    let users = store.device_users(tenant_id).await?;
    let rules_began = Instant::now();
    let consolidation = domain::software::consolidate(rules, &apps, &users);
    let rules_took = rules_began.elapsed();
    store
        .save_consolidation(organization_id, tenant_id, &consolidation)
        .await?;
    Ok(Consolidated {
        consolidation,
        took: began.elapsed(),
        rules_took,
    })
}

/// After one tenant's steps: consolidates its software when the detected apps or devices
/// changed (or it never was), then keeps a snapshot when no step failed or was cancelled.
pub(crate) async fn after_tenant(
    store: &Store,
    organization_id: Option<i64>,
    tenant_id: &TenantId,
    run_id: i64,
    steps: &[StepReport],
) -> Vec<RunWarning> {
    let mut warnings = Vec::new();
    let Some(organization_id) = organization_id else {
        return warnings;
    };
    let changed = |dataset: Dataset| {
        steps.iter().any(|s| {
            s.dataset == dataset
                && s.status == StepStatus::Succeeded
                && s.counts.created + s.counts.updated + s.counts.archived > 0
        })
    };
    let detected = steps
        .iter()
        .any(|s| s.dataset == Dataset::DetectedApps && s.status == StepStatus::Succeeded);
    let never = || async {
        store
            .consolidations()
            .await
            .map(|all| !all.iter().any(|c| c.tenant_id == tenant_id.to_string()))
            .unwrap_or(true)
    };
    if detected
        && (changed(Dataset::DetectedApps) || changed(Dataset::ManagedDevices) || never().await)
    {
        let done = match software_rules(None) {
            Ok(rules) => consolidate_tenant(store, organization_id, tenant_id, &rules)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match done {
            Ok(c) => {
                tracing::info!(tenant = %tenant_id, products = c.consolidation.matched().count(),
                unmatched = c.consolidation.residue().count(), took_ms = c.took.as_millis() as u64, "software consolidated")
            }
            Err(e) => warnings.push(RunWarning {
                code: "software_not_consolidated".into(),
                message: format!("the software of tenant {tenant_id} was not consolidated: {e}"),
            }),
        }
    }
    let clean = !steps.is_empty()
        && steps
            .iter()
            .all(|s| !matches!(s.status, StepStatus::Failed | StepStatus::Cancelled));
    if clean {
        let now = chrono::Utc::now();
        let kept = match store.tenant_figures(tenant_id, now).await {
            Ok(figures) => {
                store
                    .record_snapshot(organization_id, tenant_id, Some(run_id), &figures, now)
                    .await
            }
            Err(e) => Err(e),
        };
        match kept {
            Ok(SnapshotWrite::Insert) => {
                tracing::info!(tenant = %tenant_id, "new snapshot of the tenant's figures")
            }
            Ok(SnapshotWrite::Extend) => {}
            Err(e) => warnings.push(RunWarning {
                code: "snapshot_not_kept".into(),
                message: format!("the figures of tenant {tenant_id} were not kept: {e}"),
            }),
        }
    }
    warnings
}
