-- Webhook endpoints and the delivery log.
--
-- An endpoint is a tenant's URL that receives connection state changes and
-- sync completions. Its signing secret is derived from the operator's
-- webhook key and the endpoint's id, never stored.
--
-- A delivery is one event for one endpoint. The webhook worker files them
-- in the order of the status stream (one at a time), so `id` orders the
-- events of a connection; the delivery loop sends only the oldest pending
-- delivery of each endpoint and connection, so a connection's events
-- arrive in order. `claimed_until` is a worker's lease on a delivery being
-- sent, so two worker processes never send it at once.
CREATE TABLE webhook_endpoints (
    id uuid PRIMARY KEY,
    tenant text NOT NULL,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (tenant, created_at);

CREATE TABLE webhook_deliveries (
    id bigserial PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    tenant text NOT NULL,
    connection text NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    payload text NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    last_status integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_pending
    ON webhook_deliveries (endpoint_id, connection, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, id DESC);
