//! Identifiers parsed at the edge: once you hold one, it is valid.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A value given by a person (flag, config, HTTP body) that is not acceptable, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}. {fix}")]
pub struct InputError {
    pub field: &'static str,
    pub problem: String,
    pub fix: String,
}

impl InputError {
    pub fn new(field: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

fn parse_guid(field: &'static str, raw: &str, fix: &str) -> Result<Uuid, InputError> {
    let trimmed = raw.trim().trim_start_matches('{').trim_end_matches('}');
    // Only the hyphenated 8-4-4-4-12 form is what Entra shows; reject the other forms uuid accepts
    // so that a truncated copy-paste is caught rather than silently reinterpreted.
    if trimmed.len() != 36 {
        return Err(InputError::new(
            field,
            format!("'{raw}' is not a GUID"),
            fix,
        ));
    }
    Uuid::parse_str(trimmed)
        .map_err(|_| InputError::new(field, format!("'{raw}' is not a GUID"), fix))
}

macro_rules! guid_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal, $fix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Uuid);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InputError> {
                parse_guid($field, raw, $fix).map(Self)
            }
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InputError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }

        impl std::str::FromStr for $name {
            type Err = InputError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::parse(raw)
            }
        }
    };
}

guid_newtype!(
    /// The Directory (tenant) ID of a Microsoft Entra tenant.
    TenantId,
    "tenant ID",
    "Copy the Directory (tenant) ID from Entra admin center › Overview, e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47"
);
guid_newtype!(
    /// The Application (client) ID of an app registration.
    ClientId,
    "client ID",
    "Copy the Application (client) ID from Entra admin center › App registrations › your app › Overview"
);
guid_newtype!(
    /// The immutable object id of a directory object (user, group, device).
    ObjectId,
    "object ID",
    "Object IDs are the GUIDs Microsoft Graph returns in `id`"
);

/// A user principal name, `alias@domain`. Compared case-insensitively, as Entra does.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Upn {
    original: String,
    folded: String,
}

impl Upn {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let trimmed = raw.trim();
        let fix = "A user principal name looks like alias@contoso.com";
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(InputError::new(
                "user principal name",
                format!("'{raw}' has no '@'"),
                fix,
            ));
        };
        if local.is_empty() || domain.is_empty() || trimmed.chars().any(char::is_whitespace) {
            return Err(InputError::new(
                "user principal name",
                format!("'{raw}' is not alias@domain"),
                fix,
            ));
        }
        Ok(Self {
            original: trimmed.to_string(),
            folded: trimmed.to_lowercase(),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.original
    }
    /// The case-folded form used to join reports and users.
    pub fn key(&self) -> &str {
        &self.folded
    }
    pub fn domain(&self) -> &str {
        self.folded
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default()
    }
    /// Guests invited from another directory carry `#EXT#` in their UPN.
    pub fn is_guest_form(&self) -> bool {
        self.folded.contains("#ext#")
    }
}

impl PartialEq for Upn {
    fn eq(&self, other: &Self) -> bool {
        self.folded == other.folded
    }
}
impl Eq for Upn {}
impl std::hash::Hash for Upn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.folded.hash(state)
    }
}
impl fmt::Debug for Upn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upn({})", self.original)
    }
}
impl fmt::Display for Upn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}
impl TryFrom<String> for Upn {
    type Error = InputError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}
impl From<Upn> for String {
    fn from(upn: Upn) -> String {
        upn.original
    }
}

/// True when a report value is one of the 32-hex-character pseudonyms that Microsoft 365 puts in
/// place of user names while the tenant conceals names in reports.
pub fn is_concealed_name(value: &str) -> bool {
    let value = value.trim();
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A licence's part number as Microsoft names it (`ENTERPRISEPACK`, `SPE_E3`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SkuPartNumber(String);

impl SkuPartNumber {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 128 || trimmed.chars().any(char::is_whitespace) {
            return Err(InputError::new(
                "SKU part number",
                format!("'{raw}' is not a part number"),
                "Part numbers are single words such as ENTERPRISEPACK",
            ));
        }
        Ok(Self(trimmed.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for SkuPartNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<String> for SkuPartNumber {
    type Error = InputError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}
impl From<SkuPartNumber> for String {
    fn from(p: SkuPartNumber) -> String {
        p.0
    }
}

/// A client secret's Value. Never printed: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let trimmed = raw.trim_end_matches(['\r', '\n']);
        if trimmed.trim().is_empty() {
            return Err(InputError::new(
                "client secret",
                "it is empty",
                "Paste the secret's Value from Entra admin center › App registrations › your app › Certificates & secrets",
            ));
        }
        Ok(Self(trimmed.to_string()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// A secret that has the shape of a GUID is almost always the Secret ID, pasted by mistake
    /// instead of the Value (which Entra shows once, and which is 40 characters with a `~`).
    pub fn looks_like_secret_id(&self) -> bool {
        self.0.trim().len() == 36 && uuid::Uuid::parse_str(self.0.trim()).is_ok()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// A certificate credential: the private key and certificate in PEM (sealed at rest, never shown)
/// and what may be shown of it — its SHA-1 thumbprint, as Entra lists it, and when it expires.
#[derive(Clone)]
pub struct CertificateCredential {
    pem: String,
    pub thumbprint: String,
    /// Seconds since 1970 (UTC).
    pub expires_at: i64,
}

impl CertificateCredential {
    /// The PEM is checked by whoever reads the certificate (the Graph client); here it is kept.
    pub fn new(pem: impl Into<String>, thumbprint: impl Into<String>, expires_at: i64) -> Self {
        Self {
            pem: pem.into(),
            thumbprint: thumbprint.into(),
            expires_at,
        }
    }
    pub fn pem(&self) -> &str {
        &self.pem
    }
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("thumbprint", &self.thumbprint)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// How a connection's app proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Secret(ClientSecret),
    Certificate(CertificateCredential),
}

impl Credential {
    /// `secret` or `certificate`, as stored and shown.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Secret(_) => "secret",
            Self::Certificate(_) => "certificate",
        }
    }
}

/// The name a person gives a connection: used on the command line, so kept simple.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionName(String);

impl ConnectionName {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && raw
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(InputError::new(
                "connection name",
                format!("'{raw}' is not a valid name"),
                "Use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit, e.g. contoso-prod",
            ));
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for ConnectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<String> for ConnectionName {
    type Error = InputError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}
impl From<ConnectionName> for String {
    fn from(n: ConnectionName) -> String {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_id_accepts_guid_and_braces_and_rejects_junk() {
        let id = TenantId::parse(" {72F988BF-86F1-41AF-91AB-2D7CD011DB47} ").unwrap();
        assert_eq!(id.to_string(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
        let err = TenantId::parse("contoso.onmicrosoft.com").unwrap_err();
        assert_eq!(err.field, "tenant ID");
        assert!(err.to_string().contains("Directory (tenant) ID"));
        assert!(TenantId::parse("72f988bf86f141af91ab2d7cd011db47").is_err());
    }

    #[test]
    fn upn_compares_case_insensitively_and_spots_guests() {
        let a = Upn::parse("Zoë.Müller@Contoso.com").unwrap();
        let b = Upn::parse("zoë.müller@contoso.COM").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Zoë.Müller@Contoso.com");
        assert_eq!(a.domain(), "contoso.com");
        assert!(
            Upn::parse("ann_gmail.com#EXT#@contoso.onmicrosoft.com")
                .unwrap()
                .is_guest_form()
        );
        assert!(Upn::parse("no-at-sign").is_err());
        assert!(Upn::parse("@contoso.com").is_err());
    }

    #[test]
    fn concealed_names_are_32_hex_characters() {
        assert!(is_concealed_name("FE7CC8C15246EDCCA289C9A4022762F7"));
        assert!(!is_concealed_name("FE7CC8C15246EDCCA289C9A4022762F"));
        assert!(!is_concealed_name("ann@contoso.com"));
    }

    #[test]
    fn secret_id_shape_is_detected_and_debug_redacts() {
        let id = ClientSecret::parse("3d2b1c0a-1111-4222-8333-944455556666").unwrap();
        assert!(id.looks_like_secret_id());
        let value = ClientSecret::parse("Abc8Q~abcdefghijklmnopqrstuvwxyz0123456789\n").unwrap();
        assert!(!value.looks_like_secret_id());
        assert_eq!(value.expose(), "Abc8Q~abcdefghijklmnopqrstuvwxyz0123456789");
        assert_eq!(format!("{value:?}"), "ClientSecret(<redacted>)");
        assert!(ClientSecret::parse("  \n").is_err());
    }

    #[test]
    fn connection_names_are_command_line_friendly() {
        assert!(ConnectionName::parse("contoso-prod").is_ok());
        assert!(ConnectionName::parse("-x").is_err());
        assert!(ConnectionName::parse("a b").is_err());
        assert!(ConnectionName::parse("").is_err());
    }
}
