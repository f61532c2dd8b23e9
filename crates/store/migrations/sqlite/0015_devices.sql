-- Intune's managed devices and Entra ID's device objects get tables of their own: a tenant may
-- hold tens of thousands, a resync compares columns rather than JSON documents, and a contact's
-- devices are found by an index on the user rather than by reading every document.
--
-- The columns carry the names the JSON documents used, so that exports keep their field names.
-- Rows kept in `inventory` by earlier versions move here, archived or not, with their times; a
-- field of an unexpected JSON type becomes NULL rather than failing the upgrade.

CREATE TABLE managed_devices (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    device_name TEXT,
    user_id TEXT,
    user_principal_name TEXT,
    user_display_name TEXT,
    owner_type TEXT,
    operating_system TEXT,
    os_version TEXT,
    compliance_state TEXT,
    management_agent TEXT,
    enrolled TEXT,
    last_check_in TEXT,
    entra_device_id TEXT,
    manufacturer TEXT,
    model TEXT,
    serial_number TEXT,
    is_encrypted BOOLEAN,
    total_storage_bytes BIGINT,
    free_storage_bytes BIGINT,
    physical_memory_bytes BIGINT,
    UNIQUE (tenant_id, item_key)
);
-- A contact's devices: by the user's object id, or by UPN for a device whose user id is not known.
CREATE INDEX managed_devices_by_user ON managed_devices (tenant_id, user_id);
CREATE INDEX managed_devices_by_upn ON managed_devices (tenant_id, user_principal_name);
-- An Intune device and its Entra object meet on the Entra device id.
CREATE INDEX managed_devices_by_entra_device ON managed_devices (tenant_id, entra_device_id);

CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    device_id TEXT,
    display_name TEXT,
    operating_system TEXT,
    operating_system_version TEXT,
    join_type TEXT,
    trust_type TEXT,
    profile_type TEXT,
    is_compliant BOOLEAN,
    is_managed BOOLEAN,
    account_enabled BOOLEAN,
    manufacturer TEXT,
    model TEXT,
    ownership TEXT,
    registered TEXT,
    last_sign_in TEXT,
    UNIQUE (tenant_id, item_key)
);
CREATE INDEX devices_by_device_id ON devices (tenant_id, device_id);

INSERT INTO managed_devices (organization_id, tenant_id, item_key, archived, created_at, updated_at,
    device_name, user_id, user_principal_name, user_display_name, owner_type, operating_system,
    os_version, compliance_state, management_agent, enrolled, last_check_in, entra_device_id,
    manufacturer, model, serial_number, is_encrypted, total_storage_bytes, free_storage_bytes,
    physical_memory_bytes)
SELECT organization_id, tenant_id, item_key, archived, created_at, updated_at,
    CASE json_type(document, '$.device_name') WHEN 'text' THEN json_extract(document, '$.device_name') END,
    CASE json_type(document, '$.user_id') WHEN 'text' THEN json_extract(document, '$.user_id') END,
    CASE json_type(document, '$.user_principal_name') WHEN 'text' THEN json_extract(document, '$.user_principal_name') END,
    CASE json_type(document, '$.user_display_name') WHEN 'text' THEN json_extract(document, '$.user_display_name') END,
    CASE json_type(document, '$.owner_type') WHEN 'text' THEN json_extract(document, '$.owner_type') END,
    CASE json_type(document, '$.operating_system') WHEN 'text' THEN json_extract(document, '$.operating_system') END,
    CASE json_type(document, '$.os_version') WHEN 'text' THEN json_extract(document, '$.os_version') END,
    CASE json_type(document, '$.compliance_state') WHEN 'text' THEN json_extract(document, '$.compliance_state') END,
    CASE json_type(document, '$.management_agent') WHEN 'text' THEN json_extract(document, '$.management_agent') END,
    CASE json_type(document, '$.enrolled') WHEN 'text' THEN json_extract(document, '$.enrolled') END,
    CASE json_type(document, '$.last_check_in') WHEN 'text' THEN json_extract(document, '$.last_check_in') END,
    CASE json_type(document, '$.entra_device_id') WHEN 'text' THEN json_extract(document, '$.entra_device_id') END,
    CASE json_type(document, '$.manufacturer') WHEN 'text' THEN json_extract(document, '$.manufacturer') END,
    CASE json_type(document, '$.model') WHEN 'text' THEN json_extract(document, '$.model') END,
    CASE json_type(document, '$.serial_number') WHEN 'text' THEN json_extract(document, '$.serial_number') END,
    CASE json_type(document, '$.is_encrypted') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.total_storage_bytes') WHEN 'integer' THEN json_extract(document, '$.total_storage_bytes') END,
    CASE json_type(document, '$.free_storage_bytes') WHEN 'integer' THEN json_extract(document, '$.free_storage_bytes') END,
    CASE json_type(document, '$.physical_memory_bytes') WHEN 'integer' THEN json_extract(document, '$.physical_memory_bytes') END
FROM inventory
WHERE dataset = 'managed_devices';
DELETE FROM inventory WHERE dataset = 'managed_devices';

INSERT INTO devices (organization_id, tenant_id, item_key, archived, created_at, updated_at,
    device_id, display_name, operating_system, operating_system_version, join_type, trust_type,
    profile_type, is_compliant, is_managed, account_enabled, manufacturer, model, ownership,
    registered, last_sign_in)
SELECT organization_id, tenant_id, item_key, archived, created_at, updated_at,
    CASE json_type(document, '$.device_id') WHEN 'text' THEN json_extract(document, '$.device_id') END,
    CASE json_type(document, '$.display_name') WHEN 'text' THEN json_extract(document, '$.display_name') END,
    CASE json_type(document, '$.operating_system') WHEN 'text' THEN json_extract(document, '$.operating_system') END,
    CASE json_type(document, '$.operating_system_version') WHEN 'text' THEN json_extract(document, '$.operating_system_version') END,
    CASE json_type(document, '$.join_type') WHEN 'text' THEN json_extract(document, '$.join_type') END,
    CASE json_type(document, '$.trust_type') WHEN 'text' THEN json_extract(document, '$.trust_type') END,
    CASE json_type(document, '$.profile_type') WHEN 'text' THEN json_extract(document, '$.profile_type') END,
    CASE json_type(document, '$.is_compliant') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.is_managed') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.account_enabled') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.manufacturer') WHEN 'text' THEN json_extract(document, '$.manufacturer') END,
    CASE json_type(document, '$.model') WHEN 'text' THEN json_extract(document, '$.model') END,
    CASE json_type(document, '$.ownership') WHEN 'text' THEN json_extract(document, '$.ownership') END,
    CASE json_type(document, '$.registered') WHEN 'text' THEN json_extract(document, '$.registered') END,
    CASE json_type(document, '$.last_sign_in') WHEN 'text' THEN json_extract(document, '$.last_sign_in') END
FROM inventory
WHERE dataset = 'devices';
DELETE FROM inventory WHERE dataset = 'devices';
