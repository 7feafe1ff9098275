//! Which addresses travel in entries: [`AddressScope`], and the classification of a multiaddr
//! by where it can be reached from.

use std::net::{Ipv4Addr, Ipv6Addr};

use libp2p_core::{Multiaddr, multiaddr::Protocol};

/// Which addresses the local peer advertises in its own entry (and signs), and which received
/// addresses it keeps, forwards and reports to the swarm
/// ([`Config::with_address_scope`](crate::Config::with_address_scope)).
///
/// An address is judged by its first component: an IP address by its range, a DNS name by its
/// suffix (`localhost`, `.localhost` and `.local` are not global), anything else (`/memory`,
/// `/unix`) as local to the host. A relayed address (`…/p2p-circuit`) is judged by the relay's
/// address it starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AddressScope {
    /// Every address (the default, so that loopback tests and LANs work).
    #[default]
    Any,
    /// No address that only works on the host itself or on one link: loopback (`127.0.0.0/8`,
    /// `::1`, `localhost`), link-local (`169.254.0.0/16`, `fe80::/10`) and unspecified
    /// addresses are dropped; private ranges stay (a LAN's overlay).
    Lan,
    /// Only addresses reachable from the public internet: private (`10/8`, `172.16/12`,
    /// `192.168/16`, `fc00::/7`), shared (`100.64/10`), loopback, link-local, unspecified,
    /// documentation, benchmarking, multicast and reserved ranges, local DNS names and
    /// non-IP transports are dropped.
    Global,
}

impl AddressScope {
    /// Whether `address` is within this scope.
    pub fn allows(&self, address: &Multiaddr) -> bool {
        match self {
            AddressScope::Any => true,
            AddressScope::Lan => reach(address) >= Reach::Lan,
            AddressScope::Global => reach(address) == Reach::Global,
        }
    }

    /// A short, stable name: `any`, `lan` or `global`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AddressScope::Any => "any",
            AddressScope::Lan => "lan",
            AddressScope::Global => "global",
        }
    }
}

impl std::fmt::Display for AddressScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// From how far an address can be reached, from nearest to farthest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// The host itself, or one link.
    Host,
    /// A private network.
    Lan,
    /// The public internet.
    Global,
}

fn reach(address: &Multiaddr) -> Reach {
    match address.iter().next() {
        Some(Protocol::Ip4(ip)) => ipv4(ip),
        Some(Protocol::Ip6(ip)) => ipv6(ip),
        Some(Protocol::Dns(name) | Protocol::Dns4(name) | Protocol::Dns6(name))
        | Some(Protocol::Dnsaddr(name)) => dns(&name),
        _ => Reach::Host,
    }
}

fn ipv4(ip: Ipv4Addr) -> Reach {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || a == 0 {
        return Reach::Host;
    }
    let lan = ip.is_private()
        || (a == 100 && (64..128).contains(&b)) // shared address space, 100.64.0.0/10
        || (a == 198 && (18..20).contains(&b)) // benchmarking, 198.18.0.0/15
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || ip.is_documentation()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240; // reserved, 240.0.0.0/4
    if lan { Reach::Lan } else { Reach::Global }
}

fn ipv6(ip: Ipv6Addr) -> Reach {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4(v4);
    }
    let first = ip.segments()[0];
    if ip.is_loopback() || ip.is_unspecified() || (first & 0xffc0) == 0xfe80 {
        return Reach::Host; // loopback, unspecified, link-local fe80::/10
    }
    let lan = (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || ip.is_multicast()
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation, 2001:db8::/32
        || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]); // discard-only, 100::/64
    if lan { Reach::Lan } else { Reach::Global }
}

fn dns(name: &str) -> Reach {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        Reach::Host
    } else if name.ends_with(".local") || !name.contains('.') {
        Reach::Lan
    } else {
        Reach::Global
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(scope: AddressScope, address: &str) -> bool {
        scope.allows(&address.parse().unwrap())
    }

    #[test]
    fn each_scope_keeps_what_it_says() {
        // (address, lan, global); `Any` keeps everything.
        let cases = [
            ("/ip4/127.0.0.1/tcp/1", false, false),
            ("/ip4/0.0.0.0/tcp/1", false, false),
            ("/ip4/169.254.3.4/tcp/1", false, false),
            ("/ip4/10.1.2.3/tcp/1", true, false),
            ("/ip4/172.16.0.1/tcp/1", true, false),
            ("/ip4/192.168.1.1/udp/1/quic-v1", true, false),
            ("/ip4/100.64.0.1/tcp/1", true, false),
            ("/ip4/192.0.2.1/tcp/1", true, false),
            ("/ip4/198.18.0.1/tcp/1", true, false),
            ("/ip4/224.0.0.1/tcp/1", true, false),
            ("/ip4/8.8.8.8/tcp/1", true, true),
            ("/ip4/100.128.0.1/tcp/1", true, true),
            ("/ip6/::1/tcp/1", false, false),
            ("/ip6/::/tcp/1", false, false),
            ("/ip6/fe80::1/tcp/1", false, false),
            ("/ip6/fd00::1/tcp/1", true, false),
            ("/ip6/2001:db8::1/tcp/1", true, false),
            ("/ip6/2606:4700::1/tcp/1", true, true),
            ("/ip6/::ffff:10.0.0.1/tcp/1", true, false),
            ("/ip6/::ffff:8.8.4.4/tcp/1", true, true),
            ("/dns4/localhost/tcp/1", false, false),
            ("/dns/printer.local/tcp/1", true, false),
            ("/dns/example.org/tcp/1", true, true),
            ("/memory/42", false, false),
            (
                "/ip4/8.8.8.8/tcp/1/p2p/12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X/p2p-circuit",
                true,
                true,
            ),
        ];
        for (address, lan, global) in cases {
            assert!(allowed(AddressScope::Any, address), "{address}");
            assert_eq!(allowed(AddressScope::Lan, address), lan, "lan: {address}");
            assert_eq!(
                allowed(AddressScope::Global, address),
                global,
                "global: {address}"
            );
        }
    }
}
