-- A tenant's records across its connections in change order, for the
-- platform's "what changed since" reads (GET /api/records).
CREATE INDEX records_tenant_changes_idx
    ON records (tenant, changed_at, connection, stream, external_id);
