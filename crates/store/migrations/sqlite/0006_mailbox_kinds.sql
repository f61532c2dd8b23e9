-- What kind of mailbox a row is (user, shared, room, equipment) and, for a deleted one, when it was
-- deleted: deleted mailboxes stay apart from contacts and are listed on their own.

ALTER TABLE mailboxes ADD COLUMN recipient_type TEXT;
ALTER TABLE mailboxes ADD COLUMN deleted_date TEXT;
