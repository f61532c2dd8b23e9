-- Runs become jobs: queued until a worker claims one with a lease it renews while it runs. A
-- run is interrupted when its lease has expired, never because another command started.
ALTER TABLE sync_runs ADD COLUMN queued_at BIGINT;
-- 0: asked for by a person (jumps the queue); 1: due by the connection's schedule.
ALTER TABLE sync_runs ADD COLUMN priority BIGINT NOT NULL DEFAULT 1;
ALTER TABLE sync_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE sync_runs ADD COLUMN lease_until BIGINT;
ALTER TABLE sync_runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
-- What the run was asked to do beyond a plain sync (clean listing, confirmed archiving).
ALTER TABLE sync_runs ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
UPDATE sync_runs SET queued_at = started_at;
-- A run left running by a version without leases: its lease is long gone.
UPDATE sync_runs SET lease_until = 0 WHERE status = 'running';
CREATE INDEX sync_runs_queue ON sync_runs (status, priority, id);

-- When each connection syncs on its own, and how long each dataset's last fetch stays fresh.
ALTER TABLE connections ADD COLUMN schedule TEXT;
ALTER TABLE connections ADD COLUMN next_run_at BIGINT;
ALTER TABLE connections ADD COLUMN cache_lifetimes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN last_tested_at BIGINT;
ALTER TABLE connections ADD COLUMN last_test_passed BOOLEAN;

CREATE TABLE dataset_fetches (
    tenant_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, dataset)
);
