//! `IpNet`: an address with a prefix length (`10.0.0.0/8`, `fd00::/8`, or a
//! single address), as `--trusted-proxy` names the proxies it believes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A network: the addresses whose first `prefix` bits equal `addr`'s. An
/// IPv4-mapped IPv6 address counts as its IPv4 address, in the network and
/// in what `contains` is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a text is not `ADDR[/PREFIX]`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadNet;

impl IpNet {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl From<IpAddr> for IpNet {
    /// The network of just this address.
    fn from(addr: IpAddr) -> IpNet {
        let addr = addr.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, prefix }
    }
}

impl FromStr for IpNet {
    type Err = BadNet;

    /// `ADDR` or `ADDR/PREFIX`: IPv4 /0–32, IPv6 /0–128; an IPv4-mapped
    /// network (`::ffff:10.0.0.0/104`) becomes its IPv4 network (`10.0.0.0/8`).
    fn from_str(text: &str) -> Result<IpNet, BadNet> {
        let (addr, prefix) = match text.split_once('/') {
            None => return text.parse::<IpAddr>().map(IpNet::from).map_err(|_| BadNet),
            Some((addr, prefix)) => (addr.parse::<IpAddr>().map_err(|_| BadNet)?, prefix),
        };
        // Digits only: `u8::from_str` would also take a sign.
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadNet);
        }
        let prefix: u8 = prefix.parse().map_err(|_| BadNet)?;
        match addr {
            IpAddr::V4(_) if prefix <= 32 => Ok(IpNet { addr, prefix }),
            IpAddr::V6(v6) if prefix <= 128 => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Ok(IpNet {
                    addr: IpAddr::V4(v4),
                    prefix: prefix - 96,
                }),
                _ => Ok(IpNet { addr, prefix }),
            },
            _ => Err(BadNet),
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_plain_address_is_a_network_of_one() {
        assert_eq!(net("10.0.0.1").to_string(), "10.0.0.1/32");
        assert_eq!(net("::1").to_string(), "::1/128");
        assert!(net("10.0.0.1").contains(ip("10.0.0.1")));
        assert!(!net("10.0.0.1").contains(ip("10.0.0.2")));
    }

    #[test]
    fn prefixes_cover_their_range_and_no_more() {
        let loopback = net("127.0.0.0/8");
        assert!(loopback.contains(ip("127.0.0.1")));
        assert!(loopback.contains(ip("127.255.255.255")));
        assert!(!loopback.contains(ip("128.0.0.0")));
        let v6 = net("fd00::/8");
        assert!(v6.contains(ip("fdff::1")));
        assert!(!v6.contains(ip("fe00::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        assert!(net("10.0.0.0/32").contains(ip("10.0.0.0")));
        assert!(net("2001:db8::1/128").contains(ip("2001:db8::1")));
        assert!(!net("2001:db8::1/128").contains(ip("2001:db8::2")));
        // Host bits after the prefix are ignored.
        assert!(net("10.1.2.3/8").contains(ip("10.9.9.9")));
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert_eq!(net("::ffff:10.0.0.0/104"), net("10.0.0.0/8"));
        assert_eq!(net("::ffff:10.0.0.1"), net("10.0.0.1"));
        assert!(net("::ffff:10.0.0.0/104").contains(ip("10.2.3.4")));
    }

    #[test]
    fn bad_networks_are_refused() {
        for bad in [
            "",
            "proxy",
            "10.0.0.1/",
            "10.0.0.1/33",
            "::1/129",
            "10.0.0.1/-1",
            "10.0.0.1/+8",
            "10.0.0.1/8/8",
            "10.0.0/8",
            "/8",
            "10.0.0.1/ 8",
            "10.0.0.1/0008",
        ] {
            assert_eq!(bad.parse::<IpNet>(), Err(BadNet), "{bad:?}");
        }
    }
}
