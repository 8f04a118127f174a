-- The state of connector-fleet: connections and their last published status,
-- sync runs, synced records and per-stream sync cursors.
--
-- Conventions:
-- - Every table is keyed by tenant first, and every query filters by it.
-- - Identifier columns use the "C" collation: byte order is what keyset
--   pagination compares, it is the cheapest to index, and it cannot change
--   under an operating-system locale upgrade (which would corrupt indexes).
-- - Identifier checks mirror the alphabets of fleet-events (`TenantId`,
--   `ConnectionId`, `ConnectorId`), so every stored row decodes.
-- - No column holds a credential: credentials live in Vault, and errors are
--   stored as the human-readable reasons the workers publish.

CREATE TABLE connections (
    tenant                text COLLATE "C" NOT NULL
                          CHECK (tenant ~ '^[A-Za-z0-9_-]{1,64}$'),
    id                    text COLLATE "C" NOT NULL
                          CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    connector             text COLLATE "C" NOT NULL
                          CHECK (connector ~ '^[a-z0-9_-]{1,64}$'),
    display_name          text NOT NULL
                          CHECK (char_length(display_name) BETWEEN 1 AND 200),
    -- The last ConnectionStatus applied, as published (`{"state": ..., ...}`),
    -- so dashboards can show its detail (progress, retry time, reason).
    status                jsonb NOT NULL,
    -- Derived from `status` so the two can never disagree; for filtering.
    state                 text COLLATE "C" NOT NULL
                          GENERATED ALWAYS AS (status ->> 'state') STORED
                          CHECK (state IN ('pending', 'validating', 'invalid', 'saving', 'syncing',
                                           'synced', 'retrying', 'failed', 'reauth_required',
                                           'disconnected')),
    -- From validation: the provider's id and name of the connected account.
    account_id            text,
    account_name          text,
    last_sync_at          timestamptz,
    -- Reason of the last invalid, retrying, failed or reauth_required status;
    -- cleared by the next synced one. Human-readable, never a secret.
    last_error            text,
    -- NULL: no scheduled syncs.
    sync_interval_seconds integer CHECK (sync_interval_seconds > 0),
    -- Records of the last successful sync.
    records_total         bigint NOT NULL DEFAULT 0 CHECK (records_total >= 0),
    -- (last_status_at, last_status_event) of the status applied last: a status
    -- event applies only if its (occurred_at, id) is greater.
    last_status_at        timestamptz,
    last_status_event     uuid,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    CONSTRAINT connections_account_check CHECK ((account_id IS NULL) = (account_name IS NULL)),
    CONSTRAINT connections_last_status_check
        CHECK ((last_status_at IS NULL) = (last_status_event IS NULL))
);

CREATE TABLE sync_runs (
    -- The correlation id of the sync's events.
    id          uuid PRIMARY KEY,
    tenant      text COLLATE "C" NOT NULL,
    connection  text COLLATE "C" NOT NULL,
    trigger     text COLLATE "C" NOT NULL CHECK (trigger IN ('manual', 'scheduled', 'setup')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    records     bigint NOT NULL DEFAULT 0 CHECK (records >= 0),
    pages       bigint NOT NULL DEFAULT 0 CHECK (pages >= 0),
    outcome     text COLLATE "C" NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'succeeded', 'failed')),
    -- Why a failed run failed. Human-readable, never a secret.
    error       text,
    FOREIGN KEY (tenant, connection) REFERENCES connections (tenant, id) ON DELETE CASCADE,
    CONSTRAINT sync_runs_finished_check CHECK ((outcome = 'running') = (finished_at IS NULL)),
    CONSTRAINT sync_runs_error_check CHECK ((outcome = 'failed') = (error IS NOT NULL))
);

-- The latest run of a connection; also serves the cascading delete.
CREATE INDEX sync_runs_connection_started_idx
    ON sync_runs (tenant, connection, started_at DESC, id DESC);

CREATE TABLE records (
    tenant      text COLLATE "C" NOT NULL,
    connection  text COLLATE "C" NOT NULL,
    stream      text COLLATE "C" NOT NULL CHECK (stream <> ''),
    external_id text COLLATE "C" NOT NULL CHECK (external_id <> ''),
    payload     jsonb NOT NULL,
    -- The provider's modification time, when it says one.
    updated_at  timestamptz,
    -- When this payload was stored; it moves only when the payload changes.
    synced_at   timestamptz NOT NULL DEFAULT now(),
    -- The listing order within a stream: the provider's time, else ours.
    changed_at  timestamptz NOT NULL GENERATED ALWAYS AS (coalesce(updated_at, synced_at)) STORED,
    -- One row per provider record: a re-sync upserts.
    PRIMARY KEY (tenant, connection, stream, external_id),
    FOREIGN KEY (tenant, connection) REFERENCES connections (tenant, id) ON DELETE CASCADE
);

-- Keyset pagination: ORDER BY stream, changed_at, external_id.
CREATE INDEX records_listing_idx
    ON records (tenant, connection, stream, changed_at, external_id);

CREATE TABLE sync_cursors (
    tenant     text COLLATE "C" NOT NULL,
    connection text COLLATE "C" NOT NULL,
    stream     text COLLATE "C" NOT NULL CHECK (stream <> ''),
    -- The connector's opaque position in the stream.
    cursor     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, connection, stream),
    FOREIGN KEY (tenant, connection) REFERENCES connections (tenant, id) ON DELETE CASCADE
);
