//! Which requests the server answers. Until there are logins, the only thing that keeps another
//! web site's pages from reading the store through a visitor's browser (DNS rebinding) is the
//! `Host` a request names: it must be the address the connection reached, `localhost` on
//! loopback, or a public name the operator configured.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// The local address a connection was accepted on, set on every request by the server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionAddr(pub(crate) SocketAddr);

/// A host the server answers for beside its own address: `NAME` on any port, or only
/// `NAME:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicName {
    host: Host,
    port: Option<u16>,
}

impl FromStr for PublicName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let authority = HostPort::parse(text).ok_or_else(|| {
            format!(
                "'{text}' is not a host name with an optional port; give one such as contacts.example.com or contacts.example.com:8443"
            )
        })?;
        if authority.port == Some(0) {
            return Err(format!(
                "'{text}' names port 0; give the port browsers use, such as contacts.example.com:8443, or none"
            ));
        }
        Ok(Self {
            host: authority.host,
            port: authority.port,
        })
    }
}

impl fmt::Display for PublicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    /// A DNS name, in lower case.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// A `Host` header's value (or a request target's authority): a host and an optional port.
#[derive(Debug, PartialEq, Eq)]
struct HostPort {
    host: Host,
    port: Option<u16>,
}

impl HostPort {
    fn parse(text: &str) -> Option<Self> {
        // An authority may carry user information (`user@host`); a Host header never does.
        if text.contains('@') || text.ends_with(':') {
            return None;
        }
        let authority = Authority::from_str(text).ok()?;
        let host = authority.host();
        let host = if let Some(inner) = host.strip_prefix('[') {
            Host::Ip(IpAddr::V6(
                inner.strip_suffix(']')?.parse::<Ipv6Addr>().ok()?,
            ))
        } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
            Host::Ip(IpAddr::V4(ip))
        } else if is_dns_name(host) {
            Host::Name(host.to_ascii_lowercase())
        } else {
            return None;
        };
        // Whatever follows the host is `:PORT`, digits only (`+8080` is no port a browser sends);
        // a port out of range reads as none, so refuse it here.
        let port = authority.port_u16();
        let digits = authority.port().map(|p| p.as_str().to_string());
        if digits.is_some_and(|d| d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        if port.is_none() && authority.as_str().len() > authority.host().len() {
            return None;
        }
        Some(Self { host, port })
    }
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The hosts the server answers for.
#[derive(Debug)]
pub(crate) struct Access {
    public_names: Vec<PublicName>,
}

impl Access {
    pub(crate) fn new(public_names: Vec<PublicName>) -> Self {
        Self { public_names }
    }

    fn allows(&self, local: Option<SocketAddr>, requested: &HostPort) -> bool {
        if let Some(local) = local {
            let local_ip = local.ip().to_canonical();
            // A Host without a port means the scheme's default: only port 80 here.
            let same_port = requested.port.unwrap_or(80) == local.port();
            let same_host = match &requested.host {
                Host::Ip(ip) => {
                    let ip = ip.to_canonical();
                    ip == local_ip || (local_ip.is_loopback() && ip.is_loopback())
                }
                Host::Name(name) => local_ip.is_loopback() && name == "localhost",
            };
            if same_port && same_host {
                return true;
            }
        }
        self.public_names.iter().any(|name| {
            name.host == requested.host && name.port.is_none_or(|port| requested.port == Some(port))
        })
    }

    /// Lets the request through, or says why not.
    fn judge(&self, local: Option<SocketAddr>, request: &Request) -> Result<(), Refusal> {
        let mut hosts = request.headers().get_all(header::HOST).iter();
        let (Some(host), None) = (hosts.next(), hosts.next()) else {
            return Err(if request.headers().contains_key(header::HOST) {
                Refusal::Malformed("several Host headers".to_string())
            } else {
                Refusal::Missing
            });
        };
        let mut named = vec![shown(host)];
        // A request target in absolute form (`GET http://host/ HTTP/1.1`) names a host too.
        if let Some(authority) = request.uri().authority() {
            named.push(authority.as_str().to_string());
        }
        for text in named {
            let Some(requested) = HostPort::parse(&text) else {
                return Err(Refusal::Malformed(text));
            };
            if !self.allows(local, &requested) {
                return Err(Refusal::Foreign(text));
            }
        }
        Ok(())
    }
}

/// A Host header as it may be repeated in an answer: visible ASCII, and not too long.
fn shown(value: &HeaderValue) -> String {
    let text = value.to_str().unwrap_or("(not readable text)");
    text.chars().take(100).collect()
}

enum Refusal {
    Missing,
    Malformed(String),
    Foreign(String),
}

impl Refusal {
    fn into_response(self, local: Option<SocketAddr>, path: &str) -> Response {
        let own = match local {
            Some(local) => format!("http://{local}/"),
            None => "the address m365sync prints on start".to_string(),
        };
        let (status, code, message) = match self {
            Refusal::Missing => (
                StatusCode::BAD_REQUEST,
                "bad_host",
                format!(
                    "The request names no host; send a Host header, as every HTTP/1.1 client does, or open {own} in a browser."
                ),
            ),
            Refusal::Malformed(text) => (
                StatusCode::BAD_REQUEST,
                "bad_host",
                format!(
                    "The host '{text}' is not a host name with an optional port; open {own} instead."
                ),
            ),
            Refusal::Foreign(text) => (
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected",
                format!(
                    "m365sync does not answer for the host '{text}'; open {own} instead, or start m365sync with --public-name {text} to allow that name."
                ),
            ),
        };
        crate::refusal(path, status, code, message)
    }
}

/// Middleware: answers only requests whose Host the server may answer for.
pub(crate) async fn check_host(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let local = request
        .extensions()
        .get::<ConnectionAddr>()
        .map(|addr| addr.0);
    match access.judge(local, &request) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(local, request.uri().path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> HostPort {
        HostPort::parse(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    fn loopback(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn own_loopback_addresses_pass_on_the_same_port_only() {
        let access = Access::new(Vec::new());
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LocalHost:8080",
            "[::1]:8080",
        ] {
            assert!(access.allows(loopback(8080), &host(ok)), "{ok}");
        }
        for refused in [
            "127.0.0.1:8081",
            "localhost",
            "evil.example:8080",
            "localhost.evil.example:8080",
            "192.168.1.10:8080",
        ] {
            assert!(!access.allows(loopback(8080), &host(refused)), "{refused}");
        }
        assert!(access.allows(loopback(80), &host("localhost")));
        for odd in ["localhost:+8080", "localhost:08080x", "localhost: 8080"] {
            assert!(HostPort::parse(odd).is_none(), "{odd}");
        }
    }

    #[test]
    fn a_concrete_address_passes_as_itself() {
        let access = Access::new(Vec::new());
        let lan = Some(SocketAddr::from(([192, 168, 1, 10], 8080)));
        assert!(access.allows(lan, &host("192.168.1.10:8080")));
        assert!(!access.allows(lan, &host("localhost:8080")));
        assert!(!access.allows(lan, &host("127.0.0.1:8080")));
        let mapped: SocketAddr = "[::ffff:192.168.1.10]:8080".parse().unwrap();
        assert!(access.allows(Some(mapped), &host("192.168.1.10:8080")));
    }

    #[test]
    fn public_names_pass_on_any_port_or_the_one_given() {
        let access = Access::new(vec![
            "Contacts.Example.com".parse().unwrap(),
            "m365.example:8443".parse().unwrap(),
        ]);
        for ok in [
            "contacts.example.com",
            "contacts.example.com:443",
            "m365.example:8443",
        ] {
            assert!(access.allows(loopback(8080), &host(ok)), "{ok}");
        }
        for refused in ["m365.example", "m365.example:8080", "example.com"] {
            assert!(!access.allows(loopback(8080), &host(refused)), "{refused}");
        }
        assert!(!access.allows(None, &host("127.0.0.1:8080")));
    }

    #[test]
    fn public_names_are_host_names() {
        assert_eq!(
            "contacts.example.com:8443"
                .parse::<PublicName>()
                .unwrap()
                .to_string(),
            "contacts.example.com:8443"
        );
        assert_eq!("[::1]".parse::<PublicName>().unwrap().to_string(), "[::1]");
        for bad in [
            "",
            "user@host",
            "host:",
            "host:0",
            "host:99999",
            "ex ample.com",
            "http://example.com",
            "a..b",
            "-a.example",
        ] {
            let error = bad.parse::<PublicName>().unwrap_err();
            assert!(error.contains("contacts.example.com"), "{bad}: {error}");
        }
    }
}
