-- Tessera schema for sqlite, version 3: per-client claims, a JSON object put in every token.
ALTER TABLE clients ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
