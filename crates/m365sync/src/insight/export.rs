//! What `export` writes of the consolidated software, the licence waste findings and the
//! tenants' snapshots: flat rows, so that CSV and JSON carry the same fields.

use domain::TenantId;
use serde::Serialize;
use store::Store;

#[derive(Clone, Copy)]
pub enum Kind {
    Software,
    LicenseWaste,
    Snapshots,
}

pub enum Rows {
    Software(Vec<SoftwareRow>),
    LicenseWaste(Vec<FindingRow>),
    Snapshots(Vec<SnapshotRow>),
}

/// One version of one product (or unmatched name) in one tenant.
#[derive(Serialize)]
pub struct SoftwareRow {
    organization: String,
    tenant_id: String,
    product: String,
    publisher: Option<String>,
    matched: bool,
    product_devices: u64,
    product_users: u64,
    latest_version: Option<String>,
    oldest_version: Option<String>,
    version: String,
    version_devices: u64,
    version_users: u64,
    /// The names it was detected under, joined by " | ".
    raw_names: String,
}

#[derive(Serialize)]
pub struct FindingRow {
    organization: String,
    tenant_id: String,
    kind: domain::waste::FindingKind,
    subject: String,
    skus: String,
    evidence: String,
    /// Per month, as a decimal (23.10), of the priced seats; empty without a price.
    monthly_cost: Option<String>,
    currency: Option<String>,
    /// The SKUs named that have no price (space-separated): the cost leaves them out.
    unpriced_skus: String,
}

#[derive(Serialize)]
pub struct SnapshotRow {
    organization: String,
    tenant_id: String,
    taken_at: String,
    seen_until: String,
    figure: String,
    value: i64,
}

pub async fn rows(store: &Store, kind: Kind, tenant_id: Option<&TenantId>) -> anyhow::Result<Rows> {
    Ok(match kind {
        Kind::Software => Rows::Software(
            store
                .software_products(tenant_id)
                .await?
                .into_iter()
                .flat_map(|s| {
                    let p = s.product;
                    let raw_names = p.raw_names.join(" | ");
                    p.versions
                        .iter()
                        .map(|v| SoftwareRow {
                            organization: s.organization.clone(),
                            tenant_id: s.tenant_id.clone(),
                            product: p.product.clone(),
                            publisher: p.publisher.clone(),
                            matched: p.matched,
                            product_devices: p.devices,
                            product_users: p.users,
                            latest_version: p.latest_version.clone(),
                            oldest_version: p.oldest_version.clone(),
                            version: v.version.clone(),
                            version_devices: v.devices,
                            version_users: v.users,
                            raw_names: raw_names.clone(),
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
        ),
        Kind::LicenseWaste => {
            let path = std::env::var_os(super::PRICES_ENV)
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from);
            let prices = super::price_list(path.as_deref())?;
            let (skus, users) = store.license_facts(tenant_id).await?;
            let report = super::waste_findings(&skus, &users, &prices)?;
            Rows::LicenseWaste(
                report
                    .findings
                    .into_iter()
                    .map(|f| FindingRow {
                        organization: f.organization,
                        tenant_id: f.tenant_id,
                        kind: f.kind,
                        subject: f.subject,
                        skus: f.skus.join(" "),
                        evidence: f.evidence,
                        monthly_cost: f.monthly_cost_cents.map(domain::waste::format_cents),
                        currency: f.currency,
                        unpriced_skus: f.unpriced_skus.join(" "),
                    })
                    .collect(),
            )
        }
        Kind::Snapshots => {
            let tenants = match tenant_id {
                Some(id) => store
                    .tenants(None)
                    .await?
                    .into_iter()
                    .filter(|t| t.tenant_id.eq_ignore_ascii_case(&id.to_string()))
                    .collect(),
                None => store.tenants(None).await?,
            };
            let mut rows = Vec::new();
            for tenant in tenants {
                let id = super::tenant_id(&tenant)?;
                for snapshot in store.snapshots(&id).await? {
                    for (figure, value) in &snapshot.figures.0 {
                        rows.push(SnapshotRow {
                            organization: tenant.organization.clone().unwrap_or_default(),
                            tenant_id: tenant.tenant_id.clone(),
                            taken_at: snapshot.taken_at.to_rfc3339(),
                            seen_until: snapshot.seen_until.to_rfc3339(),
                            figure: figure.clone(),
                            value: *value,
                        });
                    }
                }
            }
            Rows::Snapshots(rows)
        }
    })
}
