//! The organisation step: the tenant's own record, matched to an organisation (or held for a
//! person's decision). Every later step is filed under what it finds.

use domain::Dataset;
use graph::models::{ORGANIZATION_SELECT, Organization as Payload};
use store::{RunWarning, StepCounts, SuggestionRow, TenantOutcome};

use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::normalise;
/// The tenant's organisation record (`Organization.Read.All`).
pub(super) struct Organization;

impl DatasetSync for Organization {
    fn dataset(&self) -> Dataset {
        Dataset::Organization
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/organization?$select=id")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        organization(run).await
    }
}

async fn organization(run: &mut Run<'_>) -> Result<Outcome> {
    let url = format!("v1.0/organization?$select={ORGANIZATION_SELECT}");
    let page: Vec<Payload> = match run.client.pages(&url).next_page().await {
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
    let outcome = match run.store.apply_tenant(&run.connection, &record).await? {
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
