-- People who log in to the web pages, their sessions, and the one-time link that makes the first
-- admin. Passwords are kept only as Argon2id PHC strings; session and set-up tokens only as their
-- SHA-256, so that reading the store gives no way in.
CREATE TABLE app_users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    -- The name as compared: lower case, so that 'Admin' and 'admin' are one person.
    name_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_login_at BIGINT
);

CREATE TABLE app_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    -- A session ends at the first of: idle too long, or too old whatever its use.
    idle_expires_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX app_sessions_user ON app_sessions (user_id);

CREATE TABLE app_setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
