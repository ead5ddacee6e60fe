//! `http_fetch`: allowlisted hosts only, with the addresses checked after resolution.
//!
//! Rules, in order:
//! - the URL is `http` or `https`, and its host (and port, when the rule has one) matches a
//!   granted rule: `api.example.com`, `*.example.com`, `127.0.0.1:8080`, `[::1]:8080`;
//! - every address the host resolves to must be public ([`non_public`]: IANA's special-purpose
//!   ranges, looked through every IPv6 form that embeds an IPv4 address). Others are
//!   reachable only when the rule names that address as an IP literal; a host *name*
//!   resolving to one is always refused, which stops DNS rebinding. Cloud metadata
//!   addresses are refused whatever the rules say, in any spelling;
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
        } else if let Some(ip) = self.ip {
            // IPv6 has many spellings of one address (the URL parser rewrites embedded
            // dotted quads as hex): compare addresses, not text.
            host.parse::<IpAddr>().is_ok_and(|h| h == ip)
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

fn v4_at(v6: Ipv6Addr, byte: usize) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[byte], o[byte + 1], o[byte + 2], o[byte + 3])
}

/// The IPv4 addresses an IPv6 address carries, in every form that embeds one: IPv4-mapped
/// (`::ffff:0:0/96`), SIIT (`::ffff:0:0:0/96`), IPv4-compatible (`::/96`, not `::` or `::1`),
/// NAT64 well-known (`64:ff9b::/96`) and local-use (`64:ff9b:1::/48`, at every RFC 6052 prefix
/// length, since the translator's choice cannot be known), 6to4 (`2002::/16`) and Teredo
/// (`2001::/32`: the server, and the client with its bits inverted). Every check looks
/// through these, so no spelling of an address reaches what its plain form may not.
pub fn embedded_v4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) && !(s[5] == 0 && s[6] == 0) {
        // Mapped, or compatible (whose /96 also holds `::` and `::1`, excluded above as
        // long as the upper half is zero; `::0.0.x.y` is still reserved below).
        return vec![v4_at(v6, 12)];
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        return vec![v4_at(v6, 12)];
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return vec![v4_at(v6, 12)];
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // RFC 6052 section 2.2: bits 64..72 (octet 8) are never part of the address.
        let pick = |idx: [usize; 4]| Ipv4Addr::new(o[idx[0]], o[idx[1]], o[idx[2]], o[idx[3]]);
        return vec![
            pick([4, 5, 6, 7]),    // /32
            pick([5, 6, 7, 9]),    // /40
            pick([6, 7, 9, 10]),   // /48
            pick([7, 9, 10, 11]),  // /56
            pick([9, 10, 11, 12]), // /64
            v4_at(v6, 12),         // /96
        ];
    }
    if s[0] == 0x2002 {
        return vec![v4_at(v6, 2)];
    }
    if s[0] == 0x2001 && s[1] == 0 {
        let c = v4_at(v6, 12).octets();
        return vec![v4_at(v6, 4), Ipv4Addr::new(!c[0], !c[1], !c[2], !c[3])];
    }
    Vec::new()
}

/// Why an address may not be reached without an explicit IP rule, if it may not: every
/// range of IANA's IPv4 and IPv6 special-purpose registries that is not globally reachable,
/// multicast, IPv6 outside global unicast (`2000::/3`), and the deprecated site-local
/// `fec0::/10`. An IPv6 address embedding an IPv4 one is judged by that address too.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            for v4 in embedded_v4(v6) {
                if let Some(why) = non_public_v4(v4) {
                    return Some(why);
                }
            }
            non_public_v6(v6)
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// IANA IPv4 special-purpose ranges that are not globally reachable, plus multicast.
fn non_public_v4(v4: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 0, 0, 0], 24, "an IETF protocol assignment"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 88, 99, 0], 24, "a deprecated 6to4 relay address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved or broadcast address"),
    ];
    // The registry marks these two of 192.0.0.0/24 globally reachable (PCP and TURN anycast).
    if v4 == Ipv4Addr::new(192, 0, 0, 9) || v4 == Ipv4Addr::new(192, 0, 0, 10) {
        return None;
    }
    RANGES
        .iter()
        .find(|(net, len, _)| in_v4(v4, *net, *len))
        .map(|(_, _, why)| *why)
}

/// IANA IPv6 special-purpose ranges that are not globally reachable, and everything outside
/// global unicast; forms embedding IPv4 are looked through first by [`non_public`].
fn non_public_v6(v6: Ipv6Addr) -> Option<&'static str> {
    let net = |text: &str| text.parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::UNSPECIFIED);
    // IPv4-mapped and SIIT-translated addresses are IPv4 on the wire: judged as that alone.
    // So are NAT64 well-known addresses (inside ::/8, which is otherwise reserved).
    if in_v6(v6, net("::ffff:0:0"), 96)
        || in_v6(v6, net("::ffff:0:0:0"), 96)
        || in_v6(v6, net("64:ff9b::"), 96)
    {
        return None;
    }
    // Inside 2001::/23 (IETF protocol assignments, not reachable) the registry marks these
    // globally reachable.
    const REACHABLE_2001: &[(&str, u32)] = &[
        ("2001:1::1", 128),
        ("2001:1::2", 128),
        ("2001:1::3", 128),
        ("2001:3::", 32),
        ("2001:4:112::", 48),
        ("2001:20::", 28),
        ("2001:30::", 28),
    ];
    const RANGES: &[(&str, u32, &str)] = &[
        ("::1", 128, "a loopback address"),
        ("::", 128, "the unspecified address"),
        ("::", 8, "a reserved address"),
        ("64:ff9b:1::", 48, "a local-use NAT64 address"),
        ("100::", 64, "a discard-only address"),
        ("100:0:0:1::", 64, "a dummy address"),
        ("2001:2::", 48, "a benchmarking address"),
        ("2001:10::", 28, "a deprecated ORCHID address"),
        ("2001:db8::", 32, "a documentation address"),
        ("3fff::", 20, "a documentation address"),
        ("5f00::", 16, "a segment routing (SRv6) address"),
        ("fc00::", 7, "a private (unique local) address"),
        ("fe80::", 10, "a link-local address"),
        ("fec0::", 10, "a site-local address"),
        ("ff00::", 8, "a multicast address"),
    ];
    if let Some((_, _, why)) = RANGES.iter().find(|(n, len, _)| in_v6(v6, net(n), *len)) {
        return Some(why);
    }
    if in_v6(v6, net("2001::"), 23)
        && !in_v6(v6, net("2001::"), 32)
        && !REACHABLE_2001
            .iter()
            .any(|(n, len)| in_v6(v6, net(n), *len))
    {
        return Some("an IETF protocol assignment");
    }
    if !in_v6(v6, net("2000::"), 3) {
        return Some("a reserved address");
    }
    None
}

/// Cloud instance metadata endpoints: credentials live there. Never reachable, in any
/// spelling (see [`embedded_v4`]).
pub fn is_metadata(ip: IpAddr) -> bool {
    const V4: [Ipv4Addr; 2] = [
        Ipv4Addr::new(169, 254, 169, 254),
        Ipv4Addr::new(100, 100, 100, 200),
    ];
    match ip {
        IpAddr::V4(v4) => V4.contains(&v4),
        IpAddr::V6(v6) => {
            v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || embedded_v4(v6).iter().any(|v4| V4.contains(v4))
        }
    }
}

/// Whether a connection to `ip` stays on this machine: `::1` and IPv4-mapped loopback do;
/// a 6to4 or NAT64 form of 127.0.0.1 goes out to a relay, so it does not.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
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
        loopback_only &= is_loopback(ip);
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
    let policy = policy.clone();
    fetch_with(request, deadline, move |url| {
        vet(&policy, url, &system_resolve)
    })
}

/// [`fetch`] with the vetting (and so the name resolution) given: one bound, the earlier of
/// [`FETCH_TIMEOUT`] and `deadline`, covers resolution and the exchange together.
fn fetch_with(
    request: &FetchRequest,
    deadline: Instant,
    vet: impl FnOnce(&reqwest::Url) -> Result<Destination, FetchError> + Send + 'static,
) -> Result<FetchResponse, FetchError> {
    let url = reqwest::Url::parse(&request.url)
        .map_err(|e| FetchError::Denied(format!("'{}' is not a URL: {e}", request.url)))?;
    let started = Instant::now();
    let until = deadline.min(started + FETCH_TIMEOUT);
    let remaining = || until.saturating_duration_since(Instant::now());
    if remaining().is_zero() {
        return Err(FetchError::Failed("the run's deadline has passed".into()));
    }
    // Resolution runs on its own thread so a slow resolver cannot hold the tool past the
    // bound; the exchange then gets only what is left of it.
    let destination = {
        let (tx, rx) = std::sync::mpsc::channel();
        let url2 = url.clone();
        std::thread::spawn(move || {
            let _ = tx.send(vet(&url2));
        });
        rx.recv_timeout(remaining())
            .map_err(|_| FetchError::Failed("name resolution timed out".into()))??
    };
    let timeout = remaining();
    if timeout.is_zero() {
        return Err(FetchError::Failed(
            "name resolution used the whole time".into(),
        ));
    }
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
mod tests;
