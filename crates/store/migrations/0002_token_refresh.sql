-- Bookkeeping of OAuth token refreshes, one row per connection.
--
-- The refresh itself is serialised across the fleet by a transaction-level
-- advisory lock on the connection (Store::lock_refresh); this table is
-- written inside that transaction. It holds no token: tokens live in Vault.
CREATE TABLE token_refreshes (
    tenant text COLLATE "C" NOT NULL,
    connection text COLLATE "C" NOT NULL,
    last_success_at timestamptz,
    last_failure_at timestamptz,
    -- Failures since the last success.
    failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    -- Distinct UTC days with a failure since the last success: a refresh
    -- token that fails on several days is dead, not unlucky.
    failure_days integer NOT NULL DEFAULT 0 CHECK (failure_days >= 0),
    -- Why the last refresh failed, in words safe to show; never a token.
    last_error text,
    PRIMARY KEY (tenant, connection),
    FOREIGN KEY (tenant, connection) REFERENCES connections (tenant, id) ON DELETE CASCADE,
    CONSTRAINT token_refreshes_failure_check CHECK ((failures = 0) = (last_error IS NULL))
);
