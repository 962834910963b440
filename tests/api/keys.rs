//! Signing keys: `latchkey keys list` and `keys rotate` on the file a service is
//! running on (the service signs with the new key within 10 seconds),
//! `--key-rotation-interval`, and the life of a retired key: it stays in the
//! JWKS and keeps verifying until the latest expiry of anything it signed
//! (access tokens by their window, private tokens by their own expiry), then it
//! is dropped. Times are moved in the database file rather than waited for.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::harness::tokens::*;
use crate::harness::*;

/// The service reloads keys every 5 s; the contract allows 10.
const PICKUP: Duration = Duration::from_secs(10);
/// Long enough for a reload after a change in the file, with room to spare.
const RELOAD: Duration = Duration::from_secs(12);

/// The key that signs, as stored.
fn active_kid(db: &Path) -> String {
    crate::harness::lifecycle::open_db(db)
        .query_row(
            "SELECT kid FROM signing_keys WHERE retired_at IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("one active key")
}

fn kid_set<S: AsRef<str>>(kids: &[S]) -> BTreeSet<String> {
    kids.iter().map(|k| k.as_ref().to_string()).collect()
}

/// Polls the JWKS until it publishes exactly `want`; panics with what it saw.
fn await_published(srv: &Server, want: &BTreeSet<String>, what: &str) {
    let mut seen = BTreeSet::new();
    let ok = poll_until(RELOAD, || {
        seen = published_kids(srv).into_iter().collect();
        &seen == want
    });
    assert!(ok, "{what}: JWKS publishes {seen:?}, expected {want:?}");
}

/// The `keys list` line naming `kid`.
fn list_line(listing: &str, kid: &str) -> String {
    listing
        .lines()
        .find(|l| l.contains(kid))
        .unwrap_or_else(|| panic!("keys list does not show {kid}:\n{listing}"))
        .to_string()
}

/// A new access token from the session (non-rotating refresh).
fn fresh_access(srv: &Server, refresh_token: &str) -> String {
    let resp = refresh(srv, refresh_token);
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["access_token"].as_str().unwrap().to_string()
}

#[test]
fn keys_rotate_on_the_command_line_takes_effect_in_the_running_service() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "keys-rotate");
    let old_pt = issue_private_token(&srv, &tokens.access, "old", 600);
    let k0 = kid_of(&tokens.access);
    assert_eq!(published_kids(&srv), std::slice::from_ref(&k0));
    assert_eq!(kid_of(&old_pt.token), k0);
    let listing = keys_list(&srv.db);
    assert!(list_line(&listing, &k0).contains("active"), "{listing}");

    let printed = keys_rotate(&srv.db);
    let k1 = active_kid(&srv.db);
    assert_ne!(k1, k0);
    assert!(
        printed.contains(&k1),
        "keys rotate names the new key: {printed}"
    );
    let listing = keys_list(&srv.db);
    assert!(list_line(&listing, &k1).contains("active"), "{listing}");
    assert!(!list_line(&listing, &k0).contains("active"), "{listing}");

    // The running service publishes and signs with the new key within 10 s.
    let picked_up = poll_until(PICKUP, || published_kids(&srv).contains(&k1));
    assert!(
        picked_up,
        "the service did not pick up the new key within 10 s"
    );
    assert_eq!(
        kid_set(&published_kids(&srv)),
        kid_set(&[&k0, &k1]),
        "the old key stays published"
    );
    let new_access = fresh_access(&srv, &tokens.refresh);
    assert_eq!(kid_of(&new_access), k1, "new access tokens use the new key");
    let new_pt = issue_private_token(&srv, &new_access, "new", 600);
    assert_eq!(kid_of(&new_pt.token), k1, "new private tokens too");
    for token in [&tokens.access, &old_pt.token, &new_access, &new_pt.token] {
        assert!(
            verify_against_jwks(&srv, token),
            "JWKS verifies every token"
        );
        let resp = get_profile(&srv, token);
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    // Each private token remembers the key that signed it.
    let stored_kid = |id: &str| {
        srv.sql_conn()
            .query_row("SELECT kid FROM private_tokens WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })
            .unwrap()
    };
    assert_eq!(stored_kid(&old_pt.id), k0);
    assert_eq!(stored_kid(&new_pt.id), k1);

    let resp = srv.get("/.well-known/jwks.json").send();
    let max_age = resp
        .header("Cache-Control")
        .unwrap_or_default()
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        max_age.is_some_and(|s| s > 0),
        "JWKS Cache-Control: {:?}",
        resp.header("Cache-Control")
    );
}

#[test]
fn the_service_rotates_its_key_on_key_rotation_interval() {
    let srv = Server::with_args(&["--key-rotation-interval", "1"]);
    let (_, tokens) = new_session(&srv, "keys-interval");
    let first = kid_of(&tokens.access);
    let rotated = poll_until(RELOAD, || active_kid(&srv.db) != first);
    assert!(
        rotated,
        "no rotation within {RELOAD:?} with an interval of 1 s"
    );
    let picked_up = poll_until(PICKUP, || {
        kid_of(&fresh_access(&srv, &tokens.refresh)) != first
    });
    assert!(picked_up, "the service still signs with the first key");
    assert!(published_kids(&srv).contains(&first), "the old key stays");
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    assert!(verify_against_jwks(&srv, &tokens.access));
}

#[test]
fn a_retired_key_is_published_exactly_until_nothing_it_signed_is_alive() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "keys-drop");
    let k0 = kid_of(&tokens.access);
    let pt = issue_private_token(&srv, &tokens.access, "long-lived", 86_400);
    let mut kids = vec![k0.clone()];
    for _ in 0..3 {
        keys_rotate(&srv.db);
        kids.push(active_kid(&srv.db));
    }
    let [_, k1, k2, k3] = <[String; 4]>::try_from(kids).unwrap();
    assert_eq!(kid_set(&[&k0, &k1, &k2, &k3]).len(), 4);

    // With the default --access-ttl 3600 (and leeway), a key's access tokens
    // may be alive up to about an hour after it retired. k0 retired 5400 s ago,
    // but the private token it signed lives for a day: kept. k1 retired 3000 s
    // ago: some of its access tokens may still be alive: kept. k2 retired
    // 5400 s ago and signed nothing else: dropped, in the same reload.
    let retire = |kid: &str, ago: i64| {
        let n = srv.sql_execute(
            "UPDATE signing_keys SET retired_at = ?2 WHERE kid = ?1",
            rusqlite::params![kid, now() - ago],
        );
        assert_eq!(n, 1);
    };
    retire(&k0, 5400);
    retire(&k1, 3000);
    retire(&k2, 5400);
    await_published(
        &srv,
        &kid_set(&[&k0, &k1, &k3]),
        "k2 dropped, k0 and k1 kept",
    );
    for token in [&tokens.access, &pt.token] {
        let resp = get_profile(&srv, token);
        assert_eq!(resp.status, 200, "k0 still verifies: {}", resp.text());
        assert!(verify_against_jwks(&srv, token));
    }
    assert_eq!(kid_of(&fresh_access(&srv, &tokens.refresh)), k3);
    let listing = keys_list(&srv.db);
    assert!(list_line(&listing, &k3).contains("active"), "{listing}");
    for kid in [&k0, &k1, &k2] {
        assert!(!list_line(&listing, kid).contains("active"), "{listing}");
    }

    // The private token's expiry passes (beyond any leeway) and k1's access
    // window ends: nothing k0 or k1 signed is alive, so both are dropped and
    // verify nothing any more.
    let n = srv.sql_execute(
        "UPDATE private_tokens SET expires_at = ?2 WHERE id = ?1",
        rusqlite::params![&pt.id, now() - 120],
    );
    assert_eq!(n, 1);
    retire(&k1, 5400);
    await_published(&srv, &kid_set(&[&k3]), "k0 and k1 dropped");
    assert_error(&get_profile(&srv, &tokens.access), 401, "token_not_valid");
    assert_error(&get_profile(&srv, &pt.token), 401, "token_not_valid");
    let access = fresh_access(&srv, &tokens.refresh);
    assert_eq!(kid_of(&access), k3);
    assert_eq!(get_profile(&srv, &access).status, 200);
    assert!(verify_against_jwks(&srv, &access));
}
