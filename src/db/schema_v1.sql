-- The schema of version 1, as released: kept only so a test can migrate a
-- version-1 database and compare it with a fresh one (`db::tests`).

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    -- Uniqueness key: the trimmed address lower-cased with Unicode rules
    -- (SQLite's NOCASE folds ASCII only).
    email_key     TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name          TEXT NOT NULL,
    first_name    TEXT,
    last_name     TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- A login. Its access tokens carry its id as `sid`; deleting the row ends it,
-- and every access token that names it is refused from then on.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent   TEXT,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
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

-- Ed25519 signing keys. The newest row with `retired_at` NULL signs. A retired
-- key stays published until the latest expiry of anything it signed: access
-- tokens (`retired_at` + the access window in `settings`) and private tokens.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    private_pkcs8 BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
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

-- Small named values: the refresh-rotation secret, the service's access window.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value ANY NOT NULL
) STRICT;
