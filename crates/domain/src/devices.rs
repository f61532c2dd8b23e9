//! The devices a tenant holds, as m365sync keeps them: Intune's managed devices (with the user
//! each belongs to, so that a contact's devices can be listed) and Entra ID's device objects.
//! Each is a row of a typed table keyed by Microsoft's id of the device.

use crate::rows::Keyed;

/// A device enrolled in Intune (`/deviceManagement/managedDevices`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedDeviceRecord {
    /// Intune's id of the device.
    pub id: String,
    pub device_name: Option<String>,
    /// Entra object id of the primary user.
    pub user_id: Option<String>,
    /// The primary user's UPN, lower case so that it compares as contacts do.
    pub user_principal_name: Option<String>,
    pub user_display_name: Option<String>,
    /// `company`, `personal` or `unknown`.
    pub owner_type: Option<String>,
    pub operating_system: Option<String>,
    pub os_version: Option<String>,
    /// `compliant`, `noncompliant`, `inGracePeriod`, …
    pub compliance_state: Option<String>,
    pub management_agent: Option<String>,
    /// When it was enrolled (ISO 8601, as Microsoft gives it).
    pub enrolled: Option<String>,
    /// When it last synced with Intune (ISO 8601).
    pub last_check_in: Option<String>,
    /// The `deviceId` of its Entra ID device object.
    pub entra_device_id: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub is_encrypted: Option<bool>,
    pub total_storage_bytes: Option<i64>,
    pub free_storage_bytes: Option<i64>,
    pub physical_memory_bytes: Option<i64>,
}

impl Keyed for ManagedDeviceRecord {
    fn key(&self) -> &str {
        &self.id
    }
}

/// An Entra ID device object (`/devices`): joined, hybrid joined or registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The object id.
    pub id: String,
    /// The device id, which Intune names as `azureADDeviceId`.
    pub device_id: Option<String>,
    pub display_name: Option<String>,
    pub operating_system: Option<String>,
    pub operating_system_version: Option<String>,
    /// `joined`, `hybrid_joined` or `registered`, from the trust type.
    pub join_type: Option<String>,
    /// Microsoft's own word: `AzureAd`, `ServerAd` or `Workplace`.
    pub trust_type: Option<String>,
    pub profile_type: Option<String>,
    pub is_compliant: Option<bool>,
    pub is_managed: Option<bool>,
    pub account_enabled: Option<bool>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    /// `company`, `personal` or `unknown`.
    pub ownership: Option<String>,
    /// When it was registered (ISO 8601).
    pub registered: Option<String>,
    /// Approximate last sign-in (ISO 8601); Microsoft updates it at most every few days.
    pub last_sign_in: Option<String>,
}

impl Keyed for DeviceRecord {
    fn key(&self) -> &str {
        &self.id
    }
}

/// How a device is joined to Entra ID, from its trust type; `None` for a type we do not know.
pub fn join_type(trust_type: &str) -> Option<&'static str> {
    match trust_type.trim().to_ascii_lowercase().as_str() {
        "azuread" => Some("joined"),
        "serverad" => Some("hybrid_joined"),
        "workplace" => Some("registered"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_types_name_how_a_device_is_joined_whatever_their_case() {
        assert_eq!(join_type("AzureAd"), Some("joined"));
        assert_eq!(join_type("serverad"), Some("hybrid_joined"));
        assert_eq!(join_type(" Workplace "), Some("registered"));
        assert_eq!(join_type("Other"), None);
    }
}
