-- A connection is `direct` (its app reads its own tenant) or `partner` (a partner's multi-tenant
-- app reads each customer tenant its GDAP relationships or contracts list).
ALTER TABLE connections ADD COLUMN mode TEXT NOT NULL DEFAULT 'direct' CHECK (mode IN ('direct', 'partner'));

-- The tenant each step of a run belongs to (a partner run has steps for many), with its name as
-- the run knew it.
ALTER TABLE sync_steps ADD COLUMN tenant_id TEXT;
ALTER TABLE sync_steps ADD COLUMN tenant_name TEXT;

-- Every run before this one was of a direct connection: its steps are its connection's tenant's.
UPDATE sync_steps SET tenant_id = (
    SELECT c.tenant_id FROM sync_runs r JOIN connections c ON c.id = r.connection_id WHERE r.id = sync_steps.run_id
);
