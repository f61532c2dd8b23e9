-- Sign-ins sent to Microsoft from the web pages and not yet answered, by their `state`: kept
-- here rather than in one server's memory, so that a restart or another server process behind
-- the same address finishes a sign-in in progress. The nonce and the PKCE verifier are sealed
-- like every other secret; a row is taken (deleted) once, by the login session that started it.
CREATE TABLE pending_sign_ins (
    state TEXT PRIMARY KEY,
    -- The hash of the login session's token: only that session may finish it.
    session_hash TEXT NOT NULL,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    tenant TEXT,
    redirect_uri TEXT NOT NULL,
    -- The account being re-connected, if any: the person must sign in as it.
    reconnecting BIGINT,
    url TEXT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    started_at BIGINT NOT NULL
);
CREATE INDEX pending_sign_ins_started ON pending_sign_ins (started_at);
