//! Graph payloads → the records we keep. Empty strings become absent values, lists are sorted,
//! and anything that cannot be a valid record is refused with the reason.

use domain::ids::is_concealed_name;
use domain::{
    ContactRecord, LicenseRecord, MailboxRecord, ObjectId, OrganizationRecord, ServicePlan,
    SkuPartNumber, TenantId, Upn,
};
use graph::models::{MailboxUsageRow, Organization, SubscribedSku, User};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error("{what} has id '{id}', which is not a GUID")]
    BadId { what: &'static str, id: String },
    #[error("user {id} cannot be stored ({reason})")]
    UserNotStorable { id: String, reason: String },
    #[error("report row has a concealed user name")]
    Concealed,
    #[error("report row has no usable user principal name ('{0}')")]
    ReportUpn(String),
    #[error("SKU {sku_id} has no usable part number")]
    BadSku { sku_id: String },
}

fn text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

pub fn organization_from(org: &Organization) -> Result<OrganizationRecord, NormaliseError> {
    let tenant_id = TenantId::parse(&org.id).map_err(|_| NormaliseError::BadId {
        what: "the organization",
        id: org.id.clone(),
    })?;
    let mut domains: Vec<String> = org
        .verified_domains
        .iter()
        .map(|d| d.name.trim().to_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    domains.sort();
    domains.dedup();
    let default_domain = org
        .verified_domains
        .iter()
        .find(|d| d.is_default == Some(true))
        .map(|d| d.name.trim().to_lowercase());
    Ok(OrganizationRecord {
        tenant_id,
        display_name: text(&org.display_name)
            .unwrap_or_else(|| default_domain.clone().unwrap_or_else(|| org.id.clone())),
        verified_domains: domains,
        default_domain,
        country_letter_code: text(&org.country_letter_code),
    })
}

/// A user's other mail addresses: the `smtp:` proxy addresses (any case), less the mail itself.
fn aliases(user: &User) -> Vec<String> {
    let mail = user.mail.as_deref().map(str::to_lowercase);
    let mut aliases: Vec<String> = user
        .proxy_addresses
        .iter()
        .filter_map(|address| {
            let (kind, value) = address.split_once(':')?;
            kind.eq_ignore_ascii_case("smtp")
                .then(|| value.trim().to_lowercase())
        })
        .filter(|value| value.contains('@') && Some(value) != mail.as_ref())
        .collect();
    aliases.sort();
    aliases.dedup();
    aliases
}

pub fn contact_from_user(
    tenant_id: TenantId,
    user: &User,
) -> Result<ContactRecord, NormaliseError> {
    let object_id = ObjectId::parse(&user.id).map_err(|_| NormaliseError::BadId {
        what: "a user",
        id: user.id.clone(),
    })?;
    let raw_upn = user.user_principal_name.clone().unwrap_or_default();
    let upn = Upn::parse(&raw_upn).map_err(|e| NormaliseError::UserNotStorable {
        id: user.id.clone(),
        reason: format!("no usable user principal name: {}", e.problem),
    })?;
    let mut skus: Vec<String> = user
        .assigned_licenses
        .iter()
        .map(|l| l.sku_id.trim().to_lowercase())
        .collect();
    skus.sort();
    skus.dedup();
    let mut disabled_plans: Vec<String> = user
        .assigned_licenses
        .iter()
        .flat_map(|l| {
            let sku = l.sku_id.trim().to_lowercase();
            l.disabled_plans
                .iter()
                .map(move |plan| format!("{sku}:{}", plan.trim().to_lowercase()))
        })
        .collect();
    disabled_plans.sort();
    disabled_plans.dedup();
    let mut phones: Vec<String> = user
        .business_phones
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    phones.dedup();
    let record = ContactRecord {
        tenant_id,
        object_id,
        display_name: text(&user.display_name).unwrap_or_else(|| upn.as_str().to_string()),
        user_principal_name: upn,
        given_name: text(&user.given_name),
        surname: text(&user.surname),
        email: text(&user.mail),
        aliases: aliases(user),
        job_title: text(&user.job_title),
        department: text(&user.department),
        office_location: text(&user.office_location),
        mobile_phone: text(&user.mobile_phone),
        business_phones: phones,
        account_enabled: user.account_enabled.unwrap_or(true),
        user_type: text(&user.user_type).unwrap_or_else(|| "Member".to_string()),
        license_sku_ids: skus,
        disabled_plans,
    };
    match record.unstorable_field() {
        // Refused here, alone, so that one odd user never fails the page it came on.
        Some(unstorable) => Err(NormaliseError::UserNotStorable {
            id: user.id.clone(),
            reason: format!(
                "{}: {} {}",
                record.user_principal_name, unstorable.field, unstorable.problem
            ),
        }),
        None => Ok(record),
    }
}

pub fn license_from_sku(
    tenant_id: TenantId,
    sku: &SubscribedSku,
) -> Result<LicenseRecord, NormaliseError> {
    let part = SkuPartNumber::parse(&sku.sku_part_number).map_err(|_| NormaliseError::BadSku {
        sku_id: sku.sku_id.clone(),
    })?;
    let units = sku.prepaid_units.clone().unwrap_or_default();
    let mut plans: Vec<String> = sku
        .service_plans
        .iter()
        .map(|p| text(&p.service_plan_name).unwrap_or_else(|| p.service_plan_id.clone()))
        .collect();
    plans.sort();
    plans.dedup();
    let mut details: Vec<ServicePlan> = sku
        .service_plans
        .iter()
        .map(|p| ServicePlan {
            id: p.service_plan_id.trim().to_lowercase(),
            name: text(&p.service_plan_name).unwrap_or_else(|| p.service_plan_id.clone()),
        })
        .collect();
    details.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    details.dedup();
    Ok(LicenseRecord {
        tenant_id,
        sku_id: sku.sku_id.trim().to_lowercase(),
        sku_part_number: part,
        applies_to: text(&sku.applies_to).unwrap_or_else(|| "User".into()),
        capability_status: text(&sku.capability_status).unwrap_or_else(|| "Enabled".into()),
        enabled_units: units.enabled.unwrap_or(0),
        suspended_units: units.suspended.unwrap_or(0),
        warning_units: units.warning.unwrap_or(0),
        consumed_units: sku.consumed_units.unwrap_or(0),
        service_plans: plans,
        plans: details,
        // Filled from the tenant's subscriptions, which a second listing gives.
        trial: None,
        next_lifecycle: None,
    })
}

/// A report row as a mailbox record; concealed names are refused so that nothing is attached.
pub fn mailbox_from_row(
    tenant_id: TenantId,
    row: &MailboxUsageRow,
) -> Result<MailboxRecord, NormaliseError> {
    let raw = row.user_principal_name.clone().unwrap_or_default();
    if is_concealed_name(&raw) {
        return Err(NormaliseError::Concealed);
    }
    let upn = Upn::parse(&raw).map_err(|_| NormaliseError::ReportUpn(raw.clone()))?;
    Ok(MailboxRecord {
        tenant_id,
        user_principal_name: upn,
        display_name: text(&row.display_name),
        is_deleted: row.is_deleted.unwrap_or(false),
        deleted_date: text(&row.deleted_date),
        recipient_type: text(&row.recipient_type).map(|t| t.to_lowercase()),
        storage_used_bytes: row.storage_used_bytes,
        item_count: row.item_count,
        issue_warning_quota_bytes: row.issue_warning_quota_bytes,
        prohibit_send_quota_bytes: row.prohibit_send_quota_bytes,
        prohibit_send_receive_quota_bytes: row.prohibit_send_receive_quota_bytes,
        deleted_item_count: row.deleted_item_count,
        deleted_item_size_bytes: row.deleted_item_size_bytes,
        has_archive: row.has_archive,
        created_date: text(&row.created_date),
        last_activity_date: text(&row.last_activity_date),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap()
    }

    #[test]
    fn user_fields_are_trimmed_sorted_and_defaulted() {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": "11111111-2222-4333-8444-555555555555",
            "userPrincipalName": "Ann@Contoso.com",
            "displayName": "  ",
            "jobTitle": "",
            "businessPhones": ["+1 1", " "],
            "assignedLicenses": [{"skuId": "B0000000-0000-0000-0000-000000000000", "disabledPlans": []}, {"skuId": "a0000000-0000-0000-0000-000000000000"}],
            "accountEnabled": null
        }))
        .unwrap();
        let contact = contact_from_user(tenant(), &user).unwrap();
        assert_eq!(contact.display_name, "Ann@Contoso.com");
        assert_eq!(contact.job_title, None);
        assert_eq!(contact.business_phones, vec!["+1 1"]);
        assert_eq!(
            contact.license_sku_ids,
            vec![
                "a0000000-0000-0000-0000-000000000000",
                "b0000000-0000-0000-0000-000000000000"
            ]
        );
        assert!(contact.account_enabled);
        assert_eq!(contact.user_type, "Member");
    }

    #[test]
    fn bad_users_and_concealed_rows_are_refused_with_reasons() {
        let user: User = serde_json::from_value(
            serde_json::json!({"id": "not-a-guid", "userPrincipalName": "a@b.c"}),
        )
        .unwrap();
        assert!(matches!(
            contact_from_user(tenant(), &user),
            Err(NormaliseError::BadId { .. })
        ));
        let user: User = serde_json::from_value(
            serde_json::json!({"id": "11111111-2222-4333-8444-555555555555"}),
        )
        .unwrap();
        assert!(matches!(
            contact_from_user(tenant(), &user),
            Err(NormaliseError::UserNotStorable { .. })
        ));
        let row = MailboxUsageRow {
            user_principal_name: Some("FE7CC8C15246EDCCA289C9A4022762F7".into()),
            ..Default::default()
        };
        assert_eq!(
            mailbox_from_row(tenant(), &row),
            Err(NormaliseError::Concealed)
        );
    }
}
