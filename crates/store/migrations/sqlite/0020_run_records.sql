-- The outcome of every record a run changed or could not write: created, updated (the fields,
-- old and new), archived or marked deleted (the reason), skipped by a filter (the rule), held for
-- review, failed (Graph's error code and request-id). Unchanged records are only counted, in
-- their step. Written in the transaction of the plan that implies them; the records of a
-- connection's older runs are deleted as its runs finish.
CREATE TABLE run_records (
    id INTEGER PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    step_id BIGINT,
    tenant_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    -- The record's key in Microsoft 365: a directory object id, or what stood for it.
    record_key TEXT NOT NULL,
    -- How a person knows it: a user principal name, or a name.
    label TEXT,
    outcome TEXT NOT NULL,
    -- JSON: the fields changed, the reason, or the error.
    detail TEXT NOT NULL DEFAULT '{}',
    contact_id BIGINT,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX run_records_by_outcome ON run_records (run_id, outcome);
