-- Tessera schema, version 9: clients without shared secrets.

-- Client assertions already used (RFC 7523 §3: a `jti` is single use), until they expire. `id` is
-- the SHA-256 of the issuer, the client and the `jti`, so a replay is refused on every node
-- that shares the store.
CREATE TABLE used_assertions (
    id          TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX used_assertions_by_expiry ON used_assertions(expires_at);

-- Trust policies (workload identity federation): an external issuer whose tokens, with the
-- policy's audience and matching claims, authenticate as `client_id`. `policy_json` is the
-- whole policy (model::trust::TrustPolicy).
CREATE TABLE trust_policies (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    issuer      TEXT NOT NULL,
    policy_json TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX trust_policies_by_client ON trust_policies(client_id);
