-- How well each connection's provider calls go, between and across syncs.
--
-- One row per connection, created with it (by trigger), so every writer can
-- update it without first asking whether it exists. Nothing here is a
-- secret: token expiry is a time, errors are the texts statuses show.
CREATE TABLE connection_health (
    tenant               text COLLATE "C" NOT NULL,
    connection           text COLLATE "C" NOT NULL,
    -- The last time the provider answered a call that used the
    -- connection's credentials: a validation, a sync run that ended synced
    -- or partial, a health check.
    last_ok_at           timestamptz,
    -- Failed sync runs and health checks since the last success.
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_failure_at      timestamptz,
    last_failure         text,
    -- When the last health check started (a claim sets it, so the
    -- connection is not due again for an interval), and how the last one
    -- that asked the provider ended.
    last_check_at        timestamptz,
    last_check_result    text COLLATE "C"
                         CHECK (last_check_result IN ('ok', 'failed', 'reauth_required')),
    -- When the access token expires, as last read by a worker.
    access_expires_at    timestamptz,
    -- Since when the failures in a row reached the degraded threshold;
    -- NULL while healthy. Set once per episode, so the degraded event is
    -- emitted once.
    degraded_since       timestamptz,
    PRIMARY KEY (tenant, connection),
    FOREIGN KEY (tenant, connection) REFERENCES connections (tenant, id) ON DELETE CASCADE,
    CONSTRAINT connection_health_failure_check
        CHECK ((last_failure_at IS NULL) = (last_failure IS NULL))
);

-- A connection's row is there from its creation on; a connection saved
-- after a successful validation starts with that success.
CREATE FUNCTION connection_health_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO connection_health (tenant, connection, last_ok_at)
    VALUES (NEW.tenant, NEW.id, CASE WHEN NEW.account_id IS NULL THEN NULL ELSE now() END)
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;

CREATE TRIGGER connections_health_row AFTER INSERT ON connections
    FOR EACH ROW EXECUTE FUNCTION connection_health_row();

INSERT INTO connection_health (tenant, connection, last_ok_at)
SELECT tenant, id, last_sync_at FROM connections
ON CONFLICT DO NOTHING;
