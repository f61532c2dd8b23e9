//! Contacts: people synced from a tenant, keyed by (tenant id, object id).

use std::collections::HashMap;

use domain::{ContactRecord, ServicePlan, TenantId, catalog};
use serde::Serialize;

use crate::backend::{Columns, Pool, Tx, fetch_ids, fetch_in, on_pool, on_tx, write_on_pool};
use crate::error::{Context, Executed, Result, StoreError};
use crate::mailboxes::owns_mailbox;
use crate::{StepCounts, Store, now_millis};

/// Which contacts to list.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub tenant_id: Option<TenantId>,
    pub organization_id: Option<i64>,
    pub include_archived: bool,
    /// Words that the display name, user principal name, email, job title or department
    /// contains, any case.
    pub search: Option<String>,
    /// Only contacts whose account is (`true`) or is not (`false`) enabled.
    pub enabled: Option<bool>,
    /// Only guests (`true`) or only members (`false`).
    pub guest: Option<bool>,
    /// Only contacts holding (`true`) or holding no (`false`) licence.
    pub licensed: Option<bool>,
}

/// A search for text anywhere in some columns, without regard to case in any script nor to
/// accents on Latin letters: `Ä` finds `ä`, `e` finds `É`, `oystein` finds `Øystein`. SQLite's `LOWER` and `LIKE` fold ASCII letters only, and PostgreSQL's
/// follow the database's locale, so neither is used: each letter of the text becomes the set of
/// its case forms, matched exactly by SQLite's `GLOB` or PostgreSQL's `~`, the same on both.
pub(crate) struct TextSearch {
    /// The pattern to bind.
    pub(crate) pattern: String,
    operator: &'static str,
}

impl TextSearch {
    /// `None` for text that is empty once trimmed: then nothing is narrowed.
    pub(crate) fn new(backend: crate::Backend, text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let sqlite = backend == crate::Backend::Sqlite;
        let mut pattern = String::from(if sqlite { "*" } else { "" });
        for c in text.chars() {
            let forms = crate::text_fold::letter_forms(c);
            if forms.len() > 1 {
                pattern.push('[');
                pattern.extend(forms);
                pattern.push(']');
            } else if sqlite {
                // GLOB's own characters, taken literally inside a set.
                match c {
                    '*' | '?' | '[' => pattern.push_str(&format!("[{c}]")),
                    _ => pattern.push(c),
                }
            } else if c.is_alphanumeric() {
                pattern.push(c);
            } else {
                // In a PostgreSQL regular expression a backslash makes any other character
                // literal.
                pattern.push('\\');
                pattern.push(c);
            }
        }
        if sqlite {
            pattern.push('*');
        }
        Some(Self {
            pattern,
            operator: if sqlite { "GLOB" } else { "~" },
        })
    }

    /// SQL true when any of `columns` holds the text; `param` is where the pattern is bound.
    pub(crate) fn any_of(&self, columns: &[&str], param: &str) -> String {
        let tests: Vec<String> = columns
            .iter()
            .map(|c| format!("COALESCE({c}, '') {} {param}", self.operator))
            .collect();
        format!("({})", tests.join(" OR "))
    }
}

/// The columns a contact is found by.
const CONTACT_TEXT: [&str; 5] = [
    "c.display_name",
    "c.user_principal_name",
    "c.email",
    "c.job_title",
    "c.department",
];

/// How a contact search is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContactSort {
    #[default]
    Name,
    Upn,
    JobTitle,
    Department,
}

/// A kind of contact a search can be narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactKind {
    Licensed,
    Unlicensed,
    Disabled,
    Guest,
    Shared,
    Archived,
}

/// What a person looks for in a list of contacts.
#[derive(Debug, Clone, Default)]
pub struct ContactSearch {
    pub organization_id: Option<i64>,
    /// Found in the name, UPN, email, job title or department, any case.
    pub text: Option<String>,
    pub sort: ContactSort,
    pub descending: bool,
    /// Active contacts unless `Archived` is asked for.
    pub only: Option<ContactKind>,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailboxSummary {
    /// `user`, `shared`, `room` or `equipment`, where the report says.
    pub recipient_type: Option<String>,
    pub storage_used_bytes: Option<i64>,
    pub item_count: Option<i64>,
    pub prohibit_send_quota_bytes: Option<i64>,
    pub issue_warning_quota_bytes: Option<i64>,
    pub prohibit_send_receive_quota_bytes: Option<i64>,
    pub has_archive: Option<bool>,
    pub last_activity_date: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactRow {
    pub id: i64,
    pub object_id: Option<String>,
    pub tenant_id: Option<String>,
    pub organization_id: i64,
    pub organization: String,
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
    pub user_type: Option<String>,
    /// SKU part numbers (the SKU id where the licence itself is not known).
    pub licenses: Vec<String>,
    /// The licences' product names ("Microsoft 365 Business Premium"), in the same order.
    pub license_names: Vec<String>,
    /// Service plans the user can use: every plan of their licences, less those switched off.
    pub products: Vec<String>,
    pub mailbox: Option<MailboxSummary>,
    /// What the usage reports say of this user, by report (`activity`, `apps`, `email`), and
    /// when they last signed in (`sign_in`); empty when those datasets are not synced.
    pub usage: serde_json::Map<String, serde_json::Value>,
    /// Its custom fields, by name: those Microsoft 365 fills under the mapping and those kept
    /// by hand.
    pub custom_fields: std::collections::BTreeMap<String, String>,
    pub archived: bool,
    /// Deleted in Microsoft 365 and restorable until then (ms since 1970): the contact is kept,
    /// marked deleted, and archived once the window has passed.
    pub restorable_until: Option<i64>,
}

fn contact_from(row: &impl Columns) -> Result<ContactRow> {
    Ok(ContactRow {
        id: row.int_req("id")?,
        object_id: row.text("object_id")?,
        tenant_id: row.text("tenant_id")?,
        organization_id: row.int_req("organization_id")?,
        organization: row.text_req("organization")?,
        display_name: row.text_req("display_name")?,
        given_name: row.text("given_name")?,
        surname: row.text("surname")?,
        email: row.text("email")?,
        user_principal_name: row.text("user_principal_name")?,
        job_title: row.text("job_title")?,
        department: row.text("department")?,
        office_location: row.text("office_location")?,
        mobile_phone: row.text("mobile_phone")?,
        business_phones: row.json_list("business_phones")?,
        account_enabled: row.flag("account_enabled")?,
        user_type: row.text("user_type")?,
        licenses: Vec::new(),
        license_names: Vec::new(),
        products: Vec::new(),
        mailbox: None,
        usage: serde_json::Map::new(),
        custom_fields: std::collections::BTreeMap::new(),
        archived: row.flag("archived")?.unwrap_or(false),
        restorable_until: row.int("restorable_until")?,
    })
}

/// Rows per multi-row INSERT: 21 values each stays far below SQLite's and PostgreSQL's limits
/// on bound parameters.
pub(crate) const INSERT_CHUNK: usize = 250;

impl Store {
    /// Writes one page of users: new ones created, changed ones updated, the rest untouched, all
    /// in one transaction. A user not known by object id may link a contact of the organisation
    /// that was there before the first sync (same UPN or email, no object id yet).
    pub async fn apply_contacts(
        &self,
        organization_id: i64,
        records: &[ContactRecord],
    ) -> Result<StepCounts> {
        match records.first() {
            Some(first) => {
                self.apply_contact_changes(organization_id, &first.tenant_id, records, &[], None)
                    .await
            }
            None => Ok(StepCounts::default()),
        }
    }

    /// Archives rows of `table` (`mailboxes` or `inventory`) by id, in one transaction.
    pub(crate) async fn archive_rows(
        &self,
        table: &'static str,
        tenant_id: &TenantId,
        ids: &[i64],
    ) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = match table {
            "mailboxes" => "UPDATE mailboxes SET archived = TRUE, updated_at = $1 WHERE id = $2",
            _ => "UPDATE inventory SET archived = TRUE, updated_at = $1 WHERE id = $2",
        };
        let now = now_millis();
        let mut tx = self.begin().await?;
        // Under the lock the rows' writers hold, so that rows taken in another order cannot
        // deadlock.
        let tenant = tenant_id.to_string();
        let lock = match table {
            "mailboxes" => crate::mailboxes::lock_key(&tenant),
            _ => tenant,
        };
        tx.lock_tenant(&lock).await?;
        for id in ids {
            on_tx!(&mut tx, |c| sqlx::query(sql)
                .bind(now)
                .bind(*id)
                .execute(c)
                .await
                .done("archiving"))?;
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    /// A page of contacts in id order after `after_id`, with their licences and mailbox.
    pub async fn contacts_page(
        &self,
        filter: &ContactFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ContactRow>> {
        let tenant = filter.tenant_id.map(|t| t.to_string());
        let search = filter
            .search
            .as_deref()
            .and_then(|text| TextSearch::new(self.backend(), text));
        // Only the closed list of columns and the backend's operator reach the SQL text.
        let text_test = search
            .as_ref()
            .map(|s| s.any_of(&CONTACT_TEXT, "$6"))
            .unwrap_or_else(|| "($6 IS NULL)".into());
        let sql = format!(
            "SELECT c.*, o.name AS organization FROM contacts c JOIN organizations o ON o.id = c.organization_id \
             WHERE c.id > $1 AND ($2 IS NULL OR c.tenant_id = $2) AND ($3 IS NULL OR c.organization_id = $3) AND ($4 OR c.archived = FALSE) \
             AND {text_test} \
             AND ($7 IS NULL OR c.account_enabled = $7) \
             AND ($8 IS NULL OR (LOWER(COALESCE(c.user_type, '')) = 'guest') = $8) \
             AND ($9 IS NULL OR EXISTS (SELECT 1 FROM contact_licenses cl WHERE cl.contact_id = c.id) = $9) \
             ORDER BY c.id LIMIT $5"
        );
        let search = search.map(|s| s.pattern);
        let mut contacts = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(after_id)
                .bind(tenant.as_deref())
                .bind(filter.organization_id)
                .bind(filter.include_archived)
                .bind(limit)
                .bind(search.as_deref())
                .bind(filter.enabled)
                .bind(filter.guest)
                .bind(filter.licensed)
                .fetch_all(p)
                .await
                .doing("listing contacts")?;
            rows.iter().map(contact_from).collect::<Result<Vec<_>>>()
        })?;
        self.add_contact_details(&mut contacts).await?;
        Ok(contacts)
    }

    /// Fills in what a page of contacts shows beside their own columns: licences, products,
    /// mailbox, usage and custom fields.
    async fn add_contact_details(&self, contacts: &mut [ContactRow]) -> Result<()> {
        if contacts.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = contacts.iter().map(|c| c.id).collect();
        let licenses = contact_licenses(&self.pool, &ids).await?;
        let mailboxes = contact_mailboxes(&self.pool, &ids).await?;
        let mut usage = crate::usage::of_contacts(&self.pool, contacts).await?;
        let mut custom = contact_custom_fields(&self.pool, &ids).await?;
        for contact in contacts.iter_mut() {
            contact.custom_fields = custom.remove(&contact.id).unwrap_or_default();
            contact.usage = usage.remove(&contact.id).unwrap_or_default();
            if let Some(held) = licenses.get(&contact.id) {
                contact.licenses = held.iter().map(|h| h.part_number.clone()).collect();
                contact.license_names = held.iter().map(|h| h.name.clone()).collect();
                let mut products: Vec<String> = held
                    .iter()
                    .flat_map(|h| h.products.iter().cloned())
                    .collect();
                products.sort();
                products.dedup();
                contact.products = products;
            }
            contact.mailbox = mailboxes.get(&contact.id).cloned();
        }
        Ok(())
    }

    /// One contact, archived or not, with what its page shows.
    pub async fn contact(&self, id: i64) -> Result<Option<ContactRow>> {
        let found = on_pool!(&self.pool, |p| {
            let row = sqlx::query(
                "SELECT c.*, o.name AS organization FROM contacts c JOIN organizations o ON o.id = c.organization_id WHERE c.id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await
            .doing("reading a contact")?;
            row.as_ref().map(contact_from).transpose()
        })?;
        let Some(contact) = found else {
            return Ok(None);
        };
        let mut one = [contact];
        self.add_contact_details(&mut one).await?;
        let [contact] = one;
        Ok(Some(contact))
    }

    /// A page of contacts found by text, narrowed to a kind, in the order asked, and how many
    /// there are in all: what a person pages through.
    pub async fn search_contacts(&self, search: &ContactSearch) -> Result<(Vec<ContactRow>, i64)> {
        let text = search
            .text
            .as_deref()
            .and_then(|t| TextSearch::new(self.backend(), t));
        let text_test = text
            .as_ref()
            .map(|t| t.any_of(&CONTACT_TEXT, "$2"))
            .unwrap_or_else(|| "($2 IS NULL)".into());
        let pattern = text.map(|t| t.pattern);
        // Every piece of SQL below comes from the closed enums, never from the request.
        let only = match search.only {
            None => "c.archived = FALSE",
            Some(ContactKind::Licensed) => {
                "c.archived = FALSE AND EXISTS (SELECT 1 FROM contact_licenses cl WHERE cl.contact_id = c.id)"
            }
            Some(ContactKind::Unlicensed) => {
                "c.archived = FALSE AND NOT EXISTS (SELECT 1 FROM contact_licenses cl WHERE cl.contact_id = c.id)"
            }
            Some(ContactKind::Disabled) => "c.archived = FALSE AND c.account_enabled = FALSE",
            Some(ContactKind::Guest) => "c.archived = FALSE AND LOWER(c.user_type) = 'guest'",
            Some(ContactKind::Shared) => {
                concat!(
                    "c.archived = FALSE AND EXISTS (SELECT 1 FROM mailboxes m WHERE m.recipient_type = 'shared' AND m.archived = FALSE AND ",
                    owns_mailbox!(),
                    ")"
                )
            }
            Some(ContactKind::Archived) => "c.archived = TRUE",
        };
        let column = match search.sort {
            ContactSort::Name => "c.display_name",
            ContactSort::Upn => "COALESCE(c.user_principal_name, '')",
            ContactSort::JobTitle => "COALESCE(c.job_title, '')",
            ContactSort::Department => "COALESCE(c.department, '')",
        };
        let column = self.in_natural_order(column);
        let direction = if search.descending { "DESC" } else { "ASC" };
        let filter = format!(
            "FROM contacts c JOIN organizations o ON o.id = c.organization_id \
             WHERE ($1 IS NULL OR c.organization_id = $1) AND {only} AND {text_test}"
        );
        let count_sql = format!("SELECT COUNT(*) {filter}");
        let page_sql = format!(
            "SELECT c.*, o.name AS organization {filter} ORDER BY {column} {direction}, c.id {direction} LIMIT $3 OFFSET $4"
        );
        let (total, mut contacts) = on_pool!(&self.pool, |p| {
            let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone()))
                .bind(search.organization_id)
                .bind(pattern.as_deref())
                .fetch_one(p)
                .await
                .doing("counting contacts")?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(page_sql.clone()))
                .bind(search.organization_id)
                .bind(pattern.as_deref())
                .bind(search.limit.clamp(1, 1000))
                .bind(search.offset.max(0))
                .fetch_all(p)
                .await
                .doing("searching contacts")?;
            Ok::<_, StoreError>((
                total,
                rows.iter().map(contact_from).collect::<Result<Vec<_>>>()?,
            ))
        })?;
        self.add_contact_details(&mut contacts).await?;
        Ok((contacts, total))
    }

    /// Every contact matching the filter, read a page at a time and handed to `each`.
    pub async fn each_contact(
        &self,
        filter: &ContactFilter,
        mut each: impl FnMut(ContactRow) -> Result<()>,
    ) -> Result<u64> {
        let mut after = 0;
        let mut total = 0;
        loop {
            let page = self.contacts_page(filter, after, 500).await?;
            let Some(last) = page.last() else {
                return Ok(total);
            };
            after = last.id;
            for contact in page {
                total += 1;
                each(contact)?;
            }
        }
    }
}

/// Inserts new contacts; returns their ids by object id.
pub(crate) async fn insert_contacts(
    tx: &mut Tx,
    organization_id: i64,
    rows: &[(&ContactRecord, String)],
    now: i64,
) -> Result<HashMap<String, i64>> {
    on_tx!(tx, |c| {
        let mut query = sqlx::QueryBuilder::new(
            "INSERT INTO contacts (organization_id, tenant_id, object_id, user_principal_name, upn_key, email, email_key, display_name, \
             given_name, surname, job_title, department, office_location, mobile_phone, business_phones, aliases, account_enabled, user_type, \
             fingerprint, created_at, updated_at) ",
        );
        query.push_values(rows, |mut row, (r, print)| {
            row.push_bind(organization_id)
                .push_bind(r.tenant_id.to_string())
                .push_bind(r.object_id.to_string())
                .push_bind(r.user_principal_name.as_str().to_string())
                .push_bind(r.user_principal_name.key().to_string())
                .push_bind(r.email.clone())
                .push_bind(r.email.as_deref().map(str::to_lowercase))
                .push_bind(r.display_name.clone())
                .push_bind(r.given_name.clone())
                .push_bind(r.surname.clone())
                .push_bind(r.job_title.clone())
                .push_bind(r.department.clone())
                .push_bind(r.office_location.clone())
                .push_bind(r.mobile_phone.clone())
                .push_bind(
                    serde_json::to_string(&r.business_phones).unwrap_or_else(|_| "[]".into()),
                )
                .push_bind(serde_json::to_string(&r.aliases).unwrap_or_else(|_| "[]".into()))
                .push_bind(r.account_enabled)
                .push_bind(r.user_type.clone())
                .push_bind(print.clone())
                .push_bind(now)
                .push_bind(now);
        });
        query.push(" RETURNING id, object_id");
        let inserted = query
            .build()
            .persistent(false)
            .fetch_all(c)
            .await
            .doing("creating contacts")?;
        inserted
            .iter()
            .map(|r| Ok((r.text_req("object_id")?, r.int_req("id")?)))
            .collect()
    })
}

/// Where the next delta round of a resource starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub resource: String,
    pub link: String,
}

pub(crate) async fn save_checkpoint(
    tx: &mut Tx,
    tenant: &str,
    checkpoint: &Checkpoint,
    now: i64,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO delta_links (tenant_id, resource, link, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, resource) DO UPDATE SET link = excluded.link, updated_at = excluded.updated_at"
    )
    .bind(tenant)
    .bind(&checkpoint.resource)
    .bind(&checkpoint.link)
    .bind(now)
    .execute(c)
    .await
    .done("saving a delta link")
    })?;
    Ok(())
}

impl Store {
    /// The link a resource's next delta round starts from, if a round has completed.
    /// The display name and UPN of the synced contacts with these object ids (members of groups
    /// arrive as bare ids); ids without a contact are left out.
    pub async fn contact_names(
        &self,
        tenant_id: &TenantId,
        object_ids: &[String],
    ) -> Result<HashMap<String, (String, Option<String>)>> {
        let tenant = tenant_id.to_string();
        let mut names = HashMap::new();
        for chunk in object_ids.chunks(1_000) {
            let found: Vec<(String, String, Option<String>)> = on_pool!(&self.pool, |p| {
                let rows = fetch_in!(
                    p,
                    "SELECT object_id, display_name, user_principal_name FROM contacts",
                    "object_id",
                    tenant,
                    chunk
                )
                .doing("reading contacts' names")?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.text_req("object_id")?,
                            r.text_req("display_name")?,
                            r.text("user_principal_name")?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            for (id, name, upn) in found {
                names.insert(id, (name, upn));
            }
        }
        Ok(names)
    }

    pub async fn delta_link(&self, tenant_id: &TenantId, resource: &str) -> Result<Option<String>> {
        on_pool!(&self.pool, |p| sqlx::query_scalar(
            "SELECT link FROM delta_links WHERE tenant_id = $1 AND resource = $2"
        )
        .bind(tenant_id.to_string())
        .bind(resource)
        .fetch_optional(p)
        .await
        .doing("reading a delta link"))
    }

    /// Forgets a delta link: the next sync lists the resource in full.
    pub async fn clear_delta_link(&self, tenant_id: &TenantId, resource: &str) -> Result<()> {
        write_on_pool!(self, |p| sqlx::query(
            "DELETE FROM delta_links WHERE tenant_id = $1 AND resource = $2"
        )
        .bind(tenant_id.to_string())
        .bind(resource)
        .execute(p)
        .await
        .done("forgetting a delta link"))?;
        Ok(())
    }
}

/// One licence a contact holds, as shown.
struct Held {
    part_number: String,
    name: String,
    products: Vec<String>,
}

/// Saves licence assignments (contact, SKU, plans switched off) in multi-row inserts.
pub(crate) async fn save_licences(tx: &mut Tx, licences: &[(i64, &str, String)]) -> Result<()> {
    for chunk in licences.chunks(INSERT_CHUNK * 4) {
        on_tx!(tx, |c| {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO contact_licenses (contact_id, sku_id, disabled_plans) ",
            );
            query.push_values(chunk, |mut row, (id, sku, disabled)| {
                row.push_bind(*id)
                    .push_bind(sku.to_string())
                    .push_bind(disabled.clone());
            });
            query.push(" ON CONFLICT DO NOTHING");
            query
                .build()
                .persistent(false)
                .execute(c)
                .await
                .done("saving contacts' licences")
        })?;
    }
    Ok(())
}

pub(crate) fn assignments(
    id: i64,
    record: &ContactRecord,
) -> impl Iterator<Item = (i64, &str, String)> + '_ {
    record.license_sku_ids.iter().map(move |sku| {
        let prefix = format!("{sku}:");
        let disabled: Vec<&str> = record
            .disabled_plans
            .iter()
            .filter_map(|p| p.strip_prefix(prefix.as_str()))
            .collect();
        (
            id,
            sku.as_str(),
            serde_json::to_string(&disabled).unwrap_or_else(|_| "[]".into()),
        )
    })
}

async fn contact_licenses(pool: &Pool, ids: &[i64]) -> Result<HashMap<i64, Vec<Held>>> {
    on_pool!(pool, |p| {
        let rows = fetch_ids!(
            p,
            "SELECT cl.contact_id, cl.sku_id, cl.disabled_plans, l.sku_part_number, l.plan_details FROM contact_licenses cl \
             JOIN contacts c ON c.id = cl.contact_id LEFT JOIN licenses l ON l.tenant_id = c.tenant_id AND l.sku_id = cl.sku_id \
             WHERE cl.contact_id IN",
            ids,
            "ORDER BY cl.contact_id, l.sku_part_number, cl.sku_id"
        )
        .doing("reading contacts' licences")?;
        let mut map: HashMap<i64, Vec<Held>> = HashMap::new();
        for r in &rows {
            let sku_id = r.text_req("sku_id")?;
            let part = r.text("sku_part_number")?;
            let disabled = r.json_list("disabled_plans")?;
            let plans: Vec<ServicePlan> = match r.text("plan_details")? {
                Some(raw) => serde_json::from_str(&raw)
                    .map_err(|e| StoreError::Corrupt(format!("licence plans: {e}")))?,
                None => Vec::new(),
            };
            let products = plans
                .into_iter()
                .filter(|plan| !disabled.contains(&plan.id))
                .map(|plan| plan.name)
                .collect();
            map.entry(r.int_req("contact_id")?).or_default().push(Held {
                name: catalog::display_name(&sku_id, part.as_deref()),
                part_number: part.unwrap_or(sku_id),
                products,
            });
        }
        Ok(map)
    })
}

async fn contact_custom_fields(
    pool: &Pool,
    ids: &[i64],
) -> Result<HashMap<i64, std::collections::BTreeMap<String, String>>> {
    on_pool!(pool, |p| {
        let rows = fetch_ids!(
            p,
            "SELECT contact_id, name, value FROM contact_custom_fields WHERE contact_id IN",
            ids,
            ""
        )
        .doing("reading contacts' custom fields")?;
        let mut map: HashMap<i64, std::collections::BTreeMap<String, String>> = HashMap::new();
        for r in &rows {
            map.entry(r.int_req("contact_id")?)
                .or_default()
                .insert(r.text_req("name")?, r.text_req("value")?);
        }
        Ok(map)
    })
}

async fn contact_mailboxes(pool: &Pool, ids: &[i64]) -> Result<HashMap<i64, MailboxSummary>> {
    on_pool!(pool, |p| {
        let rows = fetch_ids!(
            p,
            concat!(
                "SELECT c.id AS contact_id, m.recipient_type, m.storage_used_bytes, m.item_count, m.prohibit_send_quota_bytes, \
                 m.issue_warning_quota_bytes, m.prohibit_send_receive_quota_bytes, m.has_archive, m.last_activity_date \
                 FROM contacts c JOIN mailboxes m ON m.archived = FALSE AND ",
                owns_mailbox!(),
                " WHERE c.id IN"
            ),
            ids,
            ""
        )
        .doing("reading contacts' mailboxes")?;
        let mut map = HashMap::new();
        for r in &rows {
            map.insert(
                r.int_req("contact_id")?,
                MailboxSummary {
                    recipient_type: r.text("recipient_type")?,
                    storage_used_bytes: r.int("storage_used_bytes")?,
                    item_count: r.int("item_count")?,
                    prohibit_send_quota_bytes: r.int("prohibit_send_quota_bytes")?,
                    issue_warning_quota_bytes: r.int("issue_warning_quota_bytes")?,
                    prohibit_send_receive_quota_bytes: r
                        .int("prohibit_send_receive_quota_bytes")?,
                    has_archive: r.flag("has_archive")?,
                    last_activity_date: r.text("last_activity_date")?,
                },
            );
        }
        Ok(map)
    })
}

impl Store {
    /// A contact entered by hand, not (yet) tied to a directory object. A later sync links it
    /// to the user with the same UPN or email instead of creating a second contact.
    pub async fn create_local_contact(
        &self,
        organization_id: i64,
        display_name: &str,
        email: &str,
    ) -> Result<i64> {
        let now = now_millis();
        write_on_pool!(self, |p| {
            sqlx::query_scalar(
            "INSERT INTO contacts (organization_id, display_name, email, email_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(organization_id)
        .bind(display_name.trim())
        .bind(email.trim())
        .bind(email.trim().to_lowercase())
        .bind(now)
        .fetch_one(p)
        .await
        .doing("creating a contact")
        })
    }
}

/// What a hand edit changes on a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandEdit {
    /// One of the contact's own fields, by Graph name (one `domain::mapping::MAPPABLE`).
    Field(&'static str),
    /// A custom field, by name.
    Custom(String),
}

impl Store {
    /// The field mapping that applies to each tenant's contacts, by tenant id: that of the
    /// connection that last saw the tenant, else of a connection to it.
    pub async fn field_mappings(&self) -> Result<HashMap<String, domain::FieldMapping>> {
        let rows: Vec<(String, String)> = on_pool!(&self.pool, |p| sqlx::query_as(
            "SELECT tenant_id, field_mapping FROM connections ORDER BY id DESC"
        )
        .fetch_all(p)
        .await
        .doing("reading the connections' field mappings"))?;
        let seen: Vec<(String, String)> = on_pool!(&self.pool, |p| {
            sqlx::query_as(
            "SELECT t.tenant_id, c.field_mapping FROM tenants t JOIN connections c ON c.id = t.connection_id"
        )
        .fetch_all(p)
        .await
        .doing("reading the tenants' field mappings")
        })?;
        let mut mappings = HashMap::new();
        for (tenant, document) in rows.into_iter().chain(seen) {
            let mapping: domain::FieldMapping = serde_json::from_str(&document)
                .map_err(|e| StoreError::Corrupt(format!("connection field mapping: {e}")))?;
            mappings.insert(tenant.to_lowercase(), mapping);
        }
        Ok(mappings)
    }

    /// The field mapping that applies to one tenant's contacts (the default when none does).
    pub async fn field_mapping_of(&self, tenant_id: &str) -> Result<domain::FieldMapping> {
        Ok(self
            .field_mappings()
            .await?
            .remove(&tenant_id.to_lowercase())
            .unwrap_or_default())
    }

    /// Writes one field of a contact by hand (`None` empties it) and keeps the edit in the
    /// contact's history, with no run and the note `by hand`. Whether the mapping allows it is
    /// the caller's to check (`domain::FieldMapping::hand_edit`). Returns the old value.
    pub async fn edit_contact(
        &self,
        contact_id: i64,
        edit: &HandEdit,
        value: Option<&str>,
    ) -> Result<Option<String>> {
        let now = now_millis();
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        let mut tx = self.begin().await?;
        let (field, old, new): (String, Option<String>, Option<String>) = match edit {
            HandEdit::Field(field) => {
                let (column, text) = match *field {
                    "displayName" => ("display_name", value.map(str::to_string)),
                    "givenName" => ("given_name", value.map(str::to_string)),
                    "surname" => ("surname", value.map(str::to_string)),
                    "jobTitle" => ("job_title", value.map(str::to_string)),
                    "department" => ("department", value.map(str::to_string)),
                    "officeLocation" => ("office_location", value.map(str::to_string)),
                    "mobilePhone" => ("mobile_phone", value.map(str::to_string)),
                    "businessPhones" => {
                        let phones: Vec<&str> = value
                            .map(|v| {
                                v.split(';')
                                    .map(str::trim)
                                    .filter(|p| !p.is_empty())
                                    .collect()
                            })
                            .unwrap_or_default();
                        (
                            "business_phones",
                            Some(serde_json::to_string(&phones).unwrap_or_else(|_| "[]".into())),
                        )
                    }
                    other => {
                        return Err(StoreError::Conflict(format!(
                            "'{other}' cannot be edited by hand; name one of {}",
                            domain::mapping::MAPPABLE.join(", ")
                        )));
                    }
                };
                if column == "display_name" && text.is_none() {
                    return Err(StoreError::Conflict(
                        "a contact's displayName cannot be empty; give it a name".into(),
                    ));
                }
                // The column is one of the fixed names above, never the caller's text.
                let select = format!("SELECT {column} FROM contacts WHERE id = $1");
                let old: Option<Option<String>> = on_tx!(&mut tx, |c| sqlx::query_scalar(
                    sqlx::AssertSqlSafe(select.as_str())
                )
                .bind(contact_id)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a contact"))?;
                let Some(old) = old else {
                    return Err(no_contact(contact_id));
                };
                let update =
                    format!("UPDATE contacts SET {column} = $1, updated_at = $2 WHERE id = $3");
                on_tx!(&mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(
                    update.as_str()
                ))
                .bind(text.as_deref())
                .bind(now)
                .bind(contact_id)
                .execute(&mut *c)
                .await
                .done("editing a contact"))?;
                let shown = |t: Option<String>| match column {
                    "business_phones" => t.filter(|t| t != "[]"),
                    _ => t,
                };
                ((*field).to_string(), shown(old), shown(text))
            }
            HandEdit::Custom(name) => {
                let exists: Option<i64> = on_tx!(&mut tx, |c| sqlx::query_scalar(
                    "SELECT id FROM contacts WHERE id = $1"
                )
                .bind(contact_id)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a contact"))?;
                if exists.is_none() {
                    return Err(no_contact(contact_id));
                }
                let old: Option<String> = on_tx!(&mut tx, |c| {
                    sqlx::query_scalar(
                    "SELECT value FROM contact_custom_fields WHERE contact_id = $1 AND name = $2"
                )
                .bind(contact_id)
                .bind(name)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a custom field")
                })?;
                let change = domain::plan::CustomChange {
                    name: name.clone(),
                    old: old.clone(),
                    new: value.map(str::to_string),
                };
                crate::contact_batch::write_custom(&mut tx, contact_id, &[change]).await?;
                (format!("custom:{name}"), old, value.map(str::to_string))
            }
        };
        let row: crate::contact_batch::HistoryRow = (
            contact_id,
            field.into(),
            old.clone(),
            new,
            Some("by hand".into()),
        );
        crate::contact_batch::write_history(&mut tx, &[row], None, now).await?;
        tx.commit().await?;
        Ok(old)
    }
}

fn no_contact(contact_id: i64) -> StoreError {
    StoreError::NotFound(format!(
        "there is no contact {contact_id}; `m365sync export contacts` lists them with their id"
    ))
}
