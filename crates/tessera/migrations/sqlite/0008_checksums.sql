-- The SHA-256 of every applied migration file, so that a file edited after it was applied is
-- refused at start instead of leaving stores that ran different SQL under one version number.
CREATE TABLE schema_checksums (
    version BIGINT PRIMARY KEY,
    sha256 TEXT NOT NULL
);
