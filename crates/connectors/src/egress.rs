//! Which addresses the connectors may connect to: the public internet,
//! and the private networks an operator allows.
//!
//! A tenant chooses the address a connector calls (a WordPress site URL),
//! so without a rule a tenant could make the workers call services that
//! only the fleet's own network reaches (Vault, Postgres, the gateway, a
//! cloud metadata endpoint) and read their answers back through error
//! messages and account names. The rule holds for the address actually
//! connected to: names are resolved by [`Resolver`], which drops every
//! address that is not [`Egress::permits`]ed, so a name that resolves to a
//! public address when it is checked and to a private one when it is used
//! (DNS rebinding) gets nowhere; IP literals, which are never resolved,
//! are checked by [`Egress::permits_host`] before a request is sent.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// The addresses connectors may connect to; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Egress {
    /// Networks the operator allows although they are not public.
    allowed: Arc<[IpNet]>,
}

impl Egress {
    pub(crate) fn new(allowed: &[IpNet]) -> Self {
        Self {
            allowed: allowed.iter().map(IpNet::trunc).collect(),
        }
    }

    /// Whether connectors may connect to `ip`: a public address, or one in
    /// a network the operator allows. An IPv4-mapped IPv6 address
    /// (`::ffff:127.0.0.1`) counts as the IPv4 address it maps.
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        is_public(canonical)
            || self
                .allowed
                .iter()
                .any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// Whether a URL's `host` may be called: an IP literal when
    /// [`permits`](Self::permits) says so, a name always (its addresses are
    /// checked when it is resolved, see [`Resolver`]).
    pub(crate) fn permits_host(&self, host: &Host<&str>) -> bool {
        match host {
            Host::Domain(_) => true,
            Host::Ipv4(ip) => self.permits(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => self.permits(IpAddr::V6(*ip)),
        }
    }
}

/// Why a name was not resolved: every address it has is refused. Found in
/// the source chain of a `reqwest::Error`, it becomes
/// [`Error::Refused`](crate::Error::Refused).
#[derive(Debug, thiserror::Error)]
#[error("every address of the host is a private or internal network address")]
pub(crate) struct Refused;

/// The connectors' DNS resolver: the operator's fixed
/// [`hosts`](crate::Config::hosts) first, else the system's
/// (`getaddrinfo`, as reqwest's default), keeping only the addresses
/// [`Egress`] permits.
#[derive(Debug, Clone)]
pub(crate) struct Resolver {
    egress: Egress,
    hosts: Arc<BTreeMap<String, IpAddr>>,
}

impl Resolver {
    pub(crate) fn new(egress: Egress, hosts: &BTreeMap<String, IpAddr>) -> Self {
        Self {
            egress,
            hosts: Arc::new(hosts.clone()),
        }
    }
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.egress.clone();
        let host = name.as_str().to_owned();
        let fixed = self
            .hosts
            .get(host.trim_end_matches('.').to_ascii_lowercase().as_str())
            .copied();
        Box::pin(async move {
            if let Some(ip) = fixed {
                if !egress.permits(ip) {
                    return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
                }
                let fixed = std::iter::once(SocketAddr::new(ip, 0));
                return Ok(Box::new(fixed) as Addrs);
            }
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut any = false;
            let permitted: Vec<SocketAddr> = resolved
                .inspect(|_| any = true)
                .filter(|address| egress.permits(address.ip()))
                .collect();
            if any && permitted.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// Whether `ip` is an address of the public internet: not loopback,
/// private, shared (CGNAT), link-local (which holds the cloud metadata
/// endpoint 169.254.169.254), unique-local, multicast, broadcast,
/// unspecified, documentation, benchmarking or reserved, and not one of
/// those embedded in an IPv6 address (IPv4-mapped and -compatible, NAT64,
/// 6to4).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

/// IPv4 networks that are not the public internet (IANA's special-purpose
/// registry, RFC 6890 and its updates), as (network, prefix length).
const NOT_PUBLIC_V4: [(Ipv4Addr, u8); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", 0.0.0.0
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (CGNAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and 255.255.255.255 broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !NOT_PUBLIC_V4.iter().any(|&(network, prefix)| {
        let mask = u32::MAX << (32 - u32::from(prefix));
        bits & mask == u32::from(network)
    })
}

/// IPv6 networks inside global unicast (`2000::/3`) that are not the
/// public internet, as (network, prefix length).
const NOT_PUBLIC_V6: [(Ipv6Addr, u8); 3] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, Teredo
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(embedded) = embedded_v4(ip) {
        return is_public_v4(embedded);
    }
    let bits = u128::from(ip);
    let in_prefix = |network: Ipv6Addr, prefix: u8| {
        let mask = u128::MAX << (128 - u32::from(prefix));
        bits & mask == u128::from(network)
    };
    // Everything outside global unicast is not public: loopback,
    // unspecified, unique-local fc00::/7, link-local fe80::/10, multicast
    // ff00::/8, discard-only 100::/64, local-use NAT64 64:ff9b:1::/48, ...
    in_prefix(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
        && !NOT_PUBLIC_V6
            .iter()
            .any(|&(network, prefix)| in_prefix(network, prefix))
}

/// The IPv4 address an IPv6 address carries, for the forms that route to
/// it: IPv4-mapped `::ffff:0:0/96`, IPv4-compatible `::/96` (which holds
/// `::` and `::1`, as 0.0.0.0 and 0.0.0.1), NAT64 `64:ff9b::/96` and 6to4
/// `2002::/16`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let [a, b, ..] = ip.segments();
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    match bits >> 32 {
        0 | 0xffff | 0x0064_ff9b_0000_0000_0000_0000 => Some(low32),
        _ if a == 0x2002 => Some(Ipv4Addr::from(
            (u32::from(b) << 16) | u32::from(ip.segments()[2]),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(address: &str) -> bool {
        is_public(address.parse().unwrap())
    }

    #[test]
    fn internal_ipv4_addresses_are_not_public() {
        for address in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(address), "{address} counted as public");
        }
    }

    #[test]
    fn internal_ipv6_addresses_are_not_public() {
        for address in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
        ] {
            assert!(!public(address), "{address} counted as public");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.3.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82b::200e",
        ] {
            assert!(public(address), "{address} counted as internal");
        }
    }

    #[test]
    fn the_allow_list_opens_its_networks_and_their_mapped_forms() {
        let egress = Egress::new(&["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]);

        assert!(egress.permits("127.0.0.1".parse().unwrap()));
        assert!(egress.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(egress.permits("::1".parse().unwrap()));
        assert!(egress.permits("8.8.8.8".parse().unwrap()));
        assert!(!egress.permits("10.0.0.1".parse().unwrap()));
        assert!(!egress.permits("169.254.169.254".parse().unwrap()));
        assert!(!Egress::default().permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn names_are_left_to_the_resolver_and_literals_are_checked() {
        let egress = Egress::default();

        assert!(egress.permits_host(&Host::Domain("localhost")));
        assert!(!egress.permits_host(&Host::Ipv4(Ipv4Addr::LOCALHOST)));
        assert!(!egress.permits_host(&Host::Ipv6(Ipv6Addr::LOCALHOST)));
        assert!(egress.permits_host(&Host::Ipv4(Ipv4Addr::new(1, 1, 1, 1))));
    }
}
