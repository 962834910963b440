//! Three hundred mixed requests released at once against one server with
//! refresh-token rotation on: signups (five racing for one email), logins,
//! wrong passwords, profile reads and renames, concurrent refreshes of one
//! token, logouts racing with their own session's reads and refreshes. Every
//! answer must be well formed and a contract answer (503 `overloaded` from the
//! hashing queue included), never a 500; then the database must be whole and
//! agree with what the clients were told.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;

use serde_json::{Value, json};

use crate::harness::lifecycle::count_rows;
use crate::harness::lifecycle::open_db;
use crate::harness::resilience::{
    assert_contract_error, assert_database_consistent, count_all, send_together,
};
use crate::harness::*;

/// Accounts made before the burst, each with a session that stays and one
/// that a logout in the burst ends.
const ACCOUNTS: usize = 12;

struct Prepared {
    account: Account,
    kept: Tokens,
    ended: Tokens,
}

#[derive(Debug, Clone)]
enum Op {
    SignUp(String),
    LogIn(usize),
    WrongPassword(usize),
    ReadKept(usize),
    RefreshKept(usize),
    Rename(usize, String),
    LogOutEnded(usize),
    ReadEnded(usize),
    RefreshEnded(usize),
}

fn request(srv: &Server, prepared: &[Prepared], op: &Op) -> Request {
    let p = |i: &usize| &prepared[*i];
    match op {
        Op::SignUp(email) => srv
            .post("/signup/")
            .json(&json!({"email": email, "password": PASSWORD, "name": NAME})),
        Op::LogIn(i) => srv
            .post("/login/")
            .json(&json!({"email": p(i).account.email, "password": PASSWORD})),
        Op::WrongPassword(i) => srv
            .post("/login/")
            .json(&json!({"email": p(i).account.email, "password": "not the password 1"})),
        Op::ReadKept(i) => srv.get("/profile/").bearer(&p(i).kept.access),
        Op::RefreshKept(i) => srv
            .post("/refresh/")
            .json(&json!({"refresh_token": p(i).kept.refresh})),
        Op::Rename(i, name) => srv
            .patch("/profile/")
            .bearer(&p(i).kept.access)
            .json(&json!({ "name": name })),
        Op::LogOutEnded(i) => srv
            .post("/logout/")
            .json(&json!({"refresh_token": p(i).ended.refresh})),
        Op::ReadEnded(i) => srv.get("/profile/").bearer(&p(i).ended.access),
        Op::RefreshEnded(i) => srv
            .post("/refresh/")
            .json(&json!({"refresh_token": p(i).ended.refresh})),
    }
}

/// Checks one answer: the success the operation promises, or one of the
/// contract errors it may meet under this load.
fn check(op: &Op, resp: &Response, prepared: &[Prepared]) {
    let user_id = |i: &usize| prepared[*i].account.user["id"].clone();
    match (op, resp.status) {
        (Op::SignUp(email), 201) => {
            let user = &resp.json()["user"];
            assert_user(user);
            assert_eq!(user["email"], email.as_str());
        }
        (Op::SignUp(_), _) => assert_contract_error(resp, &["overloaded", "email_exists"]),
        (Op::LogIn(i), 200) => {
            assert_token_headers(resp);
            let body = resp.json();
            assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
            assert!(is_uuid(body["session_id"].as_str().unwrap_or_default()));
            assert_eq!(body["user"]["id"], user_id(i));
        }
        (Op::LogIn(_), _) => assert_contract_error(resp, &["overloaded"]),
        (Op::WrongPassword(_), _) => {
            assert_contract_error(resp, &["invalid_credentials", "overloaded"])
        }
        (Op::ReadKept(i) | Op::ReadEnded(i), 200) => {
            let user = resp.json();
            assert_user(&user);
            assert_eq!(user["id"], user_id(i));
        }
        (Op::ReadEnded(_), _) => assert_contract_error(resp, &["token_not_valid"]),
        (Op::RefreshKept(_) | Op::RefreshEnded(_), 200) => {
            assert_token_headers(resp);
            let body = resp.json();
            assert!(body["access_token"].is_string(), "{body}");
            assert!(body["refresh_token"].is_string(), "rotation: {body}");
        }
        (Op::RefreshEnded(_), _) => assert_contract_error(resp, &["invalid_refresh_token"]),
        (Op::Rename(i, name), 200) => {
            let user = resp.json();
            assert_user(&user);
            assert_eq!(user["id"], user_id(i));
            assert_eq!(user["name"], name.as_str());
        }
        (Op::LogOutEnded(_), 204) => assert!(resp.body.is_empty()),
        (op, status) => panic!("{op:?} answered {status}: {}", resp.text()),
    }
}

fn prepare(srv: &Server) -> Vec<Prepared> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..ACCOUNTS)
            .map(|n| {
                s.spawn(move || {
                    let account = new_account(srv, &format!("burst{n}"));
                    let kept = log_in(srv, &account.email, PASSWORD);
                    let ended = log_in(srv, &account.email, PASSWORD);
                    Prepared {
                        account,
                        kept,
                        ended,
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The operations of the burst, and the email five signups race for.
fn burst(prepared: &[Prepared]) -> (Vec<Op>, String) {
    let mut ops = Vec::new();
    let contested = unique_email("contested");
    for _ in 0..5 {
        ops.push(Op::SignUp(contested.clone()));
    }
    for n in 0..20 {
        ops.push(Op::SignUp(unique_email(&format!("burst-new{n}"))));
    }
    for i in 0..prepared.len() {
        ops.extend((0..10).map(|_| Op::ReadKept(i)));
        ops.extend((0..5).map(|_| Op::RefreshKept(i)));
        ops.extend((0..3).map(|n| Op::Rename(i, format!("Ada Burst {}", letter(n)))));
        ops.push(Op::LogOutEnded(i));
        ops.push(Op::ReadEnded(i));
        ops.push(Op::RefreshEnded(i));
    }
    for n in 0..20 {
        ops.push(Op::LogIn(n % prepared.len()));
    }
    for n in 0..4 {
        ops.push(Op::WrongPassword(n));
    }
    // Interleave the kinds, so that no kind goes first by construction.
    let stride = 7;
    let mut mixed: Vec<Op> = Vec::with_capacity(ops.len());
    for start in 0..stride {
        mixed.extend(ops.iter().skip(start).step_by(stride).cloned());
    }
    (mixed, contested)
}

fn letter(n: usize) -> char {
    (b'A' + n as u8) as char
}

#[test]
fn a_burst_of_mixed_requests_leaves_consistent_answers_and_a_consistent_database() {
    // The test owns the directory, so the file can be checked after the stop.
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder()
        .db_dir(dir.path())
        .args(&["--rotate-refresh-tokens"])
        .start();
    let prepared = prepare(&srv);
    let (ops, contested) = burst(&prepared);
    assert!(ops.len() >= 300, "{} requests", ops.len());

    let requests: Vec<Request> = ops.iter().map(|op| request(&srv, &prepared, op)).collect();
    let answers = send_together(&srv, &requests.iter().collect::<Vec<_>>());

    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for (op, resp) in ops.iter().zip(&answers) {
        check(op, resp, &prepared);
        let kind = format!("{op:?}");
        let kind = kind.split('(').next().unwrap();
        *tally.entry(format!("{kind} {}", resp.status)).or_default() += 1;
    }
    eprintln!("answers: {tally:?}");
    let count = |wanted: fn(&Op) -> bool, status: u16| {
        ops.iter()
            .zip(&answers)
            .filter(|(op, resp)| wanted(op) && resp.status == status)
            .count() as i64
    };

    // What the clients were told is what the database holds.
    let db = &srv.db;
    let contested_won = ops
        .iter()
        .zip(&answers)
        .filter(|(op, resp)| matches!(op, Op::SignUp(e) if *e == contested) && resp.status == 201)
        .count();
    assert!(
        contested_won <= 1,
        "{contested_won} signups of one email won"
    );
    let conn = open_db(db);
    assert_eq!(
        count_rows(&conn, "users", "email_key = ?1", &contested.to_lowercase()),
        contested_won as i64
    );
    for (op, resp) in ops.iter().zip(&answers) {
        if let (Op::SignUp(email), 201) = (op, resp.status) {
            let n = count_rows(&conn, "users", "email_key = ?1", &email.to_lowercase());
            assert_eq!(n, 1, "{email} answered 201");
        }
    }
    let signed_up = count(|op| matches!(op, Op::SignUp(_)), 201);
    assert_eq!(count_all(db, "users"), ACCOUNTS as i64 + signed_up);
    let logged_in = count(|op| matches!(op, Op::LogIn(_)), 200);
    let logged_out = count(|op| matches!(op, Op::LogOutEnded(_)), 204);
    assert_eq!(logged_out, ACCOUNTS as i64);
    assert_eq!(
        count_all(db, "sessions"),
        2 * ACCOUNTS as i64 + logged_in - logged_out
    );

    for (i, p) in prepared.iter().enumerate() {
        // Concurrent rotations of one token never fork the session: every
        // one of them was given the same successor.
        let successors: BTreeSet<String> = ops
            .iter()
            .zip(&answers)
            .filter(|(op, resp)| matches!(op, Op::RefreshKept(j) if *j == i) && resp.status == 200)
            .map(|(_, resp)| resp.json()["refresh_token"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            successors.len(),
            1,
            "account {i}: successors {successors:?}"
        );
        let successor = successors.into_iter().next().unwrap();
        assert_eq!(refresh(&srv, &successor).status, 200, "account {i}");
        // The ended session stays ended; the kept one holds the last rename.
        assert_error(&get_profile(&srv, &p.ended.access), 401, "token_not_valid");
        assert_error(
            &refresh(&srv, &p.ended.refresh),
            400,
            "invalid_refresh_token",
        );
        let name = get_profile(&srv, &p.kept.access).json()["name"].clone();
        let renamed: Vec<Value> = (0..3)
            .map(|n| json!(format!("Ada Burst {}", letter(n))))
            .collect();
        assert!(renamed.contains(&name), "account {i} is named {name}");
    }

    assert_database_consistent(db);
    let db = db.clone();
    let log = srv.stop();
    assert!(!log.contains(" 500 "), "a 500 in the log:\n{log}");
    assert_database_consistent(&db);
}
