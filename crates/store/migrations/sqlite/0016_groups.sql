-- Groups in a table of their own, and their memberships in a join table: a delta round that
-- says one member joined writes one row, where a JSON document would rewrite the whole list.
--
-- A membership is deleted when the member leaves, not archived: it has no fields of its own and
-- no history worth keeping, and the table then holds exactly the memberships that exist. A
-- deleted group is archived and keeps its last members, shown as it was.

CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    display_name TEXT,
    description TEXT,
    mail TEXT,
    mail_enabled BOOLEAN,
    security_enabled BOOLEAN,
    -- Comma-separated and sorted (Unified, DynamicMembership): identifiers without commas.
    group_types TEXT NOT NULL DEFAULT '',
    visibility TEXT,
    created TEXT,
    UNIQUE (tenant_id, item_key)
);

CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_key TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_type TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, group_key, member_id),
    FOREIGN KEY (tenant_id, group_key) REFERENCES groups (tenant_id, item_key)
);
-- A group's members are the primary key's prefix; a user's groups need their own index.
CREATE INDEX group_members_by_member ON group_members (tenant_id, member_id);

INSERT INTO groups (organization_id, tenant_id, item_key, archived, created_at, updated_at,
    display_name, description, mail, mail_enabled, security_enabled, group_types, visibility, created)
SELECT organization_id, tenant_id, lower(item_key), archived, created_at, updated_at,
    json_extract(document, '$.display_name'),
    json_extract(document, '$.description'),
    json_extract(document, '$.mail'),
    json_extract(document, '$.mail_enabled'),
    json_extract(document, '$.security_enabled'),
    COALESCE((SELECT group_concat(t.value, ',') FROM json_each(document, '$.group_types') t), ''),
    json_extract(document, '$.visibility'),
    json_extract(document, '$.created')
FROM inventory WHERE dataset = 'groups';

INSERT OR IGNORE INTO group_members (tenant_id, group_key, member_id, member_type, created_at)
SELECT i.tenant_id, lower(i.item_key), lower(json_extract(m.value, '$.id')), json_extract(m.value, '$.type'), i.updated_at
FROM inventory i, json_each(i.document, '$.members') m
WHERE i.dataset = 'groups' AND json_extract(m.value, '$.id') IS NOT NULL;

DELETE FROM inventory WHERE dataset = 'groups';
