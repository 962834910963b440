-- latchkey's whole current schema. Embedded in the binary and applied in one
-- transaction to an empty database; `db::migrate` sets PRAGMA user_version.
-- Times are integer Unix seconds; ids are UUID text; secrets are SHA-256 only.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    -- Uniqueness key: the trimmed address in NFKC with Unicode case folding,
    -- so look-alikes (full-width letters, `ß`/`ss`) are one account
    -- (SQLite's NOCASE folds ASCII only). `email` keeps it as typed.
    email_key     TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name          TEXT NOT NULL,
    first_name    TEXT,
    last_name     TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- 1 once a mailed link proved the address (verification, reset, change).
    email_verified INTEGER NOT NULL DEFAULT 0,
    -- The new address of an email change, until its link is confirmed.
    pending_email  TEXT
) STRICT;

-- A login. Its access tokens carry its id as `sid`; deleting the row ends it,
-- and every access token that names it is refused from then on.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent   TEXT,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    -- How the login authenticated (RFC 8176 `amr` values, space-separated);
    -- every access token of the session carries them.
    amr          TEXT NOT NULL DEFAULT 'pwd'
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- With --rotate-refresh-tokens a refresh replaces the token: `replaced_at` and
-- `successor_hash` let a retry within --refresh-reuse-interval get the same
-- successor, and any other reuse end the session (RFC 9700 §4.14).
CREATE TABLE refresh_tokens (
    token_hash     BLOB PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    replaced_at    INTEGER,
    successor_hash BLOB
) STRICT, WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Device tokens (OWASP "device cookies"): a login that presents one is
-- exempt from the per-email throttle, so a stranger cannot lock its owner out.
CREATE TABLE device_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX device_tokens_by_user ON device_tokens (user_id);
CREATE INDEX device_tokens_by_expiry ON device_tokens (expires_at);

-- Long-lived bearer JWTs (typ pt+jwt) for scripts; `id` is their `jti`. A
-- revoked token's row is deleted, so a use is refused by one indexed read.
CREATE TABLE private_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    -- The key that signed it, which stays published until the token expires.
    kid          TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX private_tokens_by_user ON private_tokens (user_id);
CREATE INDEX private_tokens_by_expiry ON private_tokens (expires_at);
CREATE INDEX private_tokens_by_kid ON private_tokens (kid, expires_at);

-- Ed25519 signing keys. A key is published from its creation and signs from
-- `signs_at` (once verifiers caching the JWKS hold it) until `retired_at` (its
-- successor's `signs_at`). A retired key stays published until the latest
-- expiry of anything it signed: access tokens (`retired_at` + the access
-- window in `settings`) and private tokens. A revoked key is deleted.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    private_pkcs8 BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    signs_at      INTEGER NOT NULL,
    retired_at    INTEGER
) STRICT;

-- Profile pictures, cleaned of metadata, one per user. The id is the
-- unguessable part of image_url; a new upload gets a new id.
CREATE TABLE images (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    etag         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- Small named values: the refresh-rotation secret, the service's access window
-- and JWKS cache lifetime.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value ANY NOT NULL
) STRICT;

-- Mails waiting for the sender thread, written in the transaction of the
-- change that causes them. A sent mail's row is deleted; a failed one keeps
-- its recipient, subject and last error (its body blanked) until cleanup.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    failed_at       INTEGER
) STRICT;
CREATE INDEX outbox_by_due ON outbox (next_attempt_at) WHERE failed_at IS NULL;
CREATE INDEX outbox_by_failure ON outbox (failed_at) WHERE failed_at IS NOT NULL;

-- Tokens of mailed links (verify an address, reset a password, confirm an
-- email change), stored only as SHA-256. A use deletes the row; a newer
-- link of the same purpose deletes the older ones. `email` is the address
-- the link was sent to: a link is void once the account's address moved on.
CREATE TABLE email_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'change')),
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_by_expiry ON email_tokens (expires_at);

-- Forgotten-password requests, answered at once and turned into a reset
-- mail (or nothing, for an address without an account) by the sender
-- thread: the request itself does the same work whether or not the address
-- has an account, so its timing tells nothing.
CREATE TABLE reset_requests (
    id           TEXT PRIMARY KEY,
    email_key    TEXT NOT NULL,
    address      TEXT,
    device       TEXT,
    requested_at INTEGER NOT NULL
) STRICT;
-- Security events (the contract's "Audit log"), newest last: `seq` is the
-- rowid, so it grows with each insert and orders events without ties (the
-- paging cursor). No foreign key to users: an account's deletion is itself
-- an event the operator must still read; rows go after --audit-retention.
-- A failed login for an unknown email keeps only `email_hmac`, a keyed hash
-- of the normalised address (secret in `settings`); never a password, token,
-- code or link token.
CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    user_id    TEXT,
    email_hmac BLOB,
    session_id TEXT,
    token_id   TEXT,
    address    TEXT,
    user_agent TEXT,
    detail     TEXT
) STRICT;
CREATE INDEX audit_events_by_user ON audit_events (user_id, seq);
CREATE INDEX audit_events_by_time ON audit_events (at);

-- A user's TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s steps). The
-- factor is on once `secret` is set; `pending_secret` is an enrolment not yet
-- confirmed with a code. `last_step` is the last time step whose code was
-- accepted: a code is never accepted for that step or an earlier one again
-- (RFC 6238 §5.2). The secrets are stored as they are, protected like the
-- signing keys by the database file's 0600 mode (see the README).
CREATE TABLE totp_factors (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret         BLOB,
    pending_secret BLOB,
    last_step      INTEGER,
    created_at     INTEGER NOT NULL,
    confirmed_at   INTEGER
) STRICT;

-- Single-use recovery codes, stored only as HMAC-SHA256 under the database's
-- `recovery_code_key` setting (80+ random bits need no slow hash).
CREATE TABLE recovery_codes (
    code_hash  BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);

-- The second step of a login with a second factor: issued after the right
-- password, bound to the user and the client address, single use, spent
-- after five wrong codes. Stored only as SHA-256.
CREATE TABLE mfa_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address    TEXT,
    -- The hash of the device token the password step presented, if it was
    -- valid: wrong codes then count against it, not against the email.
    device_token_hash BLOB,
    failures   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX mfa_tokens_by_user ON mfa_tokens (user_id);
CREATE INDEX mfa_tokens_by_expiry ON mfa_tokens (expires_at);
