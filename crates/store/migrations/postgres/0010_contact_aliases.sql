-- A user's other mail addresses (smtp: proxy addresses), kept on the contact; and the links a
-- person undid, so that a sync never puts that user back on that contact unasked.
ALTER TABLE contacts ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';

CREATE TABLE contact_unlinks (
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (contact_id, tenant_id, object_id)
);
CREATE INDEX contact_unlinks_by_user ON contact_unlinks (tenant_id, object_id);
