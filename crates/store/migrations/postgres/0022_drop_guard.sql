-- The share of a tenant's contacts, in percent, one run may take away before it is held for a
-- person (`sync --accept-drop`); 100 never holds.
ALTER TABLE connections ADD COLUMN max_drop_percent BIGINT NOT NULL DEFAULT 20;
