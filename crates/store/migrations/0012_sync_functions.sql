-- A sync's bookkeeping as functions, so that each step is one round trip
-- and one commit.
--
-- A function called by one statement runs in that statement's transaction,
-- and (being VOLATILE) takes a fresh snapshot for each statement in it: so
-- a lock taken by its first statement is held while the next one reads,
-- and a later statement sees what an earlier one wrote. Plain statements
-- cannot do either: every part of a statement sees the tables as they were
-- before it, and a lock taken by one part does not order what another part
-- reads. Before these functions, a claim was three round trips (the lock
-- with `BEGIN`, the claim, `COMMIT`), the tenant's lock held across all of
-- them, and a stream's last page and the end of its pass were two.
--
-- Parameters are positional ($1, $2, ...), as the statements they replace
-- were, and `#variable_conflict use_column` lets the result columns share
-- the names of the table columns they come from.

-- The pass a stream ended last, and what its end found: the reason it may
-- have missed records, and the records it marked deleted. A call repeated
-- after its commit (its answer lost with the connection) finds its pass
-- ended and reports that end again, instead of opening the pass anew
-- without its gap, which would let a full pass sweep records it never read.
ALTER TABLE sync_streams
    ADD COLUMN ended_pass uuid,
    ADD COLUMN ended_gap text,
    ADD COLUMN ended_swept bigint;

-- Which delivery of a run's request completed it (NULL when it was ended
-- otherwise, or completed without a hold on the sync slot): a completion
-- repeated by that delivery is its own retry, one by another delivery
-- comes too late and is refused.
ALTER TABLE sync_runs ADD COLUMN finished_attempt integer;

-- Claims the connection's sync slot for a run, when the tenant runs fewer
-- than $7 other syncs, under the tenant's advisory lock ($9), so that
-- concurrent claims across the fleet cannot exceed the maximum together.
-- The decision reads the rows as they are once the lock is held, and its
-- times are taken then (not at the statement's start, before the wait).
-- A granted claim records the run's start and returns where each of the
-- connection's streams stands. No row: the connection does not exist.
--
-- $1 tenant, $2 connection, $3 run, $4 hold (seconds), $5 request,
-- $6 attempt, $7 most running syncs of the tenant, $8 trigger, $9 lock key.
CREATE FUNCTION sync_claim(text, text, uuid, double precision, uuid, integer, bigint, text,
                           bigint)
RETURNS TABLE (sync_slot_run uuid, sync_slot_request uuid, sync_slot_state text,
               sync_slot_attempt integer, vault_staged bigint, vault_version bigint,
               held boolean, running bigint, granted boolean,
               streams text[], high_waters timestamptz[], last_fulls timestamptz[],
               passes uuid[], pass_fulls boolean[], pass_starts timestamptz[],
               cursors jsonb[])
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    locked_at timestamptz;
    claim record;
BEGIN
    PERFORM pg_advisory_xact_lock($9);
    locked_at := clock_timestamp();
    WITH slot AS (
        SELECT c.sync_slot_run, c.sync_slot_request, c.sync_slot_state::text,
               c.sync_slot_attempt, c.vault_staged, c.vault_version,
               coalesce(c.sync_slot_until > locked_at, false) AS held,
               (SELECT count(*) FROM connections o
                WHERE o.tenant = $1 AND o.id <> $2 AND o.sync_slot_state = 'running'
                  AND o.sync_slot_until > locked_at) AS running
        FROM connections c WHERE c.tenant = $1 AND c.id = $2),
    decision AS (
        SELECT s.*,
               NOT (s.held AND coalesce(s.sync_slot_run = $3
                                        AND s.sync_slot_state = 'running'
                                        AND s.sync_slot_attempt > $6, false))
               AND NOT (s.held AND NOT coalesce(s.sync_slot_run = $3, false)
                               AND NOT coalesce(s.sync_slot_state = 'queued'
                                                AND s.sync_slot_request = $5, false))
               AND s.running < $7 AS granted
        FROM slot s),
    taken AS (
        UPDATE connections
        SET sync_slot_run = $3, sync_slot_request = $5, sync_slot_state = 'running',
            sync_slot_until = locked_at + make_interval(secs => $4),
            sync_slot_attempt = $6
        WHERE tenant = $1 AND id = $2 AND (SELECT d.granted FROM decision d)),
    started AS (
        INSERT INTO sync_runs (id, tenant, connection, trigger, started_at)
        SELECT $3, $1, $2, $8, locked_at
        WHERE (SELECT d.granted FROM decision d)
        ON CONFLICT (id) DO NOTHING)
    SELECT d.* INTO claim FROM decision d;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Where the streams stand, read by a statement of its own: its snapshot
    -- is taken after the claim's update, which waited for any page still
    -- committing under an earlier delivery's hold, so a pass that page
    -- ended is not resumed.
    RETURN QUERY
    SELECT claim.sync_slot_run, claim.sync_slot_request, claim.sync_slot_state,
           claim.sync_slot_attempt, claim.vault_staged, claim.vault_version, claim.held,
           claim.running, claim.granted,
           array_agg(s.stream::text), array_agg(s.high_water), array_agg(s.last_full_at),
           array_agg(s.pass), array_agg(s.pass_full), array_agg(s.pass_started_at),
           array_agg(s.cursor)
    FROM sync_streams s
    WHERE s.tenant = $1 AND s.connection = $2 AND claim.granted;
END
$$;

-- Takes the transaction's lock on one stream of a connection: the page
-- writes of a stream hold it until they commit, so a write retried while its
-- first attempt still runs (its answer lost with the connection) waits for
-- it and then sees what it wrote. Two streams whose keys collide share the
-- waits, nothing else.
CREATE FUNCTION sync_stream_lock(text, text, text) RETURNS void
LANGUAGE sql VOLATILE
AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('sync-stream:' || $1 || '/' || $2 || '/' || $3, 0));
$$;

-- Whether the hold ($3 run, $4 attempt) still holds the sync slot of
-- connection $2 of tenant $1, or there is no hold ($3 NULL). A hold that
-- holds takes a share lock on the connection's row until the transaction
-- ends, so a takeover (which updates the row) waits until the writes
-- checked against it are in.
CREATE FUNCTION sync_lease_holds(text, text, uuid, integer) RETURNS boolean
LANGUAGE sql VOLATILE
AS $$
    SELECT $3 IS NULL OR EXISTS (
        SELECT 1 FROM connections
        WHERE tenant = $1 AND id = $2 AND sync_slot_run = $3 AND sync_slot_attempt = $4
        FOR SHARE);
$$;

-- Stores a page of a stream's records and the stream's position after it,
-- when the lease ($14, $15) still holds the connection's sync slot (or
-- there is no lease); `held` is false, and nothing written, otherwise.
--
-- The removals, the upserts, the connection's `records_total` and the
-- stream's position are one statement. Its first part checks the lease
-- (sync_lease_holds), so a takeover waits until the page is in; every other
-- part is empty when it does not hold. `DISTINCT ON`
-- keeps the last of repeated external ids (a row cannot be updated twice by
-- one statement), and the insert's ordering makes concurrent pages of one
-- stream lock rows in the same order, so they cannot deadlock. Every part
-- sees the tables as they were before the statement, so `prior` tells new,
-- revived and changed records apart.
--
-- $1 tenant, $2 connection, $3 stream, $4 external ids, $5 payloads,
-- $6 provider modification times, $7 the full pass that saw them (NULL for
-- an incremental one), $8 external ids removed, $9 pass, $10 whether it is
-- full, $11 its start, $12 the cursor after the page (NULL on the last),
-- $13 the page's gap, $14 lease run, $15 lease attempt.
CREATE FUNCTION sync_write_page(text, text, text, text[], jsonb[], timestamptz[], uuid,
                                text[], uuid, boolean, timestamptz, jsonb, text, uuid,
                                integer)
RETURNS TABLE (held boolean, added bigint, updated bigint, deleted bigint)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    PERFORM sync_stream_lock($1, $2, $3);
    RETURN QUERY
    WITH lease AS (SELECT sync_lease_holds($1, $2, $14, $15) AS ok),
    page AS (
        SELECT DISTINCT ON (p.external_id) p.external_id, p.payload, p.updated_at
        FROM unnest($4, $5, $6) WITH ORDINALITY AS p (external_id, payload, updated_at, position)
        WHERE (SELECT ok FROM lease)
        ORDER BY p.external_id, p.position DESC),
    removed AS (
        UPDATE records SET deleted_at = now()
        WHERE tenant = $1 AND connection = $2 AND stream = $3
          AND external_id = ANY($8) AND external_id <> ALL($4)
          AND deleted_at IS NULL AND (SELECT ok FROM lease)
        RETURNING 1),
    prior AS (
        SELECT r.external_id, r.deleted_at IS NOT NULL AS was_deleted,
               r.payload IS DISTINCT FROM page.payload AS changed
        FROM records r JOIN page ON r.external_id = page.external_id
        WHERE r.tenant = $1 AND r.connection = $2 AND r.stream = $3),
    written AS (
        INSERT INTO records AS r
            (tenant, connection, stream, external_id, payload, updated_at, seen_pass)
        SELECT $1, $2, $3, page.external_id, page.payload, page.updated_at, $7
        FROM page ORDER BY page.external_id
        ON CONFLICT (tenant, connection, stream, external_id) DO UPDATE
        SET payload = EXCLUDED.payload, updated_at = EXCLUDED.updated_at,
            synced_at = CASE WHEN r.payload IS DISTINCT FROM EXCLUDED.payload
                               OR r.deleted_at IS NOT NULL
                             THEN now() ELSE r.synced_at END,
            deleted_at = NULL,
            seen_pass = coalesce(EXCLUDED.seen_pass, r.seen_pass)
        WHERE r.payload IS DISTINCT FROM EXCLUDED.payload OR r.deleted_at IS NOT NULL
           OR (EXCLUDED.seen_pass IS NOT NULL
               AND r.seen_pass IS DISTINCT FROM EXCLUDED.seen_pass)
        RETURNING 1),
    counts AS (
        SELECT count(*) FILTER (WHERE prior.external_id IS NULL OR prior.was_deleted)
                   AS added,
               count(*) FILTER (WHERE NOT prior.was_deleted AND prior.changed)
                   AS updated
        FROM page LEFT JOIN prior ON prior.external_id = page.external_id),
    total AS (
        UPDATE connections
        SET records_total = greatest(records_total - (SELECT count(*) FROM removed), 0)
                            + (SELECT c.added FROM counts c)
        WHERE tenant = $1 AND id = $2
          AND (EXISTS (SELECT 1 FROM removed)
               OR ((SELECT c.added FROM counts c) > 0
                   AND EXISTS (SELECT 1 FROM written)))),
    position AS (
        INSERT INTO sync_streams (tenant, connection, stream, pass, pass_full,
                                  pass_started_at, cursor, pass_gap)
        SELECT $1, $2, $3, $9, $10, $11, $12, $13 WHERE (SELECT ok FROM lease)
        ON CONFLICT (tenant, connection, stream) DO UPDATE
        SET pass = EXCLUDED.pass, pass_full = EXCLUDED.pass_full,
            pass_started_at = EXCLUDED.pass_started_at, cursor = EXCLUDED.cursor,
            pass_gap = CASE WHEN sync_streams.pass = EXCLUDED.pass
                            THEN coalesce(sync_streams.pass_gap, EXCLUDED.pass_gap)
                            ELSE EXCLUDED.pass_gap END,
            updated_at = now())
    SELECT (SELECT ok FROM lease), c.added, c.updated, (SELECT count(*) FROM removed)
    FROM counts c;
END
$$;

-- Ends a stream's pass $4, when the lease ($8, $9) still holds the
-- connection's sync slot (or there is no lease): forgets its position and,
-- when no page of it reported a gap, moves the stream's high-water mark to
-- the pass's start ($5). Such a complete full pass ($6) of a stream that
-- reconciles ($7) also marks every live record it did not see deleted, and
-- takes them off the connection's `records_total`. Returns the records it
-- marked deleted, the stream's live records after it, and the pass's gap.
-- Called again for a pass it ended, it changes nothing and returns what
-- that end marked deleted and its gap again.
CREATE FUNCTION sync_end_pass(text, text, text, uuid, timestamptz, boolean, boolean, uuid,
                              integer)
RETURNS TABLE (held boolean, deleted bigint, live bigint, gap text)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH lease AS (SELECT sync_lease_holds($1, $2, $8, $9) AS ok),
    ending AS (
        SELECT pass_gap FROM sync_streams
        WHERE tenant = $1 AND connection = $2 AND stream = $3 AND pass = $4
          AND (SELECT ok FROM lease)
        FOR UPDATE),
    ended_before AS (
        SELECT ended_gap, ended_swept FROM sync_streams
        WHERE tenant = $1 AND connection = $2 AND stream = $3 AND ended_pass = $4
          AND (SELECT ok FROM lease) AND NOT EXISTS (SELECT 1 FROM ending)),
    swept AS (
        UPDATE records SET deleted_at = now()
        WHERE $6 AND $7 AND tenant = $1 AND connection = $2 AND stream = $3
          AND deleted_at IS NULL AND seen_pass IS DISTINCT FROM $4
          AND EXISTS (SELECT 1 FROM ending WHERE pass_gap IS NULL)
        RETURNING 1),
    ended AS (
        UPDATE sync_streams s
        SET high_water = CASE WHEN e.pass_gap IS NULL THEN $5 ELSE s.high_water END,
            last_full_at = CASE WHEN e.pass_gap IS NULL AND $6 THEN $5
                                ELSE s.last_full_at END,
            pass = NULL, pass_full = NULL, pass_started_at = NULL, cursor = NULL,
            pass_gap = NULL, ended_pass = $4, ended_gap = e.pass_gap,
            ended_swept = (SELECT count(*) FROM swept), updated_at = now()
        FROM ending e
        WHERE s.tenant = $1 AND s.connection = $2 AND s.stream = $3 AND s.pass = $4),
    counted AS (
        UPDATE connections
        SET records_total = greatest(records_total - (SELECT count(*) FROM swept), 0)
        WHERE tenant = $1 AND id = $2 AND EXISTS (SELECT 1 FROM swept))
    SELECT (SELECT ok FROM lease),
           (SELECT count(*) FROM swept) + coalesce((SELECT b.ended_swept FROM ended_before b), 0),
           (SELECT count(*) FROM records
            WHERE tenant = $1 AND connection = $2 AND stream = $3
              AND deleted_at IS NULL) - (SELECT count(*) FROM swept),
           coalesce((SELECT e.pass_gap::text FROM ending e),
                    (SELECT b.ended_gap::text FROM ended_before b));
END
$$;

-- A pass's last page and the pass's end in one transaction: sync_write_page
-- with $1..$15, then, when the lease still held, sync_end_pass of the
-- page's pass, reconciling when $16. The end sees what the page wrote.
-- Called again after it committed (a retry whose first answer was lost),
-- it finds the pass ended: it stores nothing (its page's counts are 0 then)
-- and reports the end as sync_end_pass does for a pass it ended.
CREATE FUNCTION sync_write_last_page(text, text, text, text[], jsonb[], timestamptz[], uuid,
                                     text[], uuid, boolean, timestamptz, jsonb, text, uuid,
                                     integer, boolean)
RETURNS TABLE (held boolean, added bigint, updated bigint, deleted bigint,
               swept bigint, live bigint, gap text)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    page record;
    ended record;
BEGIN
    -- Taken before the check below, so that a retry that starts while its
    -- first call still runs waits for it, and then sees the pass ended.
    PERFORM sync_stream_lock($1, $2, $3);
    IF EXISTS (SELECT 1 FROM sync_streams s
               WHERE s.tenant = $1 AND s.connection = $2 AND s.stream = $3
                 AND s.ended_pass = $9 AND s.pass IS DISTINCT FROM $9) THEN
        SELECT * INTO STRICT ended FROM sync_end_pass($1, $2, $3, $9, $11, $10, $16, $14, $15);
        RETURN QUERY SELECT ended.held, 0::bigint, 0::bigint, 0::bigint, ended.deleted,
                            ended.live, ended.gap;
        RETURN;
    END IF;
    SELECT * INTO STRICT page
    FROM sync_write_page($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15);
    IF NOT page.held THEN
        RETURN QUERY SELECT false, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
                            NULL::text;
        RETURN;
    END IF;
    SELECT * INTO STRICT ended FROM sync_end_pass($1, $2, $3, $9, $11, $10, $16, $14, $15);
    RETURN QUERY SELECT ended.held, page.added, page.updated, page.deleted, ended.deleted,
                        ended.live, ended.gap;
END
$$;
