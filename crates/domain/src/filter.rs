//! Which users of a tenant a connection keeps: its filters, and the reason for each user left
//! out. A user who leaves the scope is archived with that reason, never deleted.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ContactRecord, InputError};

/// A connection's filters. Empty (the default) keeps every user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserFilter {
    /// Only users whose account is enabled.
    pub enabled_only: bool,
    /// Only users with at least one licence.
    pub licensed_only: bool,
    /// Only holders of one of these SKUs (part numbers, or SKU ids), if any are named.
    pub skus: Vec<String>,
    /// Leave guests (`userType` Guest) out.
    pub exclude_guests: bool,
    /// Leave shared, room and equipment mailboxes out (as the mailbox report last named them).
    pub exclude_resource_mailboxes: bool,
    /// Only users whose user principal name is in one of these domains, if any are named.
    pub include_domains: Vec<String>,
    /// Leave users of these domains out.
    pub exclude_domains: Vec<String>,
    /// Only members of one of these groups (object ids), if any are named.
    pub groups: Vec<String>,
}

/// A domain a filter names, as a person typed it (`@Contoso.com` reads as `contoso.com`);
/// `option` names where it was typed, for the error.
pub fn filter_domain(option: &'static str, raw: &str) -> Result<String, InputError> {
    let domain = raw.trim().trim_start_matches('@').to_lowercase();
    if domain.is_empty()
        || !domain.contains('.')
        || domain.contains(char::is_whitespace)
        || domain.contains('/')
    {
        return Err(InputError::new(
            option,
            format!("'{domain}' is not a domain"),
            "give one such as contoso.com",
        ));
    }
    Ok(domain)
}

/// Why a user is left out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum SkipReason {
    Disabled,
    Unlicensed,
    NoChosenSku,
    Guest,
    /// A shared, room or equipment mailbox.
    ResourceMailbox(String),
    DomainNotIncluded(String),
    DomainExcluded(String),
    NotInChosenGroups,
}

impl SkipReason {
    /// A short code for counts and the run log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Unlicensed => "unlicensed",
            Self::NoChosenSku => "no_chosen_sku",
            Self::Guest => "guest",
            Self::ResourceMailbox(_) => "resource_mailbox",
            Self::DomainNotIncluded(_) => "domain_not_included",
            Self::DomainExcluded(_) => "domain_excluded",
            Self::NotInChosenGroups => "not_in_chosen_groups",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("the account is disabled"),
            Self::Unlicensed => f.write_str("the user holds no licence"),
            Self::NoChosenSku => f.write_str("the user holds none of the chosen licences"),
            Self::Guest => f.write_str("the user is a guest"),
            Self::ResourceMailbox(kind) => write!(f, "the mailbox is a {kind} mailbox"),
            Self::DomainNotIncluded(domain) => {
                write!(f, "the domain {domain} is not among those chosen")
            }
            Self::DomainExcluded(domain) => write!(f, "the domain {domain} is left out"),
            Self::NotInChosenGroups => f.write_str("the user is in none of the chosen groups"),
        }
    }
}

/// What a filter needs to know of a user beyond the user itself, from what the store holds.
#[derive(Debug, Clone, Default)]
pub struct UserFacts {
    /// Part numbers of the tenant's SKUs, by SKU id (lower-case).
    pub sku_part_numbers: HashMap<String, String>,
    /// The kind of mailbox (`shared`, `room`, `equipment`) by lower-cased user principal name,
    /// for those that are not a user's own.
    pub resource_mailboxes: HashMap<String, String>,
    /// Members (object ids) of the chosen groups.
    pub group_members: HashSet<String>,
}

impl UserFilter {
    /// Whether the filter keeps everyone.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Why the user is left out, or `None` when the user is kept. The first rule that fails is
    /// the reason, in the order the fields are declared.
    pub fn verdict(&self, user: &ContactRecord, facts: &UserFacts) -> Option<SkipReason> {
        if self.enabled_only && !user.account_enabled {
            return Some(SkipReason::Disabled);
        }
        if self.licensed_only && user.license_sku_ids.is_empty() {
            return Some(SkipReason::Unlicensed);
        }
        if !self.skus.is_empty() {
            let holds = user.license_sku_ids.iter().any(|sku| {
                let part = facts.sku_part_numbers.get(&sku.to_lowercase());
                self.skus.iter().any(|chosen| {
                    chosen.eq_ignore_ascii_case(sku)
                        || part.is_some_and(|p| chosen.eq_ignore_ascii_case(p))
                })
            });
            if !holds {
                return Some(SkipReason::NoChosenSku);
            }
        }
        if self.exclude_guests && user.user_type.eq_ignore_ascii_case("guest") {
            return Some(SkipReason::Guest);
        }
        let upn = user.user_principal_name.key();
        if self.exclude_resource_mailboxes
            && let Some(kind) = facts.resource_mailboxes.get(upn)
        {
            return Some(SkipReason::ResourceMailbox(kind.clone()));
        }
        let domain = upn.rsplit_once('@').map_or("", |(_, d)| d);
        let in_domain = |list: &[String]| {
            list.iter().any(|d| {
                let d = d.trim().trim_start_matches('@').to_lowercase();
                domain == d || domain.ends_with(&format!(".{d}"))
            })
        };
        if !self.include_domains.is_empty() && !in_domain(&self.include_domains) {
            return Some(SkipReason::DomainNotIncluded(domain.to_string()));
        }
        if in_domain(&self.exclude_domains) {
            return Some(SkipReason::DomainExcluded(domain.to_string()));
        }
        if !self.groups.is_empty() && !facts.group_members.contains(&user.object_id.to_string()) {
            return Some(SkipReason::NotInChosenGroups);
        }
        None
    }

    /// A one-line description, for `connection list`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.enabled_only {
            parts.push("enabled only".to_string());
        }
        if self.licensed_only {
            parts.push("licensed only".to_string());
        }
        if !self.skus.is_empty() {
            parts.push(format!("holders of {}", self.skus.join(" or ")));
        }
        if self.exclude_guests {
            parts.push("no guests".to_string());
        }
        if self.exclude_resource_mailboxes {
            parts.push("no shared, room or equipment mailboxes".to_string());
        }
        if !self.include_domains.is_empty() {
            parts.push(format!("domains {}", self.include_domains.join(", ")));
        }
        if !self.exclude_domains.is_empty() {
            parts.push(format!("not domains {}", self.exclude_domains.join(", ")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("members of {}", self.groups.join(", ")));
        }
        if parts.is_empty() {
            "every user".to_string()
        } else {
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ObjectId, TenantId, Upn};

    fn user(upn: &str) -> ContactRecord {
        ContactRecord {
            tenant_id: TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            object_id: ObjectId::parse("00000000-0000-4000-8000-000000000001").unwrap(),
            user_principal_name: Upn::parse(upn).unwrap(),
            display_name: "Ann".into(),
            given_name: None,
            surname: None,
            email: None,
            aliases: vec![],
            job_title: None,
            department: None,
            office_location: None,
            mobile_phone: None,
            business_phones: vec![],
            account_enabled: true,
            user_type: "Member".into(),
            license_sku_ids: vec!["05e9a617-0261-4cee-bb44-138d3ef5d965".into()],
            disabled_plans: vec![],
        }
    }

    #[test]
    fn an_empty_filter_keeps_everyone() {
        let filter = UserFilter::default();
        assert!(filter.is_empty());
        let mut guest = user("ann_fabrikam.com#EXT#@contoso.com");
        guest.user_type = "Guest".into();
        guest.account_enabled = false;
        guest.license_sku_ids.clear();
        assert_eq!(filter.verdict(&guest, &UserFacts::default()), None);
        assert_eq!(filter.describe(), "every user");
    }

    #[test]
    fn each_rule_names_its_reason() {
        let facts = UserFacts {
            sku_part_numbers: HashMap::from([(
                "05e9a617-0261-4cee-bb44-138d3ef5d965".into(),
                "SPE_E3".into(),
            )]),
            resource_mailboxes: HashMap::from([("room1@contoso.com".into(), "room".into())]),
            group_members: HashSet::from(["00000000-0000-4000-8000-000000000001".into()]),
        };
        let mut disabled = user("ann@contoso.com");
        disabled.account_enabled = false;
        let only = |f: UserFilter, u: &ContactRecord| f.verdict(u, &facts);
        assert_eq!(
            only(
                UserFilter {
                    enabled_only: true,
                    ..Default::default()
                },
                &disabled
            ),
            Some(SkipReason::Disabled)
        );
        let mut bare = user("ann@contoso.com");
        bare.license_sku_ids.clear();
        assert_eq!(
            only(
                UserFilter {
                    licensed_only: true,
                    ..Default::default()
                },
                &bare
            ),
            Some(SkipReason::Unlicensed)
        );
        let e3 = UserFilter {
            skus: vec!["spe_e3".into()],
            ..Default::default()
        };
        assert_eq!(only(e3.clone(), &user("ann@contoso.com")), None);
        assert_eq!(only(e3, &bare), Some(SkipReason::NoChosenSku));
        let rooms = UserFilter {
            exclude_resource_mailboxes: true,
            ..Default::default()
        };
        assert_eq!(
            only(rooms, &user("Room1@Contoso.com")),
            Some(SkipReason::ResourceMailbox("room".into()))
        );
        let domains = UserFilter {
            include_domains: vec!["contoso.com".into()],
            exclude_domains: vec!["@lab.contoso.com".into()],
            ..Default::default()
        };
        assert_eq!(only(domains.clone(), &user("ann@contoso.com")), None);
        assert_eq!(
            only(domains.clone(), &user("ann@lab.contoso.com")),
            Some(SkipReason::DomainExcluded("lab.contoso.com".into()))
        );
        assert_eq!(
            only(domains, &user("ann@fabrikam.com")),
            Some(SkipReason::DomainNotIncluded("fabrikam.com".into()))
        );
        let groups = UserFilter {
            groups: vec!["g1".into()],
            ..Default::default()
        };
        assert_eq!(only(groups.clone(), &user("ann@contoso.com")), None);
        let mut outsider = user("bob@contoso.com");
        outsider.object_id = ObjectId::parse("00000000-0000-4000-8000-000000000002").unwrap();
        assert_eq!(only(groups, &outsider), Some(SkipReason::NotInChosenGroups));
        let mut guest = user("ann_f.com#EXT#@contoso.com");
        guest.user_type = "Guest".into();
        assert_eq!(
            only(
                UserFilter {
                    exclude_guests: true,
                    ..Default::default()
                },
                &guest
            ),
            Some(SkipReason::Guest)
        );
    }
}
