//! `http_fetch`: allowlisted hosts only, with the addresses checked after resolution.
//!
//! Rules, in order:
//! - the URL is `http` or `https`, and its host (and port, when the rule has one) matches a
//!   granted rule: `api.example.com`, `*.example.com`, `127.0.0.1:8080`, `[::1]:8080`;
//! - every address the host resolves to must be public. Loopback, private, shared (CGNAT),
//!   link-local, multicast and unspecified addresses are reachable only when the rule names
//!   that address as an IP literal; a host *name* resolving to one is always refused, which
//!   stops DNS rebinding. Cloud metadata addresses are refused whatever the rules say;
//! - the connection goes to the vetted addresses (reqwest is told them, so it does not
//!   resolve again), without proxies and without following redirects;
//! - plain `http` only to an explicitly allowed loopback address; otherwise `https`;
//! - the response is cut off at [`MAX_RESPONSE_BYTES`] and the whole exchange at the
//!   earlier of [`FETCH_TIMEOUT`] and the run's deadline.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// Lower-case host; for a wildcard, the suffix after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
    ip: Option<IpAddr>,
}

impl HostRule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let bad = |why: &str| format!("'{text}' is not a host rule: {why}");
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if text.contains("://") || text.contains('/') || text.contains('@') {
            return Err(bad("give a host (and port), not a URL"));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| bad("bad port"))?),
                None if after.is_empty() => None,
                None => return Err(bad("junk after ']'")),
            };
            (h.to_string(), port)
        } else if text.matches(':').count() > 1 {
            (text.clone(), None) // a bare IPv6 address
        } else if let Some((h, p)) = text.split_once(':') {
            (
                h.to_string(),
                Some(p.parse::<u16>().map_err(|_| bad("bad port"))?),
            )
        } else {
            (text.clone(), None)
        };
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(suffix) => (suffix.to_string(), true),
            None => (host, false),
        };
        if host.is_empty() || host.contains('*') {
            return Err(bad("wildcards are only allowed as a leading '*.'"));
        }
        if wildcard && !host.contains('.') {
            return Err(bad("a wildcard must keep at least a registrable domain"));
        }
        let ip = if wildcard {
            None
        } else {
            host.parse::<IpAddr>().ok()
        };
        Ok(HostRule {
            host,
            wildcard,
            port,
            ip,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        if self.wildcard {
            host.strip_suffix(self.host.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1)
        } else {
            host == self.host
        }
    }

    /// Whether everything `other` allows, `self` allows too.
    pub fn covers(&self, other: &HostRule) -> bool {
        let port_ok = match (self.port, other.port) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        if !port_ok {
            return false;
        }
        match (self.wildcard, other.wildcard) {
            (false, false) => self.host == other.host,
            (false, true) => false,
            (true, _) => {
                other.host == self.host && other.wildcard
                    || other
                        .host
                        .strip_suffix(self.host.as_str())
                        .is_some_and(|p| p.ends_with('.') && p.len() > 1)
            }
        }
    }
}

/// The granted allowlist of one run.
#[derive(Debug, Clone, Default)]
pub struct HttpPolicy {
    rules: Vec<HostRule>,
}

impl HttpPolicy {
    pub fn from_grants(hosts: &[String]) -> Self {
        Self {
            rules: hosts
                .iter()
                .filter_map(|h| HostRule::parse(h).ok())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchResponse {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Denied(String),
    #[error("the response exceeds {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Failed(String),
}

/// Why an address may not be reached without an explicit IP rule, if it may not.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address inside.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let embedded =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return non_public_v4(embedded);
            }
            if s[0] == 0x2002 {
                let embedded =
                    Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                return non_public_v4(embedded);
            }
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("a private (unique local) address")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

fn non_public_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = v4.octets();
    if v4.is_loopback() {
        Some("a loopback address")
    } else if v4.is_private() {
        Some("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if v4.is_link_local() {
        Some("a link-local address")
    } else if v4.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else {
        None
    }
}

/// Cloud instance metadata endpoints: credentials live there. Never reachable.
fn is_metadata(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    ip == IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))
        || ip == IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200))
        || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
}

/// A URL's vetted destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// Apply the rules to `url`; `resolve` turns a host name and port into addresses.
pub fn vet(
    policy: &HttpPolicy,
    url: &reqwest::Url,
    resolve: &dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>,
) -> Result<Destination, FetchError> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(FetchError::Denied(format!(
            "scheme '{scheme}' is not allowed; use https"
        )));
    }
    let host_str = url
        .host_str()
        .ok_or_else(|| FetchError::Denied("the URL has no host".into()))?
        .to_ascii_lowercase();
    let host = host_str
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| FetchError::Denied("the URL has no port".into()))?;
    let rules: Vec<&HostRule> = policy
        .rules
        .iter()
        .filter(|r| r.matches(&host, port))
        .collect();
    if rules.is_empty() {
        return Err(FetchError::Denied(format!(
            "{host}:{port} is not on this tool's allowlist"
        )));
    }
    let literal = host.parse::<IpAddr>().ok();
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => resolve(&host, port)
            .map_err(|e| FetchError::Failed(format!("cannot resolve {host}: {e}")))?,
    };
    if addrs.is_empty() {
        return Err(FetchError::Failed(format!("{host} resolves to no address")));
    }
    let mut loopback_only = true;
    for addr in &addrs {
        let ip = addr.ip();
        if is_metadata(ip) {
            return Err(FetchError::Denied(format!(
                "{host} is a cloud metadata address ({ip}); tools never reach it"
            )));
        }
        loopback_only &= ip.is_loopback()
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
        if let Some(why) = non_public(ip) {
            let explicit = literal == Some(ip) && rules.iter().any(|r| r.ip == Some(ip));
            if !explicit {
                return Err(FetchError::Denied(match literal {
                    Some(_) => {
                        format!("{ip} is {why}; allow it by naming it as an IP in the allowlist")
                    }
                    None => format!(
                        "{host} resolves to {ip}, {why}; a host name never leads to a \
                         non-public address (name the IP in the allowlist if you mean it)"
                    ),
                }));
            }
        }
    }
    if scheme == "http" && !(literal.is_some() && loopback_only) {
        return Err(FetchError::Denied(format!(
            "plain http to {host} is not allowed; use https (http is only for an explicitly \
             allowed loopback address)"
        )));
    }
    Ok(Destination { host, addrs })
}

fn system_resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// Fetch under `policy`, giving up at `deadline`. Blocking: runs its own small runtime so it
/// works from any backend's thread.
pub fn fetch(
    policy: &HttpPolicy,
    request: &FetchRequest,
    deadline: Instant,
) -> Result<FetchResponse, FetchError> {
    let url = reqwest::Url::parse(&request.url)
        .map_err(|e| FetchError::Denied(format!("'{}' is not a URL: {e}", request.url)))?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(FetchError::Failed("the run's deadline has passed".into()));
    }
    let timeout = remaining.min(FETCH_TIMEOUT);
    // Resolution counts against the time too; a slow resolver cannot hold the tool.
    let destination = {
        let (tx, rx) = std::sync::mpsc::channel();
        let (policy, url2) = (policy.clone(), url.clone());
        std::thread::spawn(move || {
            let _ = tx.send(vet(&policy, &url2, &system_resolve));
        });
        rx.recv_timeout(timeout)
            .map_err(|_| FetchError::Failed("name resolution timed out".into()))??
    };
    let method = reqwest::Method::from_bytes(
        request
            .method
            .as_deref()
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_bytes(),
    )
    .map_err(|_| FetchError::Failed("bad HTTP method".into()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| FetchError::Failed(format!("cannot start the HTTP runtime: {e}")))?;
    runtime.block_on(async move {
        let client = crate::net::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .resolve_to_addrs(&destination.host, &destination.addrs)
            .timeout(timeout)
            .build()
            .map_err(|e| FetchError::Failed(format!("cannot build the HTTP client: {e}")))?;
        let mut builder = client.request(method, url);
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("host") {
                return Err(FetchError::Denied(
                    "a tool may not set the Host header".into(),
                ));
            }
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| FetchError::Failed(without_url(e)))?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(FetchError::TooLarge(MAX_RESPONSE_BYTES));
        }
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Failed(without_url(e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(FetchError::TooLarge(MAX_RESPONSE_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchResponse {
            status,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    })
}

/// reqwest errors quote the URL, which may carry a key in its query.
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> HttpPolicy {
        HttpPolicy::from_grants(&hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
    }

    fn fake(
        ips: &'static [&'static str],
    ) -> impl Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> {
        move |_, port| {
            Ok(ips
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
                .collect())
        }
    }

    fn check(
        p: &HttpPolicy,
        url: &str,
        ips: &'static [&'static str],
    ) -> Result<Destination, FetchError> {
        vet(p, &reqwest::Url::parse(url).unwrap(), &fake(ips))
    }

    #[test]
    fn allowlisted_public_https_passes() {
        let p = policy(&["api.example.com", "*.example.org"]);
        let d = check(&p, "https://api.example.com/v1", &["93.184.216.34"]).unwrap();
        assert_eq!(d.addrs[0].port(), 443);
        assert!(check(&p, "https://a.b.example.org/", &["93.184.216.34"]).is_ok());
        assert!(matches!(
            check(&p, "https://example.org/", &["93.184.216.34"]),
            Err(FetchError::Denied(_))
        ));
        assert!(matches!(
            check(&p, "https://other.com/", &["93.184.216.34"]),
            Err(FetchError::Denied(_))
        ));
        assert!(matches!(
            check(&p, "http://api.example.com/", &["93.184.216.34"]),
            Err(FetchError::Denied(m)) if m.contains("https")
        ));
        assert!(matches!(
            check(&p, "file:///etc/passwd", &[]),
            Err(FetchError::Denied(_))
        ));
    }

    #[test]
    fn rebinding_to_private_or_loopback_is_refused() {
        let p = policy(&["api.example.com", "*.example.com"]);
        for ips in [
            &["10.0.0.5"][..],
            &["127.0.0.1"],
            &["93.184.216.34", "192.168.1.1"],
            &["::1"],
            &["::ffff:10.1.2.3"],
            &["fd12::1"],
            &["64:ff9b::a00:1"],
            &["100.64.1.1"],
        ] {
            let ips: &'static [&'static str] = Box::leak(ips.to_vec().into_boxed_slice());
            assert!(
                matches!(
                    check(&p, "https://api.example.com/", ips),
                    Err(FetchError::Denied(_))
                ),
                "{ips:?}"
            );
        }
    }

    #[test]
    fn metadata_is_never_reachable_even_when_named() {
        let p = policy(&["169.254.169.254", "metadata.example.com", "[fd00:ec2::254]"]);
        assert!(matches!(
            check(&p, "http://169.254.169.254/latest/meta-data/", &[]),
            Err(FetchError::Denied(m)) if m.contains("metadata")
        ));
        assert!(matches!(
            check(&p, "https://metadata.example.com/", &["169.254.169.254"]),
            Err(FetchError::Denied(_))
        ));
        assert!(matches!(
            check(&p, "http://[fd00:ec2::254]/", &[]),
            Err(FetchError::Denied(_))
        ));
    }

    #[test]
    fn loopback_needs_an_explicit_ip_rule_and_then_allows_http() {
        let open = policy(&["*.example.com", "localhost"]);
        assert!(check(&open, "http://127.0.0.1:8080/", &[]).is_err());
        assert!(matches!(
            check(&open, "http://localhost:8080/", &["127.0.0.1"]),
            Err(FetchError::Denied(_))
        ));
        let explicit = policy(&["127.0.0.1:8080"]);
        assert!(check(&explicit, "http://127.0.0.1:8080/x", &[]).is_ok());
        assert!(
            check(&explicit, "http://127.0.0.1:9090/x", &[]).is_err(),
            "port"
        );
        let private = policy(&["10.0.0.7"]);
        assert!(check(&private, "https://10.0.0.7/", &[]).is_ok());
        assert!(matches!(
            check(&private, "http://10.0.0.7/", &[]),
            Err(FetchError::Denied(_))
        ));
    }

    #[test]
    fn rules_parse_and_cover() {
        for bad in [
            "",
            "https://x.com",
            "*",
            "*.com",
            "a.*.com",
            "x.com/path",
            "x.com:99999",
        ] {
            assert!(HostRule::parse(bad).is_err(), "{bad}");
        }
        let wide = HostRule::parse("*.example.com").unwrap();
        assert!(wide.covers(&HostRule::parse("api.example.com:443").unwrap()));
        assert!(wide.covers(&HostRule::parse("*.eu.example.com").unwrap()));
        assert!(!wide.covers(&HostRule::parse("example.com").unwrap()));
        let exact = HostRule::parse("api.example.com:443").unwrap();
        assert!(!exact.covers(&HostRule::parse("api.example.com").unwrap()));
        assert!(!exact.covers(&HostRule::parse("*.example.com").unwrap()));
    }
}
