//! Login throttling. Failed password checks are counted per account (email)
//! and, with a looser limit, per client address (credential stuffing across
//! many emails). Past the limit the key is refused with 429 until its window
//! ends — even with the right password, so guessing cannot continue.
//!
//! An attempt is counted *before* its password is checked (an [`Attempt`] is
//! a reservation, decided by its verdict or given back without one), so
//! parallel guesses cannot get more checks than the limit allows: a key with
//! as many attempts in flight as it has failures left is refused for a
//! second (`Retry-After: 1`) until they are decided.
//!
//! A login that presents a valid device token (OWASP "device cookies") is
//! counted against that token instead of the email, so a stranger failing in
//! someone's name blocks strangers, not the owner's devices. A device token
//! that reaches the limit stops counting as one until its window ends.
//!
//! State lives in memory and is bounded: each table holds at most
//! `MAX_KEYS` entries; when full, expired entries go first, then entries
//! that are not blocking anything. A restart forgets the counts.

use crate::domain::ip_net::IpNet;
use crate::locks::Unpoisoned;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

/// Entries per table at most (an entry is a key and three integers).
const MAX_KEYS: usize = 100_000;

/// The per-address limit is this many times the per-email one: an office
/// behind one NAT address may mistype many passwords, an attacker trying
/// thousands of emails still hits it quickly.
pub const ADDRESS_FACTOR: u32 = 20;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: i64,
    failures: u32,
    /// Attempts counted but not yet decided (their password is being checked).
    pending: u32,
}

/// How a counted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A wrong password: a failure in the key's window.
    Failed,
    /// The right password: the key's failures are cleared.
    Succeeded,
    /// No verdict, or a success that must not clear this key: nothing counts.
    Released,
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

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Window>> {
        self.entries.lock().unpoisoned()
    }

    /// Seconds until `key` may try again, if it is blocked now.
    #[cfg(test)]
    fn blocked(&self, key: &K, now: i64) -> Option<u64> {
        let entries = self.lock();
        self.blocked_in(&entries, key, now)
    }

    fn blocked_in(&self, entries: &HashMap<K, Window>, key: &K, now: i64) -> Option<u64> {
        let w = entries.get(key)?;
        let ends = w.started + self.window;
        (w.failures >= self.limit && ends > now).then(|| (ends - now).unsigned_abs())
    }

    /// Counts an attempt for `key` before its verdict, unless the key is
    /// blocked (then the seconds to wait) — or would be if every attempt in
    /// flight failed (then 1 s: they are decided within about that).
    fn reserve(&self, key: &K, now: i64) -> Result<(), u64> {
        let mut entries = self.lock();
        if let Some(wait) = self.blocked_in(&entries, key, now) {
            return Err(wait);
        }
        if !entries.contains_key(key) && entries.len() >= MAX_KEYS {
            self.make_room(&mut entries, now);
        }
        let w = self.current(&mut entries, key, now);
        if w.failures.saturating_add(w.pending) >= self.limit {
            return Err(1);
        }
        w.pending += 1;
        Ok(())
    }

    /// The key's window at `now`, started afresh if the old one has passed
    /// (attempts in flight stay counted).
    fn current<'e>(
        &self,
        entries: &'e mut HashMap<K, Window>,
        key: &K,
        now: i64,
    ) -> &'e mut Window {
        let w = entries.entry(key.clone()).or_insert(Window {
            started: now,
            failures: 0,
            pending: 0,
        });
        if w.started + self.window <= now {
            w.started = now;
            w.failures = 0;
        }
        w
    }

    /// Decides a reserved attempt.
    fn settle(&self, key: &K, outcome: Outcome, now: i64) {
        let mut entries = self.lock();
        if outcome == Outcome::Failed {
            let w = self.current(&mut entries, key, now);
            w.pending = w.pending.saturating_sub(1);
            w.failures = w.failures.saturating_add(1);
        } else if let Some(w) = entries.get_mut(key) {
            w.pending = w.pending.saturating_sub(1);
            if outcome == Outcome::Succeeded {
                w.failures = 0;
            }
            if w.failures == 0 && w.pending == 0 {
                entries.remove(key);
            }
        }
    }

    /// Drops expired windows; if that is not enough, windows that block
    /// nothing yet (so an attacker cannot flush a block by flooding keys).
    fn make_room(&self, entries: &mut HashMap<K, Window>, now: i64) {
        let (window, limit) = (self.window, self.limit);
        entries.retain(|_, w| w.started + window > now || w.pending > 0);
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
        self.lock().len()
    }
}

pub struct Throttle {
    emails: Table<String>,
    devices: Table<[u8; 32]>,
    addresses: Table<IpAddr>,
}

/// Whose count a login attempt goes to.
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    /// The email's uniqueness key.
    Email(&'a str),
    /// A valid device token (its SHA-256) of the account, with the email's
    /// key for when the token has used up its own failures.
    Device { hash: &'a [u8; 32], email: &'a str },
}

/// Which per-account count an attempt went to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AccountKey {
    Email(String),
    Device([u8; 32]),
}

/// A counted login attempt. Say how it ended with [`Attempt::succeeded`] or
/// [`Attempt::failed`]; dropped without a verdict (an overloaded hasher, a
/// database error) it is given back.
pub struct Attempt<'t> {
    throttle: &'t Throttle,
    now: i64,
    account: Option<AccountKey>,
    address: Option<IpAddr>,
}

impl Attempt<'_> {
    /// Whether the attempt counted against a device token.
    pub fn by_device(&self) -> bool {
        matches!(self.account, Some(AccountKey::Device(_)))
    }

    /// A correct password clears the account's count; the address's count
    /// is of failures only, so a success there is no failure and no reset
    /// (an attacker's own successful login must not reset their budget).
    pub fn succeeded(mut self) {
        self.settle(Outcome::Succeeded, Outcome::Released);
    }

    /// A wrong password: a failure for the account and the address.
    pub fn failed(mut self) {
        self.settle(Outcome::Failed, Outcome::Failed);
    }

    fn settle(&mut self, account: Outcome, address: Outcome) {
        let (t, now) = (self.throttle, self.now);
        match self.account.take() {
            Some(AccountKey::Email(key)) => t.emails.settle(&key, account, now),
            Some(AccountKey::Device(key)) => t.devices.settle(&key, account, now),
            None => {}
        }
        if let Some(key) = self.address.take() {
            t.addresses.settle(&key, address, now);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.settle(Outcome::Released, Outcome::Released);
    }
}

impl Throttle {
    /// `max_failures` per email (and per device token) within `window`
    /// seconds; `ADDRESS_FACTOR` times that per client address.
    pub fn new(max_failures: u32, window: i64) -> Throttle {
        Throttle {
            emails: Table::new(max_failures, window),
            devices: Table::new(max_failures, window),
            addresses: Table::new(max_failures.saturating_mul(ADDRESS_FACTOR), window),
        }
    }

    /// Counts a login attempt before its password is checked; `Err` holds
    /// the seconds to wait (for `Retry-After`) when the account or the
    /// address is blocked, and then nothing is counted.
    pub fn attempt(
        &self,
        account: Account<'_>,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<Attempt<'_>, u64> {
        let mut attempt = Attempt {
            throttle: self,
            now,
            account: None,
            address: None,
        };
        let by_email = |email: &str| {
            let key = email.to_owned();
            self.emails
                .reserve(&key, now)
                .map(|()| AccountKey::Email(key))
        };
        attempt.account = Some(match account {
            Account::Email(email) => by_email(email)?,
            Account::Device { hash, email } => match self.devices.reserve(hash, now) {
                Ok(()) => AccountKey::Device(*hash),
                // Used up: no longer a device token.
                Err(_) => by_email(email)?,
            },
        });
        if let Some(address) = address {
            // On `Err` the account's reservation is given back by `drop`.
            let network = network_of(address);
            self.addresses.reserve(&network, now)?;
            attempt.address = Some(network);
        }
        Ok(attempt)
    }

    /// Seconds to wait if this email or address is blocked (no counting).
    #[cfg(test)]
    pub fn blocked(&self, email_key: &str, address: Option<IpAddr>, now: i64) -> Option<u64> {
        let by_email = self.emails.blocked(&email_key.to_string(), now);
        let by_address = address.and_then(|a| self.addresses.blocked(&network_of(a), now));
        by_email.max(by_address)
    }
}

/// What one client controls: an IPv4 address, or an IPv6 /64 (one host
/// usually holds a whole /64, so counting single IPv6 addresses would let it
/// step around the limit).
pub fn network_of(address: IpAddr) -> IpAddr {
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
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.contains(*ip));
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

    /// One failed attempt.
    fn fail(t: &Throttle, email: &str, address: Option<IpAddr>, now: i64) {
        t.attempt(Account::Email(email), address, now)
            .unwrap()
            .failed();
    }

    fn check(t: &Throttle, email: &str, address: Option<IpAddr>, now: i64) -> Option<u64> {
        t.blocked(email, address, now)
    }

    #[test]
    fn an_email_is_blocked_after_its_failures_until_the_window_ends() {
        let t = Throttle::new(3, 100);
        for _ in 0..3 {
            assert_eq!(check(&t, "a@x.io", None, 10), None);
            fail(&t, "a@x.io", None, 10);
        }
        assert_eq!(check(&t, "a@x.io", None, 10), Some(100));
        assert!(t.attempt(Account::Email("a@x.io"), None, 10).is_err());
        assert_eq!(check(&t, "a@x.io", None, 109), Some(1));
        assert_eq!(check(&t, "a@x.io", None, 110), None);
        assert_eq!(check(&t, "b@x.io", None, 10), None);
        // A new window starts from scratch.
        fail(&t, "a@x.io", None, 110);
        assert_eq!(check(&t, "a@x.io", None, 111), None);
    }

    #[test]
    fn attempts_are_counted_before_their_verdict() {
        let t = Throttle::new(3, 100);
        let pending: Vec<_> = (0..3)
            .map(|_| t.attempt(Account::Email("a@x.io"), None, 1).unwrap())
            .collect();
        // Three in flight: a fourth waits for their verdicts, briefly.
        assert_eq!(t.attempt(Account::Email("a@x.io"), None, 1).err(), Some(1));
        assert_eq!(check(&t, "a@x.io", None, 1), None);
        // Given back without a verdict (an overloaded hasher): room again.
        drop(pending);
        let first = t.attempt(Account::Email("a@x.io"), None, 1).unwrap();
        first.succeeded();
        assert_eq!(check(&t, "a@x.io", None, 1), None);
    }

    #[test]
    fn success_clears_the_email_but_not_the_address() {
        let t = Throttle::new(2, 100);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        fail(&t, "a@x.io", Some(ip), 1);
        t.attempt(Account::Email("a@x.io"), Some(ip), 1)
            .unwrap()
            .succeeded();
        fail(&t, "a@x.io", Some(ip), 2);
        assert_eq!(check(&t, "a@x.io", None, 3), None);
        for n in 0..38 {
            fail(&t, &format!("user{n}@x.io"), Some(ip), 3);
        }
        assert!(check(&t, "fresh@x.io", Some(ip), 4).is_some());
        assert!(check(&t, "fresh@x.io", Some("192.0.2.8".parse().unwrap()), 4).is_none());
    }

    #[test]
    fn a_device_token_skips_the_email_count_until_it_fails_too_often() {
        let t = Throttle::new(2, 100);
        let device = Account::Device {
            hash: &[7; 32],
            email: "a@x.io",
        };
        fail(&t, "a@x.io", None, 1);
        fail(&t, "a@x.io", None, 1);
        assert!(t.attempt(Account::Email("a@x.io"), None, 1).is_err());
        let attempt = t.attempt(device, None, 1).unwrap();
        assert!(attempt.by_device());
        attempt.failed();
        t.attempt(device, None, 1).unwrap().failed();
        // Used up: counted as the email now, which is blocked.
        assert_eq!(t.attempt(device, None, 2).err(), Some(99));
        // A used-up token on an unblocked email is an ordinary attempt.
        let other = Account::Device {
            hash: &[7; 32],
            email: "b@x.io",
        };
        assert!(!t.attempt(other, None, 2).unwrap().by_device());
    }

    #[test]
    fn a_blocked_address_gives_the_account_reservation_back() {
        let t = Throttle::new(1, 100);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for n in 0..20 {
            fail(&t, &format!("u{n}@x.io"), Some(ip), 1);
        }
        assert!(t.attempt(Account::Email("a@x.io"), Some(ip), 1).is_err());
        assert_eq!(check(&t, "a@x.io", None, 1), None);
    }

    #[test]
    fn memory_stays_bounded_and_blocks_survive_a_flood() {
        let t = Throttle::new(1, 1000);
        fail(&t, "victim@x.io", None, 1);
        for n in 0..(MAX_KEYS + 10) {
            let key = format!("{n}");
            let _ = t.emails.reserve(&key, 1);
            t.emails.settle(&key, Outcome::Failed, 1);
        }
        assert!(t.emails.len() <= MAX_KEYS);
        // Flooding with single failures (limit 1 blocks at once) clears
        // everything only when every entry blocks; here they all do.
        let t = Throttle::new(5, 1000);
        for _ in 0..5 {
            fail(&t, "victim@x.io", None, 1);
        }
        for n in 0..(MAX_KEYS + 10) {
            let key = format!("{n}");
            let _ = t.emails.reserve(&key, 1);
            t.emails.settle(&key, Outcome::Failed, 1);
        }
        assert!(t.emails.len() <= MAX_KEYS);
        assert!(
            check(&t, "victim@x.io", None, 2).is_some(),
            "a block must survive a flood"
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let t = Throttle::new(1, 100);
        for n in 0..20u16 {
            let ip: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            fail(&t, &format!("u{n}@x.io"), Some(ip), 1);
        }
        let sibling: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(check(&t, "fresh@x.io", Some(sibling), 2).is_some());
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(check(&t, "fresh@x.io", Some(other), 2).is_none());
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
            client_address(Some(client), spoofed, &[proxy.into()]),
            Some(client)
        );
        assert_eq!(
            client_address(Some(proxy), spoofed, &[proxy.into()]),
            Some(client)
        );
        assert_eq!(
            client_address(Some(proxy), Some("203.0.113.9, 10.0.0.1"), &[proxy.into()]),
            Some(client)
        );
        assert_eq!(
            client_address(Some(proxy), None, &[proxy.into()]),
            Some(proxy)
        );
        assert_eq!(
            client_address(Some(proxy), Some("junk"), &[proxy.into()]),
            Some(proxy)
        );
        assert_eq!(client_address(None, spoofed, &[proxy.into()]), None);
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped_proxy: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let chain = Some("198.51.100.1, ::ffff:203.0.113.9, ::ffff:10.0.0.1");
        assert_eq!(
            client_address(Some(mapped_proxy), chain, &[proxy.into()]),
            Some(client)
        );
        assert_eq!(
            client_address(Some(proxy), chain, &[mapped_proxy.into()]),
            Some(client)
        );
        let stranger: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            client_address(Some(stranger), chain, &[proxy.into()]),
            Some("192.0.2.1".parse().unwrap())
        );
    }
}
