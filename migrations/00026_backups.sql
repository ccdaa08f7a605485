-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Read models of VM snapshots and backups, built by the vm_snapshots and
-- backups projectors from the VM streams' snapshot and backup events
-- (domain/vm_snapshots.go, vm_backups.go).
CREATE TABLE vm_snapshots (
    tenant_id   uuid        NOT NULL,
    vm_id       uuid        NOT NULL,
    name        text        NOT NULL,
    parent      text        NOT NULL DEFAULT '',
    description text        NOT NULL DEFAULT '',
    vmstate     boolean     NOT NULL DEFAULT false,
    status      text        NOT NULL, -- creating, ready
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, vm_id, name)
);

CREATE TABLE backups (
    tenant_id   uuid        NOT NULL,
    backup_id   uuid        NOT NULL,
    vm_id       uuid        NOT NULL,
    status      text        NOT NULL, -- creating, available, failed, deleting
    mode        text        NOT NULL,
    storage     text        NOT NULL,
    node        text        NOT NULL DEFAULT '',
    volume_id   text        NOT NULL DEFAULT '',
    size_bytes  bigint      NOT NULL DEFAULT 0,
    verified    boolean     NOT NULL DEFAULT false, -- the archive read back holds the VM
    note        text        NOT NULL DEFAULT '',
    schedule_id uuid,
    error       text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, backup_id)
);
CREATE INDEX backups_by_time ON backups (tenant_id, created_at DESC, backup_id);
CREATE INDEX backups_by_vm ON backups (tenant_id, vm_id, created_at DESC, backup_id);
CREATE INDEX backups_by_schedule ON backups (tenant_id, schedule_id, created_at DESC) WHERE schedule_id IS NOT NULL;

ALTER TABLE vm_snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE vm_snapshots FORCE ROW LEVEL SECURITY;
ALTER TABLE backups ENABLE ROW LEVEL SECURITY;
ALTER TABLE backups FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON vm_snapshots
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON backups
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
-- The backup scheduler looks across tenants (SELECT only).
CREATE POLICY cross_tenant_read ON backups FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');

GRANT SELECT, INSERT, UPDATE, DELETE ON vm_snapshots, backups TO accountdb_app;

-- The tenant quota's snapshot and backup limits, in the tenants read model
-- (0: the defaults, domain.Quota.SnapshotLimit and BackupsGBLimit).
ALTER TABLE tenants ADD COLUMN max_snapshots_per_vm integer NOT NULL DEFAULT 0,
    ADD COLUMN max_backups_gb integer NOT NULL DEFAULT 0;
-- A cluster's backup storage ('': Proxmox's default, local).
ALTER TABLE clusters ADD COLUMN backup_storage text NOT NULL DEFAULT '';

-- +goose Down
SET LOCAL ROLE accountdb_owner;
ALTER TABLE tenants DROP COLUMN max_snapshots_per_vm, DROP COLUMN max_backups_gb;
ALTER TABLE clusters DROP COLUMN backup_storage;
DROP TABLE backups;
DROP TABLE vm_snapshots;
