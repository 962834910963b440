//! Limits on everything a client sends, proved at their edges: the 16 KiB
//! request head, the 64 KiB JSON body (exactly at and one byte past it), JSON
//! nesting, multipart forms (parts, field sizes, whole bodies, a huge declared
//! length, a chunked body that never ends), and slow clients, which may hold
//! a connection until `--request-timeout` but never a worker. Every answer is
//! a contract error (400, 408, 413), never a 500 and never a hang.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

/// Sends raw bytes on a new connection; expects `status` `code` and the
/// connection closed after it, all within `within`.
fn assert_refused_and_closed(srv: &Server, raw: &[u8], status: u16, code: &str, within: Duration) {
    let started = Instant::now();
    let mut conn = Conn::open(srv.addr);
    // The server may answer and stop reading before all of it has arrived.
    let _ = conn.write_raw(raw);
    let resp = conn.read_response().expect("an answer before the close");
    assert_error(&resp, status, code);
    assert!(
        conn.closed_within(Duration::from_secs(3)),
        "not closed after {status}"
    );
    assert!(
        started.elapsed() < within,
        "{status} {code} took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_request_head_over_16_kib_is_bad_request_and_closed() {
    let srv = Server::start();
    let quick = Duration::from_secs(3);
    // A head just under the limit is served.
    let fits = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Fill: {}\r\n\r\n",
        "a".repeat(15 * 1024)
    );
    let mut conn = Conn::open(srv.addr);
    conn.write_raw(fits.as_bytes()).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);

    let long_field = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    let long_target = format!(
        "GET /healthz?q={} HTTP/1.1\r\nHost: t\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    let many_fields = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\n{}\r\n",
        (0..400)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    // A head that never ends: refused once 16 KiB have come, not at the timeout.
    let endless = format!(
        "POST /login/ HTTP/1.1\r\nHost: t\r\n{}",
        "X-More: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(2000)
    );
    for raw in [long_field, long_target, many_fields, endless] {
        assert_refused_and_closed(&srv, raw.as_bytes(), 400, "bad_request", quick);
    }
    assert_eq!(srv.get("/healthz").send().status, 200);
}

#[test]
fn a_json_body_is_accepted_up_to_64_kib_and_refused_one_byte_past() {
    let srv = Server::start();
    let body_of = |len: usize| {
        let mut body = json!({"refresh_token": "A".repeat(43)}).to_string();
        // Whitespace is valid JSON: pad to exactly `len` bytes.
        body.push_str(&" ".repeat(len - body.len()));
        body
    };
    let post = |body: String| {
        srv.post("/refresh/")
            .body_with_type("application/json", body)
            .send()
    };
    assert_error(&post(body_of(64 * 1024)), 400, "invalid_refresh_token");
    assert_error(&post(body_of(64 * 1024 + 1)), 413, "payload_too_large");
    assert_error(&post(body_of(1024 * 1024)), 413, "payload_too_large");
}

#[test]
fn deeply_nested_json_is_a_400_on_every_json_route() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "nesting");
    // About 60 KB each: under the size limit, far over any sane depth.
    let in_a_field = format!(
        "{{\"email\": {}{}}}",
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    let unclosed = format!("{{\"x\": {}", "[{\"a\":".repeat(9_000));
    // Well-formed, but under a key no route reads: skipped, so it is `{}`.
    let ignored = format!(
        "{{\"x\": {}1{}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    let routes = [
        ("POST", "/signup/"),
        ("POST", "/login/"),
        ("POST", "/refresh/"),
        ("POST", "/logout/"),
        ("POST", "/revoke"),
        ("POST", "/tokens/"),
        ("POST", "/password/"),
        ("PUT", "/profile/"),
        ("PATCH", "/profile/"),
    ];
    let send = |method: &str, path: &str, body: &str| {
        srv.request(method, path)
            .bearer(&tokens.access)
            .body_with_type("application/json", body.to_string())
            .send()
    };
    for (method, path) in routes {
        assert_error(&send(method, path, &unclosed), 400, "invalid_json");
        // A deep value where a string is expected is refused at its first
        // byte; where nothing is expected it is skipped, which is `{}`.
        let empty = send(method, path, "{}");
        for body in [&in_a_field, &ignored] {
            let resp = send(method, path, body);
            if resp.status == 400 && resp.json()["code"] == "invalid_json" {
                continue;
            }
            assert_eq!(
                (resp.status, resp.text()),
                (empty.status, empty.text()),
                "{method} {path}: neither invalid_json nor the answer to {{}}"
            );
        }
    }
    for path in ["/signup/", "/login/"] {
        assert_error(&send("POST", path, &in_a_field), 400, "invalid_json");
    }
    // Still alive, and the session still works.
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
}

/// A `multipart/form-data` body written by hand, so that counts and sizes
/// can go where no well-behaved encoder would take them.
fn form(parts: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "limits-7f3a9c";
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn multipart_forms_are_bounded_in_parts_field_size_and_total_size() {
    let srv = Server::with_args(&["--max-image-bytes", "4096"]);
    let (_, tokens) = new_session(&srv, "bigform");
    let put = |(content_type, body): (String, Vec<u8>)| {
        srv.put("/profile/")
            .bearer(&tokens.access)
            .body_with_type(&content_type, body)
            .send()
    };
    let small = |n: usize| (format!("x{n}"), b"1".to_vec());
    let many: Vec<(String, Vec<u8>)> = (0..17).map(small).collect();
    let many: Vec<(&str, Vec<u8>)> = many.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    assert_error(&put(form(&many)), 413, "payload_too_large");
    let thousands: Vec<(String, Vec<u8>)> = (0..5000).map(small).collect();
    let thousands: Vec<(&str, Vec<u8>)> = thousands
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    assert_error(&put(form(&thousands)), 413, "payload_too_large");
    assert_error(
        &put(form(&[("name", vec![b'a'; 5 * 1024])])),
        413,
        "payload_too_large",
    );
    assert_error(
        &put(form(&[("image", vec![0xFF; 4097])])),
        413,
        "payload_too_large",
    );
    assert_error(
        &put(form(&[
            ("name", b"Ada Byron".to_vec()),
            ("pad", vec![b'a'; 512 * 1024]),
        ])),
        413,
        "payload_too_large",
    );
    // Within every limit, the same route still works.
    let resp = put(form(&[("name", b"Ada Byron".to_vec())]));
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn a_huge_declared_or_endless_chunked_body_is_413_at_once() {
    let srv = Server::start();
    let quick = Duration::from_secs(3);
    for path in ["/login/", "/profile/"] {
        let method = if path == "/login/" { "POST" } else { "PUT" };
        // 10 GiB announced; nothing follows. Refused without waiting for it.
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: 10737418240\r\n\r\n"
        );
        assert_refused_and_closed(&srv, head.as_bytes(), 413, "payload_too_large", quick);
    }
    // A chunked body that keeps coming: 4 MiB in 64 KiB chunks, sent while
    // the server answers (a failed write just means it stopped reading).
    let mut conn = Conn::open(srv.addr);
    conn.write_raw(
        b"POST /signup/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
    for _ in 0..64 {
        if conn.write_raw(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let resp = conn.read_response().expect("an answer");
    assert_error(&resp, 413, "payload_too_large");
    assert_eq!(srv.get("/healthz").send().status, 200);
}

/// A connection that sends a head announcing a 100-byte body, then trickles
/// that body one byte every 200 ms until the server answers; returns the answer.
fn slow_client(addr: std::net::SocketAddr) -> thread::JoinHandle<(Option<Response>, Duration)> {
    thread::spawn(move || {
        let started = Instant::now();
        let mut conn = Conn::open(addr);
        let head = "POST /refresh/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                    Content-Length: 100\r\n\r\n{";
        conn.write_raw(head.as_bytes()).unwrap();
        while !conn.readable_within(Duration::from_millis(200)) {
            if started.elapsed() > Duration::from_secs(12) || conn.write_raw(b" ").is_err() {
                break;
            }
        }
        (conn.read_response().ok(), started.elapsed())
    })
}

#[test]
fn slow_clients_never_hold_the_workers_and_are_cut_off_at_the_request_timeout() {
    // One worker thread against twelve clients, each of which would take
    // 20 s to send its body: were bodies read on workers, nothing else ran.
    let srv = Server::with_args(&["--threads", "1", "--request-timeout", "4"]);
    let (_, tokens) = new_session(&srv, "slowloris");
    let slow: Vec<_> = (0..12).map(|_| slow_client(srv.addr)).collect();
    thread::sleep(Duration::from_millis(300));
    // While they trickle, complete requests are served at once.
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(get_profile(&srv, &tokens.access).status, 200);
        assert_eq!(refresh(&srv, &tokens.refresh).status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "a prompt client waited {:?} behind slow ones",
            started.elapsed()
        );
    }
    for handle in slow {
        let (resp, elapsed) = handle.join().unwrap();
        let resp = resp.expect("a slow client gets an answer, not just a close");
        assert_error(&resp, 408, "request_timeout");
        assert!(
            elapsed < Duration::from_secs(7),
            "a slow client held its connection {elapsed:?} with a 4 s timeout"
        );
    }
}

#[test]
fn slow_clients_announcing_large_bodies_do_not_starve_others() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "budget");
    // The largest body the connection layer reads by default: 2 MiB + 64 KiB.
    let largest = 2 * 1024 * 1024 + 64 * 1024;
    // 31 of those and two of 32 KiB fill it exactly.
    let sizes = [vec![largest; 31], vec![32 * 1024; 2]].concat();
    let mut silent = Vec::new();
    for size in sizes {
        let mut conn = Conn::open(srv.addr);
        let head = format!(
            "PUT /profile/ HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; \
             boundary=x\r\nContent-Length: {size}\r\n\r\n--x"
        );
        conn.write_raw(head.as_bytes()).unwrap();
        silent.push(conn);
    }
    thread::sleep(Duration::from_millis(300));
    // 33 clients that send nothing: a complete, tiny request must still be
    // served (the contract keeps 503 for a full hashing queue).
    let resp = refresh(&srv, &tokens.refresh);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = srv
        .patch("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"name": "Ada Byron"}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    drop(silent);
}
