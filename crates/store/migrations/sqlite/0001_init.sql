-- Organisations, connections, the synced records and the run log.
-- Times are unix milliseconds; lists and objects are JSON text.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    tenant_id TEXT UNIQUE,
    tenant_name TEXT,
    verified_domains TEXT NOT NULL DEFAULT '[]',
    default_domain TEXT,
    country TEXT,
    fingerprint TEXT,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE connections (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    cloud TEXT NOT NULL,
    datasets TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT,
    object_id TEXT,
    user_principal_name TEXT,
    upn_key TEXT,
    email TEXT,
    email_key TEXT,
    display_name TEXT NOT NULL,
    given_name TEXT,
    surname TEXT,
    job_title TEXT,
    department TEXT,
    office_location TEXT,
    mobile_phone TEXT,
    business_phones TEXT NOT NULL DEFAULT '[]',
    account_enabled BOOLEAN,
    user_type TEXT,
    fingerprint TEXT,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    archived_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, object_id)
);
CREATE INDEX contacts_by_upn ON contacts (tenant_id, upn_key);
CREATE INDEX contacts_by_organization ON contacts (organization_id, id);
CREATE INDEX contacts_by_email ON contacts (organization_id, email_key);
-- Finds contacts not yet tied to a directory object (object_id IS NULL) without a scan.
CREATE INDEX contacts_unlinked ON contacts (organization_id, object_id);

CREATE TABLE licenses (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    sku_id TEXT NOT NULL,
    sku_part_number TEXT NOT NULL,
    applies_to TEXT NOT NULL,
    capability_status TEXT NOT NULL,
    enabled_units BIGINT NOT NULL,
    suspended_units BIGINT NOT NULL,
    warning_units BIGINT NOT NULL,
    consumed_units BIGINT NOT NULL,
    service_plans TEXT NOT NULL DEFAULT '[]',
    fingerprint TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, sku_id)
);

CREATE TABLE contact_licenses (
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    sku_id TEXT NOT NULL,
    PRIMARY KEY (contact_id, sku_id)
);

CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    upn_key TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
    contact_id BIGINT REFERENCES contacts (id),
    display_name TEXT,
    is_deleted BOOLEAN NOT NULL,
    storage_used_bytes BIGINT,
    item_count BIGINT,
    issue_warning_quota_bytes BIGINT,
    prohibit_send_quota_bytes BIGINT,
    prohibit_send_receive_quota_bytes BIGINT,
    deleted_item_count BIGINT,
    deleted_item_size_bytes BIGINT,
    has_archive BOOLEAN,
    created_date TEXT,
    last_activity_date TEXT,
    fingerprint TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, upn_key)
);
CREATE INDEX mailboxes_by_contact ON mailboxes (contact_id);

CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY,
    connection_id BIGINT,
    connection_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    warnings TEXT NOT NULL DEFAULT '[]',
    message TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX sync_runs_by_connection ON sync_runs (connection_name, id);

CREATE TABLE sync_steps (
    id INTEGER PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    dataset TEXT NOT NULL,
    status TEXT NOT NULL,
    created BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0,
    archived BIGINT NOT NULL DEFAULT 0,
    message TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX sync_steps_by_run ON sync_steps (run_id, id);
