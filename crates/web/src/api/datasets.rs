//! Each organisation's datasets, across the tenants filed under it: licences, domains, groups,
//! admins, Entra and Intune devices, service health, app registrations with their credentials'
//! expiry, terms of use, and audit records.
//!
//! Tenant-wide inventories are kept as normalised documents; each is read here into a typed
//! view, so that the API's shape is declared (and documented) rather than whatever was stored.

use axum::Json;
use axum::extract::State;
use domain::Dataset;
use domain::devices::{DeviceRecord, ManagedDeviceRecord};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::{InventoryRow, Store};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiPath, ApiQuery, ApiResult, page_limit, page_of, tenants_of_organization};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DatasetQuery {
    /// Include archived items (gone from the tenant).
    #[serde(default)]
    pub include_archived: bool,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

macro_rules! page {
    ($page:ident, $item:ty) => {
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $page {
            pub items: Vec<$item>,
            pub next_cursor: Option<String>,
        }
    };
}

/// The items of an inventory dataset of every tenant of an organisation, each read as `T`.
async fn inventory<T: DeserializeOwned>(
    store: &Store,
    organization_id: i64,
    dataset: Dataset,
    include_archived: bool,
) -> ApiResult<Vec<(InventoryRow, T)>> {
    let mut items = Vec::new();
    for tenant in tenants_of_organization(store, organization_id).await? {
        for row in store
            .inventory(Some(&tenant), dataset, include_archived)
            .await?
        {
            let typed = serde_json::from_value::<T>(row.document.clone()).map_err(|e| {
                ApiError::from(store::StoreError::Corrupt(format!(
                    "{} item {} of tenant {}: {e}",
                    dataset.name(),
                    row.key,
                    row.tenant_id
                )))
            })?;
            items.push((row, typed));
        }
    }
    Ok(items)
}

// --- licences ---

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseView {
    pub tenant_id: String,
    pub sku_id: String,
    pub sku_part_number: String,
    /// The product name, else the part number.
    pub name: String,
    pub capability_status: String,
    /// Bought.
    pub enabled_units: i64,
    /// Assigned.
    pub consumed_units: i64,
    pub free_units: i64,
    pub suspended_units: i64,
    pub warning_units: i64,
    pub service_plans: Vec<String>,
    pub archived: bool,
}

page!(LicensePage, LicenseView);

/// The organisation's licences: bought, assigned and free.
#[utoipa::path(get, path = "/organizations/{id}/licenses", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = LicensePage), (status = 404, body = super::ErrorBody)))]
pub async fn licenses(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<LicensePage>> {
    let limit = page_limit(query.limit)?;
    let mut all = Vec::new();
    for tenant in tenants_of_organization(&store, id).await? {
        all.extend(
            store
                .licenses(Some(&tenant), query.include_archived)
                .await?,
        );
    }
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(LicensePage {
        items: items
            .into_iter()
            .map(|l| LicenseView {
                tenant_id: l.tenant_id,
                sku_id: l.sku_id,
                sku_part_number: l.sku_part_number,
                name: l.name,
                capability_status: l.capability_status,
                enabled_units: l.enabled_units,
                consumed_units: l.consumed_units,
                free_units: l.free_units,
                suspended_units: l.suspended_units,
                warning_units: l.warning_units,
                service_plans: l.service_plans,
                archived: l.archived,
            })
            .collect(),
        next_cursor,
    }))
}

// --- domains ---

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct DomainView {
    #[serde(default)]
    pub tenant_id: String,
    pub name: String,
    /// `managed` or `federated`.
    #[serde(default)]
    pub authentication_type: Option<String>,
    #[serde(default)]
    pub is_default: Option<bool>,
    #[serde(default)]
    pub is_initial: Option<bool>,
    #[serde(default)]
    pub is_verified: Option<bool>,
    #[serde(default)]
    pub supported_services: Vec<String>,
    #[serde(default)]
    pub password_validity_period_in_days: Option<i64>,
    #[serde(default)]
    pub archived: bool,
}

page!(DomainPage, DomainView);

/// The organisation's domains.
#[utoipa::path(get, path = "/organizations/{id}/domains", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = DomainPage), (status = 404, body = super::ErrorBody)))]
pub async fn domains(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<DomainPage>> {
    let limit = page_limit(query.limit)?;
    let all: Vec<DomainView> = inventory(&store, id, Dataset::Domains, query.include_archived)
        .await?
        .into_iter()
        .map(|(row, mut domain): (InventoryRow, DomainView)| {
            domain.tenant_id = row.tenant_id;
            domain.archived = row.archived;
            domain
        })
        .collect();
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(DomainPage { items, next_cursor }))
}

// --- groups ---

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub mail: Option<String>,
    pub mail_enabled: Option<bool>,
    pub security_enabled: Option<bool>,
    /// `Unified` for a Microsoft 365 group, `DynamicMembership`…
    pub group_types: Vec<String>,
    pub visibility: Option<String>,
    pub created: Option<String>,
    pub member_count: u64,
    pub archived: bool,
}

page!(GroupPage, GroupView);

/// The organisation's groups, with their member counts.
#[utoipa::path(get, path = "/organizations/{id}/groups", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = GroupPage), (status = 404, body = super::ErrorBody)))]
pub async fn groups(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<GroupPage>> {
    let limit = page_limit(query.limit)?;
    let mut all = Vec::new();
    for tenant in tenants_of_organization(&store, id).await? {
        all.extend(store.groups(Some(&tenant), query.include_archived).await?);
    }
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(GroupPage {
        items: items
            .into_iter()
            .map(|g| GroupView {
                name: g.group.name().to_string(),
                tenant_id: g.tenant_id,
                id: g.group.object_id,
                description: g.group.description,
                mail: g.group.mail,
                mail_enabled: g.group.mail_enabled,
                security_enabled: g.group.security_enabled,
                group_types: g.group.group_types,
                visibility: g.group.visibility,
                created: g.group.created,
                member_count: g.member_count,
                archived: g.archived,
            })
            .collect(),
        next_cursor,
    }))
}

// --- admins ---

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminRoleView {
    pub tenant_id: String,
    pub id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub role_template_id: Option<String>,
    pub members: Vec<RoleMember>,
    pub archived: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleMember {
    pub id: String,
    /// `user`, `servicePrincipal`, `group`…
    pub member_type: Option<String>,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
}

/// A directory role as the inventory keeps it.
#[derive(Deserialize)]
struct StoredRole {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    role_template_id: Option<String>,
    #[serde(default)]
    members: Vec<StoredMember>,
}

#[derive(Deserialize)]
struct StoredMember {
    id: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    user_principal_name: Option<String>,
}

page!(AdminRolePage, AdminRoleView);

/// The organisation's activated directory roles and who holds each.
#[utoipa::path(get, path = "/organizations/{id}/admins", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = AdminRolePage), (status = 404, body = super::ErrorBody)))]
pub async fn admins(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<AdminRolePage>> {
    let limit = page_limit(query.limit)?;
    let all: Vec<AdminRoleView> =
        inventory(&store, id, Dataset::DirectoryRoles, query.include_archived)
            .await?
            .into_iter()
            .map(|(row, role): (InventoryRow, StoredRole)| AdminRoleView {
                tenant_id: row.tenant_id,
                id: role.id,
                display_name: role.display_name,
                description: role.description,
                role_template_id: role.role_template_id,
                members: role
                    .members
                    .into_iter()
                    .map(|m| RoleMember {
                        id: m.id,
                        member_type: m.kind,
                        display_name: m.display_name,
                        user_principal_name: m.user_principal_name,
                    })
                    .collect(),
                archived: row.archived,
            })
            .collect();
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(AdminRolePage { items, next_cursor }))
}

// --- devices ---

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub tenant_id: String,
    pub id: String,
    pub device_id: Option<String>,
    pub display_name: Option<String>,
    pub operating_system: Option<String>,
    pub operating_system_version: Option<String>,
    pub join_type: Option<String>,
    pub trust_type: Option<String>,
    pub is_compliant: Option<bool>,
    pub is_managed: Option<bool>,
    pub account_enabled: Option<bool>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub ownership: Option<String>,
    pub registered: Option<String>,
    pub archived: bool,
}

page!(DevicePage, DeviceView);

/// The organisation's Entra devices.
#[utoipa::path(get, path = "/organizations/{id}/devices", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = DevicePage), (status = 404, body = super::ErrorBody)))]
pub async fn devices(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<DevicePage>> {
    let limit = page_limit(query.limit)?;
    let mut all = Vec::new();
    for tenant in tenants_of_organization(&store, id).await? {
        all.extend(
            store
                .typed_rows::<DeviceRecord>(Some(&tenant), query.include_archived)
                .await?,
        );
    }
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(DevicePage {
        items: items
            .into_iter()
            .map(|listed| {
                let d = listed.row.record;
                DeviceView {
                    tenant_id: listed.tenant_id,
                    id: d.id,
                    device_id: d.device_id,
                    display_name: d.display_name,
                    operating_system: d.operating_system,
                    operating_system_version: d.operating_system_version,
                    join_type: d.join_type,
                    trust_type: d.trust_type,
                    is_compliant: d.is_compliant,
                    is_managed: d.is_managed,
                    account_enabled: d.account_enabled,
                    manufacturer: d.manufacturer,
                    model: d.model,
                    ownership: d.ownership,
                    registered: d.registered,
                    archived: listed.row.archived,
                }
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ManagedDeviceView {
    pub tenant_id: String,
    pub id: String,
    pub device_name: Option<String>,
    /// The primary user's object id, UPN and name.
    pub user_id: Option<String>,
    pub user_principal_name: Option<String>,
    pub user_display_name: Option<String>,
    pub owner_type: Option<String>,
    pub operating_system: Option<String>,
    pub os_version: Option<String>,
    pub compliance_state: Option<String>,
    pub management_agent: Option<String>,
    pub enrolled: Option<String>,
    pub last_check_in: Option<String>,
    pub entra_device_id: Option<String>,
    pub manufacturer: Option<String>,
    pub archived: bool,
}

page!(ManagedDevicePage, ManagedDeviceView);

/// The organisation's Intune-managed devices.
#[utoipa::path(get, path = "/organizations/{id}/managed-devices", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = ManagedDevicePage), (status = 404, body = super::ErrorBody)))]
pub async fn managed_devices(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<ManagedDevicePage>> {
    let limit = page_limit(query.limit)?;
    let mut all = Vec::new();
    for tenant in tenants_of_organization(&store, id).await? {
        all.extend(
            store
                .typed_rows::<ManagedDeviceRecord>(Some(&tenant), query.include_archived)
                .await?,
        );
    }
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(ManagedDevicePage {
        items: items
            .into_iter()
            .map(|listed| {
                let d = listed.row.record;
                ManagedDeviceView {
                    tenant_id: listed.tenant_id,
                    id: d.id,
                    device_name: d.device_name,
                    user_id: d.user_id,
                    user_principal_name: d.user_principal_name,
                    user_display_name: d.user_display_name,
                    owner_type: d.owner_type,
                    operating_system: d.operating_system,
                    os_version: d.os_version,
                    compliance_state: d.compliance_state,
                    management_agent: d.management_agent,
                    enrolled: d.enrolled,
                    last_check_in: d.last_check_in,
                    entra_device_id: d.entra_device_id,
                    manufacturer: d.manufacturer,
                    archived: listed.row.archived,
                }
            })
            .collect(),
        next_cursor,
    }))
}

// --- service health ---

/// A service's health, or an issue (incident or advisory) affecting one.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ServiceHealthView {
    #[serde(default)]
    pub tenant_id: String,
    /// `service` or `issue`.
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub service: Option<String>,
    /// `serviceOperational`, `serviceDegradation`, `restoringService`…
    #[serde(default)]
    pub status: Option<String>,
    /// An issue's title.
    #[serde(default)]
    pub title: Option<String>,
    /// An issue's `incident` or `advisory`.
    #[serde(default)]
    pub classification: Option<String>,
    #[serde(default)]
    pub impact_description: Option<String>,
    #[serde(default)]
    pub is_resolved: Option<bool>,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    #[serde(default)]
    pub archived: bool,
}

page!(ServiceHealthPage, ServiceHealthView);

/// The health of each service of the organisation's tenants, and the issues affecting them.
#[utoipa::path(get, path = "/organizations/{id}/service-health", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = ServiceHealthPage), (status = 404, body = super::ErrorBody)))]
pub async fn service_health(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<ServiceHealthPage>> {
    let limit = page_limit(query.limit)?;
    let all: Vec<ServiceHealthView> =
        inventory(&store, id, Dataset::ServiceHealth, query.include_archived)
            .await?
            .into_iter()
            .map(|(row, mut item): (InventoryRow, ServiceHealthView)| {
                item.tenant_id = row.tenant_id;
                item.archived = row.archived;
                item
            })
            .collect();
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(ServiceHealthPage { items, next_cursor }))
}

// --- app registrations ---

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ApplicationView {
    #[serde(default)]
    pub tenant_id: String,
    pub id: String,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub sign_in_audience: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    /// Its client secrets: when each starts and ends (never the secret).
    #[serde(default)]
    pub secrets: Vec<CredentialDates>,
    /// Its certificates: when each starts and ends.
    #[serde(default)]
    pub certificates: Vec<CredentialDates>,
    #[serde(default)]
    pub archived: bool,
}

/// When an app's secret or certificate is valid.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CredentialDates {
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
}

page!(ApplicationPage, ApplicationView);

/// The organisation's app registrations and when their secrets and certificates expire.
#[utoipa::path(get, path = "/organizations/{id}/applications", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = ApplicationPage), (status = 404, body = super::ErrorBody)))]
pub async fn applications(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<ApplicationPage>> {
    let limit = page_limit(query.limit)?;
    let all: Vec<ApplicationView> =
        inventory(&store, id, Dataset::Applications, query.include_archived)
            .await?
            .into_iter()
            .map(|(row, mut app): (InventoryRow, ApplicationView)| {
                app.tenant_id = row.tenant_id;
                app.archived = row.archived;
                app
            })
            .collect();
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(ApplicationPage { items, next_cursor }))
}

// --- terms of use ---

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct TermsOfUseView {
    #[serde(default)]
    pub tenant_id: String,
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub is_per_device_acceptance_required: Option<bool>,
    #[serde(default)]
    pub is_viewing_before_acceptance_required: Option<bool>,
    /// How often users accept again (an ISO 8601 duration).
    #[serde(default)]
    pub user_reaccept_required_frequency: Option<String>,
    #[serde(default)]
    pub archived: bool,
}

page!(TermsOfUsePage, TermsOfUseView);

/// The organisation's terms of use.
#[utoipa::path(get, path = "/organizations/{id}/terms-of-use", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), DatasetQuery),
    responses((status = 200, body = TermsOfUsePage), (status = 404, body = super::ErrorBody)))]
pub async fn terms_of_use(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<TermsOfUsePage>> {
    let limit = page_limit(query.limit)?;
    let all: Vec<TermsOfUseView> =
        inventory(&store, id, Dataset::TermsOfUse, query.include_archived)
            .await?
            .into_iter()
            .map(|(row, mut terms): (InventoryRow, TermsOfUseView)| {
                terms.tenant_id = row.tenant_id;
                terms.archived = row.archived;
                terms
            })
            .collect();
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(TermsOfUsePage { items, next_cursor }))
}

// --- audit ---

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQueryParams {
    /// Records created at or after this time, in UTC as audit records write it
    /// (2026-11-01T08:00:00).
    pub since: Option<String>,
    /// The records of this user (the user principal name, any case).
    pub user: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A `since` time as audit records write theirs: UTC, no zone (a time with a zone is brought to
/// UTC).
fn audit_since(raw: &str) -> ApiResult<String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let raw = raw.trim();
    let format = "%Y-%m-%dT%H:%M:%S";
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(day
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .format(format)
            .to_string());
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(raw, format) {
        return Ok(time.format(format).to_string());
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(time.with_timezone(&Utc).format(format).to_string());
    }
    Err(ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "bad_query",
        format!(
            "since '{raw}' is not a time; give one such as 2026-11-01 or 2026-11-01T08:00:00 (UTC), or with a zone (2026-11-01T09:00:00+01:00)"
        ),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordView {
    pub tenant_id: String,
    pub id: String,
    pub creation_time: Option<String>,
    pub operation: Option<String>,
    pub workload: Option<String>,
    pub user_id: Option<String>,
    pub client_ip: Option<String>,
    pub result_status: Option<String>,
    pub object_id: Option<String>,
    pub content_type: Option<String>,
    /// The whole record as Microsoft sent it.
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

page!(AuditPage, AuditRecordView);

/// The organisation's audit records, oldest first.
#[utoipa::path(get, path = "/organizations/{id}/audit", tag = "datasets",
    params(("id" = i64, Path, description = "The organisation's id"), AuditQueryParams),
    responses((status = 200, body = AuditPage), (status = 404, body = super::ErrorBody)))]
pub async fn audit(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<AuditQueryParams>,
) -> ApiResult<Json<AuditPage>> {
    let limit = page_limit(query.limit)?;
    let since = query.since.as_deref().map(audit_since).transpose()?;
    let mut all = Vec::new();
    for tenant in tenants_of_organization(&store, id).await? {
        let asked = store::AuditQuery {
            tenant_id: Some(tenant),
            since: since.clone(),
            user: query.user.clone(),
        };
        all.extend(store.audit_records(&asked).await?);
    }
    let (items, next_cursor) = page_of(all, query.cursor.as_deref(), limit)?;
    Ok(Json(AuditPage {
        items: items
            .into_iter()
            .map(|listed| {
                let r = listed.row.record;
                AuditRecordView {
                    tenant_id: listed.tenant_id,
                    id: r.id,
                    creation_time: r.creation_time,
                    operation: r.operation,
                    workload: r.workload,
                    user_id: r.user_id,
                    client_ip: r.client_ip,
                    result_status: r.result_status,
                    object_id: r.object_id,
                    content_type: r.content_type,
                    record: r.record,
                }
            })
            .collect(),
        next_cursor,
    }))
}
