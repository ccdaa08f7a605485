-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Usage metering, built by the usage projector from VM events alone (their
-- recorded times), so a rebuild gives the same records to the microsecond.
-- usage_vms is each VM's metered state since its last event (the VM
-- aggregate, replayed with the domain's own Apply); usage_records the
-- closed intervals, split at UTC hour boundaries. Backups count while
-- their archive is stored (available or being deleted), in MiB rounded up.
CREATE TABLE usage_vms (
    tenant_id  uuid        NOT NULL,
    vm_id      uuid        NOT NULL,
    aggregate  jsonb       NOT NULL,
    state      text        NOT NULL,
    cores      integer     NOT NULL,
    memory_mb  integer     NOT NULL,
    disk_gb    integer     NOT NULL,
    ipv4       integer     NOT NULL,
    snapshots  integer     NOT NULL,
    backups    integer     NOT NULL,
    backup_mb  bigint      NOT NULL,
    since      timestamptz NOT NULL,
    metered    boolean     NOT NULL,
    PRIMARY KEY (tenant_id, vm_id)
);

CREATE TABLE usage_records (
    tenant_id    uuid        NOT NULL,
    vm_id        uuid        NOT NULL,
    period_start timestamptz NOT NULL,
    state        text        NOT NULL,
    cores        integer     NOT NULL,
    memory_mb    integer     NOT NULL,
    disk_gb      integer     NOT NULL,
    ipv4         integer     NOT NULL,
    snapshots    integer     NOT NULL,
    backups      integer     NOT NULL,
    backup_mb    bigint      NOT NULL,
    held_us      bigint      NOT NULL,
    PRIMARY KEY (tenant_id, period_start, vm_id, state, cores, memory_mb, disk_gb, ipv4, snapshots, backups, backup_mb)
);

ALTER TABLE usage_vms ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_vms FORCE ROW LEVEL SECURITY;
ALTER TABLE usage_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_records FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON usage_vms
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON usage_vms FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');
CREATE POLICY tenant_isolation ON usage_records
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON usage_records FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');

GRANT SELECT, INSERT, UPDATE, DELETE ON usage_vms, usage_records TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE usage_records;
DROP TABLE usage_vms;
