-- Tessera schema for postgres, version 5: people who sign in (OpenID Connect).
-- `email_key` is the address in lower case: unique, and what sign-in looks up.
CREATE TABLE users (
    id             TEXT COLLATE "C" PRIMARY KEY,
    email          TEXT NOT NULL,
    email_key      TEXT COLLATE "C" NOT NULL UNIQUE,
    email_verified BOOLEAN NOT NULL,
    given_name     TEXT,
    family_name    TEXT,
    name           TEXT,
    password_hash  TEXT,
    enabled        BOOLEAN NOT NULL,
    attributes     TEXT NOT NULL DEFAULT '{}',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
