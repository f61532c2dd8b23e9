//! Intune's managed devices and Entra ID's device objects: Graph payloads → the records of the
//! `managed_devices` and `devices` tables. Enums are folded to camelCase as in the inventories, a
//! UPN to lower case as contacts hold it, and a device without an id (which could not be told
//! from another) is left out.

use domain::devices::{DeviceRecord, ManagedDeviceRecord, join_type};
use graph::models::{Device, ManagedDevice};

use crate::inventory::enum_value;

fn enum_text(raw: &Option<String>) -> Option<String> {
    enum_value(raw).as_str().map(str::to_string)
}

fn has_id(id: &str) -> bool {
    !id.trim().is_empty()
}

pub fn managed_device_record(d: &ManagedDevice) -> Option<ManagedDeviceRecord> {
    has_id(&d.id).then(|| ManagedDeviceRecord {
        id: d.id.clone(),
        device_name: d.device_name.clone(),
        user_id: d.user_id.clone(),
        user_principal_name: d.user_principal_name.as_deref().map(str::to_lowercase),
        user_display_name: d.user_display_name.clone(),
        owner_type: enum_text(&d.managed_device_owner_type),
        operating_system: d.operating_system.clone(),
        os_version: d.os_version.clone(),
        compliance_state: enum_text(&d.compliance_state),
        management_agent: enum_text(&d.management_agent),
        enrolled: d.enrolled_date_time.clone(),
        last_check_in: d.last_sync_date_time.clone(),
        entra_device_id: d.azure_ad_device_id.clone(),
        manufacturer: d.manufacturer.clone(),
        model: d.model.clone(),
        serial_number: d.serial_number.clone(),
        is_encrypted: d.is_encrypted,
        total_storage_bytes: d.total_storage_space_in_bytes,
        free_storage_bytes: d.free_storage_space_in_bytes,
        physical_memory_bytes: d.physical_memory_in_bytes,
    })
}

pub fn managed_device_records(page: Vec<ManagedDevice>) -> Vec<ManagedDeviceRecord> {
    page.iter().filter_map(managed_device_record).collect()
}

pub fn device_record(d: &Device) -> Option<DeviceRecord> {
    has_id(&d.id).then(|| DeviceRecord {
        id: d.id.clone(),
        device_id: d.device_id.clone(),
        display_name: d.display_name.clone(),
        operating_system: d.operating_system.clone(),
        operating_system_version: d.operating_system_version.clone(),
        join_type: d
            .trust_type
            .as_deref()
            .and_then(join_type)
            .map(str::to_string),
        trust_type: d.trust_type.clone(),
        profile_type: d.profile_type.clone(),
        is_compliant: d.is_compliant,
        is_managed: d.is_managed,
        account_enabled: d.account_enabled,
        manufacturer: d.manufacturer.clone(),
        model: d.model.clone(),
        ownership: d.device_ownership.as_deref().map(str::to_lowercase),
        registered: d.registration_date_time.clone(),
        last_sign_in: d.approximate_last_sign_in_date_time.clone(),
    })
}

pub fn device_records(page: Vec<Device>) -> Vec<DeviceRecord> {
    page.iter().filter_map(device_record).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_managed_device_keeps_its_user_and_folds_its_enums() {
        let device: ManagedDevice = serde_json::from_value(json!({
            "id": "m1", "userId": "u1", "userPrincipalName": "Adele.Vance@Contoso.com",
            "managedDeviceOwnerType": "Company", "complianceState": "InGracePeriod",
            "managementAgent": "mdm", "isEncrypted": true, "totalStorageSpaceInBytes": 512,
            "lastSyncDateTime": "2025-02-01T10:00:00Z", "azureADDeviceId": "e1"
        }))
        .unwrap();
        let record = managed_device_record(&device).unwrap();
        assert_eq!(
            record.user_principal_name.as_deref(),
            Some("adele.vance@contoso.com")
        );
        assert_eq!(record.user_id.as_deref(), Some("u1"));
        assert_eq!(record.owner_type.as_deref(), Some("company"));
        assert_eq!(record.compliance_state.as_deref(), Some("inGracePeriod"));
        assert_eq!(
            record.last_check_in.as_deref(),
            Some("2025-02-01T10:00:00Z")
        );
        assert_eq!(record.entra_device_id.as_deref(), Some("e1"));
        assert_eq!(
            (record.is_encrypted, record.total_storage_bytes),
            (Some(true), Some(512))
        );
        assert_eq!(record.serial_number, None);
    }

    #[test]
    fn an_entra_device_says_how_it_is_joined() {
        let device: Device = serde_json::from_value(json!({
            "id": "d1", "deviceId": "e1", "trustType": "ServerAd", "deviceOwnership": "Company",
            "isCompliant": false, "approximateLastSignInDateTime": "2025-02-01T10:00:00Z"
        }))
        .unwrap();
        let record = device_record(&device).unwrap();
        assert_eq!(record.join_type.as_deref(), Some("hybrid_joined"));
        assert_eq!(record.trust_type.as_deref(), Some("ServerAd"));
        assert_eq!(record.ownership.as_deref(), Some("company"));
        assert_eq!(record.is_compliant, Some(false));
        assert_eq!(record.last_sign_in.as_deref(), Some("2025-02-01T10:00:00Z"));
    }

    #[test]
    fn a_device_without_an_id_is_left_out() {
        let page: Vec<Device> =
            serde_json::from_value(json!([{ "id": " " }, { "id": "d2" }])).unwrap();
        let kept: Vec<String> = device_records(page).into_iter().map(|d| d.id).collect();
        assert_eq!(kept, ["d2"]);
        let page: Vec<ManagedDevice> = serde_json::from_value(json!([{ "id": "" }])).unwrap();
        assert!(managed_device_records(page).is_empty());
    }
}
