-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Read model: how many events of each type each tenant has recorded, and when
-- the last one was. Built by the tenant_activity projector; a dashboard source
-- and the reference read model for the projector runtime's tests.
CREATE TABLE tenant_activity (
    tenant_id        uuid        NOT NULL,
    stream_type      text        NOT NULL,
    event_type       text        NOT NULL,
    event_count      bigint      NOT NULL,
    last_position    bigint      NOT NULL,
    last_recorded_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, stream_type, event_type)
);

ALTER TABLE tenant_activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_activity FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_activity
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_activity TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE tenant_activity;
