//! Durability: SIGKILL in the middle of a stream of signups and logouts, a
//! restart on the same file, and then every answer the clients got must still
//! hold: each signup answered 201 can log in, each logout answered 204 stays
//! logged out (refresh token and access token refused), sessions nobody
//! touched still work, and a session whose logout got no answer is either
//! wholly ended or wholly alive.

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::harness::resilience::{assert_database_consistent, try_send};
use crate::harness::*;

/// What the client learned about one request: its status, or nothing.
type Answer = Option<u16>;

#[test]
fn answers_given_before_a_sigkill_survive_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder().db_dir(dir.path()).start();
    let addr = srv.addr;
    let account = new_account(&srv, "crash");
    // Sessions to log out during the stream, and a few nobody touches.
    let sessions: Vec<Tokens> = thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..7)
                        .map(|_| log_in(&srv, &account.email, PASSWORD))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let (untouched, to_end) = sessions.split_at(4);
    let queue = Arc::new(Mutex::new(to_end.to_vec()));
    let signups: Arc<Mutex<Vec<(String, Answer)>>> = Arc::default();
    let logouts: Arc<Mutex<Vec<(Tokens, Answer)>>> = Arc::default();
    let created = Arc::new(AtomicUsize::new(0));

    // Three clients, each signing up a new account and then logging out one
    // session, until the server is gone.
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let (queue, signups, logouts, created) = (
                Arc::clone(&queue),
                Arc::clone(&signups),
                Arc::clone(&logouts),
                Arc::clone(&created),
            );
            thread::spawn(move || {
                for n in 0.. {
                    let email = unique_email(&format!("crash{c}-{n}"));
                    let signup = Request::new(addr, "POST", "/signup/")
                        .json(&json!({"email": email, "password": PASSWORD, "name": NAME}));
                    let answer = try_send(&signup, addr).ok().map(|r| r.status);
                    signups.lock().unwrap().push((email, answer));
                    if answer == Some(201) {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    let Some(tokens) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let logout = Request::new(addr, "POST", "/logout/")
                        .json(&json!({"refresh_token": tokens.refresh}));
                    let logout_answer = try_send(&logout, addr).ok().map(|r| r.status);
                    logouts.lock().unwrap().push((tokens, logout_answer));
                    if answer.is_none() || logout_answer.is_none() {
                        return;
                    }
                }
            })
        })
        .collect();

    let mid_stream = poll_until(Duration::from_secs(20), || {
        created.load(Ordering::Relaxed) >= 8
    });
    assert!(mid_stream, "the stream of signups did not get going");
    let (status, log) = srv.stop_with("KILL");
    assert_eq!(status.signal(), Some(9), "not killed: {status:?}\n{log}");
    for client in clients {
        client.join().unwrap();
    }

    let srv = Server::builder().db_dir(dir.path()).start();
    assert_database_consistent(&srv.db);
    let signups = signups.lock().unwrap().clone();
    let logouts = logouts.lock().unwrap().clone();
    let unanswered = signups.iter().filter(|(_, a)| a.is_none()).count()
        + logouts.iter().filter(|(_, a)| a.is_none()).count();
    eprintln!(
        "{} signups, {} logouts, {unanswered} cut off by the kill",
        signups.len(),
        logouts.len()
    );

    for (email, answer) in &signups {
        match answer {
            Some(201) => {
                log_in(&srv, email, PASSWORD);
            }
            None => {}
            Some(status) => panic!("signup of {email} answered {status} before the kill"),
        }
    }
    for (tokens, answer) in &logouts {
        let refreshed = refresh(&srv, &tokens.refresh);
        let read = get_profile(&srv, &tokens.access);
        match answer {
            Some(204) => {
                assert_error(&refreshed, 400, "invalid_refresh_token");
                assert_error(&read, 401, "token_not_valid");
            }
            // Cut off: either state, but all of it.
            None => assert_eq!(
                refreshed.status == 200,
                read.status == 200,
                "a half-ended session: refresh {}, profile {}",
                refreshed.status,
                read.status
            ),
            Some(status) => panic!("logout answered {status} before the kill"),
        }
    }
    for tokens in untouched {
        assert_eq!(refresh(&srv, &tokens.refresh).status, 200);
        assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    }
    log_in(&srv, &account.email, PASSWORD);
}
