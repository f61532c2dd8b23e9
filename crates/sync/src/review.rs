//! Settling a user a sync held for review, as a person decided: planned like any link, so the
//! connection's field mapping decides what is written and every change is kept field by field.

use domain::plan::{StoredContacts, plan_chosen_link, plan_contacts};
use store::{Resolution, Store, StoreError};

use crate::Result;

/// Settles review item `item_id`: the held user is the chosen contact (which must be in the
/// tenant's organisation and not tied to another user), or gets a contact of their own. Gives
/// the contact's id. A user a later sync has linked meanwhile closes the item and is refused.
pub async fn settle_review(store: &Store, item_id: i64, resolution: Resolution) -> Result<i64> {
    let (held_under, record) = store.open_review_item(item_id).await?;
    let tenant = store.tenant(&record.tenant_id.to_string()).await?;
    // The tenant may have moved to another organisation since the user was held.
    let organization_id = tenant
        .as_ref()
        .and_then(|t| t.organization_id)
        .unwrap_or(held_under);
    let mapping = store
        .field_mapping_of(&record.tenant_id.to_string())
        .await?;
    let mut batch = store
        .contact_batch(organization_id, &record.tenant_id)
        .await?;
    if let Some(contact) = batch.contact_of(&record.object_id).await? {
        batch.settle_review_item(item_id, "settled_by_sync").await?;
        batch.commit().await?;
        return Err(StoreError::Conflict(format!(
            "a sync has linked the user {} to contact {contact} since it was held; the item is closed. If that link is wrong, `m365sync unlink contact {contact}`",
            record.user_principal_name
        ))
        .into());
    }
    let (plan, state) = match resolution {
        Resolution::Link(contact_id) => {
            let Some((contact, organization)) = batch.stored_by_id(contact_id).await? else {
                return Err(
                    StoreError::NotFound(format!("there is no contact {contact_id}")).into(),
                );
            };
            if organization != organization_id {
                return Err(StoreError::Conflict(format!(
                    "contact {contact_id} belongs to another organisation than the user {}",
                    record.user_principal_name
                ))
                .into());
            }
            if let Some(other) = contact.object_id {
                return Err(StoreError::Conflict(format!(
                    "contact {contact_id} is already tied to another user ({other})"
                ))
                .into());
            }
            (plan_chosen_link(&record, &contact, &mapping), "linked")
        }
        Resolution::Create => (
            plan_contacts(
                std::slice::from_ref(&record),
                &[],
                &StoredContacts::default(),
                &mapping,
                store::now_millis(),
            ),
            "created",
        ),
    };
    batch.apply(&plan, None, None).await?;
    batch.settle_review_item(item_id, state).await?;
    let contact = batch
        .contact_of(&record.object_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a settled user has no contact".into()))?;
    batch.commit().await?;
    Ok(contact)
}
