//! Socket tests of the connection layer's behaviour: keep-alive, pipelining, framing
//! refusals, chunked bodies, timeouts, header sanitising and graceful stop.

use std::io::Write;
use std::time::{Duration, Instant};

use super::Options;
use super::test_support::{Client, options, start, wait_until};

#[test]
fn keeps_the_connection_alive_and_answers_head() {
    let server = start(options());
    let mut client = server.connect();
    let first = client.get("/hello");
    assert_eq!((first.status, first.text()), (200, "hello"));
    assert!(
        first
            .header("Date")
            .is_some_and(|date| date.ends_with(" GMT"))
    );
    assert!(!first.closes());
    client.send("HEAD /hello HTTP/1.1\r\nHost: test\r\n\r\n");
    let head = client.answer(true);
    assert_eq!(head.header("Content-Length"), Some("5"));
    let info = client.get("/info");
    assert_eq!(info.text(), "GET 127.0.0.1 length=None");
    client.send("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(client.answer(false).closes());
    assert!(client.is_closed());
}

#[test]
fn http10_closes_unless_asked_to_keep_alive() {
    let server = start(options());
    let mut client = server.connect();
    client.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(
        client.answer(false).header("Connection"),
        Some("keep-alive")
    );
    // Size unknown and no chunked coding in HTTP/1.0: the body ends with the connection.
    client.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let streamed = client.answer(false);
    assert_eq!(
        (streamed.text(), streamed.closes()),
        ("streamed body", true)
    );
    let mut client = server.connect();
    client.send("GET /hello HTTP/1.0\r\n\r\n");
    assert!(client.answer(false).closes());
    assert!(client.is_closed());
}

#[test]
fn answers_pipelined_requests_in_order() {
    let server = start(options());
    let mut client = server.connect();
    client.send(concat!(
        "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst",
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n",
        "GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ));
    let bodies: Vec<_> = (0..4).map(|_| client.answer(false).body).collect();
    assert_eq!(
        bodies,
        [&b"hello"[..], b"first", b"second", b"streamed body"]
    );
    assert!(client.is_closed());
}

#[test]
fn decodes_chunked_bodies() {
    let server = start(options());
    let mut client = server.connect();
    client.send(concat!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n",
        "4;ext=\"x\"\r\nWiki\r\n",
        "0005\r\npedia\r\n",
        "0\r\nX-Checksum: abc\r\n\r\n",
    ));
    assert_eq!(client.answer(false).text(), "Wikipedia");
    client.send(
        "POST /info HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(
        client.answer(false).text(),
        "POST 127.0.0.1 length=Some(\"3\")"
    );
}

#[test]
fn refuses_ambiguous_framing_and_closes() {
    let server = start(options());
    let attempts: [&[u8]; 11] = [
        b"GET /hello HTTP/1.1\nHost: t\n\n",
        b"GET /hello HTTP/1.1\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nHost: a, b\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x00b\r\nab\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET / HTTP/1.1\r\nHost: t\r\nX: caf\xc3\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for attempt in attempts {
        let mut client = server.connect();
        client.send(attempt);
        let answer = client.answer(false);
        assert_eq!(
            (answer.status, answer.text()),
            (400, "BadRequest"),
            "{attempt:?}"
        );
        assert!(answer.closes());
        assert!(client.is_closed(), "{attempt:?}");
    }
}

#[test]
fn refuses_oversized_requests() {
    let server = start(options());
    let mut client = server.connect();
    client.send(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n",
    );
    let answer = client.answer(false);
    assert_eq!(
        answer.status, 413,
        "no 100 Continue before a body that is too large"
    );
    assert!(client.is_closed());
    let mut client = server.connect();
    client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n");
    client.send([b'a'; 1000]);
    client.send("\r\n1\r\nb\r\n0\r\n\r\n");
    assert_eq!(client.answer(false).status, 413);
    let mut client = server.connect();
    client.send(format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    ));
    assert_eq!(client.answer(false).status, 431);
    let many: String = (0..100).map(|index| format!("X-{index}: v\r\n")).collect();
    let mut client = server.connect();
    client.send(format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n"));
    assert_eq!(client.answer(false).status, 431);
}

#[test]
fn bodies_over_the_default_limit_are_admitted_by_the_service() {
    let server = start(options());
    // Within what the service allows for this target: read and handled.
    let mut client = server.connect();
    client.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n");
    client.send([b'a'; 3000]);
    assert_eq!(client.answer(false).body.len(), 3000);
    // Over it: 413 at once, no body read, no 100 Continue first.
    let mut client = server.connect();
    client.send(
        "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5001\r\nExpect: 100-continue\r\n\r\n",
    );
    let answer = client.answer(false);
    assert_eq!(
        (answer.status, answer.header("X-Target")),
        (413, Some("/big"))
    );
    assert!(answer.closes() && client.is_closed());
    // The service answers instead (an upload without credentials, say): at once.
    let mut client = server.connect();
    client.send("POST /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n");
    let answer = client.answer(false);
    assert_eq!((answer.status, answer.text()), (401, "denied"));
    assert!(answer.closes() && client.is_closed());
    // A chunked body is held to the admitted limit too.
    let mut client = server.connect();
    client.send("POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    client.send(format!(
        "1388\r\n{}\r\n1\r\nx\r\n0\r\n\r\n",
        "a".repeat(5000)
    ));
    assert_eq!(client.answer(false).status, 413);
    // Over the hard maximum: refused from the head alone.
    let mut client = server.connect();
    client.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 10001\r\n\r\n");
    assert_eq!(client.answer(false).status, 413);
    // A panicking admission is answered as an internal error.
    let mut client = server.connect();
    client.send("POST /panic HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n");
    assert_eq!(client.answer(false).status, 500);
    assert_eq!(server.connect().get("/hello").status, 200);
}

#[test]
fn sends_100_continue_before_reading_the_body() {
    let server = start(options());
    let mut client = server.connect();
    client.send(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(client.answer(false).status, 100);
    client.send("body");
    assert_eq!(client.answer(false).text(), "body");
}

#[test]
fn drops_injected_response_headers() {
    let server = start(options());
    let answer = server.connect().get("/inject");
    assert_eq!(answer.header("X-Safe"), Some("yes"));
    assert!(answer.header("Set-Cookie").is_none() && answer.header("X-Evil").is_none());
    assert!(answer.header("X-Other").is_none());
}

#[test]
fn unsized_bodies_go_out_chunked() {
    let server = start(options());
    let mut client = server.connect();
    let answer = client.get("/stream");
    assert_eq!(answer.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(answer.text(), "streamed body");
    assert_eq!(client.get("/hello").text(), "hello");
}

#[test]
fn a_panicking_handler_gets_500_and_a_close() {
    let server = start(options());
    let mut client = server.connect();
    let answer = client.get("/panic");
    // The service's answer to `Refusal::Internal`, not one of the connection layer.
    assert_eq!((answer.status, answer.text()), (500, "Internal"));
    assert_eq!(answer.header("X-Target"), Some("/panic"));
    assert!(answer.closes() && client.is_closed());
    assert_eq!(server.connect().get("/hello").status, 200);
}

#[test]
fn closes_idle_connections_after_the_idle_timeout() {
    let server = start(Options {
        idle_timeout: Duration::from_secs(1),
        ..options()
    });
    let mut used = server.connect();
    assert_eq!(used.get("/hello").status, 200);
    let mut silent = server.connect();
    let started = Instant::now();
    assert!(used.is_closed() && silent.is_closed());
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_millis(800) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[test]
fn a_trickled_request_gets_408() {
    let server = start(Options {
        request_timeout: Duration::from_secs(1),
        ..options()
    });
    let mut client = server.connect();
    let request = b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Padding: aaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let stream = client.reader.get_ref().try_clone().unwrap();
    // One byte per 150 ms: the pause is the client's pace, read timeouts the polling.
    stream
        .set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let mut peeked = [0];
    for byte in request {
        if stream.peek(&mut peeked).is_ok() || (&stream).write_all(&[*byte]).is_err() {
            break;
        }
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let answer = client.answer(false);
    assert_eq!(answer.status, 408);
    assert!(answer.closes() && client.is_closed());
    let took = started.elapsed();
    assert!(
        took > Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn a_slow_body_gets_408() {
    let server = start(Options {
        request_timeout: Duration::from_secs(1),
        ..options()
    });
    let mut client = server.connect();
    client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(client.answer(false).status, 408);
}

#[test]
fn refuses_connections_over_the_limit_at_once() {
    let server = start(Options {
        max_connections: 2,
        ..options()
    });
    let mut first = server.connect();
    let mut second = server.connect();
    assert_eq!(first.get("/hello").status, 200);
    assert_eq!(second.get("/hello").status, 200);
    let started = Instant::now();
    let mut third = server.connect();
    let answer = third.answer(false);
    assert_eq!((answer.status, answer.text()), (503, "Overloaded"));
    assert!(third.is_closed());
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(first);
    // The freed place is taken by the next connection once its thread has ended.
    assert!(wait_until(Duration::from_secs(5), || {
        let mut client = server.connect();
        client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        client
            .try_answer(false)
            .is_ok_and(|answer| answer.status == 200)
    }));
    assert_eq!(second.get("/hello").status, 200);
}

#[test]
fn stopping_answers_requests_in_flight_then_returns() {
    let mut server = start(options());
    let mut idle = server.connect();
    assert_eq!(idle.get("/hello").status, 200);
    let mut busy = server.connect();
    busy.send("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n");
    let service = server.service.clone();
    assert!(wait_until(Duration::from_secs(5), || service
        .waiting
        .load(std::sync::atomic::Ordering::SeqCst)
        == 1));
    server.stopper.stop();
    // The idle connection closes at once; serve waits for the busy one.
    assert!(idle.is_closed());
    let serving = server.serving.take().unwrap();
    assert!(!serving.is_finished());
    assert!(std::net::TcpStream::connect(server.addr).is_err());
    service.release();
    let answer = busy.answer(false);
    assert_eq!((answer.status, answer.text()), (200, "waited"));
    assert!(answer.closes() && busy.is_closed());
    assert!(wait_until(Duration::from_secs(5), || serving.is_finished()));
    serving.join().unwrap().unwrap();
}

#[test]
fn survives_random_bytes() {
    let server = start(options());
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..50 {
        let mut client = Client::connect(server.addr);
        let bytes: Vec<u8> = (0..200)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        client.send(&bytes);
        let _ = client.reader.get_ref().shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let drained = std::io::Read::read_to_end(&mut client.reader, &mut rest);
        // Closed: either the end of the stream or a reset, never a read timeout.
        assert!(drained.is_ok() || drained.unwrap_err().kind() != std::io::ErrorKind::WouldBlock);
    }
    assert_eq!(server.connect().get("/hello").status, 200);
}
