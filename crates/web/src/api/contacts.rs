//! Contacts: search and filter with cursor pagination, one contact with its Microsoft 365
//! overlay (licences, products, mailbox, usage, groups, admin roles, devices), and its history.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use domain::devices::ManagedDeviceRecord;
use domain::{Dataset, TenantId};
use serde::{Deserialize, Serialize};
use store::{ContactFilter, ContactRow, Store};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, ApiPath, ApiQuery, ApiResult, PageParams, cursor_of, page_limit, position_of, time,
};

/// A contact as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub id: i64,
    pub organization_id: i64,
    pub organization: String,
    /// Its tenant and directory object id; none for a contact kept by hand.
    pub tenant_id: Option<String>,
    pub object_id: Option<String>,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub user_principal_name: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office_location: Option<String>,
    pub mobile_phone: Option<String>,
    pub business_phones: Vec<String>,
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    /// Licences held, by product name.
    pub licenses: Vec<LicenseHeld>,
    pub mailbox: Option<MailboxView>,
    /// Its custom fields, by name.
    pub custom_fields: BTreeMap<String, String>,
    pub archived: bool,
    /// Deleted in Microsoft 365 and restorable until then.
    pub restorable_until: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseHeld {
    pub sku_part_number: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxView {
    /// `user`, `shared`, `room` or `equipment`, where the report says.
    pub recipient_type: Option<String>,
    pub storage_used_bytes: Option<i64>,
    pub item_count: Option<i64>,
    pub issue_warning_quota_bytes: Option<i64>,
    pub prohibit_send_quota_bytes: Option<i64>,
    pub prohibit_send_receive_quota_bytes: Option<i64>,
    pub has_archive: Option<bool>,
    pub last_activity_date: Option<String>,
}

fn view(contact: &ContactRow) -> ContactView {
    ContactView {
        id: contact.id,
        organization_id: contact.organization_id,
        organization: contact.organization.clone(),
        tenant_id: contact.tenant_id.clone(),
        object_id: contact.object_id.clone(),
        display_name: contact.display_name.clone(),
        given_name: contact.given_name.clone(),
        surname: contact.surname.clone(),
        email: contact.email.clone(),
        user_principal_name: contact.user_principal_name.clone(),
        job_title: contact.job_title.clone(),
        department: contact.department.clone(),
        office_location: contact.office_location.clone(),
        mobile_phone: contact.mobile_phone.clone(),
        business_phones: contact.business_phones.clone(),
        account_enabled: contact.account_enabled,
        user_type: contact.user_type.clone(),
        licenses: contact
            .licenses
            .iter()
            .zip(&contact.license_names)
            .map(|(part, name)| LicenseHeld {
                sku_part_number: part.clone(),
                name: name.clone(),
            })
            .collect(),
        mailbox: contact.mailbox.as_ref().map(|m| MailboxView {
            recipient_type: m.recipient_type.clone(),
            storage_used_bytes: m.storage_used_bytes,
            item_count: m.item_count,
            issue_warning_quota_bytes: m.issue_warning_quota_bytes,
            prohibit_send_quota_bytes: m.prohibit_send_quota_bytes,
            prohibit_send_receive_quota_bytes: m.prohibit_send_receive_quota_bytes,
            has_archive: m.has_archive,
            last_activity_date: m.last_activity_date.clone(),
        }),
        custom_fields: contact.custom_fields.clone(),
        archived: contact.archived,
        restorable_until: contact.restorable_until.map(time),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactsQuery {
    /// Only this organisation's contacts.
    pub organization_id: Option<i64>,
    /// Only this tenant's contacts.
    pub tenant_id: Option<String>,
    /// Words the name, user principal name, email, job title or department contains, any case.
    pub search: Option<String>,
    /// Only enabled (true) or disabled (false) accounts.
    pub enabled: Option<bool>,
    /// Only guests (true) or only members (false).
    pub guest: Option<bool>,
    /// Only contacts with (true) or without (false) a licence.
    pub licensed: Option<bool>,
    /// Include archived contacts.
    #[serde(default)]
    pub include_archived: bool,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Contacts per page, 1 to 500 (100 unless given).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactPage {
    /// In the order they were created.
    pub items: Vec<ContactView>,
    /// Pass it as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<String>,
}

/// Contacts: searched, filtered, a page at a time.
#[utoipa::path(get, path = "/contacts", tag = "contacts", params(ContactsQuery),
    responses((status = 200, body = ContactPage)))]
pub async fn list_contacts(
    State(store): State<Store>,
    ApiQuery(query): ApiQuery<ContactsQuery>,
) -> ApiResult<Json<ContactPage>> {
    let limit = page_limit(query.limit)?;
    let after = position_of(query.cursor.as_deref())?;
    let tenant_id = query
        .tenant_id
        .as_deref()
        .map(TenantId::parse)
        .transpose()?;
    let filter = ContactFilter {
        tenant_id,
        organization_id: query.organization_id,
        include_archived: query.include_archived,
        search: query.search.as_deref().map(crate::query::search_text),
        enabled: query.enabled,
        guest: query.guest,
        licensed: query.licensed,
    };
    let contacts = store.contacts_page(&filter, after, limit).await?;
    let next_cursor = (contacts.len() as i64 == limit)
        .then(|| contacts.last().map(|c| cursor_of(c.id)))
        .flatten();
    Ok(Json(ContactPage {
        items: contacts.iter().map(view).collect(),
        next_cursor,
    }))
}

/// A contact with what Microsoft 365 says of the user behind it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactDetail {
    #[serde(flatten)]
    pub contact: ContactView,
    /// The service plans the user can use.
    pub products: Vec<String>,
    /// What the usage reports say, by report (`activity`, `apps`, `email`), and the last
    /// sign-ins (`sign_in`); empty when those datasets are not synced.
    #[schema(value_type = Object)]
    pub usage: serde_json::Map<String, serde_json::Value>,
    /// The fields Microsoft 365 owns (each sync writes them); the others are the technician's.
    pub managed_by_microsoft_365: Vec<String>,
    pub groups: Vec<GroupRef>,
    /// Directory roles the user holds (Global Administrator, …).
    pub admin_roles: Vec<String>,
    /// Intune devices whose primary user this is.
    pub devices: Vec<DeviceRef>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
    pub mail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceRef {
    pub id: String,
    pub name: Option<String>,
    pub operating_system: Option<String>,
    pub os_version: Option<String>,
    pub compliance_state: Option<String>,
    pub last_check_in: Option<String>,
}

async fn find(store: &Store, id: i64) -> ApiResult<ContactRow> {
    store.contact(id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "There is no contact {id}; GET /api/v1/contacts lists them."
        ))
    })
}

/// One contact with its Microsoft 365 overlay.
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts",
    params(("id" = i64, Path, description = "The contact's id")),
    responses((status = 200, body = ContactDetail), (status = 404, body = super::ErrorBody)))]
pub async fn get_contact(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ContactDetail>> {
    let contact = find(&store, id).await?;
    let mut detail = ContactDetail {
        contact: view(&contact),
        products: contact.products.clone(),
        usage: contact.usage.clone(),
        managed_by_microsoft_365: Vec::new(),
        groups: Vec::new(),
        admin_roles: Vec::new(),
        devices: Vec::new(),
    };
    let tenant = contact.tenant_id.as_deref().map(TenantId::parse);
    let (Some(Ok(tenant)), Some(object_id)) = (tenant, contact.object_id.as_deref()) else {
        // Kept by hand: Microsoft 365 says nothing of it.
        return Ok(Json(detail));
    };
    let object_id = object_id.to_lowercase();
    detail.managed_by_microsoft_365 = store
        .field_mapping_of(&tenant.to_string())
        .await?
        .managed_by_microsoft_365();
    detail.groups = store
        .groups_of_member(&tenant, &object_id)
        .await?
        .into_iter()
        .map(|g| GroupRef {
            name: g.name().to_string(),
            id: g.object_id,
            mail: g.mail,
        })
        .collect();
    let roles = store
        .inventory(Some(&tenant), Dataset::DirectoryRoles, false)
        .await?;
    detail.admin_roles = roles
        .into_iter()
        .filter(|role| {
            role.document["members"].as_array().is_some_and(|members| {
                members.iter().any(|m| {
                    m["id"]
                        .as_str()
                        .is_some_and(|id| id.eq_ignore_ascii_case(&object_id))
                })
            })
        })
        .map(|role| role.name)
        .collect();
    detail.devices = store
        .typed_rows::<ManagedDeviceRecord>(Some(&tenant), false)
        .await?
        .into_iter()
        .map(|listed| listed.row.record)
        .filter(|d| {
            d.user_id
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(&object_id))
        })
        .map(|d| DeviceRef {
            id: d.id,
            name: d.device_name,
            operating_system: d.operating_system,
            os_version: d.os_version,
            compliance_state: d.compliance_state,
            last_check_in: d.last_check_in,
        })
        .collect();
    Ok(Json(detail))
}

/// One change a run (or a person) made to a contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    /// The run that made it; none for a person's edit.
    pub run_id: Option<i64>,
    /// Graph's name of the field; `contact` for its creation, `link` for its tie to a user,
    /// `archived` for archiving and restoring.
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// Why: the rule that linked, the reason for archiving.
    pub note: Option<String>,
    pub changed_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactHistory {
    /// Oldest first.
    pub items: Vec<ChangeView>,
    /// Pass it as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<String>,
}

/// Everything recorded about a contact, field by field, oldest first.
#[utoipa::path(get, path = "/contacts/{id}/history", tag = "contacts",
    params(("id" = i64, Path, description = "The contact's id"), PageParams),
    responses((status = 200, body = ContactHistory), (status = 404, body = super::ErrorBody)))]
pub async fn contact_history(
    State(store): State<Store>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<PageParams>,
) -> ApiResult<Json<ContactHistory>> {
    let contact = find(&store, id).await?;
    let (changes, next_cursor) = query.page(store.contact_history(contact.id).await?)?;
    Ok(Json(ContactHistory {
        items: changes
            .into_iter()
            .map(|c| ChangeView {
                run_id: c.run_id,
                field: c.field,
                old: c.old,
                new: c.new,
                note: c.note,
                changed_at: time(c.changed_at),
            })
            .collect(),
        next_cursor,
    }))
}
