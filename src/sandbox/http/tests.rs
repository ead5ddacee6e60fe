//! Tests of `http_fetch`'s checks: allowlist rules, special-purpose ranges, rebinding, metadata, the time bound.

use super::*;

fn policy(hosts: &[&str]) -> HttpPolicy {
    HttpPolicy::from_grants(&hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
}

fn fake(ips: &'static [&'static str]) -> impl Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> {
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

/// Every IANA special-purpose range (IPv4 and IPv6 registries) that is not globally
/// reachable, a globally reachable exception inside each, and ordinary public addresses.
#[test]
fn special_purpose_ranges_follow_the_iana_registries() {
    let table: &[(&str, bool)] = &[
        ("0.0.0.0", false),
        ("0.1.2.3", false),
        ("10.255.0.1", false),
        ("100.64.0.1", false),
        ("100.127.255.254", false),
        ("100.128.0.1", true),
        ("127.0.0.1", false),
        ("127.255.255.255", false),
        ("169.254.1.1", false),
        ("172.16.0.1", false),
        ("172.31.255.255", false),
        ("172.32.0.1", true),
        ("192.0.0.1", false),
        ("192.0.0.8", false),
        ("192.0.0.170", false),
        ("192.0.0.9", true),
        ("192.0.0.10", true),
        ("192.0.2.1", false),
        ("192.31.196.1", true),
        ("192.52.193.1", true),
        ("192.88.99.1", false),
        ("192.168.1.1", false),
        ("192.175.48.1", true),
        ("198.18.0.1", false),
        ("198.19.255.255", false),
        ("198.20.0.1", true),
        ("198.51.100.7", false),
        ("203.0.113.9", false),
        ("224.0.0.1", false),
        ("239.255.255.255", false),
        ("240.0.0.1", false),
        ("255.255.255.255", false),
        ("8.8.8.8", true),
        ("93.184.216.34", true),
        ("::1", false),
        ("::", false),
        ("::2", false),
        ("::ffff:10.0.0.1", false),
        ("::ffff:8.8.8.8", true),
        ("::ffff:0:10.0.0.1", false),
        ("::10.0.0.1", false),
        ("::8.8.8.8", false),
        ("64:ff9b::10.0.0.1", false),
        ("64:ff9b::198.18.0.1", false),
        ("64:ff9b::8.8.8.8", true),
        ("64:ff9b:1::8.8.8.8", false),
        ("100::1", false),
        ("100:0:0:1::1", false),
        ("2001::1", false),
        ("2001:0:808:808::f7f7:f7f7", true),
        ("2001:0:a00:1::f7f7:f7f7", false),
        ("2001:0:808:808::f5ff:fffe", false),
        ("2001:1::1", true),
        ("2001:1::4", false),
        ("2001:2::1", false),
        ("2001:3::1", true),
        ("2001:4:112::1", true),
        ("2001:10::1", false),
        ("2001:20::1", true),
        ("2001:30::1", true),
        ("2001:100::1", false),
        ("2001:db8::1", false),
        ("2002:808:808::1", true),
        ("2002:a00:1::1", false),
        ("2002:c612:1::1", false),
        ("2620:4f:8000::1", true),
        ("3fff::1", false),
        ("5f00::1", false),
        ("fc00::1", false),
        ("fd12::1", false),
        ("fe80::1", false),
        ("fec0::1", false),
        ("feff::1", false),
        ("ff02::1", false),
        ("4000::1", false),
        ("2606:4700::1111", true),
        ("2a00:1450::1", true),
    ];
    for (text, public) in table {
        let ip: IpAddr = text.parse().unwrap();
        assert_eq!(
            non_public(ip).is_none(),
            *public,
            "{text}: {:?}",
            non_public(ip)
        );
    }
}

/// The metadata addresses in every IPv6 spelling that embeds them, each refused even when
/// the allowlist names that spelling as an IP literal.
#[test]
fn metadata_is_refused_in_every_embedding() {
    let nat64_local = |len: usize| {
        // RFC 6052: 169.254.169.254 inside 64:ff9b:1::/48-style prefixes, skipping octet 8.
        let mut o = [0u8; 16];
        o[..6].copy_from_slice(&[0, 0x64, 0xff, 0x9b, 0, 1]);
        let v4 = [169u8, 254, 169, 254];
        let mut at = len / 8;
        for b in v4 {
            if at == 8 {
                at += 1;
            }
            o[at] = b;
            at += 1;
        }
        Ipv6Addr::from(o).to_string()
    };
    let mut spellings: Vec<String> = [
        "::ffff:169.254.169.254",
        "::ffff:0:169.254.169.254",
        "::169.254.169.254",
        "64:ff9b::169.254.169.254",
        "64:ff9b::100.100.100.200",
        "2002:a9fe:a9fe::1",
        "2002:6464:64c8::",
        "2001:0:a9fe:a9fe::1",
        "2001:0:808:808:8000:63bf:5601:5601",
        "fd00:ec2::254",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    spellings.extend([48, 56, 64, 96].map(nat64_local));
    for spelling in spellings {
        let ip: IpAddr = spelling.parse().unwrap();
        assert!(is_metadata(ip), "{spelling}");
        let p = policy(&[&format!("[{spelling}]")]);
        for scheme in ["http", "https"] {
            let url = format!("{scheme}://[{spelling}]/latest/meta-data/");
            assert!(
                matches!(check(&p, &url, &[]), Err(FetchError::Denied(m)) if m.contains("metadata")),
                "{url}"
            );
        }
    }
    assert!(!is_metadata("64:ff9b::8.8.8.8".parse().unwrap()));
    assert!(!is_metadata("2002:808:808::1".parse().unwrap()));
}

#[test]
fn embedded_loopback_is_not_plain_http_loopback() {
    // 6to4 of 127.0.0.1 leaves the machine through a relay: named, it passes as an IP
    // rule over https, but plain http is only for real loopback.
    let p = policy(&["[2002:7f00:1::1]", "[::ffff:127.0.0.1]:8080"]);
    assert!(matches!(
        check(&p, "http://[2002:7f00:1::1]/", &[]),
        Err(FetchError::Denied(m)) if m.contains("https")
    ));
    assert!(check(&p, "http://[::ffff:127.0.0.1]:8080/", &[]).is_ok());
}

/// A server on 127.0.0.1 that accepts and never answers; it closes after `life`.
fn silent_server(life: Duration) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + life;
        let mut held = Vec::new();
        while Instant::now() < until {
            if let Ok((conn, _)) = listener.accept() {
                held.push(conn);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    addr
}

#[test]
fn resolution_and_the_exchange_share_one_bound() {
    let addr = silent_server(Duration::from_secs(5));
    let request = FetchRequest {
        url: format!("http://slow.test:{}/", addr.port()),
        method: None,
        headers: BTreeMap::new(),
        body: None,
    };
    let bound = Duration::from_millis(600);
    let started = Instant::now();
    // Resolution takes half the bound, then the server never answers: the fetch ends
    // at the bound, not at resolution plus a full bound.
    let result = fetch_with(&request, started + bound, move |_| {
        std::thread::sleep(Duration::from_millis(300));
        Ok(Destination {
            host: "slow.test".into(),
            addrs: vec![addr],
        })
    });
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(FetchError::Failed(_))), "{result:?}");
    assert!(elapsed >= bound, "{elapsed:?}");
    assert!(elapsed < bound + Duration::from_millis(250), "{elapsed:?}");

    // A resolver slower than the whole bound is given up on at the bound.
    let started = Instant::now();
    let result = fetch_with(&request, started + Duration::from_millis(200), |_| {
        std::thread::sleep(Duration::from_secs(2));
        Err(FetchError::Failed("unreachable".into()))
    });
    assert!(matches!(result, Err(FetchError::Failed(m)) if m.contains("resolution")));
    assert!(started.elapsed() < Duration::from_millis(450));
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
