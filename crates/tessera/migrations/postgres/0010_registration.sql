-- Tessera schema, version 10: clients that register themselves.

-- How a client came to be when no operator made it (RFC 7591 registration, or a client ID
-- metadata document): the JSON of model::registration::Registration; NULL for an operator's.
ALTER TABLE clients ADD COLUMN registration TEXT;
-- Self-registered clients by age: the registration cap counts them, pruning finds the old ones.
CREATE INDEX clients_registered ON clients(created_at) WHERE registration IS NOT NULL;

-- Initial access tokens (RFC 7591 §3) an operator issued, by the SHA-256 of their value.
CREATE TABLE registration_tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    note        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    uses_left   BIGINT NOT NULL
);
