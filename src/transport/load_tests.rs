//! Socket tests under load: a burst of new connections, a thousand idle ones (with the
//! memory they cost), and handlers that step aside while others still get served.
//! They print their measurements (`cargo test -- --nocapture` shows them).

use crate::locks::Unpoisoned;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::Options;
use super::test_support::{Client, options, rss_kib, start, start_with, wait_until};
use crate::transport::workers::Workers;

/// The load tests run one at a time, so their timings and memory figures are their own.
static HEAVY: Mutex<()> = Mutex::new(());

#[test]
fn a_burst_of_200_new_connections_is_answered_within_a_second() {
    let _heavy = HEAVY.lock().unpoisoned();
    let server = start(Options {
        max_connections: 1000,
        ..options()
    });
    let barrier = Arc::new(Barrier::new(201));
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let (barrier, addr) = (barrier.clone(), server.addr);
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let mut client = Client::connect(addr);
                    let status = client.get("/hello").status;
                    // Kept open (keep-alive) until every client has its answer.
                    (status, Instant::now(), client)
                })
                .unwrap()
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let answers: Vec<_> = clients
        .into_iter()
        .map(|client| client.join().unwrap())
        .collect();
    let slowest = answers
        .iter()
        .map(|(_, at, _)| *at - started)
        .max()
        .unwrap();
    println!("burst: 200 new connections answered within {slowest:?}");
    assert!(answers.iter().all(|(status, _, _)| *status == 200));
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
}

#[test]
fn a_thousand_idle_connections_cost_little_and_block_nobody() {
    let _heavy = HEAVY.lock().unpoisoned();
    let server = start(Options {
        max_connections: 1100,
        ..options()
    });
    // Warm up so allocator arenas and the workers exist before the first figure.
    assert_eq!(server.connect().get("/hello").status, 200);
    let before = rss_kib();
    // Bare sockets, so the figure is the server's: half have served a request, half
    // never sent a byte.
    let mut idle = Vec::with_capacity(1000);
    for index in 0..1000 {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        if index % 2 == 0 {
            stream
                .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let mut answer = [0; 256];
            let mut length = 0;
            while !answer[..length].ends_with(b"hello") {
                length += stream.read(&mut answer[length..]).unwrap();
            }
        }
        idle.push(stream);
    }
    let started = Instant::now();
    let mut other = server.connect();
    assert_eq!(other.get("/hello").status, 200);
    let served_in = started.elapsed();
    let after = rss_kib();
    println!(
        "1000 idle connections: VmRSS {before} KiB -> {after} KiB (+{} KiB, {:.1} KiB each); \
         another client served in {served_in:?}",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / 1000.0,
    );
    assert!(served_in < Duration::from_millis(500), "{served_in:?}");
    // The memory bound is the service's, and is asserted on the real binary
    // in tests/api (this process also holds every other unit test's memory).
    // The idle ones still work.
    for stream in idle.drain(..2) {
        let mut client = Client {
            reader: std::io::BufReader::new(stream),
        };
        assert_eq!(client.get("/hello").status, 200);
    }
}

#[test]
fn requests_are_served_while_every_slot_steps_aside() {
    let _heavy = HEAVY.lock().unpoisoned();
    let server = start_with(options(), Workers::new(8, 8));
    let blocked: Vec<_> = (0..8)
        .map(|_| {
            let mut client = server.connect();
            client.send("GET /block HTTP/1.1\r\nHost: t\r\n\r\n");
            client
        })
        .collect();
    let service = server.service.clone();
    assert!(wait_until(Duration::from_secs(5), || {
        service.waiting.load(Ordering::SeqCst) == 8
    }));
    let started = Instant::now();
    assert_eq!(server.connect().get("/hello").status, 200);
    let took = started.elapsed();
    println!("9th request with 8 handlers stepped aside: {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
    service.release();
    for mut client in blocked {
        assert_eq!(client.answer(false).text(), "unblocked");
    }
}

#[test]
fn measures_the_cost_of_a_request() {
    let _heavy = HEAVY.lock().unpoisoned();
    let workers = Workers::new(4, 0);
    let rounds = 2000;
    let started = Instant::now();
    for round in 0..rounds {
        assert_eq!(workers.call(move || round), Ok(round));
    }
    let handoff = started.elapsed() / rounds;
    workers.shutdown();
    let server = start(options());
    let mut client = server.connect();
    let started = Instant::now();
    for _ in 0..rounds {
        assert_eq!(client.get("/hello").status, 200);
    }
    let exchange = started.elapsed() / rounds;
    println!("worker handoff {handoff:?} per call; keep-alive GET round trip {exchange:?}");
}
