//! A Microsoft Graph, identity and reports simulator over deterministic synthetic tenants.
//!
//! Owns: tenants generated from a seed (people, licences, domains) that can be of any size
//! without being held in memory; the v2.0 token endpoint with Microsoft's error shapes; the Graph
//! resources m365sync reads (`/organization`, `/users`, `/subscribedSkus`), with paging, `$select`
//! and permissions enforced from the token's `roles`; usage reports behind a 302 to a second
//! listener that refuses bearer tokens; optionally Microsoft's documented throttling limits
//! (`limits`); delegated sign-in (authorize page, codes with PKCE, rotating refresh tokens, signed
//! id tokens) and Outlook calendars (`delegated`, `calendar`); optionally a partner tenant whose multi-tenant app lists
//! the others as GDAP customers and gets tokens where they consented it; and a control API
//! (`/_sim/...`) to change tenants and inject faults between syncs. It shares no code with the `graph` client on purpose: the client
//! must not pass only because both sides make the same assumption.

// Handlers return a ready axum `Response` as their error: it is built once and sent, never matched on,
// so boxing it would only add an allocation per refusal.
#![allow(clippy::result_large_err)]

mod activity;
mod api;
mod assertion;
mod batch;
mod calendar;
mod catalog;
mod control;
mod delegated;
mod delta;
mod identity;
pub mod inventory;
mod limits;
mod partner;
pub mod people;
mod reports;
mod schema;
mod software;
mod state;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use calendar::MAILBOX_CONCURRENCY;
pub use delegated::REFRESH_IDLE_LIMIT_DAYS;
pub use limits::{Limits, Quota};
pub use partner::{CustomerInfo, GDAP_ROLE};
pub use people::UserPatch;
pub use state::{CertificateIssued, DeltaExpiry, DeviceChange, Fault, SimState, Stats};
pub use tls::{LoopbackCertificate, TlsError};

/// Every permission the simulator knows; granted to a tenant's app unless the tenant says otherwise.
pub const DEFAULT_ROLES: &[&str] = &[
    "User.Read.All",
    "Directory.Read.All",
    "Organization.Read.All",
    "Reports.Read.All",
    "Domain.Read.All",
    "ServiceHealth.Read.All",
    "ServiceMessage.Read.All",
    "Application.Read.All",
    "Agreement.Read.All",
    "APIConnectors.Read.All",
    "GroupMember.Read.All",
    "RoleManagement.Read.Directory",
    "DeviceManagementManagedDevices.Read.All",
    "Device.Read.All",
    "AuditLog.Read.All",
    "ReportSettings.ReadWrite.All",
    "ActivityFeed.Read",
];

#[derive(Debug, Clone)]
pub struct TenantSpec {
    pub users: u64,
    /// Application permissions granted (by admin consent) to the tenant's app.
    pub roles: Vec<String>,
    /// Whether reports conceal user names (Microsoft's default since 2021).
    pub concealed_names: bool,
}

impl TenantSpec {
    pub fn with_users(users: u64) -> Self {
        Self {
            users,
            roles: DEFAULT_ROLES.iter().map(|r| r.to_string()).collect(),
            concealed_names: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub tenants: Vec<TenantSpec>,
    /// Added to every request, to make a network feel real.
    pub latency: Duration,
    /// Lifetime of issued access tokens.
    pub token_lifetime: Duration,
    /// Tenant 0 is a partner (a CSP with GDAP) whose app is multi-tenant: every other tenant is
    /// its customer, listed by `/tenantRelationships/delegatedAdminCustomers` and `/contracts`
    /// and consenting its app, until the control API says otherwise. Its app also holds
    /// `DelegatedAdminRelationship.Read.All`.
    pub partner: bool,
    /// Microsoft's documented throttling limits, enforced per app and tenant when given
    /// (`Limits::microsoft()`); none by default.
    pub limits: Option<Limits>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            tenants: vec![TenantSpec::with_users(25)],
            latency: Duration::ZERO,
            token_lifetime: Duration::from_secs(3599),
            partner: false,
            limits: None,
        }
    }
}

/// What a client needs to connect to one simulated tenant.
#[derive(Debug, Clone, Serialize)]
pub struct TenantInfo {
    pub tenant_id: String,
    pub display_name: String,
    pub domain: String,
    pub initial_domain: String,
    pub client_id: String,
    pub client_secret: String,
    /// A secret of the same app that has expired: for testing the diagnosis.
    pub expired_client_secret: String,
    pub users: u64,
}

/// A running simulator; stops when dropped.
pub struct RunningSimulator {
    pub url: String,
    pub download_url: String,
    pub state: Arc<SimState>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningSimulator {
    pub fn tenants(&self) -> Vec<TenantInfo> {
        self.state.tenant_infos()
    }

    /// The one JSON line `m365sync simulate` prints on start.
    pub fn announcement(&self) -> serde_json::Value {
        let tenants: Vec<serde_json::Value> = self
            .tenants()
            .into_iter()
            .map(|t| {
                serde_json::json!({
                    "tenant_id": t.tenant_id, "domain": t.domain, "display_name": t.display_name,
                    "client_id": t.client_id, "client_secret": t.client_secret, "users": t.users,
                })
            })
            .collect();
        let mut announcement = serde_json::json!({ "url": self.url, "tenants": tenants });
        if let Some(partner) = self.state.partner_tenant() {
            announcement["partner"] = serde_json::json!({
                "tenant_id": partner.id.to_string(), "display_name": partner.display_name,
                "client_id": partner.client_id.to_string(), "client_secret": partner.client_secret,
                "customers": self.state.customers(),
            });
        }
        announcement
    }

    /// Waits until the server stops (it does not, unless a task fails).
    pub async fn wait(mut self) {
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "cannot listen on {addr}: {source}. Choose another address with --listen, or port 0 for any free port"
    )]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Starts the simulator on `listen` (port 0 picks a free port) and the report downloads on a
/// second port of the same address, so that the client's redirect handling is really exercised.
pub async fn start(config: SimConfig, listen: SocketAddr) -> Result<RunningSimulator, SimError> {
    start_with(config, listen, None).await
}

/// `start`, serving HTTPS with `tls` when given (both listeners), as Microsoft's endpoints do.
pub async fn start_with(
    config: SimConfig,
    listen: SocketAddr,
    tls: Option<&LoopbackCertificate>,
) -> Result<RunningSimulator, SimError> {
    let main = TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Listen {
            addr: listen,
            source,
        })?;
    let download_addr = SocketAddr::new(listen.ip(), 0);
    let downloads = TcpListener::bind(download_addr)
        .await
        .map_err(|source| SimError::Listen {
            addr: download_addr,
            source,
        })?;
    let main_addr = main.local_addr().map_err(|source| SimError::Listen {
        addr: listen,
        source,
    })?;
    let download_local = downloads.local_addr().map_err(|source| SimError::Listen {
        addr: download_addr,
        source,
    })?;
    let (url, download_url) = match tls {
        Some(_) => (tls::https_url(main_addr), tls::https_url(download_local)),
        None => (
            format!("http://{main_addr}"),
            format!("http://{download_local}"),
        ),
    };
    let state = Arc::new(SimState::new(&config, url.clone(), download_url.clone()));

    let main_router = api::router(state.clone());
    let download_router = reports::download_router(state.clone());
    let tasks = if let Some(tls) = tls {
        vec![
            tokio::spawn(tls::serve(main, tls.acceptor(), main_router)),
            tokio::spawn(tls::serve(downloads, tls.acceptor(), download_router)),
        ]
    } else {
        plain(main, main_router, downloads, download_router)
    };
    Ok(RunningSimulator {
        url,
        download_url,
        state,
        tasks,
    })
}

fn plain(
    main: TcpListener,
    main_router: axum::Router,
    downloads: TcpListener,
    download_router: axum::Router,
) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(async move {
            if let Err(e) = axum::serve(main, main_router).await {
                tracing::error!("simulator stopped: {e}");
            }
        }),
        tokio::spawn(async move {
            if let Err(e) = axum::serve(downloads, download_router).await {
                tracing::error!("simulator downloads stopped: {e}");
            }
        }),
    ]
}
