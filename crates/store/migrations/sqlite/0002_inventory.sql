-- Tenant-wide inventories (domains, service health, app registrations, terms of use, ...):
-- one row per item, its normalised document kept as JSON.

CREATE TABLE inventory (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    item_key TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, dataset, item_key)
);
CREATE INDEX inventory_by_dataset ON inventory (dataset, tenant_id, name);
