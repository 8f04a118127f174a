-- Connections their user deleted. A status event still in flight for one
-- (a sync that was running) must not bring its row back, so the status
-- writer skips ids listed here.
CREATE TABLE deleted_connections (
    tenant     text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
