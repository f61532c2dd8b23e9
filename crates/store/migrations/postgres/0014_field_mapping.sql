-- Who owns each contact field (a connection's field mapping, as JSON; '{}' is the default:
-- Microsoft 365 owns every synced field), and the custom fields of contacts.
--
-- Custom fields are rows rather than a JSON column on contacts: a sync or a hand edit writes one
-- field without reading and rewriting a document (so two writers of different fields never undo
-- each other), a contact with none costs nothing, and each field is read, exported and kept in
-- the history by its name.
ALTER TABLE connections ADD COLUMN field_mapping TEXT NOT NULL DEFAULT '{}';

CREATE TABLE contact_custom_fields (
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (contact_id, name)
);
