-- Version 4: the audit log (the same definitions as in schema.sql).
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
