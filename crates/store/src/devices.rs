//! The typed tables of devices: `managed_devices` (Intune) and `devices` (Entra ID). Their
//! columns are named as the fields of `domain::devices`, which are also the names the JSON
//! documents used before these tables existed, so that exports keep their field names.

use domain::devices::{DeviceRecord, ManagedDeviceRecord};

use crate::error::Result;
use crate::typed::{Cell, Cells, Kind, TypedTable};

impl TypedTable for ManagedDeviceRecord {
    const TABLE: &'static str = "managed_devices";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("device_name", Kind::Text),
        ("user_id", Kind::Text),
        ("user_principal_name", Kind::Text),
        ("user_display_name", Kind::Text),
        ("owner_type", Kind::Text),
        ("operating_system", Kind::Text),
        ("os_version", Kind::Text),
        ("compliance_state", Kind::Text),
        ("management_agent", Kind::Text),
        ("enrolled", Kind::Text),
        ("last_check_in", Kind::Text),
        ("entra_device_id", Kind::Text),
        ("manufacturer", Kind::Text),
        ("model", Kind::Text),
        ("serial_number", Kind::Text),
        ("is_encrypted", Kind::Flag),
        ("total_storage_bytes", Kind::Int),
        ("free_storage_bytes", Kind::Int),
        ("physical_memory_bytes", Kind::Int),
    ];

    fn cells(&self) -> Vec<Cell> {
        let text = |v: &Option<String>| Cell::Text(v.clone());
        vec![
            text(&self.device_name),
            text(&self.user_id),
            text(&self.user_principal_name),
            text(&self.user_display_name),
            text(&self.owner_type),
            text(&self.operating_system),
            text(&self.os_version),
            text(&self.compliance_state),
            text(&self.management_agent),
            text(&self.enrolled),
            text(&self.last_check_in),
            text(&self.entra_device_id),
            text(&self.manufacturer),
            text(&self.model),
            text(&self.serial_number),
            Cell::Flag(self.is_encrypted),
            Cell::Int(self.total_storage_bytes),
            Cell::Int(self.free_storage_bytes),
            Cell::Int(self.physical_memory_bytes),
        ]
    }

    fn from_cells(key: String, cells: &mut Cells) -> Result<Self> {
        Ok(Self {
            id: key,
            device_name: cells.text()?,
            user_id: cells.text()?,
            user_principal_name: cells.text()?,
            user_display_name: cells.text()?,
            owner_type: cells.text()?,
            operating_system: cells.text()?,
            os_version: cells.text()?,
            compliance_state: cells.text()?,
            management_agent: cells.text()?,
            enrolled: cells.text()?,
            last_check_in: cells.text()?,
            entra_device_id: cells.text()?,
            manufacturer: cells.text()?,
            model: cells.text()?,
            serial_number: cells.text()?,
            is_encrypted: cells.flag()?,
            total_storage_bytes: cells.int()?,
            free_storage_bytes: cells.int()?,
            physical_memory_bytes: cells.int()?,
        })
    }
}

impl TypedTable for DeviceRecord {
    const TABLE: &'static str = "devices";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("device_id", Kind::Text),
        ("display_name", Kind::Text),
        ("operating_system", Kind::Text),
        ("operating_system_version", Kind::Text),
        ("join_type", Kind::Text),
        ("trust_type", Kind::Text),
        ("profile_type", Kind::Text),
        ("is_compliant", Kind::Flag),
        ("is_managed", Kind::Flag),
        ("account_enabled", Kind::Flag),
        ("manufacturer", Kind::Text),
        ("model", Kind::Text),
        ("ownership", Kind::Text),
        ("registered", Kind::Text),
        ("last_sign_in", Kind::Text),
    ];

    fn cells(&self) -> Vec<Cell> {
        let text = |v: &Option<String>| Cell::Text(v.clone());
        vec![
            text(&self.device_id),
            text(&self.display_name),
            text(&self.operating_system),
            text(&self.operating_system_version),
            text(&self.join_type),
            text(&self.trust_type),
            text(&self.profile_type),
            Cell::Flag(self.is_compliant),
            Cell::Flag(self.is_managed),
            Cell::Flag(self.account_enabled),
            text(&self.manufacturer),
            text(&self.model),
            text(&self.ownership),
            text(&self.registered),
            text(&self.last_sign_in),
        ]
    }

    fn from_cells(key: String, cells: &mut Cells) -> Result<Self> {
        Ok(Self {
            id: key,
            device_id: cells.text()?,
            display_name: cells.text()?,
            operating_system: cells.text()?,
            operating_system_version: cells.text()?,
            join_type: cells.text()?,
            trust_type: cells.text()?,
            profile_type: cells.text()?,
            is_compliant: cells.flag()?,
            is_managed: cells.flag()?,
            account_enabled: cells.flag()?,
            manufacturer: cells.text()?,
            model: cells.text()?,
            ownership: cells.text()?,
            registered: cells.text()?,
            last_sign_in: cells.text()?,
        })
    }
}
