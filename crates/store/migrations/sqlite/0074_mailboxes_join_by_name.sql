-- A mailbox no longer stores the contact it belongs to: it is joined to the tenant's live contact
-- of the same user principal name when read. The stored link was written twice per user (by the
-- users step and again by the mailbox step, whichever came second) and went stale the moment a
-- user was renamed. SQLite cannot drop a column that holds a foreign key, so the table is rebuilt;
-- nothing refers to mailboxes.
CREATE TABLE mailboxes_by_name (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    upn_key TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
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
    recipient_type TEXT,
    deleted_date TEXT,
    UNIQUE (tenant_id, upn_key)
);
INSERT INTO mailboxes_by_name (id, tenant_id, upn_key, user_principal_name, display_name, is_deleted, storage_used_bytes, item_count,
    issue_warning_quota_bytes, prohibit_send_quota_bytes, prohibit_send_receive_quota_bytes, deleted_item_count, deleted_item_size_bytes,
    has_archive, created_date, last_activity_date, fingerprint, archived, created_at, updated_at, recipient_type, deleted_date)
SELECT id, tenant_id, upn_key, user_principal_name, display_name, is_deleted, storage_used_bytes, item_count,
    issue_warning_quota_bytes, prohibit_send_quota_bytes, prohibit_send_receive_quota_bytes, deleted_item_count, deleted_item_size_bytes,
    has_archive, created_date, last_activity_date, fingerprint, archived, created_at, updated_at, recipient_type, deleted_date
FROM mailboxes;
DROP TABLE mailboxes;
ALTER TABLE mailboxes_by_name RENAME TO mailboxes;
