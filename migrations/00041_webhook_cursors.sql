-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Where each webhook endpoint's delivery has got to (webhooks.Dispatcher):
-- the ACCOUNTDB_EVENTS stream sequence up to which every message of the
-- endpoint's generation was delivered or is not for it. The dispatcher
-- reads the stream from here after a restart or a fail-over, so a message
-- delivered after the last save is delivered again (at least once). The
-- position only moves forward within a generation; a replay starts a new
-- generation, and with it a new position. No tenant data (an endpoint id and
-- a sequence, nothing served to anyone): like request_slots, platform-wide
-- without row-level security.
CREATE TABLE webhook_cursors (
    webhook_id  uuid        PRIMARY KEY,
    generation  integer     NOT NULL CHECK (generation >= 0),
    stream_seq  bigint      NOT NULL CHECK (stream_seq >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_cursors TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE webhook_cursors;
