//! What the inventory tells, kept and read: each tenant's software consolidated into products,
//! its dated snapshots of headline figures, and the facts the licence waste report reads
//! (SKUs, and licensed users with their state, mailbox kind and last activity). The rules that
//! decide live in `domain::{software, trends, waste}`; this only keeps and reads.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use domain::software::{Consolidation, DetectedApp, Stored, TenantProduct, VersionCount};
use domain::trends::{Figures, Snapshot, SnapshotWrite};
use domain::waste::{LicensedUser, Sku};
use domain::{Dataset, TenantId};
use serde::Serialize;

use crate::backend::{Columns, on_pool, on_tx};
use crate::error::{Context, Executed, Result, StoreError};
use crate::mailboxes::owns_mailbox;
use crate::{Store, now_millis};

/// When and by which rules a tenant's software was last consolidated.
#[derive(Debug, Clone, Serialize)]
pub struct ConsolidationRow {
    pub organization: String,
    pub tenant_id: String,
    pub rules_revision: String,
    pub detected_apps: i64,
    pub consolidated_at: i64,
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Store {
    /// A tenant's detected apps as the last sync kept them, with the devices of each.
    pub async fn detected_apps_of(&self, tenant_id: &TenantId) -> Result<Vec<DetectedApp>> {
        /// The fields the consolidation reads of a stored detected app; the rest of each
        /// document is skipped unread.
        #[derive(serde::Deserialize)]
        struct Read {
            display_name: Option<String>,
            publisher: Option<String>,
            version: Option<String>,
            device_ids: Option<Vec<String>>,
        }
        fn text(value: Option<String>) -> Option<String> {
            value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        }
        let tenant = tenant_id.to_string();
        // Read a row at a time straight into what the consolidation needs: a large tenant's
        // apps list every device each is on, and holding all their rows and documents at once
        // beside the result was most of a full sync's memory.
        on_pool!(&self.pool, |p| {
            use futures_util::TryStreamExt;
            let mut rows = sqlx::query(
                "SELECT document FROM inventory WHERE dataset = $1 AND tenant_id = $2 AND archived = FALSE ORDER BY name, item_key",
            )
            .bind(Dataset::DetectedApps.name())
            .bind(&tenant)
            .fetch(p);
            let mut apps = Vec::new();
            let mut devices: HashSet<std::sync::Arc<str>> = HashSet::new();
            while let Some(row) = rows.try_next().await.doing("reading detected apps")? {
                let document: &str =
                    sqlx::Row::try_get(&row, "document").doing("reading a detected app")?;
                let read: Read = serde_json::from_str(document)
                    .map_err(|e| StoreError::Corrupt(format!("detected app document: {e}")))?;
                apps.push(DetectedApp {
                    // Not the row's name, which falls back to the app's id: an app Intune
                    // reported without a name must reach the consolidation nameless, to be
                    // counted as such, not as a product named by an id.
                    name: text(read.display_name).unwrap_or_default(),
                    publisher: text(read.publisher),
                    version: text(read.version),
                    device_ids: read
                        .device_ids
                        .unwrap_or_default()
                        .into_iter()
                        .map(|id| match devices.get(id.as_str()) {
                            Some(known) => known.clone(),
                            None => {
                                let id: std::sync::Arc<str> = id.into();
                                devices.insert(id.clone());
                                id
                            }
                        })
                        .collect(),
                });
            }
            Ok(apps)
        })
    }

    /// Each Intune device's primary user (object id, else UPN), for counting users of software.
    pub async fn device_users(&self, tenant_id: &TenantId) -> Result<HashMap<String, String>> {
        let tenant = tenant_id.to_string();
        // A row at a time: a large tenant has a device for every user, and all their rows at
        // once, beside the detected apps being consolidated, were the peak of a full sync.
        on_pool!(&self.pool, |p| {
            use futures_util::TryStreamExt;
            let mut rows = sqlx::query(
                "SELECT item_key, user_id, user_principal_name FROM managed_devices WHERE tenant_id = $1 AND archived = FALSE",
            )
            .bind(&tenant)
            .fetch(p);
            let mut users = HashMap::new();
            while let Some(r) = rows.try_next().await.doing("reading devices' users")? {
                if let Some(user) = r.text("user_id")?.or(r.text("user_principal_name")?) {
                    users.insert(r.text_req("item_key")?, user);
                }
            }
            Ok(users)
        })
    }

    /// Replaces a tenant's consolidated software with a new consolidation, in one transaction.
    pub async fn save_consolidation(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
        consolidation: &Consolidation,
    ) -> Result<()> {
        let tenant = tenant_id.to_string();
        let now = now_millis();
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM software_products WHERE tenant_id = $1"
        )
        .bind(&tenant)
        .execute(&mut *c)
        .await
        .done("clearing the tenant's software"))?;
        for batch in consolidation.products.chunks(200) {
            on_tx!(&mut tx, |c| {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO software_products (organization_id, tenant_id, product, publisher, matched, devices, users, latest_version, oldest_version, raw_names, versions, reason) ",
                );
                query.push_values(batch, |mut row, p| {
                    row.push_bind(organization_id)
                        .push_bind(tenant.clone())
                        .push_bind(p.product.clone())
                        .push_bind(p.publisher.clone())
                        .push_bind(p.matched)
                        .push_bind(p.devices as i64)
                        .push_bind(p.users as i64)
                        .push_bind(p.latest_version.clone())
                        .push_bind(p.oldest_version.clone())
                        .push_bind(
                            serde_json::to_string(&p.raw_names).unwrap_or_else(|_| "[]".into()),
                        )
                        .push_bind(
                            serde_json::to_string(&p.versions).unwrap_or_else(|_| "[]".into()),
                        )
                        .push_bind(p.reason.clone());
                });
                query
                    .build()
                    .persistent(false)
                    .execute(&mut *c)
                    .await
                    .done("saving the tenant's software")
            })?;
        }
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "INSERT INTO software_consolidations (tenant_id, organization_id, rules_revision, detected_apps, consolidated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id) DO UPDATE SET organization_id = excluded.organization_id, rules_revision = excluded.rules_revision, \
             detected_apps = excluded.detected_apps, consolidated_at = excluded.consolidated_at"
        )
        .bind(&tenant)
        .bind(organization_id)
        .bind(&consolidation.rules_revision)
        .bind(consolidation.detected_apps as i64)
        .bind(now)
        .execute(&mut *c)
        .await
        .done("recording the consolidation")
        })?;
        tx.commit().await
    }

    /// The consolidated products (and residue) of one tenant, or of every tenant.
    pub async fn software_products(&self, tenant_id: Option<&TenantId>) -> Result<Vec<Stored>> {
        let tenant = tenant_id.map(ToString::to_string);
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT s.*, o.name AS organization FROM software_products s JOIN organizations o ON o.id = s.organization_id \
                 WHERE ($1 IS NULL OR s.tenant_id = $1) ORDER BY o.name, s.tenant_id, s.devices DESC, s.product",
            )
            .bind(tenant.as_deref())
            .fetch_all(p)
            .await
            .doing("listing software")?;
            rows.iter()
                .map(|r| {
                    let versions: Vec<VersionCount> =
                        serde_json::from_str(&r.text_req("versions")?)
                            .map_err(|e| StoreError::Corrupt(format!("software versions: {e}")))?;
                    Ok(Stored {
                        organization: r.text_req("organization")?,
                        tenant_id: r.text_req("tenant_id")?,
                        product: TenantProduct {
                            product: r.text_req("product")?,
                            publisher: r.text("publisher")?,
                            matched: r.flag("matched")?.unwrap_or(false),
                            devices: r.int_req("devices")?.max(0) as u64,
                            users: r.int_req("users")?.max(0) as u64,
                            latest_version: r.text("latest_version")?,
                            oldest_version: r.text("oldest_version")?,
                            raw_names: r.json_list("raw_names")?,
                            versions,
                            reason: r.text("reason")?,
                        },
                    })
                })
                .collect()
        })
    }

    /// Which rules made each tenant's consolidation, and when.
    pub async fn consolidations(&self) -> Result<Vec<ConsolidationRow>> {
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT c.*, o.name AS organization FROM software_consolidations c JOIN organizations o ON o.id = c.organization_id ORDER BY o.name, c.tenant_id",
            )
            .fetch_all(p)
            .await
            .doing("listing consolidations")?;
            rows.iter()
                .map(|r| {
                    Ok(ConsolidationRow {
                        organization: r.text_req("organization")?,
                        tenant_id: r.text_req("tenant_id")?,
                        rules_revision: r.text_req("rules_revision")?,
                        detected_apps: r.int_req("detected_apps")?,
                        consolidated_at: r.int_req("consolidated_at")?,
                    })
                })
                .collect()
        })
    }

    /// A tenant's headline figures as the store holds them now.
    pub async fn tenant_figures(
        &self,
        tenant_id: &TenantId,
        now: DateTime<Utc>,
    ) -> Result<Figures> {
        let tenant = tenant_id.to_string();
        let mut figures = Figures::default();
        let (users, mailboxes, devices, software): (Counted, Counted, Counted, Counted) = on_pool!(
            &self.pool,
            |p| {
                let users = sqlx::query(
                    "SELECT CASE WHEN deleted_at IS NOT NULL THEN 'deleted' WHEN user_type = 'Guest' THEN 'guests' \
                     WHEN account_enabled = FALSE THEN 'disabled' ELSE 'enabled' END AS state, COUNT(*) AS n, CAST(0 AS BIGINT) AS total \
                     FROM contacts WHERE tenant_id = $1 AND archived = FALSE AND object_id IS NOT NULL GROUP BY 1",
                )
                .bind(&tenant)
                .fetch_all(p)
                .await
                .doing("counting users")?;
                let mailboxes = sqlx::query(
                    "SELECT COALESCE(recipient_type, 'user') AS state, COUNT(*) AS n, CAST(COALESCE(SUM(storage_used_bytes), 0) AS BIGINT) AS total \
                     FROM mailboxes WHERE tenant_id = $1 AND archived = FALSE AND is_deleted = FALSE GROUP BY 1",
                )
                .bind(&tenant)
                .fetch_all(p)
                .await
                .doing("counting mailboxes")?;
                let devices = sqlx::query(
                    "SELECT COALESCE(compliance_state, 'unknown') AS state, COUNT(*) AS n, CAST(0 AS BIGINT) AS total FROM managed_devices \
                     WHERE tenant_id = $1 AND archived = FALSE GROUP BY 1",
                )
                .bind(&tenant)
                .fetch_all(p)
                .await
                .doing("counting devices")?;
                let software = sqlx::query(
                    "SELECT CASE WHEN matched THEN 'products' ELSE 'unmatched' END AS state, COUNT(*) AS n, CAST(0 AS BIGINT) AS total \
                     FROM software_products WHERE tenant_id = $1 AND devices > 0 GROUP BY 1",
                )
                .bind(&tenant)
                .fetch_all(p)
                .await
                .doing("counting software")?;
                (
                    counted(&users)?,
                    counted(&mailboxes)?,
                    counted(&devices)?,
                    counted(&software)?,
                )
            }
        );
        for state in ["enabled", "disabled", "guests", "deleted"] {
            figures.set(format!("users.{state}"), 0);
        }
        for (state, n, _) in users {
            figures.set(format!("users.{}", state.unwrap_or_default()), n);
        }
        let (mut count, mut bytes) = (0, 0);
        for (kind, n, total) in mailboxes {
            figures.set(
                format!("mailboxes.{}", kind.unwrap_or_default().to_lowercase()),
                n,
            );
            count += n;
            bytes += total;
        }
        figures.set("mailboxes.count", count);
        figures.set("mailboxes.storage_bytes", bytes);
        for (state, n, _) in devices {
            let state = state.unwrap_or_default();
            figures.set(format!("devices.{}", to_snake(&state)), n);
        }
        for (state, n, _) in software {
            figures.set(format!("software.{}", state.unwrap_or_default()), n);
        }
        for license in self.licenses(Some(tenant_id), false).await? {
            let part = license.sku_part_number;
            figures.set(format!("licenses.{part}.bought"), license.enabled_units);
            figures.set(format!("licenses.{part}.assigned"), license.consumed_units);
        }
        let roles = self
            .inventory_as_stored(Some(tenant_id), Dataset::DirectoryRoles, false)
            .await?;
        if !roles.is_empty() {
            let admins: BTreeSet<&str> = roles
                .iter()
                .flat_map(|r| r.document["members"].as_array().into_iter().flatten())
                .filter_map(|m| m["id"].as_str())
                .collect();
            figures.set("admins.count", admins.len() as i64);
        }
        let apps = self
            .inventory_as_stored(Some(tenant_id), Dataset::Applications, false)
            .await?;
        if !apps.is_empty() {
            let soon = now + chrono::Duration::days(30);
            let (mut expiring, mut expired) = (0, 0);
            for app in &apps {
                for credential in ["secrets", "certificates"]
                    .iter()
                    .flat_map(|k| app.document[*k].as_array().into_iter().flatten())
                {
                    let end = credential["end"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc));
                    match end {
                        Some(end) if end < now => expired += 1,
                        Some(end) if end < soon => expiring += 1,
                        _ => {}
                    }
                }
            }
            figures.set("secrets.expiring_30_days", expiring);
            figures.set("secrets.expired", expired);
        }
        Ok(figures)
    }

    /// Keeps a tenant's figures after a successful run: a new snapshot, or the latest one
    /// extended when nothing moved. Returns what it did.
    pub async fn record_snapshot(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
        run_id: Option<i64>,
        figures: &Figures,
        at: DateTime<Utc>,
    ) -> Result<SnapshotWrite> {
        let tenant = tenant_id.to_string();
        let at_ms = at.timestamp_millis();
        let document = serde_json::to_string(figures).unwrap_or_else(|_| "{}".into());
        let mut tx = self.begin().await?;
        tx.lock_tenant(&tenant).await?;
        let latest: Option<(i64, Snapshot)> = on_tx!(&mut tx, |c| {
            let row = sqlx::query(
                "SELECT id, taken_at, seen_until, figures FROM tenant_snapshots WHERE tenant_id = $1 ORDER BY taken_at DESC, id DESC LIMIT 1",
            )
            .bind(&tenant)
            .fetch_optional(&mut *c)
            .await
            .doing("reading the latest snapshot")?;
            row.map(|r| Ok::<_, StoreError>((r.int_req("id")?, snapshot_of(&r)?)))
                .transpose()
        })?;
        let write = domain::trends::decide(latest.as_ref().map(|(_, s)| s), figures);
        match (&write, &latest) {
            (SnapshotWrite::Extend, Some((id, _))) => on_tx!(&mut tx, |c| sqlx::query(
                "UPDATE tenant_snapshots SET seen_until = $1, run_id = COALESCE($2, run_id) WHERE id = $3"
            )
            .bind(at_ms)
            .bind(run_id)
            .bind(*id)
            .execute(&mut *c)
            .await
            .done("extending a snapshot"))
            .map(drop)?,
            _ => on_tx!(&mut tx, |c| sqlx::query(
                "INSERT INTO tenant_snapshots (organization_id, tenant_id, run_id, taken_at, seen_until, figures) VALUES ($1, $2, $3, $4, $4, $5)"
            )
            .bind(organization_id)
            .bind(&tenant)
            .bind(run_id)
            .bind(at_ms)
            .bind(&document)
            .execute(&mut *c)
            .await
            .done("saving a snapshot"))
            .map(drop)?,
        }
        tx.commit().await?;
        Ok(write)
    }

    /// A tenant's snapshots, oldest first.
    pub async fn snapshots(&self, tenant_id: &TenantId) -> Result<Vec<Snapshot>> {
        let tenant = tenant_id.to_string();
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT taken_at, seen_until, figures FROM tenant_snapshots WHERE tenant_id = $1 ORDER BY taken_at, id",
            )
            .bind(&tenant)
            .fetch_all(p)
            .await
            .doing("listing snapshots")?;
            rows.iter().map(snapshot_of).collect()
        })
    }

    /// What the licence waste report reads: the SKUs, and every licensed user with their state,
    /// mailbox kind and last sign-in and activity, of one tenant or of all.
    pub async fn license_facts(
        &self,
        tenant_id: Option<&TenantId>,
    ) -> Result<(Vec<Sku>, Vec<LicensedUser>)> {
        let skus: Vec<Sku> = self
            .licenses(tenant_id, false)
            .await?
            .into_iter()
            .map(|l| Sku {
                organization: l.organization,
                tenant_id: l.tenant_id,
                sku_id: l.sku_id,
                sku_part_number: l.sku_part_number,
                name: l.name,
                capability_status: l.capability_status,
                enabled_units: l.enabled_units,
                consumed_units: l.consumed_units,
                warning_units: l.warning_units,
                suspended_units: l.suspended_units,
                service_plans: l.service_plans,
                trial: l.trial,
                next_lifecycle: l
                    .next_lifecycle
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc)),
            })
            .collect();
        let tenant = tenant_id.map(ToString::to_string);
        let parse_time = |raw: Option<String>| -> Option<DateTime<Utc>> {
            let raw = raw?;
            DateTime::parse_from_rfc3339(&raw)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    chrono::NaiveDate::parse_from_str(raw.get(..10)?, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|t| t.and_utc())
                })
        };
        let users = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(concat!(
                "SELECT c.id, c.tenant_id, c.user_principal_name, c.display_name, c.account_enabled, c.user_type, o.name AS organization, \
                 (SELECT m.recipient_type FROM mailboxes m WHERE m.archived = FALSE AND ",
                owns_mailbox!(),
                " LIMIT 1) AS mailbox_kind, \
                 (SELECT MAX(COALESCE(s.last_sign_in, '')) FROM sign_in_activity s WHERE s.tenant_id = c.tenant_id AND s.item_key = c.object_id AND s.archived = FALSE) AS last_sign_in, \
                 (SELECT MAX(COALESCE(s.last_non_interactive_sign_in, '')) FROM sign_in_activity s WHERE s.tenant_id = c.tenant_id AND s.item_key = c.object_id AND s.archived = FALSE) AS last_other_sign_in, \
                 (SELECT MAX(COALESCE(u.last_activity, '')) FROM usage u WHERE u.tenant_id = c.tenant_id AND u.user_principal_name = c.upn_key AND u.archived = FALSE) AS last_activity \
                 FROM contacts c JOIN organizations o ON o.id = c.organization_id \
                 WHERE c.archived = FALSE AND c.deleted_at IS NULL AND c.tenant_id IS NOT NULL AND ($1 IS NULL OR c.tenant_id = $1) \
                 AND EXISTS (SELECT 1 FROM contact_licenses l WHERE l.contact_id = c.id) ORDER BY o.name, c.user_principal_name",
            ))
            .bind(tenant.as_deref())
            .fetch_all(p)
            .await
            .doing("reading licensed users")?;
            let assigned = sqlx::query(
                "SELECT l.contact_id, l.sku_id FROM contact_licenses l JOIN contacts c ON c.id = l.contact_id \
                 WHERE c.archived = FALSE AND ($1 IS NULL OR c.tenant_id = $1)",
            )
            .bind(tenant.as_deref())
            .fetch_all(p)
            .await
            .doing("reading licence assignments")?;
            let tenants_with = |table: &'static str| {
                let sql = format!("SELECT DISTINCT tenant_id FROM {table} WHERE archived = FALSE");
                async move {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .fetch_all(p)
                        .await
                        .doing("reading which tenants have activity")?;
                    rows.iter()
                        .map(|r| r.text_req("tenant_id"))
                        .collect::<Result<BTreeSet<String>>>()
                }
            };
            let sign_ins = tenants_with("sign_in_activity").await?;
            let usage = tenants_with("usage").await?;
            let mut skus_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for r in &assigned {
                skus_of
                    .entry(r.int_req("contact_id")?)
                    .or_default()
                    .push(r.text_req("sku_id")?);
            }
            let mut users = Vec::new();
            for r in &rows {
                let tenant_id = r.text_req("tenant_id")?;
                let sign_in = parse_time(r.text("last_sign_in")?.filter(|t| !t.is_empty())).max(
                    parse_time(r.text("last_other_sign_in")?.filter(|t| !t.is_empty())),
                );
                users.push(LicensedUser {
                    organization: r.text_req("organization")?,
                    user_principal_name: r.text("user_principal_name")?.unwrap_or_default(),
                    display_name: r.text_req("display_name")?,
                    account_enabled: r.flag("account_enabled")?,
                    user_type: r.text("user_type")?,
                    mailbox_kind: r.text("mailbox_kind")?,
                    last_sign_in: sign_in,
                    last_activity: parse_time(r.text("last_activity")?.filter(|t| !t.is_empty())),
                    sign_ins_known: sign_ins.contains(&tenant_id),
                    usage_known: usage.contains(&tenant_id),
                    sku_ids: skus_of.remove(&r.int_req("id")?).unwrap_or_default(),
                    tenant_id,
                });
            }
            Ok::<_, StoreError>(users)
        })?;
        Ok((skus, users))
    }
}

/// (state, count, total) rows of a GROUP BY.
type Counted = Vec<(Option<String>, i64, i64)>;

fn counted<R: Columns>(rows: &[R]) -> Result<Counted> {
    rows.iter()
        .map(|r| {
            Ok((
                r.text("state")?,
                r.int_req("n")?,
                r.int("total")?.unwrap_or(0),
            ))
        })
        .collect()
}

fn snapshot_of<R: Columns>(r: &R) -> Result<Snapshot> {
    let figures: Figures = serde_json::from_str(&r.text_req("figures")?)
        .map_err(|e| StoreError::Corrupt(format!("snapshot figures: {e}")))?;
    Ok(Snapshot {
        taken_at: millis_to_time(r.int_req("taken_at")?),
        seen_until: millis_to_time(r.int_req("seen_until")?),
        figures,
    })
}

/// `inGracePeriod` → `in_grace_period`, so that figure names read alike.
fn to_snake(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 4);
    for c in word.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
