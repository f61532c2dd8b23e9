-- Usage reports and sign-in activity leave the JSON inventory for tables of their own, so that
-- a resync compares columns, not documents.
--
-- Usage keeps one row per user per report (`activity:`, `apps:`, `email:` then the UPN), not one
-- row per user: each report is read and written on its own, so a report that fails part way or
-- comes with concealed names touches only rows of its own kind and never blanks the columns
-- another report filled. A row fills its own report's columns and leaves the others empty.
-- Sign-in activity keeps one row per user, keyed by object id.

CREATE TABLE usage (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    report TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
    is_deleted BOOLEAN,
    last_activity TEXT,
    exchange_last_activity TEXT,
    onedrive_last_activity TEXT,
    sharepoint_last_activity TEXT,
    teams_last_activity TEXT,
    yammer_last_activity TEXT,
    skype_last_activity TEXT,
    has_exchange_license BOOLEAN,
    has_onedrive_license BOOLEAN,
    has_sharepoint_license BOOLEAN,
    has_teams_license BOOLEAN,
    assigned_products TEXT,
    last_activation TEXT,
    windows BOOLEAN,
    mac BOOLEAN,
    mobile BOOLEAN,
    web BOOLEAN,
    outlook BOOLEAN,
    word BOOLEAN,
    excel BOOLEAN,
    powerpoint BOOLEAN,
    onenote BOOLEAN,
    teams BOOLEAN,
    send_count BIGINT,
    receive_count BIGINT,
    read_count BIGINT,
    meeting_created_count BIGINT,
    meeting_interacted_count BIGINT,
    UNIQUE (tenant_id, item_key)
);
-- Contacts find their usage by UPN, as the reports name people.
CREATE INDEX usage_by_user ON usage (tenant_id, user_principal_name);

CREATE TABLE sign_in_activity (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    tenant_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    user_principal_name TEXT,
    last_sign_in TEXT,
    last_non_interactive_sign_in TEXT,
    last_successful_sign_in TEXT,
    UNIQUE (tenant_id, item_key)
);
-- The key is the object id (a contact's own); a contact known only by name is found by UPN.
CREATE INDEX sign_in_activity_by_user ON sign_in_activity (tenant_id, user_principal_name);

-- What an existing store kept as documents moves over, then leaves the inventory. A field of an
-- unexpected JSON type becomes NULL rather than failing the upgrade or leaving a value in a
-- column that no reader can decode.
INSERT INTO usage (
    organization_id, tenant_id, item_key, archived, created_at, updated_at, report,
    user_principal_name, is_deleted, last_activity, exchange_last_activity,
    onedrive_last_activity, sharepoint_last_activity, teams_last_activity, yammer_last_activity,
    skype_last_activity, has_exchange_license, has_onedrive_license, has_sharepoint_license,
    has_teams_license, assigned_products, last_activation, windows, mac, mobile, web, outlook,
    word, excel, powerpoint, onenote, teams, send_count, receive_count, read_count,
    meeting_created_count, meeting_interacted_count
)
SELECT
    organization_id, tenant_id, item_key, archived, created_at, updated_at,
    CASE json_type(document, '$.kind') WHEN 'text' THEN json_extract(document, '$.kind') END,
    CASE json_type(document, '$.user_principal_name') WHEN 'text' THEN json_extract(document, '$.user_principal_name') END,
    CASE json_type(document, '$.is_deleted') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    -- The activity report's `last_activity` was an object of workloads; the others' a day.
    CASE json_type(document, '$.last_activity') WHEN 'text' THEN json_extract(document, '$.last_activity') END,
    CASE json_type(document, '$.last_activity.exchange') WHEN 'text' THEN json_extract(document, '$.last_activity.exchange') END,
    CASE json_type(document, '$.last_activity.onedrive') WHEN 'text' THEN json_extract(document, '$.last_activity.onedrive') END,
    CASE json_type(document, '$.last_activity.sharepoint') WHEN 'text' THEN json_extract(document, '$.last_activity.sharepoint') END,
    CASE json_type(document, '$.last_activity.teams') WHEN 'text' THEN json_extract(document, '$.last_activity.teams') END,
    CASE json_type(document, '$.last_activity.yammer') WHEN 'text' THEN json_extract(document, '$.last_activity.yammer') END,
    CASE json_type(document, '$.last_activity.skype_for_business') WHEN 'text' THEN json_extract(document, '$.last_activity.skype_for_business') END,
    CASE json_type(document, '$.has_license.exchange') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.has_license.onedrive') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.has_license.sharepoint') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.has_license.teams') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    (SELECT group_concat(p.value, '+') FROM (
        SELECT value FROM json_each(inventory.document, '$.assigned_products')
        WHERE json_type(inventory.document, '$.assigned_products') = 'array' AND type = 'text' ORDER BY value
    ) AS p),
    CASE json_type(document, '$.last_activation') WHEN 'text' THEN json_extract(document, '$.last_activation') END,
    CASE json_type(document, '$.platforms.windows') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.platforms.mac') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.platforms.mobile') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.platforms.web') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.apps.outlook') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.apps.word') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.apps.excel') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.apps.powerpoint') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.apps.onenote') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.apps.teams') WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END,
    CASE json_type(document, '$.send_count') WHEN 'integer' THEN json_extract(document, '$.send_count') END,
    CASE json_type(document, '$.receive_count') WHEN 'integer' THEN json_extract(document, '$.receive_count') END,
    CASE json_type(document, '$.read_count') WHEN 'integer' THEN json_extract(document, '$.read_count') END,
    CASE json_type(document, '$.meeting_created_count') WHEN 'integer' THEN json_extract(document, '$.meeting_created_count') END,
    CASE json_type(document, '$.meeting_interacted_count') WHEN 'integer' THEN json_extract(document, '$.meeting_interacted_count') END
FROM inventory
WHERE dataset = 'usage'
    AND json_valid(document)
    AND json_type(document, '$.kind') = 'text'
    AND json_extract(document, '$.kind') IN ('activity', 'apps', 'email')
    AND json_type(document, '$.user_principal_name') = 'text';

-- Items were keyed by UPN: a user renamed between syncs may have two, the live and latest wins.
INSERT INTO sign_in_activity (
    organization_id, tenant_id, item_key, archived, created_at, updated_at,
    user_principal_name, last_sign_in, last_non_interactive_sign_in, last_successful_sign_in
)
SELECT organization_id, tenant_id, object_id, archived, created_at, updated_at,
    user_principal_name, last_sign_in, last_non_interactive_sign_in, last_successful_sign_in
FROM (
    SELECT organization_id, tenant_id, archived, created_at, updated_at,
        lower(json_extract(document, '$.user_id')) AS object_id,
        json_extract(document, '$.user_principal_name') AS user_principal_name,
        json_extract(document, '$.last_sign_in') AS last_sign_in,
        json_extract(document, '$.last_non_interactive_sign_in') AS last_non_interactive_sign_in,
        json_extract(document, '$.last_successful_sign_in') AS last_successful_sign_in,
        row_number() OVER (
            PARTITION BY tenant_id, lower(json_extract(document, '$.user_id'))
            ORDER BY archived, updated_at DESC, id DESC
        ) AS rank
    FROM inventory
    WHERE dataset = 'sign_in_activity'
        AND json_valid(document)
        AND json_extract(document, '$.user_id') IS NOT NULL
) AS latest
WHERE rank = 1;

DELETE FROM inventory WHERE dataset IN ('usage', 'sign_in_activity');
