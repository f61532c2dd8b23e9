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
            login_url: check_base_url("--login-url", login_url)?,
            graph_url: check_base_url("--graph-url", graph_url)?,
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

/// Checks a custom base URL (`--login-url`, `--graph-url`): http(s), a host, and nothing that
/// would ride along on every request or be printed back. A query or a fragment would break every
/// path joined onto it, and `user:password@` would be saved and shown by `connection list`, so
/// both are refused here, where every caller gets the rule. Neither is echoed back: a query may
/// hold a key as a user part may hold a password.
fn check_base_url(option: &'static str, raw: &str) -> Result<String, InputError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let parsed = url::Url::parse(trimmed)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    let Some(url) = parsed.filter(|_| !trimmed.contains(char::is_whitespace)) else {
        let problem = if raw.contains('@') {
            "the value is not an http(s) URL".to_string()
        } else {
            format!("'{raw}' is not an http(s) URL")
        };
        return Err(InputError::new(
            option,
            problem,
            "Give the base URL only, e.g. https://login.microsoftonline.com or http://127.0.0.1:8400",
        ));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InputError::new(
            option,
            "the URL carries a user name or password, which would be saved and shown back",
            "Give the base URL without user:password@; m365sync signs in with the connection's credential",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InputError::new(
            option,
            "the URL has a query or a fragment, which would break every request made under it",
            "Give the base URL only, without ?… or #…, e.g. http://127.0.0.1:8400",
        ));
    }
    if trimmed.contains('\\') {
        return Err(InputError::new(
            option,
            "the URL has a backslash, which URL readers take for a slash, so it would name another host than it seems to",
            "Give the base URL with forward slashes only, e.g. http://127.0.0.1:8400",
        ));
    }
    // What is saved is the URL as it is read, not as it was typed: the two never differ.
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_is_saved_as_it_is_read() {
        let err =
            Cloud::custom("http://127.0.0.1:9", r"http://evil.example\@127.0.0.1").unwrap_err();
        assert!(err.to_string().contains("backslash"), "{err}");
        let Cloud::Custom { graph_url, .. } =
            Cloud::custom("http://127.0.0.1:9", "HTTP://LocalHost:8400/").unwrap()
        else {
            panic!("a custom cloud");
        };
        assert_eq!(graph_url, "http://localhost:8400");
    }

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
        assert!(Cloud::custom("ftp://127.0.0.1", "http://x").is_err());
        assert!(Cloud::custom("http://", "http://x").is_err());
        assert!(Cloud::custom("http://a b", "http://x").is_err());
        let https = Cloud::custom(
            "https://proxy.example/login",
            "https://proxy.example/graph/",
        )
        .unwrap();
        assert_eq!(https.endpoints().graph, "https://proxy.example/graph");
    }

    #[test]
    fn a_base_url_with_a_query_or_fragment_is_refused_naming_the_option() {
        for graph in [
            "http://host/?x=1#y",
            "http://host?x=1",
            "http://host/v1.0?",
            "http://host#y",
            "http://host/#",
        ] {
            let e = Cloud::custom("http://127.0.0.1:9000", graph).unwrap_err();
            assert_eq!(e.field, "--graph-url", "{graph}");
            assert!(e.to_string().contains("without ?… or #…"), "{graph}: {e}");
        }
        let e = Cloud::custom("http://host/?tenant=x", "http://127.0.0.1:9000").unwrap_err();
        assert_eq!(e.field, "--login-url");
    }

    #[test]
    fn a_base_url_with_credentials_is_refused_without_echoing_them() {
        for login in [
            "http://admin:hunter2@127.0.0.1:9000",
            "https://admin:hunter2@proxy.example/",
            "http://admin@127.0.0.1:9000",
            "http://:hunter2@127.0.0.1:9000",
        ] {
            let e = Cloud::custom(login, "http://127.0.0.1:9000").unwrap_err();
            assert_eq!(e.field, "--login-url", "{login}");
            assert!(e.to_string().contains("user:password@"), "{login}: {e}");
            assert!(!e.to_string().contains("hunter2"), "{login}: {e}");
        }
        // Not even when the rest of the value is not a URL.
        let e = Cloud::custom("http://admin:hunter2@", "http://127.0.0.1:9000").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
