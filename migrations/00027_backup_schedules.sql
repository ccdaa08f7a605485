-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Read model of tenants' backup schedules, built by the backup_schedules
-- projector; the backup scheduler reads it across tenants for due
-- schedules and open runs (backupsched/).
CREATE TABLE backup_schedules (
    tenant_id    uuid        NOT NULL,
    schedule_id  uuid        NOT NULL,
    name         text        NOT NULL,
    vm_ids       uuid[]      NOT NULL DEFAULT '{}',
    all_vms      boolean     NOT NULL DEFAULT false,
    calendar     text        NOT NULL,
    mode         text        NOT NULL,
    retention    jsonb       NOT NULL,
    enabled      boolean     NOT NULL,
    next_run_at  timestamptz,
    last_run_at  timestamptz, -- the last run's slot
    run_vm_ids   uuid[]      NOT NULL DEFAULT '{}',
    run_jitter   bigint      NOT NULL DEFAULT 0, -- nanoseconds
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, schedule_id)
);
CREATE INDEX backup_schedules_due ON backup_schedules (next_run_at) WHERE enabled;
CREATE INDEX backup_schedules_by_time ON backup_schedules (tenant_id, created_at, schedule_id);

ALTER TABLE backup_schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE backup_schedules FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON backup_schedules
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY cross_tenant_read ON backup_schedules FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');

GRANT SELECT, INSERT, UPDATE, DELETE ON backup_schedules TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE backup_schedules;
