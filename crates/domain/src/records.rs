//! The records m365sync keeps, in the normalised form the sync compares and the store writes.
//!
//! Each record has a content fingerprint: a resync compares fingerprints and writes only what
//! differs (invariant 1), and `changed_fields` names what differs for the run log.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ObjectId, SkuPartNumber, TenantId, Upn};

/// A person in a client's tenant, as synced from a Microsoft Entra user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    pub tenant_id: TenantId,
    pub object_id: ObjectId,
    pub user_principal_name: Upn,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    /// The other mail addresses of the user (`smtp:` proxy addresses), lower-cased, sorted;
    /// a contact kept elsewhere under one of them is this user.
    #[serde(default)]
    pub aliases: Vec<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office_location: Option<String>,
    pub mobile_phone: Option<String>,
    pub business_phones: Vec<String>,
    pub account_enabled: bool,
    pub user_type: String,
    /// SKU ids assigned to the user, sorted, so that order in Graph's answer is not a change.
    pub license_sku_ids: Vec<String>,
    /// Service plans switched off for this user, as `sku id:plan id`, sorted.
    pub disabled_plans: Vec<String>,
}

/// The longest text, in bytes, a store keeps in a field that it also looks records up by
/// (PostgreSQL cannot index much longer values; SQLite could, but both stores must agree).
/// Entra allows 256 characters for a mail address, so no real one comes near.
pub const MAX_KEY_FIELD_BYTES: usize = 1_024;
/// The longest text kept in any other field of a person: far beyond any name, title or phone.
pub const MAX_TEXT_FIELD_BYTES: usize = 16 * 1_024;

/// A field of a record that no store could keep as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnstorableField {
    /// Graph's name of the field (`mail`, `displayName`).
    pub field: &'static str,
    pub problem: String,
}

impl ContactRecord {
    /// The first field that a store could not keep, if any. Text from Microsoft is cleaned of
    /// control characters before it gets here; what is left to refuse is size.
    pub fn unstorable_field(&self) -> Option<UnstorableField> {
        let too_long = |field: &'static str, value: &str, limit: usize| {
            (value.len() > limit).then(|| UnstorableField {
                field,
                problem: format!(
                    "is {} bytes long, over the {limit} a store keeps",
                    value.len()
                ),
            })
        };
        let optional = |field, value: &Option<String>| {
            value
                .as_deref()
                .and_then(|v| too_long(field, v, MAX_TEXT_FIELD_BYTES))
        };
        self.email
            .as_deref()
            .and_then(|v| too_long("mail", v, MAX_KEY_FIELD_BYTES))
            .or_else(|| too_long("displayName", &self.display_name, MAX_TEXT_FIELD_BYTES))
            .or_else(|| optional("givenName", &self.given_name))
            .or_else(|| optional("surname", &self.surname))
            .or_else(|| optional("jobTitle", &self.job_title))
            .or_else(|| optional("department", &self.department))
            .or_else(|| optional("officeLocation", &self.office_location))
            .or_else(|| optional("mobilePhone", &self.mobile_phone))
            .or_else(|| {
                self.business_phones
                    .iter()
                    .find_map(|p| too_long("businessPhones", p, MAX_TEXT_FIELD_BYTES))
            })
            .or_else(|| {
                self.aliases
                    .iter()
                    .find_map(|a| too_long("proxyAddresses", a, MAX_KEY_FIELD_BYTES))
            })
    }
}

/// A subscribed SKU of a tenant: bought, assigned and free seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseRecord {
    pub tenant_id: TenantId,
    pub sku_id: String,
    pub sku_part_number: SkuPartNumber,
    pub applies_to: String,
    pub capability_status: String,
    pub enabled_units: i64,
    pub suspended_units: i64,
    pub warning_units: i64,
    pub consumed_units: i64,
    /// Service plan names, sorted.
    pub service_plans: Vec<String>,
    /// Each service plan's id and name, sorted by name: what a user of the SKU can use.
    pub plans: Vec<ServicePlan>,
    /// Whether a subscription behind the SKU is a trial, from the tenant's subscriptions;
    /// none where they could not be read.
    pub trial: Option<bool>,
    /// When the SKU's subscription next changes state (a trial ends, a renewal falls due),
    /// RFC 3339; the earliest of its subscriptions'.
    pub next_lifecycle: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServicePlan {
    pub id: String,
    pub name: String,
}

impl LicenseRecord {
    /// Seats bought and not assigned; negative while over-assigned in a warning period.
    pub fn free_units(&self) -> i64 {
        self.enabled_units - self.consumed_units
    }
}

/// Mailbox figures from the mailbox usage report, joined to a contact by UPN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxRecord {
    pub tenant_id: TenantId,
    pub user_principal_name: Upn,
    pub display_name: Option<String>,
    pub is_deleted: bool,
    pub deleted_date: Option<String>,
    /// `user`, `shared`, `room` or `equipment`, where the report says.
    pub recipient_type: Option<String>,
    pub storage_used_bytes: Option<i64>,
    pub item_count: Option<i64>,
    pub issue_warning_quota_bytes: Option<i64>,
    pub prohibit_send_quota_bytes: Option<i64>,
    pub prohibit_send_receive_quota_bytes: Option<i64>,
    pub deleted_item_count: Option<i64>,
    pub deleted_item_size_bytes: Option<i64>,
    pub has_archive: Option<bool>,
    pub created_date: Option<String>,
    pub last_activity_date: Option<String>,
}

/// What a tenant says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationRecord {
    pub tenant_id: TenantId,
    pub display_name: String,
    /// Verified domain names, lower-case and sorted.
    pub verified_domains: Vec<String>,
    pub default_domain: Option<String>,
    pub country_letter_code: Option<String>,
}

/// One item of a tenant-wide inventory (a domain, a service-health issue, an app registration, a
/// terms-of-use agreement): kept as a normalised JSON document under a stable key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryItem {
    /// Microsoft's id of the item, unique within its dataset and tenant.
    pub key: String,
    /// What a person calls it, for lists and logs.
    pub name: String,
    /// The item in m365sync's own field names (snake_case), enums normalised.
    pub document: serde_json::Value,
}

/// A stable fingerprint of a record's content.
pub fn fingerprint<T: Serialize>(record: &T) -> String {
    // serde_json writes struct fields in declaration order, so equal records give equal bytes.
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The top-level fields whose values differ between two versions of a record.
pub fn changed_fields<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    new.iter()
        .filter(|(key, value)| old.get(*key) != Some(value))
        .map(|(key, _)| key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> ContactRecord {
        ContactRecord {
            tenant_id: TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            object_id: ObjectId::parse("11111111-2222-4333-8444-555555555555").unwrap(),
            user_principal_name: Upn::parse("ann@contoso.com").unwrap(),
            display_name: "Ann".into(),
            given_name: Some("Ann".into()),
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
            license_sku_ids: vec![],
            disabled_plans: vec![],
        }
    }

    #[test]
    fn fingerprint_changes_with_content_only() {
        let a = contact();
        let mut b = contact();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.job_title = Some("CFO".into());
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(changed_fields(&a, &b), vec!["job_title".to_string()]);
    }
}
