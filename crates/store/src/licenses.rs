//! Licences: a tenant's subscribed SKUs with bought, assigned and free seats.

use domain::records::fingerprint;
use domain::{LicenseRecord, TenantId, catalog};
use serde::Serialize;

use crate::backend::{Columns, on_pool, on_tx};
use crate::error::{Context, Executed, Result};
use crate::{StepCounts, Store, now_millis};

#[derive(Debug, Clone, Serialize)]
pub struct LicenseRow {
    pub organization: String,
    pub tenant_id: String,
    pub sku_id: String,
    pub sku_part_number: String,
    /// The product name from m365sync's catalogue, else the part number.
    pub name: String,
    /// Whether m365sync's catalogue knows the SKU; an unknown one is new to us.
    pub in_catalogue: bool,
    pub applies_to: String,
    pub capability_status: String,
    pub enabled_units: i64,
    pub consumed_units: i64,
    pub free_units: i64,
    pub suspended_units: i64,
    pub warning_units: i64,
    pub service_plans: Vec<String>,
    /// Whether a subscription behind the SKU is a trial; none where unknown.
    pub trial: Option<bool>,
    /// When its subscription next changes state (RFC 3339).
    pub next_lifecycle: Option<String>,
    pub archived: bool,
}

impl Store {
    /// Writes a tenant's complete SKU list: new ones created, changed ones updated, and SKUs no
    /// longer listed archived (the list is never paged, so it is always complete).
    pub async fn apply_licenses(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
        records: &[LicenseRecord],
    ) -> Result<StepCounts> {
        let mut counts = StepCounts::default();
        let tenant = tenant_id.to_string();
        let now = now_millis();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        let existing: Vec<(i64, String, String, bool)> = on_tx!(&mut tx, |c| {
            let rows = sqlx::query(
                "SELECT id, sku_id, fingerprint, archived FROM licenses WHERE tenant_id = $1",
            )
            .bind(&tenant)
            .fetch_all(c)
            .await
            .doing("reading licences")?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.int_req("id")?,
                        r.text_req("sku_id")?,
                        r.text_req("fingerprint")?,
                        r.flag("archived")?.unwrap_or(false),
                    ))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        for record in records {
            let print = fingerprint(record);
            let plans =
                serde_json::to_string(&record.service_plans).unwrap_or_else(|_| "[]".into());
            let details = serde_json::to_string(&record.plans).unwrap_or_else(|_| "[]".into());
            let found = existing
                .iter()
                .find(|(_, sku, _, _)| sku.eq_ignore_ascii_case(&record.sku_id));
            if let Some((_, _, stored, archived)) = found
                && !archived
                && *stored == print
            {
                counts.unchanged += 1;
                continue;
            }
            on_tx!(&mut tx, |c| {
                sqlx::query(
                "INSERT INTO licenses (organization_id, tenant_id, sku_id, sku_part_number, applies_to, capability_status, enabled_units, suspended_units, warning_units, consumed_units, service_plans, plan_details, fingerprint, created_at, updated_at, is_trial, next_lifecycle) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $14, $12, $13, $13, $15, $16) \
                 ON CONFLICT (tenant_id, sku_id) DO UPDATE SET organization_id = excluded.organization_id, sku_part_number = excluded.sku_part_number, \
                 applies_to = excluded.applies_to, capability_status = excluded.capability_status, enabled_units = excluded.enabled_units, \
                 suspended_units = excluded.suspended_units, warning_units = excluded.warning_units, consumed_units = excluded.consumed_units, \
                 service_plans = excluded.service_plans, plan_details = excluded.plan_details, fingerprint = excluded.fingerprint, \
                 is_trial = excluded.is_trial, next_lifecycle = excluded.next_lifecycle, archived = FALSE, updated_at = excluded.updated_at",
            )
            .bind(organization_id)
            .bind(&tenant)
            .bind(&record.sku_id)
            .bind(record.sku_part_number.as_str())
            .bind(&record.applies_to)
            .bind(&record.capability_status)
            .bind(record.enabled_units)
            .bind(record.suspended_units)
            .bind(record.warning_units)
            .bind(record.consumed_units)
            .bind(&plans)
            .bind(&print)
            .bind(now)
            .bind(&details)
            .bind(record.trial)
            .bind(record.next_lifecycle.as_deref())
            .execute(c).await.done("saving a licence")
            })?;
            if found.is_some() {
                counts.updated += 1;
            } else {
                counts.created += 1;
            }
        }
        for (id, sku, _, archived) in &existing {
            if !archived && !records.iter().any(|r| r.sku_id.eq_ignore_ascii_case(sku)) {
                on_tx!(&mut tx, |c| sqlx::query(
                    "UPDATE licenses SET archived = TRUE, updated_at = $1 WHERE id = $2"
                )
                .bind(now)
                .bind(*id)
                .execute(c)
                .await
                .done("archiving a licence"))?;
                counts.archived += 1;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    pub async fn licenses(
        &self,
        tenant_id: Option<&TenantId>,
        include_archived: bool,
    ) -> Result<Vec<LicenseRow>> {
        let tenant = tenant_id.map(ToString::to_string);
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT l.*, o.name AS organization FROM licenses l JOIN organizations o ON o.id = l.organization_id \
                 WHERE ($1 IS NULL OR l.tenant_id = $1) AND ($2 OR l.archived = FALSE) ORDER BY o.name, l.sku_part_number",
            )
            .bind(tenant.as_deref())
            .bind(include_archived)
            .fetch_all(p)
            .await
            .doing("listing licences")?;
            rows.iter()
                .map(|r| {
                    let enabled = r.int_req("enabled_units")?;
                    let sku_id = r.text_req("sku_id")?;
                    let part = r.text_req("sku_part_number")?;
                    let consumed = r.int_req("consumed_units")?;
                    Ok(LicenseRow {
                        organization: r.text_req("organization")?,
                        tenant_id: r.text_req("tenant_id")?,
                        sku_id: sku_id.clone(),
                        name: catalog::display_name(&sku_id, Some(&part)),
                        in_catalogue: catalog::product_name(&sku_id, &part).is_some(),
                        sku_part_number: part,
                        applies_to: r.text_req("applies_to")?,
                        capability_status: r.text_req("capability_status")?,
                        enabled_units: enabled,
                        consumed_units: consumed,
                        free_units: enabled - consumed,
                        suspended_units: r.int_req("suspended_units")?,
                        warning_units: r.int_req("warning_units")?,
                        service_plans: r.json_list("service_plans")?,
                        trial: r.flag("is_trial")?,
                        next_lifecycle: r.text("next_lifecycle")?,
                        archived: r.flag("archived")?.unwrap_or(false),
                    })
                })
                .collect()
        })
    }
}
