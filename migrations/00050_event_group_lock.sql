-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- A group commit (eventstore/append_group_run.go) sends its whole
-- transaction in one round trip: begin, this, the appends, commit. This
-- takes every stream's append lock without waiting (a group never waits on
-- a lock, so it joins no deadlock) or, when one is held elsewhere, fails the
-- transaction before its first write, so that nothing after it runs and the
-- group falls back to taking the locks that are free. The locks are the
-- ones AppendScopeSQL takes: (namespace, hashtext(stream id)).
-- +goose StatementBegin
CREATE FUNCTION events_group_lock(namespace integer, streams text[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(streams) AS s WHERE NOT pg_try_advisory_xact_lock(namespace, hashtext(s))) THEN
        RAISE EXCEPTION 'events: a stream of the group is locked by another transaction'
            USING ERRCODE = 'lock_not_available';
    END IF;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION events_group_lock(integer, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION events_group_lock(integer, text[]) TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP FUNCTION events_group_lock(integer, text[]);
