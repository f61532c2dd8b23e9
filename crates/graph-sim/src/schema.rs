//! The properties of Graph v1.0's `user` type (with those of its base types `directoryObject` and
//! `entity`), as Microsoft's CSDL declares them: the names `$select` takes, and the value Graph
//! sends for one that is not set. A test checks this table against the CSDL itself.

use serde_json::{Value, json};

/// One structural property of an entity type: its name, its CSDL type and whether it may be null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Property {
    pub name: &'static str,
    pub edm: &'static str,
    pub nullable: bool,
}

const fn p(name: &'static str, edm: &'static str, nullable: bool) -> Property {
    Property {
        name,
        edm,
        nullable,
    }
}

/// Every property of `microsoft.graph.user`, base types first, in the CSDL's order.
pub(crate) const USER_PROPERTIES: &[Property] = &[
    p("id", "Edm.String", false),
    p("deletedDateTime", "Edm.DateTimeOffset", true),
    p("aboutMe", "Edm.String", true),
    p("accountEnabled", "Edm.Boolean", true),
    p("ageGroup", "Edm.String", true),
    p(
        "assignedLicenses",
        "Collection(graph.assignedLicense)",
        false,
    ),
    p("assignedPlans", "Collection(graph.assignedPlan)", false),
    p("authorizationInfo", "graph.authorizationInfo", true),
    p("birthday", "Edm.DateTimeOffset", false),
    p("businessPhones", "Collection(Edm.String)", false),
    p("city", "Edm.String", true),
    p("companyName", "Edm.String", true),
    p("consentProvidedForMinor", "Edm.String", true),
    p("country", "Edm.String", true),
    p("createdDateTime", "Edm.DateTimeOffset", true),
    p("creationType", "Edm.String", true),
    p(
        "customSecurityAttributes",
        "graph.customSecurityAttributeValue",
        true,
    ),
    p("department", "Edm.String", true),
    p("deviceEnrollmentLimit", "Edm.Int32", false),
    p("displayName", "Edm.String", true),
    p("employeeHireDate", "Edm.DateTimeOffset", true),
    p("employeeId", "Edm.String", true),
    p("employeeLeaveDateTime", "Edm.DateTimeOffset", true),
    p("employeeOrgData", "graph.employeeOrgData", true),
    p("employeeType", "Edm.String", true),
    p("externalUserState", "Edm.String", true),
    p(
        "externalUserStateChangeDateTime",
        "Edm.DateTimeOffset",
        true,
    ),
    p("faxNumber", "Edm.String", true),
    p("givenName", "Edm.String", true),
    p("hireDate", "Edm.DateTimeOffset", false),
    p("identities", "Collection(graph.objectIdentity)", true),
    p("identityParentId", "Edm.String", true),
    p("imAddresses", "Collection(Edm.String)", true),
    p("interests", "Collection(Edm.String)", true),
    p("isManagementRestricted", "Edm.Boolean", true),
    p("isResourceAccount", "Edm.Boolean", true),
    p("jobTitle", "Edm.String", true),
    p("lastPasswordChangeDateTime", "Edm.DateTimeOffset", true),
    p("legalAgeGroupClassification", "Edm.String", true),
    p(
        "licenseAssignmentStates",
        "Collection(graph.licenseAssignmentState)",
        true,
    ),
    p("mail", "Edm.String", true),
    p("mailboxSettings", "graph.mailboxSettings", true),
    p("mailNickname", "Edm.String", true),
    p("mobilePhone", "Edm.String", true),
    p("mySite", "Edm.String", true),
    p("officeLocation", "Edm.String", true),
    p("onPremisesDistinguishedName", "Edm.String", true),
    p("onPremisesDomainName", "Edm.String", true),
    p(
        "onPremisesExtensionAttributes",
        "graph.onPremisesExtensionAttributes",
        true,
    ),
    p("onPremisesImmutableId", "Edm.String", true),
    p("onPremisesLastSyncDateTime", "Edm.DateTimeOffset", true),
    p(
        "onPremisesProvisioningErrors",
        "Collection(graph.onPremisesProvisioningError)",
        true,
    ),
    p("onPremisesSamAccountName", "Edm.String", true),
    p("onPremisesSecurityIdentifier", "Edm.String", true),
    p("onPremisesSyncEnabled", "Edm.Boolean", true),
    p("onPremisesUserPrincipalName", "Edm.String", true),
    p("otherMails", "Collection(Edm.String)", false),
    p("passwordPolicies", "Edm.String", true),
    p("passwordProfile", "graph.passwordProfile", true),
    p("pastProjects", "Collection(Edm.String)", true),
    p("postalCode", "Edm.String", true),
    p("preferredDataLocation", "Edm.String", true),
    p("preferredLanguage", "Edm.String", true),
    p("preferredName", "Edm.String", true),
    p("print", "graph.userPrint", true),
    p(
        "provisionedPlans",
        "Collection(graph.provisionedPlan)",
        false,
    ),
    p("proxyAddresses", "Collection(Edm.String)", false),
    p("responsibilities", "Collection(Edm.String)", true),
    p("schools", "Collection(Edm.String)", true),
    p("securityIdentifier", "Edm.String", true),
    p(
        "serviceProvisioningErrors",
        "Collection(graph.serviceProvisioningError)",
        true,
    ),
    p("showInAddressList", "Edm.Boolean", true),
    p("signInActivity", "graph.signInActivity", true),
    p(
        "signInSessionsValidFromDateTime",
        "Edm.DateTimeOffset",
        true,
    ),
    p("skills", "Collection(Edm.String)", true),
    p("state", "Edm.String", true),
    p("streetAddress", "Edm.String", true),
    p("surname", "Edm.String", true),
    p("usageLocation", "Edm.String", true),
    p("userPrincipalName", "Edm.String", true),
    p("userType", "Edm.String", true),
];

const USER_COUNT: usize = USER_PROPERTIES.len();

const fn names<const N: usize>(properties: &[Property]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = properties[i].name;
        i += 1;
    }
    out
}

/// The names of [`USER_PROPERTIES`]: what `$select` takes on the user endpoints.
pub(crate) const USER_FIELDS: [&str; USER_COUNT] = names::<USER_COUNT>(USER_PROPERTIES);

/// Properties Graph serves only on a single user (`/users/{id}`): selecting one on a listing
/// answers 501.
pub(crate) const SINGLE_USER_ONLY: &[&str] = &[
    "aboutMe",
    "birthday",
    "hireDate",
    "interests",
    "mySite",
    "pastProjects",
    "preferredName",
    "responsibilities",
    "schools",
    "skills",
    "mailboxSettings",
];

/// What Graph sends for a property that was never set: an empty collection, `null`, or for the
/// few that cannot be null the type's default.
pub(crate) fn unset(name: &str) -> Value {
    let Some(property) = USER_PROPERTIES.iter().find(|p| p.name == name) else {
        return Value::Null;
    };
    if property.edm.starts_with("Collection(") {
        return json!([]);
    }
    if property.nullable {
        return Value::Null;
    }
    match property.edm {
        "Edm.DateTimeOffset" => json!("0001-01-01T00:00:00Z"),
        "Edm.Int32" => json!(0),
        "Edm.Boolean" => json!(false),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_table_and_unset_values_follow_the_type() {
        assert_eq!(USER_FIELDS.len(), USER_PROPERTIES.len());
        assert_eq!(USER_FIELDS[0], "id");
        assert!(USER_FIELDS.contains(&"proxyAddresses"));
        for name in SINGLE_USER_ONLY {
            assert!(USER_FIELDS.contains(name), "{name}");
        }
        assert_eq!(unset("proxyAddresses"), json!([]));
        assert_eq!(unset("companyName"), Value::Null);
        assert_eq!(unset("birthday"), json!("0001-01-01T00:00:00Z"));
    }

    /// Microsoft's CSDL, from `M365SYNC_GRAPH_CSDL` or the project's shared reference beside the
    /// repository; `None` (said in one line) where it is not there, except under CI.
    fn csdl() -> Option<String> {
        let path = std::env::var_os("M365SYNC_GRAPH_CSDL")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/reference/microsoft/graph-v1.0-metadata.xml")
            });
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!(
                    "Microsoft's Graph CSDL is needed at {}: {e}",
                    path.display()
                )
            }
            Err(e) => {
                eprintln!(
                    "skipped: Microsoft's Graph CSDL is not at {} ({e}); set M365SYNC_GRAPH_CSDL to its path",
                    path.display()
                );
                None
            }
        }
    }

    #[test]
    fn the_user_properties_are_the_csdl_ones() {
        let Some(text) = csdl() else {
            return;
        };
        let document = roxmltree::Document::parse(&text).unwrap();
        let schema = document
            .descendants()
            .find(|n| {
                n.has_tag_name("Schema") && n.attribute("Namespace") == Some("microsoft.graph")
            })
            .expect("the microsoft.graph schema");
        let entity = |name: &str| {
            schema
                .children()
                .find(|n| n.has_tag_name("EntityType") && n.attribute("Name") == Some(name))
                .unwrap_or_else(|| panic!("no entity type {name}"))
        };
        let mut chain = vec![entity("user")];
        while let Some(base) = chain.last().unwrap().attribute("BaseType") {
            chain.push(entity(base.trim_start_matches("graph.")));
        }
        let declared: Vec<(String, String, bool)> = chain
            .iter()
            .rev()
            .flat_map(|t| t.children().filter(|n| n.has_tag_name("Property")))
            .map(|n| {
                (
                    n.attribute("Name").unwrap().to_string(),
                    n.attribute("Type").unwrap().to_string(),
                    n.attribute("Nullable") != Some("false"),
                )
            })
            .collect();
        let ours: Vec<(String, String, bool)> = USER_PROPERTIES
            .iter()
            .map(|p| (p.name.to_string(), p.edm.to_string(), p.nullable))
            .collect();
        assert_eq!(ours, declared);
    }
}
