//! Password hashing: argon2id at OWASP's parameters, on a bounded pool.
//!
//! Each hash needs 19 MiB. The [`Hasher`] keeps exactly `parallel` block
//! buffers, allocated on first use and reused, so memory stays flat however
//! many threads ever hash (glibc keeps freed large blocks in per-thread
//! arenas, so allocating per hash would grow RSS with the thread count).
//! Callers beyond `parallel + queue` get [`Overloaded`] at once (503 with
//! `Retry-After`) instead of piling up. Unknown emails are checked against a
//! dummy hash so that a login takes as long whether or not the email exists.

use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::domain::blocking::Blocking;
use crate::locks::Unpoisoned;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

/// Stored hashes with other parameters still verify, up to these bounds: a
/// corrupted or planted row must not make one login take gigabytes or minutes.
const MAX_M_COST: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;

/// Verified for unknown emails: current parameters, random salt and output
/// (no password hashes to it, and the result is ignored anyway).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$6C1y9rxhbhn+h5zJKD6VFQ$DBajA9T6SOXw4XsRJYmWkUI3+4GDQRiULDGMINjP/N0";

/// The hashing queue is full: answer 503 `overloaded` with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// The outcome of [`Hasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The password matches the stored hash.
    pub ok: bool,
    /// The stored hash uses other parameters than [`Hasher::hash`] does; the
    /// caller re-hashes the password after a successful login.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords, at most `parallel` at a time.
pub struct Hasher {
    /// Where the hashing itself runs (a worker steps aside from its slot).
    blocking: Blocking,
    parallel: usize,
    capacity: usize,
    state: Mutex<State>,
    slot_freed: Condvar,
    rng: SystemRandom,
}

struct State {
    /// Waiting plus running.
    admitted: usize,
    running: usize,
    /// Buffers of `standard_blocks()` not in use. A running hash holds at
    /// most one and a new one is made only when none is idle, so there are
    /// never more than `parallel`.
    idle: Vec<Vec<Block>>,
}

impl Hasher {
    /// `parallel`: hashes in flight at once (one per core; at least 1);
    /// `queue`: how many more may wait. Beyond `parallel + queue`, calls get
    /// `Err(Overloaded)` at once.
    pub fn new(parallel: usize, queue: usize) -> Hasher {
        let parallel = parallel.max(1);
        Hasher {
            blocking: Blocking::INLINE,
            parallel,
            capacity: parallel.saturating_add(queue),
            state: Mutex::new(State {
                admitted: 0,
                running: 0,
                idle: Vec::with_capacity(parallel),
            }),
            slot_freed: Condvar::new(),
            rng: SystemRandom::new(),
        }
    }

    /// Runs the hashing itself inside `blocking` (the service passes the worker
    /// pool's step-aside, so a handler waiting on argon2 frees its slot).
    pub fn with_blocking(mut self, blocking: Blocking) -> Hasher {
        self.blocking = blocking;
        self
    }

    /// Hashes a new password into a PHC string
    /// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
    ///
    /// # Panics
    /// If the operating system's random source fails: without a salt there is
    /// nothing safe to store, and the router turns the panic into a 500.
    // The rest cannot fail: the parameters, salt and output lengths are
    // constants the argon2 crate accepts (the unit tests exercise them).
    #[allow(
        clippy::expect_used,
        reason = "random source failure (see Panics) or constant parameters"
    )]
    pub fn hash(&self, password: &str) -> Result<String, Overloaded> {
        let mut admission = self.admit()?;
        let mut salt = [0u8; SALT_LEN];
        self.rng
            .fill(&mut salt)
            .expect("the system random source failed");
        let params = current_params();
        let mut out = [0u8; OUTPUT_LEN];
        self.blocking.run(|| {
            let mut unused = Vec::new();
            let memory = admission.memory(standard_blocks(), &mut unused);
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
                .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
                .expect("the current parameters are valid");
            drop(admission);
        });
        let phc = PasswordHash {
            algorithm: ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).expect("the current parameters encode"),
            salt: Some(Salt::new(&salt).expect("16 bytes is a valid salt")),
            hash: Some(Output::new(&out).expect("32 bytes is a valid output")),
        };
        Ok(phc.to_string())
    }

    /// Checks `password` against a stored PHC string.
    ///
    /// `stored` None means an unknown email: a dummy hash at the current
    /// parameters is verified anyway and the answer is `ok: false`, so the
    /// time doesn't reveal which emails exist. A stored hash that can't be
    /// parsed or is out of bounds gives `ok: false` and a warning in the log
    /// (never the hash itself).
    pub fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verdict, Overloaded> {
        let refused = Verdict {
            ok: false,
            needs_rehash: false,
        };
        let stored_hash = match StoredHash::parse(stored.unwrap_or(DUMMY_HASH)) {
            Ok(stored_hash) => stored_hash,
            Err(why) => {
                log::warn!("a stored password hash is unusable ({why}); the login is refused");
                return Ok(refused);
            }
        };
        let mut admission = self.admit()?;
        let result = self.blocking.run(|| {
            let mut oversized = Vec::new();
            let blocks = stored_hash.argon2.params().block_count();
            let memory = admission.memory(blocks, &mut oversized);
            let result = stored_hash.matches(password, memory);
            // Freed before the slot is, so slots also bound oversized memory.
            drop(oversized);
            drop(admission);
            result
        });
        match (stored, result) {
            (None, _) => Ok(refused),
            (Some(_), Ok(ok)) => Ok(Verdict {
                ok,
                needs_rehash: stored_hash.outdated,
            }),
            (Some(_), Err(error)) => {
                log::warn!("a stored password hash is unusable ({error}); the login is refused");
                Ok(refused)
            }
        }
    }

    /// Hashes waiting plus running, for metrics.
    pub fn queue_len(&self) -> usize {
        self.lock().admitted
    }

    /// Takes a place in the queue, or refuses at once when it is full.
    fn admit(&self) -> Result<Admission<'_>, Overloaded> {
        let mut state = self.lock();
        if state.admitted >= self.capacity {
            return Err(Overloaded);
        }
        state.admitted += 1;
        Ok(Admission {
            hasher: self,
            running: false,
            buffer: None,
        })
    }

    /// The counters stay consistent across a panic (an [`Admission`] restores
    /// them when dropped), so a poisoned lock is safe to keep using.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unpoisoned()
    }
}

impl fmt::Debug for Hasher {
    /// Not derived: that would print every idle buffer's 19 MiB.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("parallel", &self.parallel)
            .field("capacity", &self.capacity)
            .field("queue_len", &self.queue_len())
            .finish()
    }
}

/// A place in the queue; becomes a running slot once it holds a buffer.
/// Dropping it gives both back, even when hashing panics.
struct Admission<'a> {
    hasher: &'a Hasher,
    running: bool,
    buffer: Option<Vec<Block>>,
}

impl Admission<'_> {
    /// Waits for a running slot, then lends memory for `blocks` blocks: the
    /// slot's pooled buffer or, for a stored hash made with a larger m, a
    /// temporary one put in `oversized` (rare, so not worth pooling).
    fn memory<'b>(&'b mut self, blocks: usize, oversized: &'b mut Vec<Block>) -> &'b mut [Block] {
        self.start();
        if blocks > standard_blocks() {
            *oversized = vec![Block::new(); blocks];
            return oversized;
        }
        // Allocated outside the lock: filling 19 MiB takes milliseconds.
        self.buffer
            .get_or_insert_with(|| vec![Block::new(); standard_blocks()])
    }

    /// Waits until fewer than `parallel` hashes run, then runs, holding an
    /// idle buffer if there is one.
    fn start(&mut self) {
        if self.running {
            return;
        }
        let hasher = self.hasher;
        let mut state = hasher.lock();
        while state.running >= hasher.parallel {
            state = hasher.slot_freed.wait(state).unpoisoned();
        }
        state.running += 1;
        self.running = true;
        self.buffer = state.idle.pop();
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        let mut state = self.hasher.lock();
        state.admitted -= 1;
        if self.running {
            state.running -= 1;
            state.idle.extend(self.buffer.take());
            drop(state);
            self.hasher.slot_freed.notify_one();
        }
    }
}

/// A parsed stored hash, ready to recompute.
struct StoredHash {
    argon2: Argon2<'static>,
    salt: Salt,
    expected: Output,
    outdated: bool,
}

impl StoredHash {
    /// The reasons are fixed phrases: they go to the log, the hash never does.
    fn parse(phc: &str) -> Result<StoredHash, &'static str> {
        let hash = PasswordHash::new(phc).map_err(|_| "not a PHC string")?;
        let algorithm =
            Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| "not an argon2 hash")?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).map_err(|_| "unknown argon2 version")?,
            None => Version::V0x10,
        };
        let params = Params::try_from(&hash).map_err(|_| "invalid argon2 parameters")?;
        if params.m_cost() > MAX_M_COST || params.t_cost() > MAX_T_COST {
            return Err("argon2 parameters beyond the accepted bounds");
        }
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
            return Err("salt or hash missing");
        };
        Ok(StoredHash {
            outdated: algorithm != Algorithm::Argon2id
                || version != Version::V0x13
                || params != current_params(),
            argon2: Argon2::new(algorithm, version, params),
            salt,
            expected,
        })
    }

    fn matches(&self, password: &str, memory: &mut [Block]) -> Result<bool, argon2::Error> {
        let expected = self.expected.as_bytes();
        let mut computed = [0u8; Output::MAX_LENGTH];
        let computed = &mut computed[..expected.len()];
        self.argon2.hash_password_into_with_memory(
            password.as_bytes(),
            &self.salt,
            computed,
            memory,
        )?;
        Ok(constant_time_eq(computed, expected))
    }
}

#[allow(
    clippy::expect_used,
    reason = "constants, checked by every hash in the tests"
)]
fn current_params() -> Params {
    Params::new(M_COST, T_COST, P_COST, Some(OUTPUT_LEN)).expect("OWASP parameters are valid")
}

/// Blocks in a pooled buffer: what the current parameters use.
fn standard_blocks() -> usize {
    current_params().block_count()
}

/// Examines every byte whatever the first difference, so the time doesn't
/// tell an attacker how much of the output they got right. The lengths come
/// from the stored hash, not from the password, so comparing them first
/// leaks nothing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::CustomizedPasswordHasher;
    use std::time::Instant;

    const PASSWORD: &str = "correct horse battery staple";

    fn verdict(ok: bool, needs_rehash: bool) -> Verdict {
        Verdict { ok, needs_rehash }
    }

    /// A PHC string made by the argon2 crate's own encoder, not ours.
    fn foreign_hash(algorithm: &str, version: u32, params: Params) -> String {
        Argon2::default()
            .hash_password_customized(
                PASSWORD.as_bytes(),
                b"saltsaltsaltsalt",
                Some(algorithm),
                Some(version),
                params,
            )
            .unwrap()
            .to_string()
    }

    #[test]
    fn hash_then_verify() {
        let hasher = Hasher::new(1, 0);
        let stored = hasher.hash(PASSWORD).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let hash = PasswordHash::new(&stored).unwrap();
        assert_eq!(hash.salt.unwrap().len(), SALT_LEN);
        assert_eq!(hash.hash.unwrap().len(), OUTPUT_LEN);

        assert_eq!(
            hasher.verify(PASSWORD, Some(&stored)),
            Ok(verdict(true, false))
        );
        let wrong = "correct horse battery stapler";
        assert_eq!(
            hasher.verify(wrong, Some(&stored)),
            Ok(verdict(false, false))
        );
        assert_eq!(hasher.verify("", Some(&stored)), Ok(verdict(false, false)));
        assert_ne!(hasher.hash(PASSWORD).unwrap(), stored, "salts must differ");
        assert_eq!(hasher.queue_len(), 0);
    }

    #[test]
    fn unknown_email_verifies_the_dummy_and_fails() {
        let hasher = Hasher::new(1, 0);
        assert_eq!(hasher.verify(PASSWORD, None), Ok(verdict(false, false)));
        // The dummy costs what a real hash costs.
        let dummy = StoredHash::parse(DUMMY_HASH).unwrap();
        assert!(!dummy.outdated);
        assert_eq!(dummy.argon2.params(), &current_params());
        assert_eq!(dummy.salt.len(), SALT_LEN);
    }

    #[test]
    fn other_parameters_verify_and_ask_for_a_rehash() {
        let hasher = Hasher::new(1, 0);
        let cases = [
            ("argon2id", 0x13, Params::new(12288, 3, 1, None).unwrap()),
            ("argon2id", 0x13, Params::new(8192, 1, 2, Some(16)).unwrap()),
            (
                "argon2id",
                0x13,
                Params::new(19456, 2, 1, Some(64)).unwrap(),
            ),
            ("argon2i", 0x13, current_params()),
            ("argon2d", 0x10, current_params()),
            // Larger than a pooled buffer: verified in a temporary one.
            ("argon2id", 0x13, Params::new(32768, 1, 1, None).unwrap()),
        ];
        for (algorithm, version, params) in cases {
            let stored = foreign_hash(algorithm, version, params);
            assert_eq!(
                hasher.verify(PASSWORD, Some(&stored)),
                Ok(verdict(true, true)),
                "{stored}"
            );
            assert_eq!(
                hasher.verify("wrong password", Some(&stored)),
                Ok(verdict(false, true))
            );
        }
        let current = foreign_hash("argon2id", 0x13, current_params());
        assert_eq!(
            hasher.verify(PASSWORD, Some(&current)),
            Ok(verdict(true, false))
        );
    }

    #[test]
    fn verifies_a_reference_vector() {
        // "password" with salt "somesalt", as the argon2 reference CLI makes it.
        let stored = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        let hasher = Hasher::new(1, 0);
        assert_eq!(
            hasher.verify("password", Some(stored)),
            Ok(verdict(true, true))
        );
        assert_eq!(
            hasher.verify("sassword", Some(stored)),
            Ok(verdict(false, true))
        );
    }

    #[test]
    fn unusable_stored_hashes_fail_without_panicking() {
        let hasher = Hasher::new(1, 0);
        let good = hasher.hash(PASSWORD).unwrap();
        for bad in [
            "",
            "garbage",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=19456,t=2,p=1$!!!!$!!!!",
            "$argon2id$v=99$m=19456,t=2,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=4,t=2,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=19456,t=2,p=1,x=5$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=19456,t=4000000000,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            &good[..good.len() - 5],
            &good.replace("$v=19", ""),
            &good.replace("$argon2id$", "$argon2x$"),
        ] {
            assert!(!hasher.verify(PASSWORD, Some(bad)).unwrap().ok, "{bad:?}");
        }
        assert_eq!(hasher.queue_len(), 0);
    }

    #[test]
    fn refuses_at_once_beyond_parallel_plus_queue() {
        let hasher = Hasher::new(1, 0);
        let held = hasher.admit().unwrap();
        assert_eq!(hasher.queue_len(), 1);
        assert_eq!(hasher.hash(PASSWORD), Err(Overloaded));
        assert_eq!(hasher.verify(PASSWORD, None), Err(Overloaded));
        drop(held);
        assert_eq!(hasher.queue_len(), 0);
        assert!(hasher.hash(PASSWORD).is_ok());
    }

    #[test]
    fn queued_callers_wait_for_a_free_slot() {
        let hasher = Hasher::new(1, 1);
        let mut running = hasher.admit().unwrap();
        running.start();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| hasher.hash(PASSWORD));
            // The waiter takes the one queue place, then blocks on the slot
            // held above; spin until it has, rather than sleep a guess.
            while hasher.queue_len() < 2 {
                std::thread::yield_now();
            }
            assert_eq!(hasher.hash(PASSWORD), Err(Overloaded));
            assert_eq!(hasher.verify(PASSWORD, None), Err(Overloaded));
            drop(running);
            let stored = waiter.join().unwrap().unwrap();
            assert!(hasher.verify(PASSWORD, Some(&stored)).unwrap().ok);
        });
        assert_eq!(hasher.queue_len(), 0);
    }

    #[test]
    fn oversized_verifications_also_wait_for_a_slot() {
        let stored = foreign_hash("argon2id", 0x13, Params::new(32768, 1, 1, None).unwrap());
        let hasher = Hasher::new(1, 1);
        let mut running = hasher.admit().unwrap();
        running.start();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| hasher.verify(PASSWORD, Some(&stored)));
            while hasher.queue_len() < 2 {
                std::thread::yield_now();
            }
            assert!(!waiter.is_finished());
            drop(running);
            assert_eq!(waiter.join().unwrap(), Ok(verdict(true, true)));
        });
    }

    #[test]
    fn many_threads_share_two_buffers() {
        let hasher = Hasher::new(2, 64);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|i| {
                    let hasher = &hasher;
                    scope.spawn(move || {
                        let password = format!("{PASSWORD} {i}");
                        let stored = hasher.hash(&password).unwrap();
                        assert_eq!(
                            hasher.verify(&password, Some(&stored)),
                            Ok(verdict(true, false))
                        );
                        assert!(!hasher.verify(PASSWORD, Some(&stored)).unwrap().ok);
                    })
                })
                .collect();
            for worker in workers {
                worker.join().unwrap();
            }
        });
        let state = hasher.lock();
        assert_eq!((state.admitted, state.running), (0, 0));
        assert!((1..=2).contains(&state.idle.len()));
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"xbc"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn debug_shows_no_buffers() {
        let hasher = Hasher::new(2, 3);
        hasher.hash(PASSWORD).unwrap();
        assert_eq!(
            format!("{hasher:?}"),
            "Hasher { parallel: 2, capacity: 5, queue_len: 0 }"
        );
    }

    fn rss_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// `cargo test --release -- --ignored --nocapture timing`
    #[test]
    #[ignore = "timing; run in release"]
    fn timing_hashes() {
        let hasher = Hasher::new(2, 1000);
        let first = Instant::now();
        let stored = hasher.hash(PASSWORD).unwrap();
        println!("first hash (allocates a buffer): {:?}", first.elapsed());

        let rounds = 10;
        let start = Instant::now();
        for _ in 0..rounds {
            hasher.hash(PASSWORD).unwrap();
        }
        println!("one hash: {:?}", start.elapsed() / rounds);
        let start = Instant::now();
        for _ in 0..rounds {
            hasher.verify(PASSWORD, Some(&stored)).unwrap();
        }
        println!("one verify: {:?}", start.elapsed() / rounds);
        let start = Instant::now();
        for _ in 0..rounds {
            hasher.verify(PASSWORD, None).unwrap();
        }
        println!("one dummy verify: {:?}", start.elapsed() / rounds);

        let threads = 16;
        let per_thread = 5;
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..per_thread {
                        hasher.hash(PASSWORD).unwrap();
                    }
                });
            }
        });
        let elapsed = start.elapsed();
        let hashes = threads * per_thread;
        println!(
            "{hashes} hashes from {threads} threads on parallel=2: {elapsed:?}, {:.1} hashes/s",
            f64::from(hashes) / elapsed.as_secs_f64()
        );
        println!("RSS after: {:?} KiB", rss_kib());
    }
}
