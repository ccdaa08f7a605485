-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- The log's watermark: readers in commit order (the relay, rebuilds) read
-- only events whose transaction id is below it, so that a later read can
-- never find an event that belongs before one already returned.
--
-- It used to be the snapshot's xmin, which waits for every transaction in
-- the cluster holding an id: under load mostly read-model transactions
-- (projector batches, 20-30 ms old on average), which never append
-- (docs/BENCHMARKS.md, "Who holds the relay's watermark back"). This waits
-- only for transactions that can append. That rests on the invariant the
-- log's order already rests on (eventstore.AppendScopeSQL, LockStreamsTx,
-- events_group_lock): every transaction that appends takes an append lock,
-- advisory (69, hashtext(stream)), before it has an id, and holds it until
-- it ends. So, with S the snapshot taken first:
--   * a transaction whose id is below S's xmax and that was not in progress
--     at S has ended, and a later snapshot sees it;
--   * one in progress at S that can append held an append lock then; if it
--     still holds it when pg_locks is read, its backend shows its id when
--     pg_stat_activity is read next (or it has ended by then, and is seen),
--     and the watermark is at most that id;
--   * one without an id at S gets one at or above S's xmax.
-- (PostgreSQL ends a transaction in the proc array, which is what makes its
-- outcome visible to new snapshots, before it releases its locks: a lock
-- seen released is a transaction whose events a later snapshot sees.)
-- Every event below the result is therefore committed (or rolled back)
-- before this function returns: the caller must read the events in a later
-- statement (a later snapshot), never in the statement that calls this.
-- A prepared transaction holding an append lock has no backend to read;
-- then the watermark falls back to S's xmin.
-- +goose StatementBegin
CREATE FUNCTION events_watermark() RETURNS xid8
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    snap pg_snapshot;
    top xid8;
    top_low bigint;
    appenders integer[];
    orphaned boolean;
    oldest_delta bigint;
BEGIN
    SELECT pg_current_snapshot() INTO snap;
    top := pg_snapshot_xmax(snap);
    IF pg_snapshot_xmin(snap) = top THEN
        RETURN top; -- nothing was in progress
    END IF;
    SELECT array_agg(l.pid), bool_or(l.pid IS NULL) INTO appenders, orphaned
      FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.classid = 69 AND l.objsubid = 2 AND l.granted
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());
    IF orphaned THEN
        RETURN pg_snapshot_xmin(snap);
    END IF;
    IF appenders IS NULL THEN
        RETURN top;
    END IF;
    -- The activity view is cached for the transaction once read: read it afresh.
    PERFORM pg_stat_clear_snapshot();
    -- backend_xid is a 32-bit xid; its distance to top's low 32 bits, taken
    -- modulo 2^32 into [-2^31, 2^31), places it in top's epoch.
    top_low := top::text::bigint & 4294967295;
    SELECT min(((a.backend_xid::text::bigint - top_low + 6442450944) % 4294967296) - 2147483648)
      INTO oldest_delta
      FROM pg_stat_get_activity(NULL) a
     WHERE a.pid = ANY (appenders) AND a.backend_xid IS NOT NULL;
    IF oldest_delta IS NULL OR oldest_delta >= 0 THEN
        RETURN top;
    END IF;
    RETURN (top::text::bigint + oldest_delta)::text::xid8;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION events_watermark() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION events_watermark() TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP FUNCTION events_watermark();
