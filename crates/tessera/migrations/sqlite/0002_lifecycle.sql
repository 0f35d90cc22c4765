-- Tessera schema, version 2: revocation, introspection permission, key retirement, audit.

-- A resource server allowed to introspect other clients' tokens.
ALTER TABLE clients ADD COLUMN can_introspect INTEGER NOT NULL DEFAULT 0;
-- Every token of this client issued at or before this time is revoked (0: none).
ALTER TABLE clients ADD COLUMN tokens_revoked_before INTEGER NOT NULL DEFAULT 0;

-- Revoked token ids, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens(expires_at);

-- Every administrative change: who, what, when, from where. Never a secret.
CREATE TABLE audit_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    source   TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    details  TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events(at);
