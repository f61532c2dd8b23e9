//! The Microsoft clouds a tenant can live in, and the hosts each one answers on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InputError;

/// Where a tenant lives. Apps are registered per cloud; a token from one is useless in another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cloud {
    Global,
    /// US Government GCC High (L4). GCC (moderate) tenants use `Global`.
    Usgov,
    /// US Government DoD (L5).
    UsgovDod,
    /// Microsoft 365 operated by 21Vianet.
    China,
    /// Any other login and Graph base: the bundled simulator, a proxy, a test double.
    Custom {
        login_url: String,
        graph_url: String,
    },
}

/// The base URLs of one cloud, without trailing slashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub login: String,
    pub graph: String,
}

impl Endpoints {
    /// The `.default` scope for app-only Graph tokens in this cloud. A custom Graph URL keeps the
    /// global resource, as a proxy in front of Microsoft Graph still serves Microsoft's audience.
    pub fn graph_scope(&self, cloud: &Cloud) -> String {
        match cloud {
            Cloud::Custom { .. } => "https://graph.microsoft.com/.default".to_string(),
            _ => format!("{}/.default", self.graph),
        }
    }
}

impl Cloud {
    pub const NAMES: [&'static str; 4] = ["global", "usgov", "usgov-dod", "china"];

    /// Parses `--cloud`; `custom` is chosen by giving the URLs instead.
    pub fn parse(name: &str) -> Result<Self, InputError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "global" | "public" | "commercial" | "gcc" => Ok(Self::Global),
            "usgov" | "gcchigh" | "gcc-high" => Ok(Self::Usgov),
            "usgov-dod" | "dod" => Ok(Self::UsgovDod),
            "china" | "21vianet" => Ok(Self::China),
            other => Err(InputError::new(
                "cloud",
                format!("'{other}' is not a cloud m365sync knows"),
                "Use one of global, usgov, usgov-dod, china, or give --login-url and --graph-url",
            )),
        }
    }

    pub fn custom(login_url: &str, graph_url: &str) -> Result<Self, InputError> {
        Ok(Self::Custom {
            login_url: check_base_url("login URL", login_url)?,
            graph_url: check_base_url("Graph URL", graph_url)?,
        })
    }

    pub fn endpoints(&self) -> Endpoints {
        let (login, graph) = match self {
            Self::Global => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Self::Usgov => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            Self::UsgovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            Self::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
            Self::Custom {
                login_url,
                graph_url,
            } => {
                return Endpoints {
                    login: login_url.clone(),
                    graph: graph_url.clone(),
                };
            }
        };
        Endpoints {
            login: login.to_string(),
            graph: graph.to_string(),
        }
    }

    /// The Office 365 Management Activity API's root (the audit feed), where the cloud has one
    /// m365sync knows; a custom cloud uses its Graph URL, as the simulator serves both.
    pub fn management_url(&self) -> Option<String> {
        match self {
            Self::Global => Some("https://manage.office.com".into()),
            Self::Usgov => Some("https://manage.office365.us".into()),
            Self::UsgovDod => Some("https://manage.protection.apps.mil".into()),
            Self::China => None,
            Self::Custom { graph_url, .. } => Some(graph_url.clone()),
        }
    }

    /// The scope of Management Activity API tokens.
    pub fn management_scope(&self) -> Option<String> {
        match self {
            Self::Custom { .. } => Some("https://manage.office.com/.default".into()),
            other => other.management_url().map(|url| format!("{url}/.default")),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Usgov => "usgov",
            Self::UsgovDod => "usgov-dod",
            Self::China => "china",
            Self::Custom { .. } => "custom",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Custom {
                login_url,
                graph_url,
            } => write!(f, "custom (login {login_url}, Graph {graph_url})"),
            other => f.write_str(other.name()),
        }
    }
}

fn check_base_url(field: &'static str, raw: &str) -> Result<String, InputError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let scheme_ok = trimmed.starts_with("https://") || trimmed.starts_with("http://");
    let host = trimmed.split("://").nth(1).unwrap_or_default();
    if !scheme_ok || host.is_empty() || trimmed.contains(char::is_whitespace) {
        return Err(InputError::new(
            field,
            format!("'{raw}' is not an http(s) URL"),
            "Give the base URL only, e.g. https://login.microsoftonline.com or http://127.0.0.1:8400",
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cloud_has_its_own_hosts() {
        assert_eq!(
            Cloud::parse("GCC-High").unwrap().endpoints().graph,
            "https://graph.microsoft.us"
        );
        assert_eq!(
            Cloud::parse("usgov-dod").unwrap().endpoints().graph,
            "https://dod-graph.microsoft.us"
        );
        let china = Cloud::parse("china").unwrap();
        assert_eq!(
            china.endpoints().graph_scope(&china),
            "https://microsoftgraph.chinacloudapi.cn/.default"
        );
        assert!(
            Cloud::parse("germany")
                .unwrap_err()
                .to_string()
                .contains("--login-url")
        );
    }

    #[test]
    fn custom_urls_are_checked_and_trimmed() {
        let c = Cloud::custom("http://127.0.0.1:9000/", "http://127.0.0.1:9000").unwrap();
        assert_eq!(c.endpoints().login, "http://127.0.0.1:9000");
        assert!(Cloud::custom("127.0.0.1:9000", "http://x").is_err());
    }
}
