-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- A create group in one round trip (commands/pgstore/group_expected.go):
-- the group is decided on the tenant's usage and version as its committer
-- last left them, and sent with its COMMIT in one pipeline. These two
-- checks make that safe: each raises, and an error in a pipeline skips
-- every statement after it, the COMMIT included, so a group decided on a
-- state that is no longer the tenant's, or one of whose appends was
-- refused without an error (a stream at another version), writes nothing.
-- Both read under the caller's tenant scope (RLS applies).

-- create_group_expect raises unless the tenant's usage and the version of
-- its stream are exactly these. Called under the tenant's lock, so what it
-- checks cannot change until the transaction ends.
-- +goose StatementBegin
CREATE FUNCTION create_group_expect(tenant uuid, tenant_stream text, expected_version bigint,
    expected_vms integer, expected_cores integer, expected_memory_mb bigint, expected_disk_gb bigint,
    expected_ipv4 integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM (SELECT) AS one
        LEFT JOIN tenant_usage u ON u.tenant_id = tenant
        LEFT JOIN streams s ON s.stream_id = tenant_stream
        WHERE coalesce(s.version, 0) = expected_version
          AND coalesce(u.vms, 0) = expected_vms AND coalesce(u.cores, 0) = expected_cores
          AND coalesce(u.memory_mb, 0) = expected_memory_mb AND coalesce(u.disk_gb, 0) = expected_disk_gb
          AND coalesce(u.ipv4, 0) = expected_ipv4)
    THEN
        RAISE EXCEPTION 'tenant % is not in the state the create group was decided on', tenant
            USING ERRCODE = 'ADB01';
    END IF;
END
$$;
-- +goose StatementEnd

-- events_expect_appended raises unless this transaction has written the
-- stream, which is now at version: an append refused for its expected
-- version returns no error of its own.
-- +goose StatementBegin
CREATE FUNCTION events_expect_appended(stream text, expected_version bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM streams s
         WHERE s.stream_id = stream AND s.version = expected_version
           AND s.xmin = xid(pg_current_xact_id()))
    THEN
        RAISE EXCEPTION 'stream % was not appended to version % by this transaction', stream, expected_version
            USING ERRCODE = 'ADB01';
    END IF;
END
$$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION create_group_expect(uuid, text, bigint, integer, integer, bigint, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_group_expect(uuid, text, bigint, integer, integer, bigint, bigint, integer) TO accountdb_app;
REVOKE ALL ON FUNCTION events_expect_appended(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION events_expect_appended(text, bigint) TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP FUNCTION events_expect_appended(text, bigint);
DROP FUNCTION create_group_expect(uuid, text, bigint, integer, integer, bigint, bigint, integer);
