//! What a connection can sync, and the application permission each dataset needs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InputError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    Organization,
    Licenses,
    Users,
    Mailboxes,
}

impl Dataset {
    /// In the order a sync runs them: licences before users so that assignments resolve, users
    /// before mailboxes so that mailbox rows find their contact.
    pub const ALL: [Dataset; 4] = [
        Self::Organization,
        Self::Licenses,
        Self::Users,
        Self::Mailboxes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Organization => "organization",
            Self::Licenses => "licenses",
            Self::Users => "users",
            Self::Mailboxes => "mailboxes",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Self::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                InputError::new(
                    "dataset",
                    format!("'{raw}' is not a dataset"),
                    "Use organization, licenses, users or mailboxes",
                )
            })
    }

    /// The least-privileged application permission that reads this dataset.
    pub fn permission(self) -> &'static str {
        match self {
            Self::Organization => "Organization.Read.All",
            Self::Licenses => "Organization.Read.All",
            Self::Users => "User.Read.All",
            Self::Mailboxes => "Reports.Read.All",
        }
    }

    /// Every granted permission that is enough for this dataset (higher ones included).
    pub fn satisfied_by(self) -> &'static [&'static str] {
        match self {
            Self::Organization | Self::Licenses => &[
                "Organization.Read.All",
                "Organization.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Self::Users => &[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Self::Mailboxes => &["Reports.Read.All"],
        }
    }

    pub fn is_granted(self, roles: &[String]) -> bool {
        self.satisfied_by()
            .iter()
            .any(|p| roles.iter().any(|r| r == p))
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Permissions missing for the given datasets, each named once, in dataset order.
pub fn missing_permissions(datasets: &[Dataset], roles: &[String]) -> Vec<&'static str> {
    let mut missing: Vec<&'static str> = Vec::new();
    for dataset in datasets {
        if !dataset.is_granted(roles) && !missing.contains(&dataset.permission()) {
            missing.push(dataset.permission());
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_permissions_satisfy_and_missing_ones_are_named_once() {
        let roles = vec!["Directory.Read.All".to_string()];
        assert!(Dataset::Users.is_granted(&roles));
        assert!(Dataset::Licenses.is_granted(&roles));
        assert_eq!(
            missing_permissions(&Dataset::ALL, &roles),
            vec!["Reports.Read.All"]
        );
        assert_eq!(
            missing_permissions(&Dataset::ALL, &[]),
            vec!["Organization.Read.All", "User.Read.All", "Reports.Read.All"]
        );
        assert_eq!(Dataset::parse("Mailboxes").unwrap(), Dataset::Mailboxes);
        assert!(Dataset::parse("devices").is_err());
    }
}
