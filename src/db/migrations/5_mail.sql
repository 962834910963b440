-- Version 4 → 5: the outbox, mailed-link tokens, and each user's address
-- state. See schema.sql for what each holds.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN pending_email TEXT;

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
