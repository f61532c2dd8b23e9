//! Checks a connection's new filters against what the store knows of its tenant, so that a typo
//! is refused when it is typed rather than found when a sync leaves everyone out.

use domain::Dataset;
use domain::filter::UserFilter;
use store::{Connection, ConnectionMode, Store};

use crate::Result;

/// The first value of the filter that names nothing in the tenant, as a sentence with the fix;
/// `None` when every value names something, or when the tenant was never synced (nothing to
/// check against yet).
pub async fn filter_problem(
    store: &Store,
    connection: &Connection,
    filter: &UserFilter,
) -> Result<Option<String>> {
    if !filter.groups.is_empty() && !connection.datasets.contains(&Dataset::Groups) {
        return Ok(Some(format!(
            "connection '{}' does not sync groups, so no user can be a member of {}: add the groups dataset to the connection, or leave --group out",
            connection.name,
            filter.groups.join(", ")
        )));
    }
    // A partner's customers each have their own domains and licences: nothing single to check.
    if connection.mode == ConnectionMode::Partner {
        return Ok(None);
    }
    let tenant = connection.tenant_id.to_string();
    if let Some(row) = store.tenant(&tenant).await?
        && !row.verified_domains.is_empty()
    {
        let known = &row.verified_domains;
        for domain in filter.include_domains.iter().chain(&filter.exclude_domains) {
            let fits = known.iter().any(|k| {
                let k = k.to_lowercase();
                k == *domain
                    || k.ends_with(&format!(".{domain}"))
                    || domain.ends_with(&format!(".{k}"))
            });
            if !fits {
                return Ok(Some(format!(
                    "the tenant has no domain '{domain}'; its domains are {}",
                    known.join(", ")
                )));
            }
        }
    }
    if !filter.skus.is_empty() {
        let licences = store.licenses(Some(&connection.tenant_id), false).await?;
        if !licences.is_empty() {
            for sku in &filter.skus {
                let fits = licences.iter().any(|l| {
                    l.sku_part_number.eq_ignore_ascii_case(sku)
                        || l.sku_id.eq_ignore_ascii_case(sku)
                });
                if !fits {
                    let parts: Vec<&str> = licences
                        .iter()
                        .map(|l| l.sku_part_number.as_str())
                        .collect();
                    return Ok(Some(format!(
                        "the tenant has no licence '{sku}'; its licences are {}",
                        parts.join(", ")
                    )));
                }
            }
        }
    }
    if !filter.groups.is_empty() {
        let groups = store.groups(Some(&connection.tenant_id), false).await?;
        if !groups.is_empty() {
            for wanted in &filter.groups {
                let fits = groups.iter().any(|g| {
                    g.key().eq_ignore_ascii_case(wanted)
                        || g.group
                            .display_name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
                });
                if !fits {
                    return Ok(Some(format!(
                        "the tenant has no group '{wanted}' (by object id or display name); `m365sync export groups --connection {}` lists them",
                        connection.name
                    )));
                }
            }
        }
    }
    Ok(None)
}
