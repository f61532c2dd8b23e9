-- The two indexes that find a contact not yet tied to a directory object (by mail or by user
-- name, when a synced user is matched to a hand-made or imported contact) cover only such
-- contacts. Synced contacts, nearly every row, no longer enter them: each page of a sync wrote
-- their random keys into both, touching a new index page per contact.
DROP INDEX contacts_unlinked;
DROP INDEX contacts_by_email;
CREATE INDEX contacts_unlinked ON contacts (organization_id, upn_key) WHERE object_id IS NULL;
CREATE INDEX contacts_by_email ON contacts (organization_id, email_key) WHERE object_id IS NULL;
-- Users deleted in Microsoft 365 and still restorable, found at each sync without reading
-- every contact of the tenant.
CREATE INDEX contacts_restorable ON contacts (tenant_id) WHERE restorable_until IS NOT NULL;
