//! The Graph payloads m365sync reads, with the `$select` lists that ask for exactly them.
//!
//! Field names follow Microsoft's v1.0 schema. Every field that Graph may omit or send as null is
//! optional here, so an unusual tenant fails no page.

use serde::{Deserialize, Deserializer};

/// `$select` for `/users`: the default set plus what it leaves out and we keep.
pub const USER_SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,mail,proxyAddresses,jobTitle,department,officeLocation,mobilePhone,businessPhones,accountEnabled,userType,assignedLicenses";

pub const ORGANIZATION_SELECT: &str = "id,displayName,verifiedDomains,countryLetterCode";

pub const SUBSCRIBED_SKU_SELECT: &str =
    "id,skuId,skuPartNumber,appliesTo,capabilityStatus,consumedUnits,prepaidUnits,servicePlans";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub verified_domains: Vec<VerifiedDomain>,
    #[serde(default)]
    pub country_letter_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    #[serde(default)]
    pub is_default: Option<bool>,
    #[serde(default)]
    pub is_initial: Option<bool>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub capabilities: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    /// Every address the user receives mail at: `SMTP:` the primary, `smtp:` the aliases, and
    /// other kinds (`x500:`, `sip:`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub proxy_addresses: Vec<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub office_location: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub business_phones: Vec<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub assigned_licenses: Vec<AssignedLicense>,
    /// Set in a delta round when the user was deleted (`reason` `changed`: soft-deleted,
    /// restorable; `deleted`: gone for good). Either way the user has left the directory.
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLicense {
    pub sku_id: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub disabled_plans: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSku {
    #[serde(default)]
    pub id: Option<String>,
    pub sku_id: String,
    pub sku_part_number: String,
    #[serde(default)]
    pub applies_to: Option<String>,
    #[serde(default)]
    pub capability_status: Option<String>,
    #[serde(default)]
    pub consumed_units: Option<i64>,
    #[serde(default)]
    pub prepaid_units: Option<LicenseUnitsDetail>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub service_plans: Vec<ServicePlanInfo>,
}

/// The fields read of a tenant's subscriptions (`directory/subscriptions`).
pub const COMPANY_SUBSCRIPTION_SELECT: &str =
    "id,skuId,skuPartNumber,isTrial,status,nextLifecycleDateTime,totalLicenses";

/// A commercial subscription behind a subscribed SKU: whether it is a trial, and when its
/// state next changes (a trial's end, a renewal, a lapse).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanySubscription {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub sku_id: Option<String>,
    #[serde(default)]
    pub sku_part_number: Option<String>,
    #[serde(default)]
    pub is_trial: Option<bool>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub next_lifecycle_date_time: Option<String>,
    #[serde(default)]
    pub total_licenses: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseUnitsDetail {
    #[serde(default)]
    pub enabled: Option<i64>,
    #[serde(default)]
    pub suspended: Option<i64>,
    #[serde(default)]
    pub warning: Option<i64>,
    #[serde(default)]
    pub locked_out: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlanInfo {
    pub service_plan_id: String,
    #[serde(default)]
    pub service_plan_name: Option<String>,
    #[serde(default)]
    pub provisioning_status: Option<String>,
    #[serde(default)]
    pub applies_to: Option<String>,
}

/// One row of the mailbox usage report (`getMailboxUsageDetail`), read by header name. Columns
/// that a report version lacks stay empty; columns we do not know are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MailboxUsageRow {
    #[serde(rename = "Report Refresh Date")]
    pub report_refresh_date: Option<String>,
    #[serde(rename = "User Principal Name")]
    pub user_principal_name: Option<String>,
    #[serde(rename = "Display Name")]
    pub display_name: Option<String>,
    #[serde(rename = "Is Deleted", deserialize_with = "report_bool")]
    pub is_deleted: Option<bool>,
    #[serde(rename = "Deleted Date")]
    pub deleted_date: Option<String>,
    #[serde(rename = "Created Date")]
    pub created_date: Option<String>,
    #[serde(rename = "Last Activity Date")]
    pub last_activity_date: Option<String>,
    #[serde(rename = "Item Count", deserialize_with = "report_number")]
    pub item_count: Option<i64>,
    #[serde(rename = "Storage Used (Byte)", deserialize_with = "report_number")]
    pub storage_used_bytes: Option<i64>,
    #[serde(
        rename = "Issue Warning Quota (Byte)",
        deserialize_with = "report_number"
    )]
    pub issue_warning_quota_bytes: Option<i64>,
    #[serde(
        rename = "Prohibit Send Quota (Byte)",
        deserialize_with = "report_number"
    )]
    pub prohibit_send_quota_bytes: Option<i64>,
    #[serde(
        rename = "Prohibit Send/Receive Quota (Byte)",
        deserialize_with = "report_number"
    )]
    pub prohibit_send_receive_quota_bytes: Option<i64>,
    #[serde(rename = "Deleted Item Count", deserialize_with = "report_number")]
    pub deleted_item_count: Option<i64>,
    #[serde(
        rename = "Deleted Item Size (Byte)",
        deserialize_with = "report_number"
    )]
    pub deleted_item_size_bytes: Option<i64>,
    #[serde(
        rename = "Deleted Item Quota (Byte)",
        deserialize_with = "report_number"
    )]
    pub deleted_item_quota_bytes: Option<i64>,
    #[serde(rename = "Has Archive", deserialize_with = "report_bool")]
    pub has_archive: Option<bool>,
    /// `User`, `Shared`, `Room` or `Equipment` — in the reports that carry the column.
    #[serde(rename = "Recipient Type", default)]
    pub recipient_type: Option<String>,
    #[serde(rename = "Report Period")]
    pub report_period: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Report booleans are `True`/`False`; empty means unknown.
fn report_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let raw = Option::<String>::deserialize(d)?.unwrap_or_default();
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "yes" | "1" => Ok(Some(true)),
        "false" | "no" | "0" => Ok(Some(false)),
        other => Err(serde::de::Error::custom(format!(
            "'{other}' is not True or False"
        ))),
    }
}

/// Report numbers may be empty; anything else must be a whole number.
fn report_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let raw = Option::<String>::deserialize(d)?.unwrap_or_default();
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    trimmed
        .parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("'{trimmed}' is not a whole number")))
}

/// `/domains`: every domain of the tenant, verified or not.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: String,
    #[serde(default)]
    pub authentication_type: Option<String>,
    #[serde(default)]
    pub is_admin_managed: Option<bool>,
    #[serde(default)]
    pub is_default: Option<bool>,
    #[serde(default)]
    pub is_initial: Option<bool>,
    #[serde(default)]
    pub is_root: Option<bool>,
    #[serde(default)]
    pub is_verified: Option<bool>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub supported_services: Vec<String>,
    #[serde(default)]
    pub password_validity_period_in_days: Option<i64>,
    #[serde(default)]
    pub password_notification_window_in_days: Option<i64>,
}

/// `/admin/serviceAnnouncement/healthOverviews`: each service's current state.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHealth {
    pub id: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHealthIssuePost {
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub post_type: Option<String>,
    #[serde(default)]
    pub description: Option<ItemBody>,
}

/// `/admin/serviceAnnouncement/issues`: incidents and advisories, with their posts.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHealthIssue {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub feature: Option<String>,
    #[serde(default)]
    pub feature_group: Option<String>,
    #[serde(default)]
    pub impact_description: Option<String>,
    #[serde(default)]
    pub classification: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub is_resolved: Option<bool>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    #[serde(default)]
    pub end_date_time: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub posts: Vec<ServiceHealthIssuePost>,
}

/// `/admin/serviceAnnouncement/messages`: message-centre posts.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceUpdateMessage {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub services: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub is_major_change: Option<bool>,
    #[serde(default)]
    pub action_required_by_date_time: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    #[serde(default)]
    pub end_date_time: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
    #[serde(default)]
    pub body: Option<ItemBody>,
}

pub const APPLICATION_SELECT: &str =
    "id,appId,displayName,signInAudience,createdDateTime,passwordCredentials,keyCredentials";

/// A secret of an app registration. Graph never returns the secret itself after creation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    #[serde(default)]
    pub end_date_time: Option<String>,
}

/// A certificate of an app registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyCredential {
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub usage: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    #[serde(default)]
    pub end_date_time: Option<String>,
}

/// `/applications`: the tenant's app registrations and their credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub sign_in_audience: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub password_credentials: Vec<PasswordCredential>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub key_credentials: Vec<KeyCredential>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TermsExpiration {
    #[serde(default)]
    pub start_date_time: Option<String>,
    #[serde(default)]
    pub frequency: Option<String>,
}

/// `/identityGovernance/termsOfUse/agreements`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub is_per_device_acceptance_required: Option<bool>,
    #[serde(default)]
    pub is_viewing_before_acceptance_required: Option<bool>,
    #[serde(default)]
    pub terms_expiration: Option<TermsExpiration>,
    #[serde(default)]
    pub user_reaccept_required_frequency: Option<String>,
}

/// `/identity/apiConnectors`: an API that user flows call during sign-up, with how it is
/// authenticated. Microsoft never returns the password or the certificate's key.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiConnector {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
    #[serde(default)]
    pub authentication_configuration: Option<ApiAuthentication>,
}

/// `apiAuthenticationConfigurationBase`: basic authentication or client certificates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiAuthentication {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub certificate_list: Vec<ApiCertificate>,
}

/// `pkcs12CertificateInformation`: one uploaded client certificate (times in Unix seconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiCertificate {
    #[serde(default)]
    pub thumbprint: Option<String>,
    #[serde(default)]
    pub not_before: Option<i64>,
    #[serde(default)]
    pub not_after: Option<i64>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// One row of `getOffice365ActiveUserDetail`: licences held and last activity per workload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActiveUserRow {
    #[serde(rename = "User Principal Name")]
    pub user_principal_name: Option<String>,
    #[serde(rename = "Display Name")]
    pub display_name: Option<String>,
    #[serde(rename = "Is Deleted", deserialize_with = "report_bool")]
    pub is_deleted: Option<bool>,
    #[serde(rename = "Has Exchange License", deserialize_with = "report_bool")]
    pub has_exchange_license: Option<bool>,
    #[serde(rename = "Has OneDrive License", deserialize_with = "report_bool")]
    pub has_onedrive_license: Option<bool>,
    #[serde(rename = "Has SharePoint License", deserialize_with = "report_bool")]
    pub has_sharepoint_license: Option<bool>,
    #[serde(rename = "Has Teams License", deserialize_with = "report_bool")]
    pub has_teams_license: Option<bool>,
    #[serde(rename = "Exchange Last Activity Date")]
    pub exchange_last_activity: Option<String>,
    #[serde(rename = "OneDrive Last Activity Date")]
    pub onedrive_last_activity: Option<String>,
    #[serde(rename = "SharePoint Last Activity Date")]
    pub sharepoint_last_activity: Option<String>,
    #[serde(rename = "Teams Last Activity Date")]
    pub teams_last_activity: Option<String>,
    #[serde(rename = "Yammer Last Activity Date")]
    pub yammer_last_activity: Option<String>,
    #[serde(rename = "Skype For Business Last Activity Date")]
    pub skype_last_activity: Option<String>,
    /// Product names joined by `+`.
    #[serde(rename = "Assigned Products")]
    pub assigned_products: Option<String>,
}

/// One row of `getM365AppUserDetail`: which Microsoft 365 apps, on which platforms.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AppUserRow {
    #[serde(rename = "User Principal Name")]
    pub user_principal_name: Option<String>,
    #[serde(rename = "Last Activation Date")]
    pub last_activation_date: Option<String>,
    #[serde(rename = "Last Activity Date")]
    pub last_activity_date: Option<String>,
    #[serde(rename = "Windows", deserialize_with = "report_bool")]
    pub windows: Option<bool>,
    #[serde(rename = "Mac", deserialize_with = "report_bool")]
    pub mac: Option<bool>,
    #[serde(rename = "Mobile", deserialize_with = "report_bool")]
    pub mobile: Option<bool>,
    #[serde(rename = "Web", deserialize_with = "report_bool")]
    pub web: Option<bool>,
    #[serde(rename = "Outlook", deserialize_with = "report_bool")]
    pub outlook: Option<bool>,
    #[serde(rename = "Word", deserialize_with = "report_bool")]
    pub word: Option<bool>,
    #[serde(rename = "Excel", deserialize_with = "report_bool")]
    pub excel: Option<bool>,
    #[serde(rename = "PowerPoint", deserialize_with = "report_bool")]
    pub powerpoint: Option<bool>,
    #[serde(rename = "OneNote", deserialize_with = "report_bool")]
    pub onenote: Option<bool>,
    #[serde(rename = "Teams", deserialize_with = "report_bool")]
    pub teams: Option<bool>,
}

/// One row of `getEmailActivityUserDetail`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmailActivityRow {
    #[serde(rename = "User Principal Name")]
    pub user_principal_name: Option<String>,
    #[serde(rename = "Is Deleted", deserialize_with = "report_bool")]
    pub is_deleted: Option<bool>,
    #[serde(rename = "Last Activity Date")]
    pub last_activity_date: Option<String>,
    #[serde(rename = "Send Count", deserialize_with = "report_number")]
    pub send_count: Option<i64>,
    #[serde(rename = "Receive Count", deserialize_with = "report_number")]
    pub receive_count: Option<i64>,
    #[serde(rename = "Read Count", deserialize_with = "report_number")]
    pub read_count: Option<i64>,
    #[serde(rename = "Meeting Created Count", deserialize_with = "report_number")]
    pub meeting_created_count: Option<i64>,
    #[serde(
        rename = "Meeting Interacted Count",
        deserialize_with = "report_number"
    )]
    pub meeting_interacted_count: Option<i64>,
}

pub const GROUP_SELECT: &str = "id,displayName,description,mail,mailEnabled,securityEnabled,groupTypes,visibility,createdDateTime";

/// `/groups`: security groups, Microsoft 365 groups and distribution lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub mail_enabled: Option<bool>,
    #[serde(default)]
    pub security_enabled: Option<bool>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub group_types: Vec<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<String>,
}

/// One entry of `/groups/delta`: the group (only `id` and `@removed` when it was deleted) and the
/// changes to its members. The first round lists every member as added, possibly over several
/// entries for one group.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupDelta {
    #[serde(flatten)]
    pub group: Group,
    #[serde(default, rename = "members@delta")]
    pub members_delta: Vec<MemberChange>,
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MemberChange {
    pub id: String,
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

/// `/directoryRoles`: the activated directory roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRole {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub role_template_id: Option<String>,
}

/// A member of a group or role: a user, group, device or service principal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    pub id: String,
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
}

pub const MANAGED_DEVICE_SELECT: &str = "id,userId,deviceName,managedDeviceOwnerType,enrolledDateTime,lastSyncDateTime,operatingSystem,osVersion,complianceState,managementAgent,azureADDeviceId,userPrincipalName,userDisplayName,emailAddress,model,manufacturer,serialNumber,isEncrypted,totalStorageSpaceInBytes,freeStorageSpaceInBytes,physicalMemoryInBytes";

pub const DEVICE_SELECT: &str = "id,deviceId,displayName,operatingSystem,operatingSystemVersion,trustType,profileType,isCompliant,isManaged,accountEnabled,manufacturer,model,deviceOwnership,registrationDateTime,approximateLastSignInDateTime";

/// `/devices`: Entra ID's device objects (joined, hybrid-joined and registered devices).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: String,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub operating_system: Option<String>,
    #[serde(default)]
    pub operating_system_version: Option<String>,
    /// `AzureAd` (joined), `ServerAd` (hybrid joined) or `Workplace` (registered).
    #[serde(default)]
    pub trust_type: Option<String>,
    #[serde(default)]
    pub profile_type: Option<String>,
    #[serde(default)]
    pub is_compliant: Option<bool>,
    #[serde(default)]
    pub is_managed: Option<bool>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub device_ownership: Option<String>,
    #[serde(default)]
    pub registration_date_time: Option<String>,
    #[serde(default)]
    pub approximate_last_sign_in_date_time: Option<String>,
}

/// A user's sign-in activity (`$select=signInActivity`; needs AuditLog.Read.All and Entra ID P1).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSignIns {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub sign_in_activity: Option<SignInActivity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInActivity {
    #[serde(default)]
    pub last_sign_in_date_time: Option<String>,
    #[serde(default)]
    pub last_non_interactive_sign_in_date_time: Option<String>,
    #[serde(default)]
    pub last_successful_sign_in_date_time: Option<String>,
}

/// Graph pages users with sign-in activity at most 120 at a time.
pub const SIGN_IN_PAGE: u32 = 120;

/// `/deviceManagement/managedDevices`: devices enrolled in Intune.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDevice {
    pub id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub device_name: Option<String>,
    #[serde(default)]
    pub managed_device_owner_type: Option<String>,
    #[serde(default)]
    pub enrolled_date_time: Option<String>,
    #[serde(default)]
    pub last_sync_date_time: Option<String>,
    #[serde(default)]
    pub operating_system: Option<String>,
    #[serde(default)]
    pub os_version: Option<String>,
    #[serde(default)]
    pub compliance_state: Option<String>,
    #[serde(default)]
    pub management_agent: Option<String>,
    #[serde(default, rename = "azureADDeviceId")]
    pub azure_ad_device_id: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub user_display_name: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub serial_number: Option<String>,
    #[serde(default)]
    pub is_encrypted: Option<bool>,
    #[serde(default)]
    pub total_storage_space_in_bytes: Option<i64>,
    #[serde(default)]
    pub free_storage_space_in_bytes: Option<i64>,
    #[serde(default)]
    pub physical_memory_in_bytes: Option<i64>,
}

/// `/deviceManagement/detectedApps`: software found on managed devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectedApp {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub size_in_byte: Option<i64>,
    #[serde(default)]
    pub device_count: Option<i64>,
    #[serde(default)]
    pub publisher: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
}

/// A Management Activity API subscription (one per content type).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivitySubscription {
    pub content_type: String,
    #[serde(default)]
    pub status: Option<String>,
}

/// A blob of audit records available for download.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityContent {
    pub content_type: String,
    pub content_id: String,
    pub content_uri: String,
    pub content_created: String,
    #[serde(default)]
    pub content_expiration: Option<String>,
}

/// `/admin/reportSettings`: whether usage reports conceal user, group and site names.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSettings {
    pub display_concealed_names: bool,
}

/// `/tenantRelationships/delegatedAdminCustomers`: a customer with at least one active GDAP
/// relationship with the partner.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelegatedAdminCustomer {
    #[serde(default)]
    pub id: Option<String>,
    pub tenant_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `$select` for `/contracts`.
pub const CONTRACT_SELECT: &str = "id,customerId,defaultDomainName,displayName";

/// `/contracts`: a partner's contract with a customer (names copied when it was made).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    #[serde(default)]
    pub id: Option<String>,
    /// The customer's tenant id.
    pub customer_id: String,
    #[serde(default)]
    pub default_domain_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}
