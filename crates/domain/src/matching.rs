//! How a tenant finds its organisation: by tenant id, else by exact name, else a new one.

/// An organisation as the matcher sees it.
#[derive(Debug, Clone)]
pub struct OrganizationCandidate {
    pub id: i64,
    pub name: String,
    /// The tenant already linked to this organisation, if any.
    pub tenant_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrganizationMatch {
    /// Already linked to this tenant.
    Linked(i64),
    /// Not linked yet; an organisation of exactly that name exists and is free to link.
    ByName(i64),
    /// Nothing fits: create one.
    Create,
}

/// Compares names as people type them: case and surrounding or repeated spaces do not count.
pub fn same_name(a: &str, b: &str) -> bool {
    let fold = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    fold(a) == fold(b)
}

/// Decides which organisation a tenant belongs to. An organisation linked to another tenant is
/// never taken over by name; when several free ones share the name, the oldest (lowest id) wins so
/// that the choice is stable from run to run.
pub fn match_organization(
    tenant_id: &str,
    tenant_name: &str,
    candidates: &[OrganizationCandidate],
) -> OrganizationMatch {
    if let Some(linked) = candidates.iter().find(|c| {
        c.tenant_id
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(tenant_id))
    }) {
        return OrganizationMatch::Linked(linked.id);
    }
    candidates
        .iter()
        .filter(|c| c.tenant_id.is_none() && same_name(&c.name, tenant_name))
        .map(|c| c.id)
        .min()
        .map_or(OrganizationMatch::Create, OrganizationMatch::ByName)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: i64, name: &str, tenant: Option<&str>) -> OrganizationCandidate {
        OrganizationCandidate {
            id,
            name: name.into(),
            tenant_id: tenant.map(Into::into),
        }
    }

    #[test]
    fn tenant_id_wins_over_name() {
        let orgs = [
            org(1, "Contoso", None),
            org(2, "Contoso Renamed", Some("T1")),
        ];
        assert_eq!(
            match_organization("t1", "Contoso", &orgs),
            OrganizationMatch::Linked(2)
        );
    }

    #[test]
    fn exact_name_links_a_free_organisation_only() {
        let orgs = [
            org(3, "  contoso   ltd", None),
            org(1, "Contoso Ltd", Some("other")),
            org(2, "CONTOSO LTD", None),
        ];
        assert_eq!(
            match_organization("t1", "Contoso Ltd", &orgs),
            OrganizationMatch::ByName(2)
        );
        assert_eq!(
            match_organization("t1", "Contoso Limited", &orgs),
            OrganizationMatch::Create
        );
    }
}
