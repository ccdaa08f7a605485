-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- One row per stream: the optimistic-concurrency guard. Appends lock and advance
-- this row, so concurrent writers to one stream serialise here and nowhere else.
CREATE TABLE streams (
    stream_id   text        PRIMARY KEY,
    stream_type text        NOT NULL,
    tenant_id   uuid        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_tenant_type ON streams (tenant_id, stream_type);

-- The system of record and the audit log. Readers follow it in
-- (transaction_id, global_position) order below the snapshot's xmin: a bare
-- "global_position > last" would skip a lower position that commits later.
CREATE TABLE events (
    global_position bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1 CHECK (schema_version > 0),
    tenant_id       uuid        NOT NULL,
    actor_id        uuid,
    correlation_id  uuid        NOT NULL,
    causation_id    uuid,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_commit_order ON events (transaction_id, global_position);
CREATE INDEX events_tenant_position ON events (tenant_id, global_position);

-- Command idempotency: a repeated command id returns this row's result.
CREATE TABLE commands (
    command_id    uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    stream_id     text        NOT NULL,
    first_version bigint      NOT NULL,
    last_version  bigint      NOT NULL,
    last_position bigint      NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX commands_tenant ON commands (tenant_id, recorded_at);

-- Where each follower of the log (relay, projectors) has got to, in log order.
CREATE TABLE checkpoints (
    name            text        PRIMARY KEY,
    transaction_id  bigint      NOT NULL DEFAULT 0,
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION events_are_insert_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are insert-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_insert_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_insert_only();

-- Row-level security: a request sees its own tenant only. System components
-- (relay, projector rebuild, audit verification) read across tenants through an
-- explicit, separate setting and a SELECT-only policy, never through a bypass.
ALTER TABLE streams ENABLE ROW LEVEL SECURITY;
ALTER TABLE streams FORCE ROW LEVEL SECURITY;
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
ALTER TABLE commands ENABLE ROW LEVEL SECURITY;
ALTER TABLE commands FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON streams
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY cross_tenant_read ON streams FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');

CREATE POLICY tenant_isolation ON events
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY cross_tenant_read ON events FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');

CREATE POLICY tenant_isolation ON commands
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY cross_tenant_read ON commands FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');

GRANT SELECT, INSERT, UPDATE ON streams TO accountdb_app;
GRANT SELECT, INSERT ON events TO accountdb_app;
GRANT SELECT, INSERT ON commands TO accountdb_app;
GRANT SELECT, INSERT, UPDATE ON checkpoints TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE checkpoints;
DROP TABLE commands;
DROP TABLE events;
DROP TABLE streams;
DROP FUNCTION events_are_insert_only();
