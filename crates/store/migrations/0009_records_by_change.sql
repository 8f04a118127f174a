-- A tenant's records across its connections in the order the fleet stored
-- their changes, for the platform's "what changed since" reads
-- (GET /api/records): coalesce(deleted_at, synced_at), when the fleet
-- stored the record's current content or found it deleted. Unlike
-- changed_at, which prefers the provider's own time, this never lies behind
-- a reader's position for a record stored after the reader passed: a record
-- a provider changed last year, synced today, comes today.
--
-- An expression index rather than a stored column, so the table is not
-- rewritten. The build holds off the syncs' writes to `records` while it
-- runs (CREATE INDEX CONCURRENTLY cannot run inside the migrations'
-- transaction, and outside it deadlocks with processes waiting on the
-- migration lock); on a large table, build it by hand first with
-- CONCURRENTLY and this statement finds it.
CREATE INDEX IF NOT EXISTS records_tenant_stored_idx
    ON records (tenant, (coalesce(deleted_at, synced_at)), connection, stream, external_id);
