-- Which process runs a sync: a run is taken for interrupted only when that process is gone,
-- never because another command started. `owner_started` tells a live process from a later
-- one that was given the same pid.
ALTER TABLE sync_runs ADD COLUMN owner_host TEXT;
ALTER TABLE sync_runs ADD COLUMN owner_pid BIGINT;
ALTER TABLE sync_runs ADD COLUMN owner_started TEXT;
CREATE INDEX sync_runs_running ON sync_runs (connection_id, status);
