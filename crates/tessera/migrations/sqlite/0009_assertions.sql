-- Client assertions already used (RFC 7523 §3: a `jti` is single use), until they expire. `id` is
-- the SHA-256 of the issuer, the client and the `jti`, so a replay is refused on every node
-- that shares the store.
CREATE TABLE used_assertions (
    id          TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX used_assertions_by_expiry ON used_assertions(expires_at);
