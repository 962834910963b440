//! `X-Forwarded-For` behind a `--trusted-proxy`, over raw sockets (API.md
//! "Connections"): all header lines joined in order, walked from the right,
//! the client the first entry that is not a trusted proxy; an IPv4-mapped
//! IPv6 peer counts as its IPv4 address. Proved through the per-address login
//! throttle: with `--login-max-failures 1`, one address is blocked after 20
//! failures across emails.

use std::net::SocketAddr;

use serde_json::json;

use crate::harness::*;

/// A login as raw bytes with the given `X-Forwarded-For` lines, on a new connection.
fn log_in_through(addr: SocketAddr, email: &str, password: &str, forwarded: &[&str]) -> Response {
    let body = json!({"email": email, "password": password}).to_string();
    let mut raw =
        String::from("POST /login/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n");
    for line in forwarded {
        raw.push_str(&format!("X-Forwarded-For: {line}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut conn = Conn::open(addr);
    conn.write_raw(raw.as_bytes()).expect("send");
    conn.read_response().expect("an answer")
}

/// 20 failed logins (unknown emails) whose `X-Forwarded-For` lines are `lines(n)`.
fn fail_twenty_times(addr: SocketAddr, lines: impl Fn(usize) -> Vec<String>) {
    for n in 0..20 {
        let lines = lines(n);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let resp = log_in_through(addr, &unique_email("xff"), "Tr0ub4dor&3-guess", &lines);
        assert_error(&resp, 401, "invalid_credentials");
    }
}

fn proxied_server(extra: &[&str]) -> Server {
    let args = [
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "10.0.0.1",
        ][..],
        &["--login-max-failures", "1", "--login-window", "60"],
        extra,
    ]
    .concat();
    Server::builder().args(&args).start()
}

#[test]
fn a_forwarded_for_comma_list_is_walked_from_the_right() {
    let srv = proxied_server(&[]);
    let account = new_account(&srv, "xfflist");
    // Forged hops on the left, then the client, then a second trusted proxy.
    fail_twenty_times(srv.addr, |n| {
        vec![format!("203.0.113.{n}, 198.51.100.7, 10.0.0.1")]
    });
    let blocked = log_in_through(srv.addr, &account.email, PASSWORD, &["198.51.100.7"]);
    assert_error(&blocked, 429, "too_many_requests");
    let other = log_in_through(srv.addr, &account.email, PASSWORD, &["198.51.100.8"]);
    assert_eq!(other.status, 200, "{}", other.text());
}

#[test]
fn forwarded_for_header_lines_are_joined_in_order() {
    let srv = proxied_server(&[]);
    let account = new_account(&srv, "xfflines");
    // The client forges a first line; the proxy appends its own line (as
    // HAProxy's `option forwardfor` does). Reading only the first line would
    // give a new address each time and never block.
    fail_twenty_times(srv.addr, |n| {
        vec![format!("203.0.113.{n}"), "198.51.100.7".to_string()]
    });
    let blocked = log_in_through(
        srv.addr,
        &account.email,
        PASSWORD,
        &["192.0.2.99", "198.51.100.7, 10.0.0.1"],
    );
    assert_error(&blocked, 429, "too_many_requests");
    // Nor can a client get a victim blocked by forging the victim's address.
    let victim = log_in_through(srv.addr, &account.email, PASSWORD, &["198.51.100.8"]);
    assert_eq!(victim.status, 200, "{}", victim.text());
}

#[test]
fn an_ipv4_mapped_peer_matches_its_ipv4_trusted_proxy() {
    // On a dual-stack socket an IPv4 client's address is `::ffff:127.0.0.1`.
    let mut srv = Server::builder()
        .without_listen_flag()
        .args(&[
            "--listen",
            "[::]:0",
            "--trusted-proxy",
            "127.0.0.1",
            "--login-max-failures",
            "1",
            "--login-window",
            "60",
        ])
        .start();
    srv.addr = SocketAddr::from(([127, 0, 0, 1], srv.addr.port()));
    let account = new_account(&srv, "mapped");
    fail_twenty_times(srv.addr, |_| vec!["198.51.100.7".to_string()]);
    let blocked = log_in_through(srv.addr, &account.email, PASSWORD, &["198.51.100.7"]);
    assert_error(&blocked, 429, "too_many_requests");
    // Were the mapped peer not recognised as the proxy, every request would
    // count against the peer and this one would be blocked too.
    let other = log_in_through(srv.addr, &account.email, PASSWORD, &["198.51.100.8"]);
    assert_eq!(other.status, 200, "{}", other.text());
}

#[test]
fn a_trusted_prefix_covers_every_proxy_in_it() {
    let srv = Server::builder()
        .args(&[
            "--trusted-proxy",
            "127.0.0.0/8",
            "--login-max-failures",
            "1",
            "--login-window",
            "60",
        ])
        .start();
    let account = new_account(&srv, "prefix");
    // 127.0.0.2 lies in the trusted /8 as the peer 127.0.0.1 does, so the
    // walk passes over it to the client.
    fail_twenty_times(srv.addr, |n| {
        vec![format!("203.0.113.{n}, 198.51.100.7, 127.0.0.2")]
    });
    let blocked = log_in_through(srv.addr, &account.email, PASSWORD, &["198.51.100.7"]);
    assert_error(&blocked, 429, "too_many_requests");
    // Were the prefix not honoured, every request would count against the
    // peer (or 127.0.0.2) and this one would be blocked too.
    let other = log_in_through(srv.addr, &account.email, PASSWORD, &["198.51.100.8"]);
    assert_eq!(other.status, 200, "{}", other.text());
}
