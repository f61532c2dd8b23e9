//! One contact beside its user in Microsoft 365 now: the user is read live through the
//! connection that reaches the contact's tenant, normalised as a sync normalises it, and
//! compared field by field as a plan compares them, with the last recorded change of each field
//! that differs, and the licences either side holds. Reads only: nothing is written.

use std::collections::{BTreeMap, HashMap};

use domain::plan::field_changes;
use domain::{ObjectId, TenantId, catalog};
use graph::models::{USER_SELECT, User};
use graph::{GraphError, RetryPolicy};
use serde::Serialize;
use store::{Connection, Store, StoreError};

use crate::SyncError;
use crate::diagnose::{Problem, credential_problem, unusable_certificate};
use crate::normalise::{NormaliseError, contact_from_user};

/// What the store holds of a contact beside what Microsoft 365 says of its user now.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub contact_id: i64,
    pub tenant_id: String,
    pub object_id: String,
    /// The connection the user was read through.
    pub connection: String,
    pub archived: bool,
    /// Every field a sync owns, by Graph name, in field order.
    pub fields: Vec<FieldComparison>,
    /// How many of them differ.
    pub differences: usize,
    /// The licences either side holds, by part number.
    pub licenses: Vec<LicenseComparison>,
}

/// One field on both sides, written as a plan compares it (lists as sorted JSON arrays, flags as
/// `true`/`false`, `None` when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldComparison {
    pub field: &'static str,
    pub stored: Option<String>,
    pub microsoft: Option<String>,
    pub differs: bool,
    /// For a field that differs, the last change the contact's history records to it.
    pub last_change: Option<LastChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LastChange {
    /// The run that made it; `None` for a change made by hand.
    pub run_id: Option<i64>,
    /// Milliseconds since 1970.
    pub changed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenseComparison {
    pub sku_id: String,
    /// The part number the tenant's licences give the SKU, else its id.
    pub part_number: String,
    /// The product name from m365sync's catalogue, else the part number.
    pub name: String,
    /// Whether the store holds it for the contact.
    pub stored: bool,
    /// Whether Microsoft 365 assigns it to the user now.
    pub microsoft: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "there is no contact {0}; `m365sync export contacts` lists the contacts with their ids"
    )]
    NoContact(i64),
    #[error("contact {0} is not linked to a user; nothing to compare")]
    NotLinked(i64),
    #[error("{}", deleted(*contact_id, object_id, *archived))]
    Deleted {
        contact_id: i64,
        object_id: String,
        archived: bool,
    },
    #[error(
        "no connection reaches tenant {tenant_id} of contact {contact_id} any more; add one for it with `m365sync connection add`"
    )]
    NoConnection { contact_id: i64, tenant_id: String },
    #[error(
        "connection '{connection}' cannot sign in to read the user of contact {contact_id} [{}]: {}; fix: {}",
        problem.code,
        problem.message,
        problem.fix.replace("NAME", connection)
    )]
    Credential {
        contact_id: i64,
        connection: String,
        problem: Problem,
    },
    #[error(
        "reading the user of contact {contact_id} through connection '{connection}' failed [{}]: {error}; fix: {}",
        error.code(),
        error.fix()
    )]
    Graph {
        contact_id: i64,
        connection: String,
        error: GraphError,
    },
    #[error(
        "Microsoft 365 sends the user of contact {contact_id} in a form m365sync cannot keep ({error}); a sync leaves that user out too"
    )]
    Unstorable {
        contact_id: i64,
        error: NormaliseError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

fn deleted(contact_id: i64, object_id: &str, archived: bool) -> String {
    if archived {
        format!(
            "the user {object_id} of contact {contact_id} is not in Microsoft 365 and the contact is archived; nothing to compare"
        )
    } else {
        format!(
            "the user {object_id} of contact {contact_id} is no longer in Microsoft 365; the next sync marks it deleted (restorable for 30 days) or archives it"
        )
    }
}

/// Reads the contact's user from Microsoft 365 now and sets it beside what the store holds.
pub async fn compare_contact(
    store: &Store,
    contact_id: i64,
    retry: RetryPolicy,
) -> Result<Comparison, CompareError> {
    let planned = store
        .contact_as_planned(contact_id)
        .await?
        .ok_or(CompareError::NoContact(contact_id))?;
    let (Some(object_id), Some(tenant_id)) = (planned.contact.object_id, planned.tenant_id) else {
        return Err(CompareError::NotLinked(contact_id));
    };
    let connection =
        connection_for(store, &tenant_id)
            .await?
            .ok_or_else(|| CompareError::NoConnection {
                contact_id,
                tenant_id: tenant_id.to_string(),
            })?;
    let user = read_user(
        store,
        &connection,
        &tenant_id,
        contact_id,
        &object_id,
        retry,
    )
    .await;
    let user = match user {
        Err(CompareError::Graph {
            error: GraphError::Api { status: 404, .. },
            ..
        }) => {
            return Err(CompareError::Deleted {
                contact_id,
                object_id: object_id.to_string(),
                archived: planned.contact.archived,
            });
        }
        other => other?,
    };
    let record = contact_from_user(tenant_id, &user)
        .map_err(|error| CompareError::Unstorable { contact_id, error })?;
    let stored = &planned.contact.fields;
    let microsoft = record.fields();
    let history = last_changes(store, contact_id).await?;
    let differing: Vec<&str> = field_changes(stored, &microsoft)
        .iter()
        .map(|c| c.field)
        .collect();
    let fields: Vec<FieldComparison> = microsoft
        .iter()
        .map(|(field, now)| {
            let differs = differing.contains(field);
            FieldComparison {
                field,
                stored: stored.get(field).cloned().flatten(),
                microsoft: now.clone(),
                differs,
                last_change: history.get(*field).copied().filter(|_| differs),
            }
        })
        .collect();
    let held = skus(stored.get("assignedLicenses").cloned().flatten())?;
    let licenses = licences(
        store,
        &tenant_id,
        &held,
        &record
            .license_sku_ids
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await?;
    Ok(Comparison {
        contact_id,
        tenant_id: tenant_id.to_string(),
        object_id: object_id.to_string(),
        connection: connection.name.to_string(),
        archived: planned.contact.archived,
        differences: differing.len(),
        fields,
        licenses,
    })
}

/// The connection that last saw the tenant, else any saved connection to it.
async fn connection_for(
    store: &Store,
    tenant_id: &TenantId,
) -> Result<Option<Connection>, StoreError> {
    if let Some(name) = store
        .tenant(&tenant_id.to_string())
        .await?
        .and_then(|t| t.connection)
        && let Some(connection) = store.connection(&name).await?
        && (connection.tenant_id == *tenant_id || connection.mode == store::ConnectionMode::Partner)
    {
        return Ok(Some(connection));
    }
    Ok(store
        .connections()
        .await?
        .into_iter()
        .find(|c| c.tenant_id == *tenant_id))
}

/// `GET /users/{id}` with the fields a sync selects. A credential that gets no token is
/// diagnosed as the connection test diagnoses it.
async fn read_user(
    store: &Store,
    connection: &Connection,
    tenant_id: &TenantId,
    contact_id: i64,
    object_id: &ObjectId,
    retry: RetryPolicy,
) -> Result<User, CompareError> {
    let credential = store.connection_credential(connection).await?;
    let refused = |problem: Problem| CompareError::Credential {
        contact_id,
        connection: connection.name.to_string(),
        problem,
    };
    // A partner connection reads its customer's directory with a token of that tenant.
    let client = match crate::client::tenant_graph_client(
        connection,
        &credential,
        retry,
        *tenant_id,
        None,
    ) {
        Ok(client) => client,
        Err(SyncError::Certificate { problem, .. }) => {
            return Err(refused(unusable_certificate(&problem)));
        }
        Err(other) => return Err(other.into()),
    };
    if let Err(error) = client.token().await {
        let now = chrono::Utc::now().timestamp();
        return Err(refused(credential_problem(&credential, &error, now)));
    }
    client
        .get_json(&format!("v1.0/users/{object_id}?$select={USER_SELECT}"))
        .await
        .map_err(|error| CompareError::Graph {
            contact_id,
            connection: connection.name.to_string(),
            error,
        })
}

/// The last change the contact's history records to each field.
async fn last_changes(
    store: &Store,
    contact_id: i64,
) -> Result<HashMap<String, LastChange>, StoreError> {
    // Oldest first: a later change to a field replaces an earlier one.
    Ok(store
        .contact_history(contact_id)
        .await?
        .into_iter()
        .map(|change| {
            (
                change.field,
                LastChange {
                    run_id: change.run_id,
                    changed_at: change.changed_at,
                },
            )
        })
        .collect())
}

/// The SKU ids of an `assignedLicenses` field as a plan writes it.
fn skus(field: Option<String>) -> Result<Vec<String>, StoreError> {
    match field {
        None => Ok(Vec::new()),
        Some(list) => serde_json::from_str(&list)
            .map_err(|e| StoreError::Corrupt(format!("a contact's licences: {e}"))),
    }
}

/// Both sides' licences, by part number, named from the catalogue.
async fn licences(
    store: &Store,
    tenant_id: &TenantId,
    stored: &[String],
    microsoft: &[&str],
) -> Result<Vec<LicenseComparison>, StoreError> {
    let parts: HashMap<String, String> = store
        .licenses(Some(tenant_id), true)
        .await?
        .into_iter()
        .map(|l| (l.sku_id.to_lowercase(), l.sku_part_number))
        .collect();
    let mut both: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for sku in stored {
        both.entry(sku.to_lowercase()).or_default().0 = true;
    }
    for sku in microsoft {
        both.entry(sku.to_lowercase()).or_default().1 = true;
    }
    let mut licences: Vec<LicenseComparison> = both
        .into_iter()
        .map(|(sku_id, (stored, microsoft))| {
            let part = parts.get(&sku_id).cloned();
            LicenseComparison {
                name: catalog::display_name(&sku_id, part.as_deref()),
                part_number: part.unwrap_or_else(|| sku_id.clone()),
                sku_id,
                stored,
                microsoft,
            }
        })
        .collect();
    licences.sort_by(|a, b| (&a.part_number, &a.sku_id).cmp(&(&b.part_number, &b.sku_id)));
    Ok(licences)
}
