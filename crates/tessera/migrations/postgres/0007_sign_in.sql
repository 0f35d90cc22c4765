-- Tessera schema for postgres, version 7: signing people in (OpenID Connect).

-- A key signs access tokens ('access') or ID tokens ('id_token'); each purpose rotates on its own.
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'access';

-- Browser sessions at the authorization endpoint. `id` is the SHA-256 of the cookie's value.
CREATE TABLE sessions (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_time   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);

-- What a user allowed a third-party client (space-delimited scopes).
CREATE TABLE consents (
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id   TEXT COLLATE "C" NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Authorization codes, by the SHA-256 of the code. `grant_json` is what the code grants
-- (client, user, scope, redirect URI, PKCE challenge, nonce, auth_time). A redeemed code stays
-- (with `issued_json`: what it issued) until those tokens have expired, so that a second
-- redemption can revoke them.
CREATE TABLE authorization_codes (
    id          TEXT COLLATE "C" PRIMARY KEY,
    client_id   TEXT COLLATE "C" NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    grant_json  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    issued_json TEXT,
    keep_until  BIGINT NOT NULL
);
CREATE INDEX authorization_codes_by_expiry ON authorization_codes(keep_until);

-- Refresh tokens, by the SHA-256 of the token. Each use replaces the token with a new one of
-- the same family; a used token presented again revokes the family.
CREATE TABLE refresh_tokens (
    id                TEXT COLLATE "C" PRIMARY KEY,
    family_id         TEXT COLLATE "C" NOT NULL,
    client_id         TEXT COLLATE "C" NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id           TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    grant_json        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    used_at           BIGINT,
    access_jti        TEXT,
    access_expires_at BIGINT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens(family_expires_at);
