-- Detected software consolidated into products, per tenant: one row per product (or, where no
-- rule matched, per cleaned name: the residue), its versions with their device and user counts
-- as a JSON list (a product has a handful), and per tenant which rules made it and when.
-- A consolidation replaces its tenant's rows whole.

CREATE TABLE software_products (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    product TEXT NOT NULL,
    publisher TEXT,
    matched BOOLEAN NOT NULL,
    devices BIGINT NOT NULL,
    users BIGINT NOT NULL,
    latest_version TEXT,
    oldest_version TEXT,
    raw_names TEXT NOT NULL,
    versions TEXT NOT NULL,
    UNIQUE (tenant_id, matched, product)
);

CREATE TABLE software_consolidations (
    tenant_id TEXT PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    rules_revision TEXT NOT NULL,
    detected_apps BIGINT NOT NULL,
    consolidated_at BIGINT NOT NULL
);
