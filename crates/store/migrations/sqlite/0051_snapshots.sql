-- A tenant's headline figures after each successful run, as one JSON object of named counts.
-- A run whose figures equal the latest snapshot's only moves its seen_until, so that a tenant
-- synced every hour keeps a row per change rather than per run.

CREATE TABLE tenant_snapshots (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    run_id BIGINT,
    taken_at BIGINT NOT NULL,
    seen_until BIGINT NOT NULL,
    figures TEXT NOT NULL
);
CREATE INDEX tenant_snapshots_by_tenant ON tenant_snapshots (tenant_id, taken_at);
