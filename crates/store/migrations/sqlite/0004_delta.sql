-- Where an incremental (delta) listing resumes: saved in the same transaction as the data the
-- listing delivered, so a crash never leaves a link ahead of the store.

CREATE TABLE delta_links (
    tenant_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    link TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, resource)
);
