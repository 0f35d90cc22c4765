-- Tessera schema for postgres, version 12: the admin console.

-- What a person may do in the console: space-separated roles ('admin', 'auditor'); '' for none.
ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '';

-- Clients found by the start of their name: the name in ASCII lower case, compared bytewise
-- (collation "C", as SQLite compares), so that a prefix is one range of the index.
ALTER TABLE clients ADD COLUMN name_key TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE clients SET name_key = lower(name COLLATE "C");
CREATE INDEX clients_by_name ON clients(name_key, id);

-- (Users are found by the start of their email on the unique key, collation "C" since 0005.)

-- The audit trail by who acted, what they did and on what, newest first.
CREATE INDEX audit_events_by_actor ON audit_events(actor, id);
CREATE INDEX audit_events_by_action ON audit_events(action, id);
CREATE INDEX audit_events_by_target ON audit_events(target, id);
