//! Body limits decided from the request head (API.md "Conventions"): 64 KiB on
//! every route, more only for a multipart profile update whose Bearer token is
//! verified first; an announced body over the limit is answered at once,
//! unread; the shared body budget is taken as bytes arrive, so a flood of
//! stalled large bodies cannot turn other clients' requests into 503s.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::pictures::*;
use crate::harness::*;

/// What the flood announced: 2 MiB plus 64 KiB, the largest body any
/// route used to accept.
const FLOOD_LENGTH: usize = 2 * 1024 * 1024 + 64 * 1024;

/// Sends a head alone and expects `status` `code` at once (the body is never
/// sent), then the close.
fn assert_refused_from_the_head(srv: &Server, head: &str, status: u16, code: &str) {
    let started = Instant::now();
    let mut conn = Conn::open(srv.addr);
    conn.write_raw(head.as_bytes()).expect("send the head");
    let resp = conn
        .read_response()
        .unwrap_or_else(|e| panic!("no answer to a head alone: {e}"));
    assert_error(&resp, status, code);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered after {:?}: the server waited for the body",
        started.elapsed()
    );
    assert!(conn.closed_within(Duration::from_secs(3)), "not closed");
}

#[test]
fn a_flood_of_stalled_large_signup_bodies_leaves_logins_working() {
    let srv = Server::start();
    let account = new_account(&srv, "flood");
    // 31 connections each send a signup head announcing 2 MiB + 64 KiB and
    // all but the last 4 KiB of it, then stall.
    let head = format!(
        "POST /signup/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {FLOOD_LENGTH}\r\n\r\n"
    );
    let body = vec![b' '; FLOOD_LENGTH - 4096];
    let flooders: Vec<_> = (0..31)
        .map(|_| {
            let (addr, head, body) = (srv.addr, head.clone(), body.clone());
            thread::spawn(move || {
                let mut conn = Conn::open(addr);
                // The server may refuse and close before all of it is written.
                let _ = conn.write_raw(head.as_bytes());
                let _ = conn.write_raw(&body);
                conn
            })
        })
        .collect();
    let stalled: Vec<Conn> = flooders.into_iter().map(|f| f.join().unwrap()).collect();
    // One more sends only such a head.
    let mut head_only = Conn::open(srv.addr);
    head_only.write_raw(head.as_bytes()).expect("send the head");
    // Its answer comes at once; a server that waits for the body instead has
    // had time to start on it before the login below.
    let answered_at_once = head_only.readable_within(Duration::from_millis(500));
    // A normal login is served, promptly.
    let started = Instant::now();
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": PASSWORD}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a login took {:?} during the flood",
        started.elapsed()
    );
    // The head alone was answered at once, without waiting for its body.
    assert!(answered_at_once, "a head alone was not answered at once");
    let resp = head_only.read_response().expect("an answer to the head");
    assert_error(&resp, 413, "payload_too_large");
    drop(stalled);
}

#[test]
fn a_json_body_announced_over_64_kib_is_413_before_it_is_sent() {
    let srv = Server::start();
    for (method, path) in [
        ("POST", "/signup/"),
        ("POST", "/login/"),
        ("PATCH", "/profile/"),
    ] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            64 * 1024 + 1
        );
        assert_refused_from_the_head(&srv, &head, 413, "payload_too_large");
    }
    // A chunked JSON body is held to 64 KiB as well.
    let mut conn = Conn::open(srv.addr);
    let _ = conn.write_raw(
        b"POST /signup/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    );
    let chunk = format!("8000\r\n{}\r\n", " ".repeat(0x8000));
    for _ in 0..3 {
        if conn.write_raw(chunk.as_bytes()).is_err() {
            break;
        }
    }
    assert_error(
        &conn.read_response().expect("an answer"),
        413,
        "payload_too_large",
    );
}

#[test]
fn a_picture_sized_upload_without_a_valid_token_is_refused_unread() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "unread");
    let upload = |authorization: &str| {
        format!(
            "PUT /profile/ HTTP/1.1\r\nHost: t\r\n{authorization}Content-Type: multipart/form-data; \
             boundary=x\r\nContent-Length: {FLOOD_LENGTH}\r\n\r\n"
        )
    };
    assert_refused_from_the_head(&srv, &upload(""), 401, "not_authenticated");
    let forged = format!(
        "Authorization: Bearer {}\r\n",
        tamper(&tokens.access, tokens.access.len() - 5)
    );
    assert_refused_from_the_head(&srv, &upload(&forged), 401, "token_not_valid");
    // A valid token does not make a JSON body larger than 64 KiB acceptable.
    let json_head = format!(
        "PUT /profile/ HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {FLOOD_LENGTH}\r\n\r\n",
        tokens.access
    );
    assert_refused_from_the_head(&srv, &json_head, 413, "payload_too_large");
}

#[test]
fn an_authenticated_picture_upload_over_64_kib_still_works() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "bigpicture");
    // About 1.4 MB of incompressible pixels: far over 64 KiB, under 2 MiB.
    let picture = noise_png(700, 700);
    assert!(picture.len() > 1024 * 1024, "{} bytes", picture.len());
    let image_url = upload_picture(&srv, &tokens.access, &picture, "image/png");
    let resp = srv.get(&avatar_path(&image_url)).send();
    assert_eq!(resp.status, 200);
    // A client that waits for 100 Continue gets it once the token is verified.
    let (content_type, body) = ProfileForm::new().image(&picture, "image/png").encode();
    let mut conn = Conn::open(srv.addr);
    let head = format!(
        "PUT /profile/ HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        tokens.access,
        body.len()
    );
    conn.write_raw(head.as_bytes()).unwrap();
    let interim = conn.read_one().expect("an interim answer");
    assert_eq!(interim.status, 100);
    conn.write_raw(&body).unwrap();
    let resp = conn.read_response().expect("an answer");
    assert_eq!(resp.status, 200, "{}", resp.text());
}
