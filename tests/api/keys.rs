//! Signing keys: `latchkey keys list`, `keys rotate [--now]` and `keys revoke`
//! on the file a service is running on, `--key-rotation-interval`, and the
//! life of a key: published at once, signing only once it has been published
//! for `--jwks-max-age` (so a verifier that caches the JWKS never meets an
//! unknown `kid`), then retired: it stays in the JWKS and keeps verifying until
//! the latest expiry of anything it signed (access tokens by their window,
//! private tokens by their own expiry), then it is dropped. A revoked key is
//! dropped at once. Times are moved in the database file rather than waited
//! for, except the short `--jwks-max-age 3` wait, which is polled.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::lifecycle::{admin, admin_ok};
use crate::harness::tokens::*;
use crate::harness::*;

/// The service reloads keys every second; the contract allows 10.
const PICKUP: Duration = Duration::from_secs(10);
/// Long enough for a reload after a change in the file, with room to spare.
const RELOAD: Duration = Duration::from_secs(12);

/// The newest key (signing, or next to sign), as stored.
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
fn keys_rotate_now_takes_effect_in_the_running_service() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "keys-rotate");
    let old_pt = issue_private_token(&srv, &tokens.access, "old", 600);
    let k0 = kid_of(&tokens.access);
    assert_eq!(published_kids(&srv), std::slice::from_ref(&k0));
    assert_eq!(kid_of(&old_pt.token), k0);
    let listing = keys_list(&srv.db);
    assert!(list_line(&listing, &k0).contains("signing"), "{listing}");

    let printed = keys_rotate_now(&srv.db);
    let k1 = active_kid(&srv.db);
    assert_ne!(k1, k0);
    assert!(
        printed.contains(&k1),
        "keys rotate names the new key: {printed}"
    );
    let listing = keys_list(&srv.db);
    assert!(list_line(&listing, &k1).contains(" signing "), "{listing}");
    assert!(list_line(&listing, &k0).contains(" retired "), "{listing}");

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
    let srv = Server::with_args(&["--key-rotation-interval", "1", "--jwks-max-age", "1"]);
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
        keys_rotate_now(&srv.db);
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
    assert!(list_line(&listing, &k3).contains(" signing "), "{listing}");
    for kid in [&k0, &k1] {
        assert!(list_line(&listing, kid).contains(" retired "), "{listing}");
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

/// The kid `keys rotate` printed: "new signing key KID: …".
fn printed_kid(printed: &str) -> String {
    printed
        .split_whitespace()
        .nth(3)
        .map(|k| k.trim_end_matches(&[':', ';'][..]).to_string())
        .unwrap_or_else(|| panic!("no kid in {printed:?}"))
}

/// API.md "Tokens": a new key is published at once but signs only once it has
/// been published for `--jwks-max-age`. Checked as a caching verifier sees it:
/// the last JWKS fetched without the new key is still fresh for 3 s, and no
/// token the new key signed may appear before that cache expires.
#[test]
fn a_rotated_key_is_published_at_once_and_signs_only_after_jwks_max_age() {
    const MAX_AGE: Duration = Duration::from_secs(3);
    let srv = Server::with_args(&["--jwks-max-age", "3"]);
    let (_, tokens) = new_session(&srv, "keys-prepublish");
    let k0 = kid_of(&tokens.access);
    let resp = srv.get("/.well-known/jwks.json").send();
    assert_eq!(resp.header("Cache-Control"), Some("public, max-age=3"));

    let rotated_at = Instant::now();
    let k1 = printed_kid(&keys_rotate(&srv.db));
    assert_ne!(k1, k0);
    let listing = keys_list(&srv.db);
    assert!(list_line(&listing, &k1).contains(" next "), "{listing}");
    assert!(list_line(&listing, &k1).contains("signing"), "{listing}");
    assert!(list_line(&listing, &k0).contains(" signing "), "{listing}");
    assert!(list_line(&listing, &k0).contains("retired"), "{listing}");

    // Published at once (within the service's reload).
    let mut last_without_k1 = Instant::now();
    let published = poll_until(PICKUP, || {
        let kids = published_kids(&srv);
        if !kids.contains(&k1) {
            last_without_k1 = Instant::now();
        }
        kids.contains(&k1)
    });
    assert!(published, "the new key was not published within {PICKUP:?}");
    let published_after = rotated_at.elapsed();
    assert!(published_kids(&srv).contains(&k0), "the old key stays");
    assert_eq!(
        kid_of(&fresh_access(&srv, &tokens.refresh)),
        k0,
        "the new key signs before verifiers can hold it"
    );

    // Signs once a JWKS cached before it was published has expired.
    let mut asked_at = Instant::now();
    let switched = poll_until(Duration::from_secs(20), || {
        asked_at = Instant::now();
        kid_of(&fresh_access(&srv, &tokens.refresh)) == k1
    });
    assert!(switched, "the new key never signed");
    let waited = asked_at.duration_since(last_without_k1);
    assert!(
        waited >= MAX_AGE,
        "a token signed by the new key {waited:?} after a JWKS without it was served"
    );
    eprintln!(
        "pre-publication: published after {published_after:?}, signing after {:?}",
        asked_at.duration_since(rotated_at)
    );
    let listing = keys_list(&srv.db);
    assert!(list_line(&listing, &k1).contains(" signing "), "{listing}");
    assert!(list_line(&listing, &k0).contains(" retired "), "{listing}");
    assert!(list_line(&listing, &k0).contains("dropped"), "{listing}");
    // Both keys verify: old tokens keep working.
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    assert!(verify_against_jwks(&srv, &tokens.access));
}

/// API.md "Tokens": `keys revoke KID` drops a key at once: every token it
/// signed is refused, the JWKS drops it, and the newest other key signs.
#[test]
fn keys_revoke_drops_a_key_from_a_running_service_at_once() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "keys-revoke");
    let pt = issue_private_token(&srv, &tokens.access, "ci", 600);
    let k0 = kid_of(&tokens.access);
    // A key waiting to sign (default --jwks-max-age 300) takes over at once.
    let k1 = printed_kid(&keys_rotate(&srv.db));
    await_published(&srv, &kid_set(&[&k0, &k1]), "the next key is published");
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);

    let revoked_at = Instant::now();
    let printed = admin_ok(&srv.db, &["keys", "revoke", &k0], "");
    assert!(printed.contains(&k1), "the successor is named: {printed}");
    let refused = poll_until(PICKUP, || get_profile(&srv, &tokens.access).status == 401);
    assert!(
        refused,
        "a revoked key's token still works after {PICKUP:?}"
    );
    eprintln!("revocation took effect after {:?}", revoked_at.elapsed());
    assert_error(&get_profile(&srv, &tokens.access), 401, "token_not_valid");
    assert_error(&get_profile(&srv, &pt.token), 401, "token_not_valid");
    assert_eq!(published_kids(&srv), std::slice::from_ref(&k1));
    assert!(!verify_against_jwks(&srv, &tokens.access));
    let listing = keys_list(&srv.db);
    assert!(!listing.contains(&k0), "{listing}");
    assert!(list_line(&listing, &k1).contains(" signing "), "{listing}");
    // The session lives on: its next access token is signed by the successor.
    let access = fresh_access(&srv, &tokens.refresh);
    assert_eq!(kid_of(&access), k1);
    assert_eq!(get_profile(&srv, &access).status, 200);

    // An unknown kid is an error, exit 1, naming it.
    let output = admin(&srv.db, &["keys", "revoke", &k0], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&k0));
}
