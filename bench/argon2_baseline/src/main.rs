//! Raw argon2id throughput at latchkey's parameters (m=19456 KiB, t=2, p=1,
//! 16-byte salt, 32-byte output): THREADS threads hash in a loop for SECONDS,
//! each with its own reused memory, like the service's hashing pool. Prints
//! one JSON line: `{"threads", "seconds", "hashes", "hashes_per_second",
//! "peak_rss_kib"}`.
//!
//! Usage: argon2_baseline [THREADS (default: all cores)] [SECONDS (default 5)]

use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: usize = args.next().map_or(cores, |a| a.parse().expect("THREADS is a number"));
    let seconds: f64 = args.next().map_or(5.0, |a| a.parse().expect("SECONDS is a number"));

    let params = Params::new(M_COST, T_COST, P_COST, Some(OUTPUT_LEN)).expect("valid parameters");
    let stop = Arc::new(AtomicBool::new(false));
    let hashes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (params, stop, hashes) = (params.clone(), stop.clone(), hashes.clone());
            std::thread::spawn(move || {
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut memory = vec![Block::default(); params.block_count()];
                let mut out = [0u8; OUTPUT_LEN];
                let mut salt = [0u8; 16];
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    // A different salt and password each time, as real sign-ups have.
                    salt[..8].copy_from_slice(&n.to_le_bytes());
                    salt[8..].copy_from_slice(&(t as u64).to_le_bytes());
                    let password = format!("correct horse battery staple {n}");
                    argon2
                        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut memory)
                        .expect("hashing");
                    std::hint::black_box(&out);
                    hashes.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    // Hashes still running finish and count; the clock stops when they do.
    for worker in workers {
        worker.join().expect("a hashing thread panicked");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = hashes.load(Ordering::Relaxed);
    println!(
        "{{\"threads\": {threads}, \"seconds\": {elapsed:.3}, \"hashes\": {done}, \"hashes_per_second\": {:.2}, \"peak_rss_kib\": {}}}",
        done as f64 / elapsed,
        peak_rss_kib()
    );
}

/// This process's VmHWM (the parent's `wait4` figure would include the memory
/// of the process that forked us, from before `exec`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
