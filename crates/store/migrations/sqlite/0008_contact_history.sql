-- What each run changed on each contact, field by field (history and the compare view), and the
-- users a plan would not link alone: the review queue.
CREATE TABLE contact_changes (
    id INTEGER PRIMARY KEY,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    run_id BIGINT,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    note TEXT,
    changed_at BIGINT NOT NULL
);
CREATE INDEX contact_changes_by_contact ON contact_changes (contact_id, id);

CREATE TABLE review_items (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    record TEXT NOT NULL,
    candidates TEXT NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, object_id)
);
CREATE INDEX review_items_open ON review_items (state, id);
