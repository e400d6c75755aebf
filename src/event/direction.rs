//! `network.direction` from `interfaces.internal_networks` (CIDRs, or the names
//! `loopback`, `private`, `unicast`), as Packetbeat 8 does: both ends inside →
//! `internal`, client inside → `outbound`, server inside → `inbound`, neither →
//! `external`; `unknown` when no internal networks are configured.

use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Net {
    Cidr(IpAddr, u8),
    Loopback,
    Private,
    Unicast,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::Loopback, ip) => ip.is_loopback(),
            (Net::Private, IpAddr::V4(a)) => a.is_private(),
            (Net::Private, IpAddr::V6(a)) => (a.segments()[0] & 0xfe00) == 0xfc00,
            (Net::Unicast, ip) => {
                !ip.is_multicast()
                    && !ip.is_unspecified()
                    && ip != IpAddr::from([255, 255, 255, 255])
            }
            (Net::Cidr(IpAddr::V4(n), len), IpAddr::V4(a)) => {
                let mask = if *len == 0 {
                    0
                } else {
                    u32::MAX << (32 - *len as u32)
                };
                (u32::from(*n) & mask) == (u32::from(a) & mask)
            }
            (Net::Cidr(IpAddr::V6(n), len), IpAddr::V6(a)) => {
                let mask = if *len == 0 {
                    0
                } else {
                    u128::MAX << (128 - *len as u32)
                };
                (u128::from(*n) & mask) == (u128::from(a) & mask)
            }
            _ => false,
        }
    }
}

/// The configured internal networks.
#[derive(Clone, Debug, Default)]
pub struct Networks {
    nets: Vec<Net>,
}

impl Networks {
    /// Parses `interfaces.internal_networks` entries; the error names the bad entry.
    pub fn parse(entries: &[String]) -> Result<Networks, String> {
        let mut nets = Vec::with_capacity(entries.len());
        for e in entries {
            let net = match e.trim() {
                "loopback" => Net::Loopback,
                "private" => Net::Private,
                "unicast" => Net::Unicast,
                s => {
                    let (addr, len) = s.split_once('/').unwrap_or((s, ""));
                    let ip: IpAddr = addr.parse().map_err(|_| {
                        format!("interfaces.internal_networks: {e:?} is not a CIDR (a.b.c.d/n, x::/n), loopback, private or unicast")
                    })?;
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let len: u8 = if len.is_empty() {
                        max
                    } else {
                        len.parse().ok().filter(|l| *l <= max).ok_or_else(|| {
                            format!("interfaces.internal_networks: {e:?} has a bad prefix length")
                        })?
                    };
                    Net::Cidr(ip, len)
                }
            };
            nets.push(net);
        }
        Ok(Networks { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    fn inside(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// ECS `network.direction` of a connection from `client` to `server`.
    pub fn direction(&self, client: IpAddr, server: IpAddr) -> &'static str {
        if self.nets.is_empty() {
            return "unknown";
        }
        match (self.inside(client), self.inside(server)) {
            (true, true) => "internal",
            (true, false) => "outbound",
            (false, true) => "inbound",
            (false, false) => "external",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_by_cidr_and_name() {
        let n = Networks::parse(&["10.77.0.0/24".into(), "loopback".into(), "fd00::/8".into()])
            .unwrap();
        assert_eq!(n.direction(ip("10.77.0.1"), ip("10.77.0.2")), "internal");
        assert_eq!(n.direction(ip("10.77.0.1"), ip("8.8.8.8")), "outbound");
        assert_eq!(n.direction(ip("8.8.8.8"), ip("127.0.0.1")), "inbound");
        assert_eq!(n.direction(ip("8.8.8.8"), ip("1.1.1.1")), "external");
        assert_eq!(n.direction(ip("fd12::1"), ip("2001:db8::1")), "outbound");
        assert_eq!(
            Networks::default().direction(ip("10.0.0.1"), ip("10.0.0.2")),
            "unknown"
        );
        let p = Networks::parse(&["private".into()]).unwrap();
        assert_eq!(p.direction(ip("192.168.1.1"), ip("172.16.0.1")), "internal");
        assert!(Networks::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(Networks::parse(&["nonsense".into()]).is_err());
        assert!(
            Networks::parse(&["0.0.0.0/0".into()])
                .unwrap()
                .inside(ip("1.2.3.4"))
        );
    }
}
