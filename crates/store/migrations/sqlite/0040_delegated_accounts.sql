-- People who connected their own Microsoft 365 account (OAuth authorization code, delegated
-- permissions) through a connection's app registration. The refresh token is sealed like the
-- connections' secrets; it is replaced by the one each refresh returns, in the same statement
-- that checks the generation read, so that two refreshes never both keep theirs.
CREATE TABLE delegated_accounts (
    id INTEGER PRIMARY KEY,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    username TEXT NOT NULL,
    display_name TEXT,
    scopes TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    token_generation BIGINT NOT NULL DEFAULT 0,
    -- 'active' or 'needs_reconnect'
    state TEXT NOT NULL DEFAULT 'active',
    -- Why it needs reconnecting, in words with the fix.
    problem TEXT,
    connected_at BIGINT NOT NULL,
    last_used_at BIGINT,
    last_refreshed_at BIGINT NOT NULL,
    UNIQUE (connection_id, tenant_id, object_id)
);

-- Events booked through m365sync: the transactionId goes with every try of one booking, so a
-- retried request never books twice; the event id comes back from Outlook.
CREATE TABLE calendar_bookings (
    id INTEGER PRIMARY KEY,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    account_id BIGINT REFERENCES delegated_accounts (id) ON DELETE SET NULL,
    mailbox TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE,
    event_id TEXT,
    subject TEXT NOT NULL,
    start_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    -- 'pending', 'booked', 'cancelled' or 'failed'
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX calendar_bookings_mailbox ON calendar_bookings (mailbox, start_at);

-- One booking at a time per mailbox, across processes: the holder re-checks the slot and
-- writes the event while it holds the lock, which lapses at until_at if the holder dies.
CREATE TABLE calendar_locks (
    mailbox TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_at BIGINT NOT NULL
);
