-- Tessera schema for PostgreSQL, version 1 (the same tables as migrations/sqlite/0001).
-- Times are seconds since the Unix epoch. Ids compare bytewise (COLLATE "C"), as on SQLite.

CREATE TABLE clients (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,          -- space-delimited, RFC 6749 §3.3
    audiences   TEXT NOT NULL,          -- JSON array of absolute URIs; the first is the default
    token_ttl   BIGINT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Hashes only: 'sha256' for generated (high-entropy) secrets, 'argon2id' (PHC string) for imported.
CREATE TABLE client_secrets (
    id          TEXT COLLATE "C" PRIMARY KEY,
    client_id   TEXT COLLATE "C" NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX client_secrets_by_client ON client_secrets(client_id);

-- Private keys are sealed with the master key (AES-256-GCM), never stored in clear.
CREATE TABLE signing_keys (
    kid          TEXT COLLATE "C" PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  BYTEA NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retired_at   BIGINT
);

-- Every write appends here in the same transaction; nodes poll it to refresh their caches.
-- `seq` comes from change_head, taken under the write lock: commit order, no holes.
CREATE TABLE changes (
    seq        BIGINT PRIMARY KEY,
    entity     TEXT NOT NULL,           -- 'client', 'key' or 'revocation'
    entity_id  TEXT NOT NULL,
    at         BIGINT NOT NULL
);

-- One row: the last change number, and the store's write lock (SELECT ... FOR UPDATE).
CREATE TABLE change_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL
);
INSERT INTO change_head (id, seq) VALUES (1, 0);

CREATE TABLE meta (
    key    TEXT COLLATE "C" PRIMARY KEY,
    value  TEXT NOT NULL
);
