-- Tessera schema for sqlite, version 6: how a client may get tokens (a JSON object: public,
-- grant_types, redirect_uris, first_party); '{}' is a confidential client_credentials client.
ALTER TABLE clients ADD COLUMN flows TEXT NOT NULL DEFAULT '{}';
