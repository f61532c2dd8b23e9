//! What `export` writes of the consolidated software, the licence waste findings and the
//! tenants' snapshots: flat rows, so that CSV and JSON carry the same fields.

use domain::TenantId;
use serde::Serialize;
use store::Store;

#[derive(Clone, Copy)]
pub enum Kind {
    Software,
    SoftwareNames,
    LicenseWaste,
    Snapshots,
}

pub enum Rows {
    Software(Vec<SoftwareRow>),
    SoftwareNames(Vec<SoftwareNameRow>),
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
    /// Why an unmatched entry is not a product (apps reported without a name).
    reason: Option<String>,
}

/// One name a product (or unmatched name) was detected under, in one tenant: a row each, so
/// that a name holding "|" or a comma is one cell, as it was detected.
#[derive(Serialize)]
pub struct SoftwareNameRow {
    organization: String,
    tenant_id: String,
    product: String,
    publisher: Option<String>,
    matched: bool,
    raw_name: String,
}

#[derive(Serialize)]
pub struct FindingRow {
    organization: String,
    tenant_id: String,
    kind: domain::waste::FindingKind,
    subject: String,
    skus: String,
    evidence: String,
    /// Per month, as a decimal (23.10), of the priced seats no row above counts; empty
    /// without a price. Summed, the rows give the `licenses waste` total.
    monthly_cost: Option<String>,
    currency: Option<String>,
    /// The SKUs named that have no price (space-separated): the cost leaves them out.
    unpriced_skus: String,
    /// The findings above ("kind: subject", separated by "; ") that already count some of
    /// this one's seats, and so their cost.
    counted_in: String,
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
                            reason: p.reason.clone(),
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
        ),
        Kind::SoftwareNames => Rows::SoftwareNames(
            store
                .software_products(tenant_id)
                .await?
                .into_iter()
                .flat_map(|s| {
                    let p = s.product;
                    p.raw_names
                        .iter()
                        .map(|name| SoftwareNameRow {
                            organization: s.organization.clone(),
                            tenant_id: s.tenant_id.clone(),
                            product: p.product.clone(),
                            publisher: p.publisher.clone(),
                            matched: p.matched,
                            raw_name: name.clone(),
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
                        monthly_cost: f.counted_cost_cents.map(domain::waste::format_cents),
                        currency: f.currency,
                        unpriced_skus: f.unpriced_skus.join(" "),
                        counted_in: f.counted_in.join("; "),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detected_name_with_bars_commas_and_quotes_is_one_cell_that_reads_back_whole() {
        let names = [
            "Dell Command | Update for Windows Universal",
            "Contoso Tools, Reporting Edition",
            "The \"Best\" App | x, y",
        ];
        let rows: Vec<SoftwareNameRow> = names
            .iter()
            .map(|name| SoftwareNameRow {
                organization: "Contoso".into(),
                tenant_id: "t1".into(),
                product: "Some Product".into(),
                publisher: Some("Contoso, Ltd.".into()),
                matched: true,
                raw_name: name.to_string(),
            })
            .collect();
        let mut written = Vec::new();
        crate::export::write_rows(&rows, crate::export::Format::Csv, &mut written).unwrap();
        let mut reader = csv::Reader::from_reader(written.as_slice());
        let headers = reader.headers().unwrap().clone();
        let at = headers.iter().position(|h| h == "raw_name").unwrap();
        let read: Vec<String> = reader
            .records()
            .map(|r| r.unwrap().get(at).unwrap().to_string())
            .collect();
        assert_eq!(read, names);
    }
}
