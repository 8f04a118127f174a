-- One sync per connection at a time, and a bounded number per tenant.
--
-- A connection's sync slot is either free, held by a queued request (the
-- gateway's "Sync now", until a worker picks it up) or held by a running
-- sync. A hold lasts until `sync_slot_until`: a running sync renews it as it
-- goes, so a crashed worker's hold lapses on its own. A second request while
-- the slot is held is coalesced into the holder, and a tenant's running
-- holds are counted to cap its concurrent syncs.
ALTER TABLE connections
    ADD COLUMN sync_slot_run   uuid,
    ADD COLUMN sync_slot_state text COLLATE "C"
        CHECK (sync_slot_state IN ('queued', 'running')),
    ADD COLUMN sync_slot_until timestamptz,
    ADD CONSTRAINT connections_sync_slot_check
        CHECK ((sync_slot_run IS NULL) = (sync_slot_state IS NULL)
               AND (sync_slot_run IS NULL) = (sync_slot_until IS NULL));

-- A tenant's running syncs, counted on every claim.
CREATE INDEX connections_running_syncs_idx
    ON connections (tenant) WHERE sync_slot_state = 'running';
