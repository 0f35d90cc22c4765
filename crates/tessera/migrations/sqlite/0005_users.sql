-- Tessera schema for sqlite, version 5: people who sign in (OpenID Connect).
-- `email_key` is the address in lower case: unique, and what sign-in looks up.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL,
    email_key      TEXT NOT NULL UNIQUE,
    email_verified INTEGER NOT NULL,
    given_name     TEXT,
    family_name    TEXT,
    name           TEXT,
    password_hash  TEXT,
    enabled        INTEGER NOT NULL,
    attributes     TEXT NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
