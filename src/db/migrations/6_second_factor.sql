-- 5 → 6: the second factor: TOTP secrets, recovery codes, the login's MFA step.
CREATE TABLE totp_factors (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret         BLOB,
    pending_secret BLOB,
    last_step      INTEGER,
    created_at     INTEGER NOT NULL,
    confirmed_at   INTEGER
) STRICT;
CREATE TABLE recovery_codes (
    code_hash  BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);
CREATE TABLE mfa_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address    TEXT,
    device_token_hash BLOB,
    failures   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX mfa_tokens_by_user ON mfa_tokens (user_id);
CREATE INDEX mfa_tokens_by_expiry ON mfa_tokens (expires_at);
