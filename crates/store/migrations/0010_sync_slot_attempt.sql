-- Which delivery of the running sync's request holds the slot.
--
-- A sync request's redelivery carries the same run id, and takes the slot
-- back at once so that a crashed worker's sync resumes without waiting for
-- the hold to lapse. A delivery that merely waited too long (past its ack
-- wait, so that the server gave the message to another worker) carries the
-- same run id too: the delivery count tells the two apart. A claim, renewal,
-- page or pass end of an earlier delivery than the one recorded here is
-- refused, so two deliveries never sync one connection at once.
ALTER TABLE connections ADD COLUMN sync_slot_attempt integer;
