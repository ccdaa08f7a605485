-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Aggregate snapshots: an aggregate's state at one version of its stream, so
-- that command loads and time travel (?as_of=) replay only the events after
-- it. A cache derived from the events, never a source of truth: every row can
-- be deleted at any time (the owner role can; the service cannot) and is
-- rebuilt by the next replay. See docs/AUDIT.md, "Time travel and snapshots".
--
-- state_version names the code that wrote the state (the domain's snapshot
-- version and the upcaster registry's fingerprint); readers ignore rows of
-- any other. covered_until is the latest recorded_at among events
-- 1..stream_version (recorded_at need not grow with the version), so the row
-- may stand in for those events in a replay up to any instant at or after it.
-- Rows are only ever inserted: several are kept per stream, because replays
-- up to different instants need different ones.
CREATE TABLE snapshots (
    tenant_id      uuid        NOT NULL,
    stream_id      text        NOT NULL,
    state_version  text        NOT NULL,
    stream_version bigint      NOT NULL CHECK (stream_version > 0),
    covered_until  timestamptz NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, stream_id, state_version, stream_version)
);

ALTER TABLE snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE snapshots FORCE ROW LEVEL SECURITY;

-- A tenant's own rows only. No cross-tenant or platform-admin policy: the
-- loads that use snapshots (commands, ?as_of= on VMs, users and tenants, the
-- last also for platform administrators) all read under the stream's own
-- tenant scope, and a replay under any other scope just replays every event.
CREATE POLICY tenant_isolation ON snapshots
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));

-- Never UPDATE: a row, once written, is what its version looked like.
GRANT SELECT, INSERT ON snapshots TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE snapshots;
