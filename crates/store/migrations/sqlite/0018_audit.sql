-- Audit records of the unified audit log: a typed, append-only table. The common schema's fields
-- are columns (so that a period or a person is found by index); the record itself is kept whole
-- as JSON, since records of different workloads share nothing beyond that schema. A record is
-- never rewritten; the sync deletes records older than their connection's retention period.
CREATE TABLE audit_records (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    creation_time TEXT,
    operation TEXT,
    workload TEXT,
    record_type BIGINT,
    user_id TEXT,
    user_type BIGINT,
    client_ip TEXT,
    result_status TEXT,
    object_id TEXT,
    content_type TEXT,
    record TEXT NOT NULL,
    UNIQUE (tenant_id, item_key)
);
CREATE INDEX audit_records_by_time ON audit_records (tenant_id, creation_time);
CREATE INDEX audit_records_by_user ON audit_records (tenant_id, user_id);

-- How many days a connection keeps audit records.
ALTER TABLE connections ADD COLUMN audit_retention_days BIGINT NOT NULL DEFAULT 180;

-- Records kept before as inventory documents move here. Their content type was not kept.
INSERT INTO audit_records (organization_id, tenant_id, item_key, archived, created_at, updated_at,
    creation_time, operation, workload, record_type, user_id, user_type, client_ip, result_status,
    object_id, content_type, record)
SELECT organization_id, tenant_id, item_key, FALSE, created_at, updated_at,
    json_extract(document, '$.created'),
    json_extract(document, '$.operation'),
    json_extract(document, '$.workload'),
    CASE WHEN json_type(document, '$.record_type') = 'integer' THEN json_extract(document, '$.record_type') END,
    LOWER(json_extract(document, '$.user_id')),
    CASE WHEN json_type(document, '$.user_type') = 'integer' THEN json_extract(document, '$.user_type') END,
    json_extract(document, '$.client_ip'),
    json_extract(document, '$.result_status'),
    json_extract(document, '$.object_id'),
    NULL,
    COALESCE(json_extract(document, '$.record'), '{}')
FROM inventory
WHERE dataset = 'audit';

DELETE FROM inventory WHERE dataset = 'audit';
