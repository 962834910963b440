#!/usr/bin/env python3
"""make_big_db.py: fills a latchkey database with bench data straight through
SQL, never through the HTTP API (a million argon2 runs would take hours).

  make_big_db.py big     --db FILE --users N --tokens M --password-hash PHC
  make_big_db.py expired --db FILE --rows N [--per-session K]

`big` expects a database whose schema `latchkey migrate` has just created. It
adds N users `user<i>@bench.example` (UUID ids, email_key the lower-cased
address, every one with the same real argon2id PHC string, so the bench knows
every password), two live sessions per user and M live refresh tokens spread
evenly over those sessions. Refresh token i is the 43-character base64url
string of SHA-256("latchkey-bench-refresh-" + i) and is stored, like the
service stores tokens, as SHA-256 of that ASCII string; so any of them can be
presented again (`token(i)`). The secondary indexes are dropped while the rows
go in and rebuilt after, which is much faster than maintaining them row by row.

`expired` adds N refresh tokens whose `expires_at` is in the past, K per
session (default 10), in expired sessions of existing users: the backlog the
cleanup scenario makes the service's cleanup thread sweep.

Both print one JSON line with what they did and how long it took.
"""

import argparse
import base64
import hashlib
import json
import os
import sqlite3
import sys
import time
import uuid

EMAIL_DOMAIN = "bench.example"
DAY = 86_400
SESSIONS_PER_USER = 2


def token(i: int, seed: str = "latchkey-bench-refresh-") -> str:
    """The i-th bench refresh token: 43 base64url characters, like the service's."""
    digest = hashlib.sha256(f"{seed}{i}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(i: int, seed: str = "latchkey-bench-refresh-") -> bytes:
    """What the service stores for token(i): SHA-256 of the ASCII token string."""
    return hashlib.sha256(token(i, seed).encode()).digest()


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("bench_uuid", 0, lambda: str(uuid.uuid4()))
    conn.create_function("bench_token_hash", 2, lambda i, seed: token_hash(i, seed),
                         deterministic=True)
    return conn


def fast_pragmas(conn: sqlite3.Connection) -> None:
    """A one-off bulk load: no journal, no fsync, a cache large enough to hold it."""
    conn.executescript("""
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        PRAGMA foreign_keys = OFF;
        PRAGMA temp_store = MEMORY;
        PRAGMA cache_size = -4000000;
    """)


def numbers(n: int) -> str:
    """A recursive CTE of the integers 0..n-1, named `n(i)`."""
    return f"n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {int(n) - 1})"


def make_big(path: str, users: int, tokens: int, password_hash: str) -> dict:
    if not password_hash.startswith("$argon2id$"):
        sys.exit("make_big_db.py: --password-hash must be an argon2id PHC string")
    conn = connect(path)
    fast_pragmas(conn)
    now = int(time.time())
    timings = {}
    started = time.monotonic()

    def step(name, sql, params=()):
        t = time.monotonic()
        conn.execute(sql, params)
        timings[name] = round(time.monotonic() - t, 1)
        print(f"  {name}: {timings[name]} s", file=sys.stderr, flush=True)

    # Secondary indexes of the three bulk tables, rebuilt after the load.
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('users', 'sessions', 'refresh_tokens')").fetchall()
    if conn.execute("SELECT count(*) FROM users").fetchone()[0]:
        sys.exit("make_big_db.py: the database already has users; start from a fresh one")
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    # Rows go in sorted by primary key, so each B-tree grows at its end
    # instead of splitting pages all over (several times faster).
    step("users", f"""
        WITH RECURSIVE {numbers(users)},
        rows AS MATERIALIZED (SELECT bench_uuid() AS id, i FROM n)
        INSERT INTO users (id, email, email_key, password_hash, name, first_name,
                           last_name, created_at, updated_at)
        SELECT id, 'user' || i || '@{EMAIL_DOMAIN}', 'user' || i || '@{EMAIL_DOMAIN}',
               ?1, 'Bench User', 'Bench', 'User', ?2 + i, ?2 + i
        FROM rows ORDER BY id""", (password_hash, now - 400 * DAY))
    # Two live sessions per user; their rowids are 1..2N in insertion order.
    step("sessions", f"""
        WITH rows AS MATERIALIZED (
            SELECT bench_uuid() AS id, u.id AS user_id
            FROM users u, (SELECT 0 UNION ALL SELECT 1))
        INSERT INTO sessions (id, user_id, user_agent, created_at, last_used_at, expires_at)
        SELECT id, user_id, 'bench', ?1, ?1, ?1 + 30 * {DAY}
        FROM rows ORDER BY id""", (now - DAY,))
    sessions = users * SESSIONS_PER_USER
    # Token i belongs to session (i mod sessions) + 1, created over the last
    # 29 days and valid 30 days from creation.
    step("refresh_tokens", f"""
        WITH RECURSIVE {numbers(tokens)},
        rows AS MATERIALIZED (
            SELECT bench_token_hash(i, 'latchkey-bench-refresh-') AS token_hash,
                   (SELECT id FROM sessions WHERE rowid = i % {sessions} + 1) AS session_id,
                   ?1 - i % (29 * {DAY}) AS created_at
            FROM n)
        INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
        SELECT token_hash, session_id, created_at, created_at + 30 * {DAY}
        FROM rows ORDER BY token_hash""", (now,))
    for name, sql in indexes:
        step(f"index {name}", sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    return {
        "users": users, "sessions": sessions, "refresh_tokens": tokens,
        "seconds": round(time.monotonic() - started, 1), "steps": timings,
        "bytes": os.path.getsize(path),
    }


def add_expired(path: str, rows: int, per_session: int) -> dict:
    conn = connect(path)
    fast_pragmas(conn)  # a throwaway copy: no journal needed
    now = int(time.time())
    started = time.monotonic()
    sessions = -(-rows // per_session)
    # A random seed prefix, so the backlog can be added to the same file twice.
    seed = f"latchkey-bench-expired-{uuid.uuid4()}-"
    conn.execute("BEGIN IMMEDIATE")
    first = conn.execute("SELECT coalesce(max(rowid), 0) FROM sessions").fetchone()[0] + 1
    # The owners, numbered 0..U-1, so session i belongs to owner i mod U.
    conn.execute("CREATE TEMP TABLE owners (k INTEGER PRIMARY KEY, id TEXT NOT NULL)")
    conn.execute("INSERT INTO owners (k, id) SELECT row_number() OVER (ORDER BY rowid) - 1, id"
                 " FROM users")
    owners = conn.execute("SELECT count(*) FROM owners").fetchone()[0]
    if owners == 0:
        sys.exit("make_big_db.py: the database has no users to own the expired sessions")
    conn.execute(f"""
        WITH RECURSIVE {numbers(sessions)}
        INSERT INTO sessions (id, user_id, user_agent, created_at, last_used_at, expires_at)
        SELECT bench_uuid(), (SELECT id FROM owners WHERE k = i % {owners}),
               'bench-expired', ?1 - 60 * {DAY}, ?1 - 31 * {DAY}, ?1 - {DAY} - i % {DAY}
        FROM n""", (now,))
    conn.execute(f"""
        WITH RECURSIVE {numbers(rows)},
        tokens AS MATERIALIZED (
            SELECT bench_token_hash(i, ?2) AS token_hash,
                   (SELECT id FROM sessions WHERE rowid = ?3 + i / {per_session}) AS session_id,
                   ?1 - {DAY} - i % {DAY} AS expires_at
            FROM n)
        INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
        SELECT token_hash, session_id, ?1 - 60 * {DAY}, expires_at
        FROM tokens ORDER BY token_hash""", (now, seed, first))
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    return {"expired_refresh_tokens": rows, "expired_sessions": sessions,
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    big = sub.add_parser("big", help="users, sessions and live refresh tokens")
    big.add_argument("--db", required=True)
    big.add_argument("--users", type=int, default=1_000_000)
    big.add_argument("--tokens", type=int, default=10_000_000)
    big.add_argument("--password-hash", required=True)
    expired = sub.add_parser("expired", help="a backlog of expired refresh tokens")
    expired.add_argument("--db", required=True)
    expired.add_argument("--rows", type=int, default=1_000_000)
    expired.add_argument("--per-session", type=int, default=10)
    args = parser.parse_args()
    if args.command == "big":
        result = make_big(args.db, args.users, args.tokens, args.password_hash)
    else:
        result = add_expired(args.db, args.rows, args.per_session)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
