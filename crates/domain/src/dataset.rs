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
    Domains,
    ServiceHealth,
    ServiceMessages,
    Applications,
    TermsOfUse,
    ApiConnectors,
    Usage,
    Groups,
    DirectoryRoles,
    ManagedDevices,
    DetectedApps,
    Devices,
    SignInActivity,
    Audit,
}

const DIRECTORY: [&str; 2] = ["Directory.Read.All", "Directory.ReadWrite.All"];

impl Dataset {
    /// In the order a sync runs them: licences before users so that assignments resolve, users
    /// before mailboxes so that mailbox rows find their contact; the tenant-wide inventories last.
    pub const ALL: [Dataset; 18] = [
        Self::Organization,
        Self::Licenses,
        Self::Users,
        Self::Mailboxes,
        Self::Domains,
        Self::ServiceHealth,
        Self::ServiceMessages,
        Self::Applications,
        Self::TermsOfUse,
        Self::ApiConnectors,
        Self::Usage,
        Self::Groups,
        Self::DirectoryRoles,
        Self::ManagedDevices,
        Self::DetectedApps,
        Self::Devices,
        Self::SignInActivity,
        Self::Audit,
    ];

    /// What a new connection syncs when none are chosen.
    pub const DEFAULT: [Dataset; 4] = [
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
            Self::Domains => "domains",
            Self::ServiceHealth => "service_health",
            Self::ServiceMessages => "service_messages",
            Self::Applications => "applications",
            Self::TermsOfUse => "terms_of_use",
            Self::ApiConnectors => "api_connectors",
            Self::Usage => "usage",
            Self::Groups => "groups",
            Self::DirectoryRoles => "directory_roles",
            Self::ManagedDevices => "managed_devices",
            Self::DetectedApps => "detected_apps",
            Self::Devices => "devices",
            Self::SignInActivity => "sign_in_activity",
            Self::Audit => "audit",
        }
    }

    /// Accepts the name with `_` or `-` (`service-health` as typed on a command line).
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let wanted = raw.trim().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| {
                InputError::new(
                    "dataset",
                    format!("'{raw}' is not a dataset"),
                    format!("Use {}", Self::ALL.map(|d| d.name()).join(", ")),
                )
            })
    }

    /// The least-privileged application permission that reads this dataset.
    pub fn permission(self) -> &'static str {
        match self {
            Self::Organization | Self::Licenses => "Organization.Read.All",
            Self::Users => "User.Read.All",
            Self::Mailboxes => "Reports.Read.All",
            Self::Domains => "Domain.Read.All",
            Self::ServiceHealth => "ServiceHealth.Read.All",
            Self::ServiceMessages => "ServiceMessage.Read.All",
            Self::Applications => "Application.Read.All",
            Self::TermsOfUse => "Agreement.Read.All",
            Self::ApiConnectors => "APIConnectors.Read.All",
            Self::Usage => "Reports.Read.All",
            Self::Groups => "GroupMember.Read.All",
            Self::DirectoryRoles => "RoleManagement.Read.Directory",
            Self::ManagedDevices | Self::DetectedApps => "DeviceManagementManagedDevices.Read.All",
            Self::Devices => "Device.Read.All",
            // Read beside User.Read.All (the users dataset); the tenant needs Entra ID P1 or P2.
            Self::SignInActivity => "AuditLog.Read.All",
            // Office 365 Management APIs, not Microsoft Graph.
            Self::Audit => "ActivityFeed.Read",
        }
    }

    /// Every granted permission that is enough for this dataset (higher ones included).
    pub fn satisfied_by(self) -> Vec<&'static str> {
        let mut accepted: Vec<&'static str> = match self {
            Self::Organization | Self::Licenses => {
                vec!["Organization.Read.All", "Organization.ReadWrite.All"]
            }
            Self::Users => vec!["User.Read.All", "User.ReadWrite.All"],
            Self::Mailboxes | Self::Usage => vec!["Reports.Read.All"],
            Self::Domains => vec!["Domain.Read.All", "Domain.ReadWrite.All"],
            Self::ServiceHealth => vec!["ServiceHealth.Read.All"],
            Self::ServiceMessages => vec!["ServiceMessage.Read.All"],
            Self::Applications => vec!["Application.Read.All", "Application.ReadWrite.All"],
            Self::TermsOfUse => vec!["Agreement.Read.All", "Agreement.ReadWrite.All"],
            Self::ApiConnectors => vec!["APIConnectors.Read.All", "APIConnectors.ReadWrite.All"],
            Self::Audit => vec!["ActivityFeed.Read"],
            Self::Devices => vec!["Device.Read.All", "Device.ReadWrite.All"],
            Self::SignInActivity => vec!["AuditLog.Read.All"],
            Self::ManagedDevices | Self::DetectedApps => {
                vec![
                    "DeviceManagementManagedDevices.Read.All",
                    "DeviceManagementManagedDevices.ReadWrite.All",
                ]
            }
            Self::Groups => vec![
                "GroupMember.Read.All",
                "Group.Read.All",
                "Group.ReadWrite.All",
            ],
            Self::DirectoryRoles => vec![
                "RoleManagement.Read.Directory",
                "RoleManagement.ReadWrite.Directory",
            ],
        };
        if matches!(
            self,
            Self::Groups
                | Self::Devices
                | Self::DirectoryRoles
                | Self::Organization
                | Self::Licenses
                | Self::Users
                | Self::Domains
                | Self::Applications
        ) {
            accepted.extend(DIRECTORY);
        }
        accepted
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
            missing_permissions(&Dataset::DEFAULT, &roles),
            vec!["Reports.Read.All"]
        );
        assert_eq!(
            missing_permissions(&Dataset::DEFAULT, &[]),
            vec!["Organization.Read.All", "User.Read.All", "Reports.Read.All"]
        );
        assert_eq!(
            missing_permissions(&Dataset::ALL[4..], &roles),
            vec![
                "ServiceHealth.Read.All",
                "ServiceMessage.Read.All",
                "Agreement.Read.All",
                "APIConnectors.Read.All",
                "Reports.Read.All",
                "DeviceManagementManagedDevices.Read.All",
                "AuditLog.Read.All",
                "ActivityFeed.Read"
            ]
        );
        assert_eq!(Dataset::parse("Mailboxes").unwrap(), Dataset::Mailboxes);
        assert_eq!(
            Dataset::parse("service-health").unwrap(),
            Dataset::ServiceHealth
        );
        assert!(
            Dataset::parse("printers")
                .unwrap_err()
                .to_string()
                .contains("terms_of_use")
        );
    }
}
