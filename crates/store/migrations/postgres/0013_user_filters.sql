-- Which users a connection keeps (its filters, as JSON), and the users left out, each with the
-- rule that left them out, so that "why is this person missing?" has an answer.
ALTER TABLE connections ADD COLUMN user_filter TEXT NOT NULL DEFAULT '{}';

CREATE TABLE filtered_users (
    tenant_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, object_id)
);
