-- latchkey's whole current schema. Embedded in the binary and applied in one
-- transaction to an empty database; `db::migrate` sets PRAGMA user_version.
-- Times are integer Unix seconds; ids are UUID text; secrets are SHA-256 only.

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

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Ed25519 signing keys. The newest row with `retired_at` NULL signs; a retired
-- key stays published until `drop_after`, the latest expiry of anything it signed.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    private_pkcs8 BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    drop_after    INTEGER
) STRICT;
