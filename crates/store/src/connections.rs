//! Connections: an app registration's credentials for one tenant (or, in partner mode, for a
//! partner's tenant and through it its customers'), the secret or the certificate's private key
//! sealed at rest.

use domain::{
    CertificateCredential, ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset,
    TenantId,
};

use serde::Serialize;

use crate::backend::{Columns, on_pool, on_tx, write_on_pool};
use crate::error::{Context, Executed, Result, StoreError};
use crate::{Store, now_millis};

/// What a connection's edit form sets besides its credential and schedule.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub cloud: Cloud,
    pub datasets: Vec<Dataset>,
    pub user_filter: domain::filter::UserFilter,
    pub field_mapping: domain::FieldMapping,
    pub cache_lifetimes: domain::cache::CacheLifetimes,
}

pub struct NewConnection {
    pub name: ConnectionName,
    pub tenant_id: TenantId,
    pub client_id: ClientId,
    pub credential: Credential,
    pub cloud: Cloud,
    pub datasets: Vec<Dataset>,
}

/// Which tenants a connection's app reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionMode {
    /// Its own tenant: the one the connection names.
    #[default]
    Direct,
    /// The customers of the partner tenant the connection names (a Microsoft partner with GDAP
    /// relationships), each signed in to with the same multi-tenant app.
    Partner,
}

impl ConnectionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Partner => "partner",
        }
    }

    fn from_db(text: &str) -> Option<Self> {
        match text {
            "direct" => Some(Self::Direct),
            "partner" => Some(Self::Partner),
            _ => None,
        }
    }
}

impl std::fmt::Display for ConnectionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a new connection says about its tenant's organisation.
#[derive(Debug, Clone)]
pub struct OrganizationSetup {
    /// Whether a sync may create an organisation for a tenant that fits none.
    pub create_organization: bool,
    /// The organisation to file the tenant under, by its exact name: an existing one, or a new
    /// one of that name.
    pub organization: Option<String>,
}

impl Default for OrganizationSetup {
    fn default() -> Self {
        Self {
            create_organization: true,
            organization: None,
        }
    }
}

/// What may be shown of a connection's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    pub thumbprint: String,
    /// Seconds since 1970 (UTC).
    pub expires_at: i64,
}

/// A saved connection. The secret or key is not part of it: ask the store for it when needed.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: i64,
    pub name: ConnectionName,
    pub tenant_id: TenantId,
    pub client_id: ClientId,
    pub cloud: Cloud,
    pub datasets: Vec<Dataset>,
    /// Its own tenant, or a partner's customers.
    pub mode: ConnectionMode,
    /// Set when the app signs in with a certificate rather than a secret.
    pub certificate: Option<CertificateSummary>,
    /// Whether a sync may create an organisation for a tenant that fits none.
    pub create_organization: bool,
    /// Which users the connection keeps.
    pub user_filter: domain::filter::UserFilter,
    /// Who owns each contact field, and where Microsoft's value lands.
    pub field_mapping: domain::FieldMapping,
    /// How much of a tenant's contacts one run may take away before it is held.
    pub drop_guard: domain::plan::DropGuard,
    /// How long its audit records are kept.
    pub audit_retention: domain::AuditRetention,
    pub created_at: i64,
    /// When `connection test` last ran on it, and whether it passed.
    pub last_tested_at: Option<i64>,
    pub last_test_passed: Option<bool>,
}

fn summary_of(credential: &Credential) -> Option<CertificateSummary> {
    match credential {
        Credential::Secret(_) => None,
        Credential::Certificate(c) => Some(CertificateSummary {
            thumbprint: c.thumbprint.clone(),
            expires_at: c.expires_at,
        }),
    }
}

fn sealed_text(credential: &Credential) -> &str {
    match credential {
        Credential::Secret(secret) => secret.expose(),
        Credential::Certificate(certificate) => certificate.pem(),
    }
}

const WRITE_CREDENTIAL: &str = "UPDATE connections SET client_secret = $1, credential_kind = $2, certificate_thumbprint = $3, certificate_expires_at = $4, updated_at = $5 WHERE id = $6";

fn binding(id: i64) -> String {
    format!("connections.client_secret:{id}")
}

fn connection_from(row: &impl Columns) -> Result<Connection> {
    let corrupt = |what: &str, e: String| StoreError::Corrupt(format!("connection {what}: {e}"));
    Ok(Connection {
        id: row.int_req("id")?,
        name: ConnectionName::parse(&row.text_req("name")?)
            .map_err(|e| corrupt("name", e.to_string()))?,
        tenant_id: TenantId::parse(&row.text_req("tenant_id")?)
            .map_err(|e| corrupt("tenant", e.to_string()))?,
        client_id: ClientId::parse(&row.text_req("client_id")?)
            .map_err(|e| corrupt("client", e.to_string()))?,
        cloud: serde_json::from_str(&row.text_req("cloud")?)
            .map_err(|e| corrupt("cloud", e.to_string()))?,
        datasets: serde_json::from_str(&row.text_req("datasets")?)
            .map_err(|e| corrupt("datasets", e.to_string()))?,
        mode: {
            let mode = row.text_req("mode")?;
            ConnectionMode::from_db(&mode)
                .ok_or_else(|| corrupt("mode", format!("'{mode}' is unknown")))?
        },
        certificate: match row.text_req("credential_kind")?.as_str() {
            "secret" => None,
            "certificate" => Some(CertificateSummary {
                thumbprint: row.text_req("certificate_thumbprint")?,
                expires_at: row.int_req("certificate_expires_at")?,
            }),
            other => return Err(corrupt("credential kind", format!("'{other}' is unknown"))),
        },
        create_organization: row.flag("create_organization")?.unwrap_or(true),
        user_filter: serde_json::from_str(&row.text_req("user_filter")?)
            .map_err(|e| corrupt("filters", e.to_string()))?,
        field_mapping: serde_json::from_str::<domain::FieldMapping>(
            &row.text_req("field_mapping")?,
        )
        .map_err(|e| corrupt("field mapping", e.to_string()))?
        .validated()
        .map_err(|e| corrupt("field mapping", e.to_string()))?,
        drop_guard: domain::plan::DropGuard {
            max_share_percent: row
                .int("max_drop_percent")?
                .and_then(|p| u8::try_from(p.clamp(0, 100)).ok())
                .unwrap_or(20),
        },
        audit_retention: {
            let days = row.int_req("audit_retention_days")?;
            u32::try_from(days)
                .ok()
                .and_then(domain::AuditRetention::from_days)
                .ok_or_else(|| corrupt("audit retention", format!("{days} days is out of range")))?
        },
        created_at: row.int_req("created_at")?,
        last_tested_at: row.int("last_tested_at")?,
        last_test_passed: row.flag("last_test_passed")?,
    })
}

macro_rules! select_connections {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, tenant_id, client_id, cloud, datasets, mode, credential_kind, certificate_thumbprint, certificate_expires_at, create_organization, user_filter, field_mapping, max_drop_percent, audit_retention_days, created_at, last_tested_at, last_test_passed FROM connections",
            $tail
        )
    };
}

impl Store {
    /// Sets who owns each contact field of a connection. The next sync weighs every user again
    /// (a whole listing), so that a field given back to Microsoft 365 is written at once.
    pub async fn set_field_mapping(
        &self,
        name: &str,
        mapping: &domain::FieldMapping,
    ) -> Result<()> {
        let document =
            serde_json::to_string(mapping).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let changed = write_on_pool!(self, |p| sqlx::query(
            "UPDATE connections SET field_mapping = $1 WHERE name = $2"
        )
        .bind(&document)
        .bind(name)
        .execute(p)
        .await
        .done("saving a connection's field mapping"))?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "there is no connection named '{name}'; `m365sync connection list` shows them"
            )));
        }
        write_on_pool!(self, |p| {
            sqlx::query(
            "DELETE FROM delta_links WHERE resource = 'users' AND (tenant_id = (SELECT tenant_id FROM connections WHERE name = $1) \
             OR tenant_id IN (SELECT t.tenant_id FROM tenants t JOIN connections c ON c.id = t.connection_id WHERE c.name = $1))"
        )
        .bind(name)
        .execute(p)
        .await
        .done("starting the users over")
        })?;
        Ok(())
    }

    /// Sets how much of a tenant's contacts one run of the connection may take away before it
    /// is held for a person.
    pub async fn set_drop_guard(&self, name: &str, guard: domain::plan::DropGuard) -> Result<()> {
        let changed = write_on_pool!(self, |p| sqlx::query(
            "UPDATE connections SET max_drop_percent = $1 WHERE name = $2"
        )
        .bind(i64::from(guard.max_share_percent.min(100)))
        .bind(name)
        .execute(p)
        .await
        .done("saving a connection's drop guard"))?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "there is no connection named '{name}'; `m365sync connection list` shows them"
            )));
        }
        Ok(())
    }

    /// Sets which users a connection keeps. Users the new filters leave out are archived by its
    /// next sync, with the reason; users they let in again come back.
    pub async fn set_user_filter(
        &self,
        name: &str,
        filter: &domain::filter::UserFilter,
    ) -> Result<()> {
        let document =
            serde_json::to_string(filter).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let changed = write_on_pool!(self, |p| sqlx::query(
            "UPDATE connections SET user_filter = $1 WHERE name = $2"
        )
        .bind(&document)
        .bind(name)
        .execute(p)
        .await
        .done("saving a connection's filters"))?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "there is no connection named '{name}'; `m365sync connection list` shows them"
            )));
        }
        // Every user must be weighed again: the next users round is a whole listing, and who
        // was left out is found anew.
        for sql in [
            "DELETE FROM delta_links WHERE resource = 'users' AND tenant_id = (SELECT tenant_id FROM connections WHERE name = $1)",
            "DELETE FROM filtered_users WHERE tenant_id = (SELECT tenant_id FROM connections WHERE name = $1)",
        ] {
            write_on_pool!(self, |p| sqlx::query(sql)
                .bind(name)
                .execute(p)
                .await
                .done("starting the users over"))?;
        }
        Ok(())
    }

    /// Saves a new connection; a name already in use is refused, never overwritten.
    pub async fn add_connection(&self, new: NewConnection) -> Result<Connection> {
        self.add_connection_with(new, OrganizationSetup::default())
            .await
    }

    /// Saves a new connection with what it says about its tenant's organisation: whether a sync
    /// may create one, and which one it is when named up front (the tenant is then matched to it
    /// before its first sync). All of it is saved, or none.
    pub async fn add_connection_with(
        &self,
        new: NewConnection,
        setup: OrganizationSetup,
    ) -> Result<Connection> {
        self.add_connection_in(new, ConnectionMode::Direct, setup)
            .await
    }

    /// Saves a new connection of either mode. A partner connection's tenant is the partner's,
    /// which is never synced, so it cannot be filed under an organisation up front.
    pub async fn add_connection_in(
        &self,
        new: NewConnection,
        mode: ConnectionMode,
        setup: OrganizationSetup,
    ) -> Result<Connection> {
        if mode == ConnectionMode::Partner && setup.organization.is_some() {
            return Err(StoreError::Conflict(format!(
                "connection '{}' is a partner connection: its customers are filed under organisations one by one (`m365sync match`), not under one named up front",
                new.name
            )));
        }
        if self.connection(new.name.as_str()).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "a connection named '{}' already exists; remove it with `m365sync connection remove {}` or choose another name",
                new.name, new.name
            )));
        }
        let now = now_millis();
        let cloud =
            serde_json::to_string(&new.cloud).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let datasets =
            serde_json::to_string(&new.datasets).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.begin().await?;
        // The row id is part of the sealed secret's binding, so insert first, then seal.
        let id: i64 = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
            "INSERT INTO connections (name, tenant_id, client_id, client_secret, cloud, datasets, mode, create_organization, created_at, updated_at) VALUES ($1, $2, $3, '', $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(new.name.as_str())
        .bind(new.tenant_id.to_string())
        .bind(new.client_id.to_string())
        .bind(&cloud)
        .bind(&datasets)
        .bind(mode.as_str())
        .bind(setup.create_organization)
        .bind(now)
        .fetch_one(c)
        .await
        .doing("saving a connection")
        })?;
        let sealed = self
            .cipher
            .seal(sealed_text(&new.credential), &binding(id))?;
        let summary = summary_of(&new.credential);
        on_tx!(&mut tx, |c| sqlx::query(WRITE_CREDENTIAL)
            .bind(&sealed)
            .bind(new.credential.kind())
            .bind(summary.as_ref().map(|s| s.thumbprint.clone()))
            .bind(summary.as_ref().map(|s| s.expires_at))
            .bind(now)
            .bind(id)
            .execute(c)
            .await
            .done("saving a connection"))?;
        if let Some(name) = &setup.organization {
            crate::tenants::name_organization(&mut tx, &new.tenant_id.to_string(), id, name, now)
                .await?;
        }
        tx.commit().await?;
        Ok(Connection {
            id,
            name: new.name,
            tenant_id: new.tenant_id,
            client_id: new.client_id,
            cloud: new.cloud,
            datasets: new.datasets,
            mode,
            certificate: summary,
            create_organization: setup.create_organization,
            user_filter: domain::filter::UserFilter::default(),
            field_mapping: domain::FieldMapping::default(),
            drop_guard: domain::plan::DropGuard::default(),
            audit_retention: domain::AuditRetention::default(),
            created_at: now,
            last_tested_at: None,
            last_test_passed: None,
        })
    }

    pub async fn connections(&self) -> Result<Vec<Connection>> {
        let rows = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(select_connections!(" ORDER BY name"))
                .fetch_all(p)
                .await
                .doing("listing connections")?;
            rows.iter().map(connection_from).collect::<Result<Vec<_>>>()
        })?;
        Ok(rows)
    }

    pub async fn connection(&self, name: &str) -> Result<Option<Connection>> {
        on_pool!(&self.pool, |p| {
            let row = sqlx::query(select_connections!(" WHERE name = $1"))
                .bind(name)
                .fetch_optional(p)
                .await
                .doing("reading a connection")?;
            row.as_ref().map(connection_from).transpose()
        })
    }

    /// The connection's secret or certificate, unsealed. Only the sync asks for it, just before a
    /// token request.
    pub async fn connection_credential(&self, connection: &Connection) -> Result<Credential> {
        let sealed: String = on_pool!(&self.pool, |p| sqlx::query_scalar(
            "SELECT client_secret FROM connections WHERE id = $1"
        )
        .bind(connection.id)
        .fetch_one(p)
        .await
        .doing("reading a connection's credential"))?;
        let plain = self.cipher.open(&sealed, &binding(connection.id))?;
        Ok(match &connection.certificate {
            None => Credential::Secret(
                ClientSecret::parse(&plain).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ),
            Some(summary) => Credential::Certificate(CertificateCredential::new(
                plain,
                summary.thumbprint.clone(),
                summary.expires_at,
            )),
        })
    }

    /// Replaces a connection's credential: a rotated secret, a renewed certificate, or a move from
    /// one kind to the other.
    pub async fn set_connection_credential(
        &self,
        connection: &Connection,
        credential: &Credential,
    ) -> Result<Connection> {
        let sealed = self
            .cipher
            .seal(sealed_text(credential), &binding(connection.id))?;
        let summary = summary_of(credential);
        write_on_pool!(self, |p| sqlx::query(WRITE_CREDENTIAL)
            .bind(&sealed)
            .bind(credential.kind())
            .bind(summary.as_ref().map(|s| s.thumbprint.clone()))
            .bind(summary.as_ref().map(|s| s.expires_at))
            .bind(now_millis())
            .bind(connection.id)
            .execute(p)
            .await
            .done("saving a connection's credential"))?;
        Ok(Connection {
            certificate: summary,
            ..connection.clone()
        })
    }

    /// Keeps when the connection was tested and whether the test passed.
    pub async fn record_connection_test(&self, connection_id: i64, passed: bool) -> Result<()> {
        write_on_pool!(self, |p| {
            sqlx::query(
                "UPDATE connections SET last_tested_at = $1, last_test_passed = $2 WHERE id = $3",
            )
            .bind(now_millis())
            .bind(passed)
            .bind(connection_id)
            .execute(p)
            .await
            .done("keeping the connection test's outcome")
        })?;
        Ok(())
    }

    /// Saves what a connection's edit form sets, all or nothing: cloud, datasets, user
    /// filters, field mapping and cache lifetimes. When the filters or the mapping change, the
    /// next sync weighs every user again (as [`Store::set_user_filter`] and
    /// [`Store::set_field_mapping`] arrange).
    pub async fn set_connection_settings(
        &self,
        name: &str,
        settings: &ConnectionSettings,
    ) -> Result<()> {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let cloud = serde_json::to_string(&settings.cloud).map_err(corrupt)?;
        let datasets = serde_json::to_string(&settings.datasets).map_err(corrupt)?;
        let filter = serde_json::to_string(&settings.user_filter).map_err(corrupt)?;
        let mapping = serde_json::to_string(&settings.field_mapping).map_err(corrupt)?;
        let lifetimes = serde_json::to_string(&settings.cache_lifetimes).map_err(corrupt)?;
        let mut tx = self.begin().await?;
        let saved: Option<(String, String)> = on_tx!(&mut tx, |c| {
            sqlx::query_as("SELECT user_filter, field_mapping FROM connections WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *c)
                .await
                .doing("reading a connection's settings")
        })?;
        let Some((saved_filter, saved_mapping)) = saved else {
            return Err(StoreError::NotFound(format!(
                "there is no connection named '{name}'; `m365sync connection list` shows them"
            )));
        };
        let filter_changed = serde_json::from_str::<domain::filter::UserFilter>(&saved_filter)
            .map_or(true, |saved| saved != settings.user_filter);
        let mapping_changed = serde_json::from_str::<domain::FieldMapping>(&saved_mapping)
            .map_or(true, |saved| saved != settings.field_mapping);
        on_tx!(&mut tx, |c| {
            sqlx::query(
                "UPDATE connections SET cloud = $1, datasets = $2, user_filter = $3, field_mapping = $4, cache_lifetimes = $5, updated_at = $6 WHERE name = $7",
            )
            .bind(&cloud)
            .bind(&datasets)
            .bind(&filter)
            .bind(&mapping)
            .bind(&lifetimes)
            .bind(now_millis())
            .bind(name)
            .execute(&mut *c)
            .await
            .done("saving a connection's settings")
        })?;
        let mut restarts = Vec::new();
        if filter_changed {
            restarts.push("DELETE FROM filtered_users WHERE tenant_id = (SELECT tenant_id FROM connections WHERE name = $1)");
        }
        if filter_changed || mapping_changed {
            restarts.push(
                "DELETE FROM delta_links WHERE resource = 'users' AND (tenant_id = (SELECT tenant_id FROM connections WHERE name = $1) \
                 OR tenant_id IN (SELECT t.tenant_id FROM tenants t JOIN connections c ON c.id = t.connection_id WHERE c.name = $1))",
            );
        }
        for sql in restarts {
            on_tx!(&mut tx, |c| {
                sqlx::query(sql)
                    .bind(name)
                    .execute(&mut *c)
                    .await
                    .done("starting the users over")
            })?;
        }
        tx.commit().await
    }

    /// Removes a connection. What it synced stays: contacts belong to their organisation.
    pub async fn remove_connection(&self, name: &str) -> Result<()> {
        let result = write_on_pool!(self, |p| sqlx::query(
            "DELETE FROM connections WHERE name = $1"
        )
        .bind(name)
        .execute(p)
        .await
        .done("removing a connection")?);
        if result == 0 {
            return Err(StoreError::NotFound(format!(
                "there is no connection named '{name}'; `m365sync connection list` shows them"
            )));
        }
        Ok(())
    }
}
