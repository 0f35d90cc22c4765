-- Tessera schema, version 1.
-- Times are seconds since the Unix epoch.

CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,          -- space-delimited, RFC 6749 §3.3
    audiences   TEXT NOT NULL,          -- JSON array of absolute URIs; the first is the default
    token_ttl   INTEGER NOT NULL,
    enabled     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Hashes only: 'sha256' for generated (high-entropy) secrets, 'argon2id' (PHC string) for imported.
CREATE TABLE client_secrets (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX client_secrets_by_client ON client_secrets(client_id);

-- Private keys are sealed with the master key (AES-256-GCM), never stored in clear.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retired_at   INTEGER
);

-- Every write appends here in the same transaction; nodes poll it to refresh their caches.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    entity     TEXT NOT NULL,           -- 'client' or 'key'
    entity_id  TEXT NOT NULL,
    at         INTEGER NOT NULL
);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
