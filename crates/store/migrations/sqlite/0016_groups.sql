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

-- A field of an unexpected JSON type becomes NULL (a member without a text id is left out)
-- rather than failing the upgrade or leaving a value no reader can decode.
INSERT INTO groups (organization_id, tenant_id, item_key, archived, created_at, updated_at,
    display_name, description, mail, mail_enabled, security_enabled, group_types, visibility, created)
SELECT organization_id, tenant_id, lower(item_key), archived, created_at, updated_at,
    CASE json_type(document, '$.display_name') WHEN 'text' THEN json_extract(document, '$.display_name') END,
    CASE json_type(document, '$.description') WHEN 'text' THEN json_extract(document, '$.description') END,
    CASE json_type(document, '$.mail') WHEN 'text' THEN json_extract(document, '$.mail') END,
    CASE json_type(document, '$.mail_enabled') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.security_enabled') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    COALESCE((SELECT group_concat(value, ',') FROM (
        SELECT DISTINCT t.value FROM json_each(document, '$.group_types') t
        WHERE json_type(document, '$.group_types') = 'array' AND t.type = 'text'
        ORDER BY t.value
    )), ''),
    CASE json_type(document, '$.visibility') WHEN 'text' THEN json_extract(document, '$.visibility') END,
    CASE json_type(document, '$.created') WHEN 'text' THEN json_extract(document, '$.created') END
FROM inventory WHERE dataset = 'groups';

-- Each element is read through its path in the document, never parsed on its own: an element
-- that is not an object then has no id instead of failing the upgrade as malformed JSON.
INSERT OR IGNORE INTO group_members (tenant_id, group_key, member_id, member_type, created_at)
SELECT i.tenant_id, lower(i.item_key), lower(json_extract(i.document, m.fullkey || '.id')),
    CASE json_type(i.document, m.fullkey || '.type') WHEN 'text' THEN json_extract(i.document, m.fullkey || '.type') END,
    i.updated_at
FROM inventory i, json_each(i.document, '$.members') m
WHERE i.dataset = 'groups' AND json_type(i.document, '$.members') = 'array'
    AND json_type(i.document, m.fullkey || '.id') = 'text';

DELETE FROM inventory WHERE dataset = 'groups';
