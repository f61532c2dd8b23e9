//! `connection test`: what exactly is wrong with a connection, and what to do about it.

use domain::dataset::missing_permissions;
use domain::{Credential, Dataset};
use graph::{GraphError, RetryPolicy, TokenProblem};
use serde::Serialize;
use store::{Connection, ConnectionMode, Store};

use crate::datasets::CONCEALED_SETTING;
use crate::{Result, SyncError, graph_client, partner};

/// How long before a certificate's end the connection test starts to warn.
const CERTIFICATE_WARNING_DAYS: i64 = 30;

/// A UTC date (`YYYY-MM-DD`) from seconds since 1970, as warnings and lists show end dates.
pub fn day_of(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| seconds.to_string())
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub code: String,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionTestReport {
    pub ok: bool,
    pub problems: Vec<Problem>,
    /// What works today but will not for long (a certificate near its end).
    pub warnings: Vec<Problem>,
    pub granted_permissions: Vec<String>,
    pub missing_permissions: Vec<String>,
    /// What each dataset's probe found: `ok`, or the problem's code.
    pub datasets: Vec<(Dataset, String)>,
    /// A partner connection's: which listing named its customers (`delegatedAdminCustomers` or
    /// `contracts`).
    pub customers_listed_by: Option<String>,
    /// A partner connection's customers, each with what its token came to.
    pub customers: Vec<CustomerCheck>,
}

/// A partner's customer as the connection test found it.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerCheck {
    pub tenant_id: String,
    pub display_name: String,
    /// `ok`, or the problem's code (`app_not_consented`, `permission_missing`, …).
    pub state: String,
    /// Where its admin consents the app (again), when that is the fix.
    pub consent_url: Option<String>,
    pub granted_permissions: Vec<String>,
    pub missing_permissions: Vec<String>,
}

/// Gets a token, reads the permissions it carries, and probes each chosen dataset. For a
/// partner connection: the partner's token, the listing of its customers, and each customer's
/// token (or why the app has none there, with the link its admin consents it by). When and
/// whether it passed is kept with the connection, for `connection list`.
pub async fn test_connection(
    store: &Store,
    connection: &Connection,
    retry: RetryPolicy,
) -> Result<ConnectionTestReport> {
    let report = probe_connection(store, connection, retry).await?;
    store
        .record_connection_test(connection.id, report.ok)
        .await?;
    Ok(report)
}

async fn probe_connection(
    store: &Store,
    connection: &Connection,
    retry: RetryPolicy,
) -> Result<ConnectionTestReport> {
    let credential = store.connection_credential(connection).await?;
    let mut report = ConnectionTestReport {
        ok: false,
        problems: Vec::new(),
        warnings: Vec::new(),
        granted_permissions: Vec::new(),
        missing_permissions: Vec::new(),
        datasets: Vec::new(),
        customers_listed_by: None,
        customers: Vec::new(),
    };
    let now = chrono::Utc::now().timestamp();
    if let Credential::Certificate(certificate) = &credential {
        let days_left = (certificate.expires_at - now).div_euclid(86_400);
        if (0..CERTIFICATE_WARNING_DAYS).contains(&days_left) {
            report.warnings.push(Problem {
                code: "certificate_expiring".into(),
                message: format!(
                    "the certificate {} expires on {} ({days_left} days from now)",
                    certificate.thumbprint,
                    day_of(certificate.expires_at)
                ),
                fix: "Make a new certificate, upload it to the app registration, then `m365sync connection credential NAME --certificate FILE`".into(),
            });
        }
    }
    let client = match graph_client(connection, &credential, retry.clone()) {
        Ok(client) => client,
        Err(SyncError::Certificate { problem, .. }) => {
            report.problems.push(unusable_certificate(&problem));
            return Ok(report);
        }
        Err(other) => return Err(other),
    };
    let token = match client.token().await {
        Ok(token) => token,
        Err(error) => {
            report
                .problems
                .push(credential_problem(&credential, &error, now));
            return Ok(report);
        }
    };
    if connection.mode == ConnectionMode::Partner {
        report.granted_permissions = token.roles.clone();
        test_customers(connection, &credential, &client, retry, now, &mut report).await;
        report.ok = report.problems.is_empty();
        return Ok(report);
    }
    report.granted_permissions = token.roles.clone();
    let mut datasets: Vec<Dataset> = Dataset::ALL
        .into_iter()
        .filter(|d| *d == Dataset::Organization || connection.datasets.contains(d))
        .collect();
    datasets.dedup();
    if datasets
        .iter()
        .any(|d| matches!(d, Dataset::Mailboxes | Dataset::Usage))
        && let Some(concealed) = report_names_concealed(&client, &token.roles).await
        && concealed
    {
        report.warnings.push(Problem {
            code: "report_names_concealed".into(),
            message: "usage reports conceal user names in this tenant, so mailbox and usage figures cannot be attached to anyone".into(),
            fix: format!("A global administrator turns off {CONCEALED_SETTING}; or, with ReportSettings.ReadWrite.All granted, `m365sync connection report-names NAME --show`"),
        });
    }
    // The audit feed is another API with its own token and permission: checked apart.
    let audit = datasets.contains(&Dataset::Audit);
    datasets.retain(|d| *d != Dataset::Audit);
    let missing = missing_permissions(&datasets, &token.roles);
    report.missing_permissions = missing.iter().map(|p| p.to_string()).collect();
    if token.roles.is_empty() {
        report.problems.push(Problem {
            code: "consent_missing".into(),
            message: "the token carries no application permissions: admin consent has not been granted".into(),
            fix: "In Entra admin center › App registrations › your app › API permissions, add the application permissions and press \"Grant admin consent\"".into(),
        });
    } else {
        for permission in &missing {
            let needing: Vec<&str> = datasets
                .iter()
                .filter(|d| d.permission() == *permission)
                .map(|d| d.name())
                .collect();
            report.problems.push(Problem {
                code: "permission_missing".into(),
                message: format!("the app lacks the application permission {permission}, needed for {}", needing.join(", ")),
                fix: format!("Add Microsoft Graph › Application permissions › {permission} to the app registration and grant admin consent; or remove those datasets from the connection"),
            });
        }
    }
    for dataset in datasets {
        if !dataset.is_granted(&token.roles) {
            report.datasets.push((dataset, "permission_missing".into()));
            continue;
        }
        // Audit is probed with its own token by `audit_problems`.
        let Some(path) = crate::datasets::probe(dataset) else {
            continue;
        };
        match client.probe(path).await {
            Ok(()) => report.datasets.push((dataset, "ok".into())),
            Err(error) => {
                let mut problem = problem_from(&error);
                problem.message = format!("{}: {}", dataset.name(), problem.message);
                report.datasets.push((dataset, problem.code.clone()));
                report.problems.push(problem);
            }
        }
    }
    if audit {
        let management = crate::management_client(
            connection,
            &credential,
            RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            },
        )?;
        let state = audit_problems(management.as_ref(), connection, &mut report).await;
        report.datasets.push((Dataset::Audit, state));
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// A saved certificate that cannot sign anything, as the connection test names it.
pub(crate) fn unusable_certificate(problem: &str) -> Problem {
    Problem {
        code: "certificate_unusable".into(),
        message: format!("the saved certificate cannot be used: {problem}"),
        fix: "Save a usable key and certificate with `m365sync connection credential NAME --certificate FILE`".into(),
    }
}

/// Why the credential got no token, as the connection test names it: the token endpoint's
/// diagnosis, made sharper where the credential tells more (a secret's ID pasted for its Value,
/// a certificate past its end). `now` is in seconds since 1970.
pub(crate) fn credential_problem(credential: &Credential, error: &GraphError, now: i64) -> Problem {
    let mut problem = problem_from(error);
    let refused = match error {
        GraphError::Token { problem, .. } => Some(*problem),
        _ => None,
    };
    match (credential, refused) {
        (Credential::Secret(secret), Some(TokenProblem::InvalidSecret))
            if secret.looks_like_secret_id() =>
        {
            problem = Problem {
                code: "secret_id_not_value".into(),
                message: "the client secret has the shape of a GUID: that is the secret's ID, not its Value".into(),
                fix: "In Entra admin center › App registrations › your app › Certificates & secrets, copy the Value column (shown only when the secret is created; create a new secret if it is hidden), then `m365sync connection credential NAME --client-secret-stdin` with it".into(),
            };
        }
        (Credential::Certificate(certificate), Some(TokenProblem::InvalidCertificate))
            if certificate.expires_at <= now =>
        {
            problem = Problem {
                code: "certificate_expired".into(),
                message: format!(
                    "the certificate {} expired on {}",
                    certificate.thumbprint,
                    day_of(certificate.expires_at)
                ),
                fix: "Make a new certificate, upload it under App registrations › your app › Certificates & secrets, then `m365sync connection credential NAME --certificate FILE`".into(),
            };
        }
        (Credential::Certificate(certificate), Some(TokenProblem::InvalidCertificate)) => {
            problem.message = format!(
                "{} (the connection's certificate has thumbprint {})",
                problem.message, certificate.thumbprint
            );
        }
        _ => {}
    }
    problem
}

/// Gets a Management Activity API token, reads its permissions and lists the subscriptions.
async fn audit_problems(
    client: Option<&graph::GraphClient>,
    connection: &Connection,
    report: &mut ConnectionTestReport,
) -> String {
    let Some(client) = client else {
        report.problems.push(Problem {
            code: "audit_unavailable".into(),
            message: format!(
                "the Office 365 Management Activity API is not available in the {} cloud",
                connection.cloud.name()
            ),
            fix: "Remove the audit dataset from this connection".into(),
        });
        return "audit_unavailable".into();
    };
    let token = match client.token().await {
        Ok(token) => token,
        Err(error) => {
            let problem = problem_from(&error);
            let code = problem.code.clone();
            report.problems.push(problem);
            return code;
        }
    };
    if !Dataset::Audit.is_granted(&token.roles) {
        report
            .missing_permissions
            .push(Dataset::Audit.permission().to_string());
        report.problems.push(Problem {
            code: "permission_missing".into(),
            message: "the app lacks the application permission ActivityFeed.Read of Office 365 Management APIs, needed for audit".into(),
            fix: "Add Office 365 Management APIs › Application permissions › ActivityFeed.Read to the app registration and grant admin consent".into(),
        });
        return "permission_missing".into();
    }
    report.granted_permissions.extend(
        token
            .roles
            .iter()
            .filter(|r| !report.granted_permissions.contains(r))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let tenant = connection.tenant_id;
    match client
        .probe(&format!(
            "api/v1.0/{tenant}/activity/feed/subscriptions/list?PublisherIdentifier={tenant}"
        ))
        .await
    {
        Ok(()) => "ok".into(),
        Err(error) => {
            let mut problem = problem_from(&error);
            problem.message = format!("audit: {}", problem.message);
            let code = problem.code.clone();
            report.problems.push(problem);
            code
        }
    }
}

/// A partner connection's customers: how they were listed, and for each whether the app gets a
/// token there and with the permissions the connection's datasets need.
async fn test_customers(
    connection: &Connection,
    credential: &Credential,
    client: &graph::GraphClient,
    retry: RetryPolicy,
    now: i64,
    report: &mut ConnectionTestReport,
) {
    let customers = match partner::discover(client, &connection.tenant_id).await {
        Ok(customers) => customers,
        Err(mut problem) => {
            problem.message = format!("listing the partner's customers: {}", problem.message);
            report.problems.push(problem);
            return;
        }
    };
    report.customers_listed_by = Some(customers.source.as_str().to_string());
    for warning in customers.warnings() {
        let fix = match warning.code.as_str() {
            "customers_from_contracts" => format!(
                "Add Microsoft Graph › Application permissions › {} to the app registration in the partner tenant and grant admin consent",
                partner::GDAP_PERMISSION
            ),
            "no_customers" => "Set up GDAP relationships with your customers in Partner Center; each is listed once its relationship is active".to_string(),
            _ => "Run the test again; if it persists, report it with this output".to_string(),
        };
        report.warnings.push(Problem {
            code: warning.code,
            message: warning.message,
            fix,
        });
    }
    let datasets: Vec<Dataset> = Dataset::ALL
        .into_iter()
        .filter(|d| *d == Dataset::Organization || connection.datasets.contains(d))
        .filter(|d| *d != Dataset::Audit)
        .collect();
    for customer in &customers.list {
        let name = &customer.display_name;
        let consent_url = partner::consent_url(connection, &customer.tenant_id);
        let mut check = CustomerCheck {
            tenant_id: customer.tenant_id.to_string(),
            display_name: name.clone(),
            state: "ok".into(),
            consent_url: None,
            granted_permissions: Vec::new(),
            missing_permissions: Vec::new(),
        };
        let customer_client = match crate::client::tenant_graph_client(
            connection,
            credential,
            retry.clone(),
            customer.tenant_id,
            None,
        ) {
            Ok(client) => client,
            Err(e) => {
                check.state = "certificate_unusable".into();
                report.problems.push(Problem {
                    code: "certificate_unusable".into(),
                    message: e.to_string(),
                    fix: "Save a usable key and certificate with `m365sync connection credential NAME --certificate FILE`".into(),
                });
                report.customers.push(check);
                continue;
            }
        };
        match customer_client.token().await {
            Ok(token) => {
                check.granted_permissions = token.roles.clone();
                check.missing_permissions = missing_permissions(&datasets, &token.roles)
                    .iter()
                    .map(|p| p.to_string())
                    .collect();
                if !check.missing_permissions.is_empty() {
                    check.state = "permission_missing".into();
                    check.consent_url = Some(consent_url.clone());
                    report.problems.push(Problem {
                        code: "permission_missing".into(),
                        message: format!(
                            "the app lacks {} in {name}",
                            check.missing_permissions.join(", ")
                        ),
                        fix: format!(
                            "Add them to the app registration, then have {name}'s admin consent again with this link: {consent_url}"
                        ),
                    });
                }
            }
            Err(error) if partner::needs_consent(&error) => {
                check.state = "app_not_consented".into();
                check.consent_url = Some(consent_url.clone());
                report.problems.push(Problem {
                    code: "app_not_consented".into(),
                    message: format!("the app is not consented in {name}"),
                    fix: format!("Send its admin this link: {consent_url}"),
                });
            }
            Err(error) => {
                let mut problem = credential_problem(credential, &error, now);
                check.state = problem.code.clone();
                problem.message = format!("{name}: {}", problem.message);
                report.problems.push(problem);
            }
        }
        report.customers.push(check);
    }
}

pub(crate) fn problem_from(error: &GraphError) -> Problem {
    let message = match error {
        GraphError::Token { description, .. } => description.clone(),
        other => other.to_string(),
    };
    Problem {
        code: error.code().to_string(),
        message,
        fix: error.fix(),
    }
}

/// Whether the tenant's reports conceal user names, where the app may read that setting.
async fn report_names_concealed(client: &graph::GraphClient, roles: &[String]) -> Option<bool> {
    let readable = roles
        .iter()
        .any(|r| r == "ReportSettings.Read.All" || r == "ReportSettings.ReadWrite.All");
    if !readable {
        return None;
    }
    client
        .get_json::<graph::models::ReportSettings>("v1.0/admin/reportSettings")
        .await
        .ok()
        .map(|s| s.display_concealed_names)
}

/// Shows (or conceals again) user names in the tenant's usage reports: the one change m365sync
/// makes in a tenant, and only when an administrator asks for it. Needs
/// ReportSettings.ReadWrite.All.
pub async fn set_report_names(
    store: &Store,
    connection: &Connection,
    show: bool,
    retry: RetryPolicy,
) -> Result<()> {
    let credential = store.connection_credential(connection).await?;
    let client = graph_client(connection, &credential, retry)?;
    client
        .patch_json(
            "v1.0/admin/reportSettings",
            &serde_json::json!({ "displayConcealedNames": !show }),
        )
        .await?;
    Ok(())
}
