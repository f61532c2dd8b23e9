-- Programs that use the REST API: each presents a bearer token made for it. Only the token's
-- SHA-256 is kept (the token is shown once, when it is made), with a few of its first characters
-- so that a person can tell tokens apart; a revoked token stays listed, and refused.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    -- The name as compared: lower case, so that 'CI' and 'ci' are one token.
    name_key TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
-- A name belongs to one live token at a time; a revoked token's name may be given again.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name_key) WHERE revoked_at IS NULL;
