-- The sync request that holds a connection's sync slot, beside the run.
--
-- A queued "Sync now" is renamed to its run once published, and a request a
-- worker defers past its last delivery is published again as a new message,
-- whose run id differs (run ids derive from the stream sequence). The
-- request's event id stays the same through both, so the slot recognises
-- its own request by it and never coalesces a request into itself.
ALTER TABLE connections ADD COLUMN sync_slot_request uuid;
