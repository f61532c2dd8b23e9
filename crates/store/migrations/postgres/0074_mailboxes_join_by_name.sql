-- A mailbox no longer stores the contact it belongs to: it is joined to the tenant's live contact
-- of the same user principal name when read. The stored link was written twice per user (by the
-- users step and again by the mailbox step, whichever came second) and went stale the moment a
-- user was renamed.
DROP INDEX mailboxes_by_contact;
ALTER TABLE mailboxes DROP COLUMN contact_id;
