//! Every way a call to Microsoft can fail, each with what it means and what to do.

use std::fmt;

/// What the token endpoint refused, by AADSTS code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// AADSTS90002: no such tenant in this cloud.
    TenantNotFound,
    /// AADSTS700016 (and 700011): no app with this client id in the directory.
    AppNotFound,
    /// AADSTS7000215: the secret is wrong.
    InvalidSecret,
    /// AADSTS7000222: the secret has expired.
    ExpiredSecret,
    /// AADSTS7000229: the app exists but was never consented in this tenant.
    AppNotConsented,
    /// AADSTS700027: the certificate is not registered on the app, has expired, or the signature
    /// does not verify.
    InvalidCertificate,
    /// AADSTS700021/700023/700024: the assertion names the wrong app or tenant, or the clock is off.
    AssertionRejected,
    /// AADSTS70011: the scope was refused.
    InvalidScope,
    /// Anything else the token endpoint said.
    Other,
}

impl TokenProblem {
    pub fn from_codes(codes: &[u64]) -> Self {
        for code in codes {
            let problem = match code {
                90002 => Self::TenantNotFound,
                700016 | 700011 => Self::AppNotFound,
                7000215 => Self::InvalidSecret,
                7000222 => Self::ExpiredSecret,
                7000229 => Self::AppNotConsented,
                700027 => Self::InvalidCertificate,
                700021 | 700023 | 700024 => Self::AssertionRejected,
                70011 => Self::InvalidScope,
                _ => continue,
            };
            return problem;
        }
        Self::Other
    }

    /// The stable code the connection test and the API report.
    pub fn code(self) -> &'static str {
        match self {
            Self::TenantNotFound => "tenant_not_found",
            Self::AppNotFound => "app_not_found",
            Self::InvalidSecret => "invalid_secret",
            Self::ExpiredSecret => "expired_secret",
            Self::AppNotConsented => "app_not_consented",
            Self::InvalidCertificate => "invalid_certificate",
            Self::AssertionRejected => "assertion_rejected",
            Self::InvalidScope => "invalid_scope",
            Self::Other => "token_refused",
        }
    }

    pub fn fix(self) -> &'static str {
        match self {
            Self::TenantNotFound => {
                "Check the Directory (tenant) ID in Entra admin center › Overview, and that the connection's cloud matches the tenant's (global, usgov, usgov-dod or china)"
            }
            Self::AppNotFound => {
                "Check the Application (client) ID in Entra admin center › App registrations, and that the app is registered in this tenant's cloud"
            }
            Self::InvalidSecret => {
                "Paste the secret's Value (shown once when it is created), not its Secret ID; create a new secret if the Value is lost"
            }
            Self::ExpiredSecret => {
                "Create a new client secret under App registrations › your app › Certificates & secrets and update the connection"
            }
            Self::AppNotConsented => {
                "A Global Administrator of this tenant must grant admin consent to the app (App registrations › API permissions › Grant admin consent, or the admin-consent URL)"
            }
            Self::InvalidCertificate => {
                "Upload the connection's certificate (its thumbprint is in `m365sync connection list`) under App registrations › your app › Certificates & secrets, or make a new one if it has expired, and update the connection"
            }
            Self::AssertionRejected => {
                "Check this machine's clock (a signed assertion is valid for ten minutes) and that the connection's tenant and client ids are the app registration's"
            }
            Self::InvalidScope => {
                "Check the connection's cloud: the Graph scope must belong to the same cloud as the login endpoint"
            }
            Self::Other => {
                "Read Microsoft's message above; the AADSTS code can be looked up at https://login.microsoftonline.com/error"
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("the token endpoint refused the request ({}): {description}", problem.code())]
    Token {
        problem: TokenProblem,
        status: u16,
        oauth_error: String,
        aadsts: Vec<u64>,
        description: String,
    },

    #[error("Microsoft Graph answered {status} {code} for {url}: {message}{}", request_id.as_deref().map(|id| format!(" (request-id {id})")).unwrap_or_default())]
    Api {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        url: String,
    },

    #[error(
        "{} after {attempts} attempts (last answer {last_status}) for {url}",
        if *last_status == 429 { "still throttled by Microsoft" } else { "Microsoft Graph was still unavailable" }
    )]
    Throttled {
        attempts: u32,
        last_status: u16,
        url: String,
    },

    #[error("could not reach {url}: {message}{}", if *attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() })]
    Unreachable {
        url: String,
        attempts: u32,
        message: String,
    },

    #[error("Microsoft sent something m365sync cannot read from {url}: {detail}")]
    Malformed { url: String, detail: String },

    #[error(
        "Microsoft Graph's answer links to {link}, outside the connection's Graph address {graph}; it was not followed"
    )]
    ForeignLink { link: String, graph: String },

    #[error("the TLS certificate of {url} is not trusted: {message}")]
    TlsUntrusted { url: String, message: String },

    #[error("the extra CA certificate is not usable: {0}")]
    BadCaCertificate(String),

    #[error("Microsoft Graph no longer knows the delta token ({code}) for {url}")]
    DeltaExpired { url: String, code: String },

    #[error("the report file could not be read: {detail}")]
    Report { detail: String },
}

impl GraphError {
    /// A stable, machine-readable code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Token { problem, .. } => problem.code(),
            _ if self.needs_premium() => "premium_required",
            Self::Api { status: 403, .. } => "permission_missing",
            Self::Api { status: 401, .. } => "unauthorized",
            Self::Api { .. } => "graph_error",
            Self::Throttled {
                last_status: 429, ..
            } => "throttled",
            Self::Throttled { .. } => "graph_unavailable",
            Self::ForeignLink { .. } => "foreign_link",
            Self::Unreachable { .. } => "unreachable",
            Self::Malformed { .. } => "malformed_response",
            Self::DeltaExpired { .. } => "delta_expired",
            Self::TlsUntrusted { .. } => "tls_untrusted",
            Self::BadCaCertificate(_) => "bad_ca_certificate",
            Self::Report { .. } => "report_unreadable",
        }
    }

    /// What a person can do about it.
    pub fn fix(&self) -> String {
        match self {
            Self::Token { problem, .. } => problem.fix().to_string(),
            _ if self.needs_premium() => "The tenant needs Microsoft Entra ID P1 or P2 (included in Microsoft 365 Business Premium, E3 and E5) for sign-in activity; without it, remove the sign_in_activity dataset from the connection".to_string(),
            Self::Api { status: 403, .. } => {
                "Add the missing application permission to the app registration and grant admin consent, then run `m365sync connection test`".to_string()
            }
            Self::Api { status: 401, .. } => "Grant admin consent for the app's application permissions, then try again".to_string(),
            Self::Api { request_id, .. } => format!(
                "Try again later; if it persists, give Microsoft support the request-id{}",
                request_id.as_deref().map(|id| format!(" {id}")).unwrap_or_default()
            ),
            Self::Throttled { last_status: 429, .. } => "Microsoft is limiting this app; run the sync later or less often".to_string(),
            Self::Throttled { .. } => "Microsoft Graph is having trouble: check the tenant's service health in the Microsoft 365 admin center (or https://status.cloud.microsoft) and run the sync again later".to_string(),
            Self::ForeignLink { graph, .. } => format!(
                "Something between this machine and Microsoft (a proxy or gateway) rewrites Graph's links: have it pass them unchanged, or set the connection's Graph URL to the address they name instead of {graph}"
            ),
            Self::Unreachable { .. } => {
                "Check the network, proxy and firewall between this machine and Microsoft, and the connection's cloud or custom URLs".to_string()
            }
            Self::DeltaExpired { .. } => "m365sync lists everything again; nothing to do".to_string(),
            Self::TlsUntrusted { .. } => {
                "If a proxy inspects TLS on this network, give its CA certificate with --ca-cert FILE (or M365SYNC_CA_CERT); otherwise check the connection's URLs".to_string()
            }
            Self::BadCaCertificate(_) => "Give a file of PEM certificates (-----BEGIN CERTIFICATE-----)".to_string(),
            Self::Malformed { .. } | Self::Report { .. } => {
                "Run the sync again; if it persists, report it with the run log".to_string()
            }
        }
    }

    /// Graph refused because the tenant lacks an Entra ID premium licence (sign-in activity).
    pub fn needs_premium(&self) -> bool {
        matches!(self, Self::Api { code, .. } if code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Token { status, .. }
            | Self::Api { status, .. }
            | Self::Throttled {
                last_status: status,
                ..
            } => Some(*status),
            _ => None,
        }
    }
}

/// Formats a Graph error body's parts; used to keep message text out of the error variants.
pub(crate) struct Excerpt<'a>(pub &'a str);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A body that is not JSON is Microsoft's text all the same: cleaned like the rest, it
        // can be shown and kept in the run log (where a NUL would fail the write).
        let text = crate::text::clean_str(self.0.trim());
        let text = text.trim();
        let cut: String = text.chars().take(300).collect();
        if cut.len() < text.len() {
            write!(f, "{cut}…")
        } else {
            f.write_str(&cut)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_of_a_body_that_is_not_json_is_cleaned_and_cut() {
        let body = "<html>bad\u{0}gateway\u{1b}[31m</html>";
        assert_eq!(Excerpt(body).to_string(), "<html>badgateway[31m</html>");
        let long = "é".repeat(400);
        let cut = Excerpt(&long).to_string();
        assert_eq!(cut.chars().count(), 301);
        assert!(cut.ends_with('…'));
    }
}
