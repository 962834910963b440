//! HTTP strictness over raw sockets (API.md "Connections", RFC 9112 §2.2,
//! §3.2, §7.1.1, §7.1.2): a line ending other than CRLF, an HTTP/1.1 request
//! without exactly one valid `Host`, a malformed chunk extension or trailer
//! field are 400 `bad_request` and close the connection; every answer of the
//! connection layer (400, 408, 413, 503) carries the security headers and the
//! JSON error body; the access log has one line per answer, without the query.

use std::time::{Duration, Instant};

use crate::harness::*;

/// Asserts the headers every answer carries.
fn assert_security_headers(resp: &Response) {
    assert_eq!(
        resp.header("X-Content-Type-Options"),
        Some("nosniff"),
        "{:?}",
        resp.headers
    );
    assert!(
        resp.header("Cache-Control").is_some_and(|v| !v.is_empty()),
        "no Cache-Control: {:?}",
        resp.headers
    );
}

/// Sends raw bytes; expects `status` `code` with the security headers, then the close.
fn assert_refused(srv: &Server, raw: &[u8], status: u16, code: &str) {
    let mut conn = Conn::open(srv.addr);
    conn.set_read_timeout(Duration::from_secs(5));
    let _ = conn.write_raw(raw);
    let resp = conn
        .read_response()
        .unwrap_or_else(|e| panic!("no answer to {:?}: {e}", String::from_utf8_lossy(raw)));
    assert_error(&resp, status, code);
    assert_security_headers(&resp);
    assert!(
        conn.closed_within(Duration::from_secs(2)),
        "connection left open after {:?}",
        String::from_utf8_lossy(raw)
    );
}

#[test]
fn line_endings_hosts_chunk_extensions_and_trailers_are_checked() {
    let srv = Server::start();
    let refused: [&[u8]; 10] = [
        // RFC 9112 §2.2: bare LF, in the request line, a field, or the end.
        b"GET /healthz HTTP/1.1\nHost: t\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\n\n",
        // RFC 9112 §3.2: exactly one valid Host in HTTP/1.1.
        b"GET /healthz HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a, b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n",
        // RFC 9112 §7.1.1: a chunk extension with a NUL.
        b"POST /login/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n2;a\x00b\r\n{}\r\n0\r\n\r\n",
        // RFC 9112 §7.1.2: trailer lines that are not fields.
        b"POST /login/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nnot a field\r\n\r\n",
        b"POST /login/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX: a\x01b\r\n\r\n",
    ];
    for raw in refused {
        assert_refused(&srv, raw, 400, "bad_request");
    }
    // Their well-formed twins are served.
    let mut conn = Conn::open(srv.addr);
    conn.write_raw(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    let mut conn = Conn::open(srv.addr);
    conn.write_raw(
        b"POST /login/ HTTP/1.1\r\nHost: [::1]:80\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n2;a=\"b c\" ; d\r\n{}\r\n0\r\nX-Trailer: ok\r\n\r\n",
    )
    .unwrap();
    // `{}` is a well-framed request; the handler finds its fields missing.
    assert_eq!(conn.read_response().unwrap().status, 400);
    assert_eq!(
        srv.get("/healthz").send_on(&mut conn).status,
        200,
        "in sync"
    );
}

#[test]
fn every_refusal_of_the_connection_layer_carries_the_security_headers() {
    let srv = Server::with_args(&["--request-timeout", "1"]);
    // 413, from the head alone.
    assert_refused(
        &srv,
        b"POST /signup/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Content-Length: 1000000\r\n\r\n",
        413,
        "payload_too_large",
    );
    // 400 for a head over 16 KiB.
    let long = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_refused(&srv, long.as_bytes(), 400, "bad_request");
    // 408: a head that never ends.
    let started = Instant::now();
    assert_refused(
        &srv,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n",
        408,
        "request_timeout",
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
    // The router's own errors carry them too.
    let resp = srv.get("/nope").send();
    assert_error(&resp, 404, "not_found");
    assert_security_headers(&resp);
    // 503: a connection past --max-connections.
    let srv = Server::with_args(&["--max-connections", "2"]);
    let mut open: Vec<Conn> = (0..2).map(|_| Conn::open(srv.addr)).collect();
    for conn in &mut open {
        assert_eq!(srv.get("/healthz").send_on(conn).status, 200);
    }
    let mut extra = Conn::open(srv.addr);
    let _ = extra.write_raw(&srv.get("/healthz").to_bytes());
    extra.set_read_timeout(Duration::from_secs(3));
    let resp = extra.read_response().expect("an answer past the cap");
    assert_error(&resp, 503, "overloaded");
    assert_security_headers(&resp);
}

#[test]
fn the_access_log_has_one_line_per_answer_without_the_query_string() {
    let srv = Server::start();
    let resp = srv.get("/healthz?token=SECRET-IN-QUERY").send();
    assert_eq!(resp.status, 200);
    let mut conn = Conn::open(srv.addr);
    let _ = conn.write_raw(b"GET /nope?code=OTHER-SECRET HTTP/1.1\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().status, 400);
    let mut conn = Conn::open(srv.addr);
    let _ = conn.write_raw(
        b"POST /login/?t=THIRD-SECRET HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n",
    );
    assert_eq!(conn.read_response().unwrap().status, 413);
    let log = srv.stop();
    let access: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("latchkey::access"))
        .collect();
    for secret in ["SECRET-IN-QUERY", "OTHER-SECRET", "THIRD-SECRET"] {
        assert!(!log.contains(secret), "{secret} reached the log:\n{log}");
    }
    let count = |needle: &str| access.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("GET /healthz healthz 200"), 1, "{access:#?}");
    assert_eq!(count("GET /nope - 400"), 1, "{access:#?}");
    assert_eq!(count("POST /login/ - 413"), 1, "{access:#?}");
    assert_eq!(access.len(), 3, "one line per answer: {access:#?}");
}
