//! Login throttling. Failed password checks are counted per account (email)
//! and, with a looser limit, per client address (credential stuffing across
//! many emails). Past the limit the key is refused with 429 until its window
//! ends — even with the right password, so guessing cannot continue.
//!
//! State lives in memory and is bounded: each table holds at most
//! `MAX_KEYS` entries; when full, expired entries go first, then entries
//! that are not blocking anything. A restart forgets the counts.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Entries per table at most (an entry is a key and two integers).
const MAX_KEYS: usize = 100_000;

/// The per-address limit is this many times the per-email one: an office
/// behind one NAT address may mistype many passwords, an attacker trying
/// thousands of emails still hits it quickly.
pub const ADDRESS_FACTOR: u32 = 20;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: i64,
    failures: u32,
}

/// One table of failure counts with a fixed window per key.
struct Table<K> {
    limit: u32,
    window: i64,
    entries: Mutex<HashMap<K, Window>>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(limit: u32, window: i64) -> Self {
        Table {
            limit,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `key` may try again, if it is blocked now.
    fn blocked(&self, key: &K, now: i64) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let w = entries.get(key)?;
        let ends = w.started + self.window;
        (w.failures >= self.limit && ends > now).then(|| (ends - now) as u64)
    }

    fn fail(&self, key: &K, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if !entries.contains_key(key) && entries.len() >= MAX_KEYS {
            self.make_room(&mut entries, now);
        }
        let window = self.window;
        let w = entries.entry(key.clone()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if w.started + window <= now {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    fn forget(&self, key: &K) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Drops expired windows; if that is not enough, windows that block
    /// nothing yet (so an attacker cannot flush a block by flooding keys).
    fn make_room(&self, entries: &mut HashMap<K, Window>, now: i64) {
        let (window, limit) = (self.window, self.limit);
        entries.retain(|_, w| w.started + window > now);
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, w| w.failures >= limit);
        }
        if entries.len() >= MAX_KEYS {
            // Every entry blocks: keep the table bounded all the same.
            entries.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

pub struct Throttle {
    emails: Table<String>,
    addresses: Table<IpAddr>,
}

impl Throttle {
    /// `max_failures` per email within `window` seconds; `ADDRESS_FACTOR`
    /// times that per client address.
    pub fn new(max_failures: u32, window: i64) -> Throttle {
        Throttle {
            emails: Table::new(max_failures, window),
            addresses: Table::new(max_failures.saturating_mul(ADDRESS_FACTOR), window),
        }
    }

    /// Seconds to wait (for `Retry-After`) if this email or address is blocked.
    pub fn check(&self, email_key: &str, address: Option<IpAddr>, now: i64) -> Option<u64> {
        let by_email = self.emails.blocked(&email_key.to_string(), now);
        let by_address = address.and_then(|a| self.addresses.blocked(&network_of(a), now));
        by_email.max(by_address)
    }

    pub fn failed(&self, email_key: &str, address: Option<IpAddr>, now: i64) {
        self.emails.fail(&email_key.to_string(), now);
        if let Some(address) = address {
            self.addresses.fail(&network_of(address), now);
        }
    }

    /// A correct password clears the account's count (not the address's:
    /// an attacker's own successful login must not reset their budget).
    pub fn succeeded(&self, email_key: &str) {
        self.emails.forget(&email_key.to_string());
    }
}

/// What one client controls: an IPv4 address, or an IPv6 /64 (one host
/// usually holds a whole /64, so counting single IPv6 addresses would let it
/// step around the limit).
fn network_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy —
/// the nearest `X-Forwarded-For` entry that is not itself a trusted proxy.
/// `forwarded_for` is every line of the header joined in order (the transport
/// joins them); the chain is walked from the right. An IPv4-mapped IPv6
/// address (`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4
/// peer) counts as its IPv4 address.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let Some(chain) = forwarded_for else {
        return Some(peer);
    };
    let mut hops = chain.rsplit(',').map(str::trim);
    let mut last = peer;
    for hop in &mut hops {
        match hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if is_trusted(&ip) => last = ip,
            Ok(ip) => return Some(ip),
            // A malformed entry ends what we can believe.
            Err(_) => return Some(last),
        }
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_blocked_after_its_failures_until_the_window_ends() {
        let t = Throttle::new(3, 100);
        for _ in 0..3 {
            assert_eq!(t.check("a@x.io", None, 10), None);
            t.failed("a@x.io", None, 10);
        }
        assert_eq!(t.check("a@x.io", None, 10), Some(100));
        assert_eq!(t.check("a@x.io", None, 109), Some(1));
        assert_eq!(t.check("a@x.io", None, 110), None);
        assert_eq!(t.check("b@x.io", None, 10), None);
        // A new window starts from scratch.
        t.failed("a@x.io", None, 110);
        assert_eq!(t.check("a@x.io", None, 111), None);
    }

    #[test]
    fn success_clears_the_email_but_not_the_address() {
        let t = Throttle::new(2, 100);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        t.failed("a@x.io", Some(ip), 1);
        t.succeeded("a@x.io");
        t.failed("a@x.io", Some(ip), 2);
        assert_eq!(t.check("a@x.io", None, 3), None);
        for n in 0..40 {
            t.failed(&format!("user{n}@x.io"), Some(ip), 3);
        }
        assert!(t.check("fresh@x.io", Some(ip), 4).is_some());
        assert!(
            t.check("fresh@x.io", Some("192.0.2.8".parse().unwrap()), 4)
                .is_none()
        );
    }

    #[test]
    fn memory_stays_bounded_and_blocks_survive_a_flood() {
        let t = Throttle::new(1, 1000);
        t.failed("victim@x.io", None, 1);
        for n in 0..(MAX_KEYS + 10) {
            t.emails.fail(&format!("{n}"), 1);
        }
        assert!(t.emails.len() <= MAX_KEYS);
        // Flooding with single failures (limit 1 blocks at once) clears
        // everything only when every entry blocks; here they all do.
        let t = Throttle::new(5, 1000);
        t.failed("victim@x.io", None, 1);
        for _ in 0..4 {
            t.failed("victim@x.io", None, 1);
        }
        for n in 0..(MAX_KEYS + 10) {
            t.emails.fail(&format!("{n}"), 1);
        }
        assert!(t.emails.len() <= MAX_KEYS);
        assert!(
            t.check("victim@x.io", None, 2).is_some(),
            "a block must survive a flood"
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let t = Throttle::new(1, 100);
        for n in 0..20u16 {
            let ip: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            t.failed(&format!("u{n}@x.io"), Some(ip), 1);
        }
        let sibling: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(t.check("fresh@x.io", Some(sibling), 2).is_some());
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(t.check("fresh@x.io", Some(other), 2).is_none());
        assert_eq!(
            network_of("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let spoofed = Some("198.51.100.1, 203.0.113.9");
        assert_eq!(
            client_address(Some(client), spoofed, &[proxy]),
            Some(client)
        );
        assert_eq!(client_address(Some(proxy), spoofed, &[proxy]), Some(client));
        assert_eq!(
            client_address(Some(proxy), Some("203.0.113.9, 10.0.0.1"), &[proxy]),
            Some(client)
        );
        assert_eq!(client_address(Some(proxy), None, &[proxy]), Some(proxy));
        assert_eq!(
            client_address(Some(proxy), Some("junk"), &[proxy]),
            Some(proxy)
        );
        assert_eq!(client_address(None, spoofed, &[proxy]), None);
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped_proxy: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let chain = Some("198.51.100.1, ::ffff:203.0.113.9, ::ffff:10.0.0.1");
        assert_eq!(
            client_address(Some(mapped_proxy), chain, &[proxy]),
            Some(client)
        );
        assert_eq!(
            client_address(Some(proxy), chain, &[mapped_proxy]),
            Some(client)
        );
        let stranger: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            client_address(Some(stranger), chain, &[proxy]),
            Some("192.0.2.1".parse().unwrap())
        );
    }
}
