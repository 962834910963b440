//! Unit and property tests of the refresh state machine on an in-memory database.

use super::*;
use crate::db::Result;
use crate::db::{add_test_user, sessions, test_connection};
use proptest::prelude::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const ROTATE: Policy = Policy {
    rotate: true,
    reuse_interval: 10,
    refresh_ttl: 1000,
};

/// A refresh with the successor derived as the service derives it.
fn refresh(
    conn: &Connection,
    presented: &Secret,
    secret: &[u8],
    policy: Policy,
    now: i64,
) -> Result<Refreshed> {
    super::refresh(conn, presented, &presented.successor(secret), policy, now)
}

fn setup() -> (Connection, Secret) {
    let conn = test_connection();
    add_test_user(&conn, "u1", "a@x.io");
    let s = sessions::NewSession {
        id: "s1",
        user_id: "u1",
        user_agent: None,
        amr: "pwd",
        now: 0,
        expires_at: 1000,
    };
    sessions::insert(&conn, &s).unwrap();
    let token = Secret::generate();
    insert(&conn, &token.hash(), "s1", 0, 1000).unwrap();
    (conn, token)
}

fn rotated(outcome: Refreshed) -> Secret {
    match outcome {
        Refreshed::Rotated { successor, .. } => successor,
        other => panic!("expected a rotation, got {other:?}"),
    }
}

#[test]
fn without_rotation_the_token_is_kept_and_nothing_is_written() {
    let (conn, token) = setup();
    let policy = Policy {
        rotate: false,
        ..ROTATE
    };
    let changes = conn.total_changes();
    for _ in 0..3 {
        assert!(matches!(
            refresh(&conn, &token, SECRET, policy, 5).unwrap(),
            Refreshed::Kept { .. }
        ));
    }
    assert_eq!(conn.total_changes(), changes);
    assert_eq!(
        refresh(&conn, &token, SECRET, policy, 1000).unwrap(),
        Refreshed::Refused
    );
}

#[test]
fn rotation_replaces_the_token_and_a_quick_retry_gets_the_same_successor() {
    let (conn, token) = setup();
    let next = rotated(refresh(&conn, &token, SECRET, ROTATE, 5).unwrap());
    assert_ne!(next, token);
    assert_eq!(
        rotated(refresh(&conn, &token, SECRET, ROTATE, 15).unwrap()),
        next
    );
    assert_eq!(live_count(&conn, "s1", 15).unwrap(), 1);
    let after = rotated(refresh(&conn, &next, SECRET, ROTATE, 16).unwrap());
    assert_eq!(live_count(&conn, "s1", 16).unwrap(), 1);
    assert_ne!(after, next);
}

#[test]
fn a_late_retry_ends_the_session() {
    let (conn, token) = setup();
    rotated(refresh(&conn, &token, SECRET, ROTATE, 5).unwrap());
    assert_eq!(
        refresh(&conn, &token, SECRET, ROTATE, 16).unwrap(),
        Refreshed::ReuseDetected {
            session_id: "s1".into(),
            user_id: "u1".into()
        }
    );
    assert!(!sessions::is_live(&conn, "s1", "u1").unwrap());
}

#[test]
fn a_retry_after_the_successor_rotated_ends_the_session() {
    let (conn, token) = setup();
    let next = rotated(refresh(&conn, &token, SECRET, ROTATE, 5).unwrap());
    rotated(refresh(&conn, &next, SECRET, ROTATE, 6).unwrap());
    assert_eq!(
        refresh(&conn, &token, SECRET, ROTATE, 7).unwrap(),
        Refreshed::ReuseDetected {
            session_id: "s1".into(),
            user_id: "u1".into()
        }
    );
    assert_eq!(live_count(&conn, "s1", 7).unwrap(), 0);
}

/// What a client or attacker can do in the property test.
#[derive(Debug, Clone)]
enum Op {
    /// Refresh with the newest token seen.
    Refresh,
    /// Refresh with the token `n` steps older than the newest.
    Reuse(usize),
    Logout,
    Wait(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Refresh),
        3 => (0usize..4).prop_map(Op::Reuse),
        1 => Just(Op::Logout),
        2 => (0i64..15).prop_map(Op::Wait),
    ]
}

proptest! {
    /// Any sequence of refreshes, retries, reuses, waits and logouts leaves at
    /// most one live refresh token in the session, and an ended session never
    /// comes back.
    #[test]
    fn at_most_one_live_token_and_no_revival(ops in proptest::collection::vec(op(), 1..40)) {
        let (conn, first) = setup();
        let mut seen = vec![first];
        let mut now = 1;
        let mut ended = false;
        for op in ops {
            match op {
                Op::Wait(secs) => now += secs,
                Op::Logout => {
                    sessions::delete_by_refresh_token(&conn, &seen.last().unwrap().hash()).unwrap();
                    ended = true;
                }
                Op::Refresh | Op::Reuse(_) => {
                    let back = if let Op::Reuse(n) = op { n.min(seen.len() - 1) } else { 0 };
                    let token = seen[seen.len() - 1 - back].clone();
                    match refresh(&conn, &token, SECRET, ROTATE, now).unwrap() {
                        Refreshed::Rotated { successor, .. } => {
                            prop_assert!(!ended, "an ended session answered a refresh");
                            if !seen.contains(&successor) {
                                seen.push(successor);
                            }
                        }
                        Refreshed::ReuseDetected { .. } => ended = true,
                        Refreshed::Refused => {}
                        Refreshed::Kept { .. } => prop_assert!(false, "rotation kept a token"),
                    }
                }
            }
            prop_assert!(live_count(&conn, "s1", now).unwrap() <= 1);
            if ended {
                prop_assert!(!sessions::is_live(&conn, "s1", "u1").unwrap());
            }
        }
    }
}
