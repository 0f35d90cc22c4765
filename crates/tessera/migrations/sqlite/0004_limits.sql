-- Revocations are counted per client (the cap on revocations per client).
CREATE INDEX revoked_tokens_by_client ON revoked_tokens(client_id, expires_at);
