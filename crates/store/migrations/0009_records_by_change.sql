-- A tenant's records across its connections in the order the fleet stored
-- their changes, for the platform's "what changed since" reads
-- (GET /api/records): when the fleet stored the record's current content,
-- or found it deleted. Unlike changed_at, which prefers the provider's own
-- time, this never lies behind a reader's position for a record stored
-- after the reader passed: a record a provider changed last year, synced
-- today, comes today.
ALTER TABLE records
    ADD COLUMN stored_at timestamptz NOT NULL
        GENERATED ALWAYS AS (coalesce(deleted_at, synced_at)) STORED;
CREATE INDEX records_tenant_stored_idx
    ON records (tenant, stored_at, connection, stream, external_id);
