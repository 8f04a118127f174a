-- Complete, incremental and deletion-aware syncs.
--
-- A sync reads each stream in passes. A full pass reads everything the
-- provider has and marks every record it sees with the pass's id; at its end
-- a record not seen is marked deleted. An incremental pass reads what changed
-- since the last complete pass began. `sync_streams` keeps, per stream, where
-- the pass in progress stands and when the last complete ones began; it
-- replaces `sync_cursors`, whose positions (page numbers) the new passes do
-- not read: a pass in progress when this migration runs starts again.

-- Records removed at the provider stay, marked with when the sync noticed, so
-- that `updated_since` readers see the removal as a change.
ALTER TABLE records
    ADD COLUMN deleted_at timestamptz,
    -- The last full pass that saw the record.
    ADD COLUMN seen_pass  uuid;

-- The listing order: a removal is the record's latest change.
ALTER TABLE records DROP COLUMN changed_at;
ALTER TABLE records
    ADD COLUMN changed_at timestamptz NOT NULL
        GENERATED ALWAYS AS (coalesce(deleted_at, updated_at, synced_at)) STORED;
CREATE INDEX records_listing_idx
    ON records (tenant, connection, stream, changed_at, external_id);
-- Live records per stream, for counts and the end of a full pass.
CREATE INDEX records_live_idx
    ON records (tenant, connection, stream) WHERE deleted_at IS NULL;

DROP TABLE sync_cursors;

CREATE TABLE sync_streams (
    tenant          text COLLATE "C" NOT NULL,
    connection      text COLLATE "C" NOT NULL,
    stream          text COLLATE "C" NOT NULL CHECK (stream <> ''),
    -- When the last complete pass (full or incremental) began: where the
    -- next incremental pass reads from.
    high_water      timestamptz,
    -- When the last complete full pass began.
    last_full_at    timestamptz,
    -- The pass in progress, if any: its id, kind, start and position, and
    -- the first reason a page gave why the pass may have missed records.
    pass            uuid,
    pass_full       boolean,
    pass_started_at timestamptz,
    cursor          jsonb,
    pass_gap        text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, connection, stream),
    FOREIGN KEY (tenant, connection) REFERENCES connections (tenant, id) ON DELETE CASCADE,
    CONSTRAINT sync_streams_pass_check
        CHECK ((pass IS NULL) = (pass_full IS NULL) AND (pass IS NULL) = (pass_started_at IS NULL)
               AND (pass IS NOT NULL OR pass_gap IS NULL))
);

-- What a run did, and runs that finished without a complete picture.
ALTER TABLE sync_runs
    ADD COLUMN added   bigint NOT NULL DEFAULT 0 CHECK (added >= 0),
    ADD COLUMN updated bigint NOT NULL DEFAULT 0 CHECK (updated >= 0),
    ADD COLUMN deleted bigint NOT NULL DEFAULT 0 CHECK (deleted >= 0);
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_outcome_check;
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_error_check;
ALTER TABLE sync_runs
    ADD CONSTRAINT sync_runs_outcome_check
        CHECK (outcome IN ('running', 'succeeded', 'partial', 'failed')),
    -- `error`: why a run failed, or why a partial one is not complete.
    ADD CONSTRAINT sync_runs_error_check
        CHECK ((outcome IN ('failed', 'partial')) = (error IS NOT NULL));

ALTER TABLE connections DROP CONSTRAINT connections_state_check;
ALTER TABLE connections
    ADD CONSTRAINT connections_state_check
        CHECK (state IN ('pending', 'validating', 'invalid', 'saving', 'syncing', 'synced',
                         'partial', 'retrying', 'failed', 'reauth_required', 'disconnected'));

-- records_total counts live records only.
UPDATE connections c
SET records_total = (SELECT count(*) FROM records r
                     WHERE r.tenant = c.tenant AND r.connection = c.id AND r.deleted_at IS NULL);
