-- Tessera schema, version 11: device authorization (RFC 8628).

-- A device's request, by the SHA-256 of its device code; `user_code` is the SHA-256 of the
-- normalized user code a person enters. `grant_json` is what it grants (client, scope,
-- resources; once approved, the person and when they signed in). `status`: pending, approved,
-- denied or issued. Polls are paced by `poll_interval` (seconds, grown by slow_down) from
-- `last_polled_at`. Rows go when they expire.
CREATE TABLE device_codes (
    id             TEXT PRIMARY KEY,
    user_code      TEXT NOT NULL UNIQUE,
    client_id      TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    grant_json     TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    poll_interval  BIGINT NOT NULL,
    last_polled_at BIGINT
);
CREATE INDEX device_codes_by_expiry ON device_codes(expires_at);
