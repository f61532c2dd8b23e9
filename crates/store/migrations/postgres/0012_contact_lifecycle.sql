-- A user deleted in Microsoft 365 sits in the recycle bin for 30 days: the contact is marked
-- deleted, restorable until then, and archived only after. A step counts those it marked.
ALTER TABLE contacts ADD COLUMN deleted_at BIGINT;
ALTER TABLE contacts ADD COLUMN restorable_until BIGINT;
ALTER TABLE sync_steps ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;
