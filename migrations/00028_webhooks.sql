-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Read model of webhook endpoints, built by the webhooks projector from
-- webhook_* events. Secrets are kept sealed (vault), as the events carry
-- them. The dispatcher reads every tenant's (cross_tenant_read).
CREATE TABLE webhooks (
    tenant_id              uuid        NOT NULL,
    webhook_id             uuid        NOT NULL,
    platform               boolean     NOT NULL,
    url                    text        NOT NULL,
    event_types            text[]      NOT NULL,
    description            text        NOT NULL,
    enabled                boolean     NOT NULL,
    disabled_reason        text        NOT NULL DEFAULT '',
    sealed_secret          text        NOT NULL,
    previous_sealed_secret text        NOT NULL DEFAULT '',
    previous_valid_until   timestamptz,
    -- Delivery starts at the log position of webhook_created (inclusive),
    -- or at replay_from (global position) after a replay; generation names
    -- the durable consumer, so a replay starts a fresh one.
    start_transaction_id   bigint      NOT NULL,
    start_position         bigint      NOT NULL,
    start_time             timestamptz NOT NULL,
    replay_from            bigint      NOT NULL DEFAULT 0,
    generation             integer     NOT NULL DEFAULT 0,
    enabled_since          timestamptz NOT NULL,
    version                bigint      NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id)
);

-- Redeliveries asked for; one is done when webhook_deliveries has a row
-- with its request_id (so a rebuild of this table redelivers nothing).
CREATE TABLE webhook_redeliveries (
    tenant_id       uuid        NOT NULL,
    request_id      uuid        NOT NULL,
    webhook_id      uuid        NOT NULL,
    event_tenant_id uuid        NOT NULL,
    event_position  bigint      NOT NULL,
    requested_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, request_id)
);

-- Delivery attempts, written by the dispatcher (not a read model: the
-- attempts are operational records, not events).
CREATE TABLE webhook_deliveries (
    tenant_id        uuid        NOT NULL,
    delivery_id      uuid        NOT NULL,
    webhook_id       uuid        NOT NULL,
    message_id       text        NOT NULL,
    event_tenant_id  uuid        NOT NULL,
    event_position   bigint      NOT NULL,
    event_type       text        NOT NULL,
    attempt          integer     NOT NULL,
    status           text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    response_code    integer,
    latency_ms       integer     NOT NULL,
    response_excerpt text        NOT NULL DEFAULT '',
    error            text        NOT NULL DEFAULT '',
    request_id       uuid,
    at               timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, delivery_id)
);
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (tenant_id, webhook_id, delivery_id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (tenant_id, webhook_id, event_position, at);
CREATE UNIQUE INDEX webhook_deliveries_request ON webhook_deliveries (tenant_id, request_id) WHERE request_id IS NOT NULL;

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_redeliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_redeliveries FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON webhooks
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY cross_tenant_read ON webhooks FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');
CREATE POLICY tenant_isolation ON webhook_redeliveries
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY cross_tenant_read ON webhook_redeliveries FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');
CREATE POLICY tenant_isolation ON webhook_deliveries
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY cross_tenant_read ON webhook_deliveries FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');

GRANT SELECT, INSERT, UPDATE, DELETE ON webhooks, webhook_redeliveries, webhook_deliveries TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_redeliveries;
DROP TABLE webhooks;
