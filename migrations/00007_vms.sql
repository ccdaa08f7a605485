-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Read model of VMs and containers, built by the vms projector.
CREATE TABLE vms (
    tenant_id  uuid        NOT NULL,
    vm_id      uuid        NOT NULL,
    name       text        NOT NULL,
    kind       text        NOT NULL,
    cores      integer     NOT NULL,
    memory_mb  integer     NOT NULL,
    disk_gb    integer     NOT NULL,
    template   text        NOT NULL,
    cluster_id uuid,
    node       text        NOT NULL DEFAULT '',
    vmid       integer     NOT NULL DEFAULT 0,
    status     text        NOT NULL,
    pending    text        NOT NULL DEFAULT '',
    settled    text        NOT NULL DEFAULT '',
    last_error text        NOT NULL DEFAULT '',
    snapshots  text[]      NOT NULL DEFAULT '{}',
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, vm_id)
);
CREATE INDEX vms_tenant_created ON vms (tenant_id, created_at, vm_id);
CREATE INDEX vms_tenant_status ON vms (tenant_id, status);
CREATE INDEX vms_tenant_name ON vms (tenant_id, name);
CREATE INDEX vms_tenant_cluster ON vms (tenant_id, cluster_id);
CREATE INDEX vms_pending ON vms (tenant_id, updated_at) WHERE pending <> '';

-- What each tenant has allocated, kept in the same transaction as the VM
-- events that change it: a row lock here serialises concurrent creates of a
-- tenant, so they cannot overshoot the quota together.
CREATE TABLE tenant_usage (
    tenant_id uuid    PRIMARY KEY,
    vms       integer NOT NULL DEFAULT 0 CHECK (vms >= 0),
    cores     integer NOT NULL DEFAULT 0 CHECK (cores >= 0),
    memory_mb bigint  NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
    disk_gb   bigint  NOT NULL DEFAULT 0 CHECK (disk_gb >= 0)
);

-- Registered Proxmox clusters (platform tenant), built by the clusters
-- projector. The token secret is not here: it exists only sealed, in the
-- registration event, for the agent.
CREATE TABLE clusters (
    tenant_id    uuid        NOT NULL,
    cluster_id   uuid        NOT NULL,
    name         text        NOT NULL,
    api_url      text        NOT NULL,
    token_id     text        NOT NULL,
    insecure_tls boolean     NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, cluster_id)
);

-- The agent's latest view of each cluster's nodes and templates: a cache of
-- external state, not a domain fact, so it is replaced, not event-sourced.
CREATE TABLE cluster_inventory (
    tenant_id   uuid        NOT NULL,
    cluster_id  uuid        NOT NULL,
    nodes       jsonb       NOT NULL,
    templates   jsonb       NOT NULL,
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, cluster_id)
);

ALTER TABLE vms ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_usage FORCE ROW LEVEL SECURITY;
ALTER TABLE clusters ENABLE ROW LEVEL SECURITY;
ALTER TABLE clusters FORCE ROW LEVEL SECURITY;
ALTER TABLE cluster_inventory ENABLE ROW LEVEL SECURITY;
ALTER TABLE cluster_inventory FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON vms
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
-- Reconciliation and the deadline sweep look across tenants (SELECT only).
CREATE POLICY cross_tenant_read ON vms FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');
CREATE POLICY platform_admin_read ON vms FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');

CREATE POLICY tenant_isolation ON tenant_usage
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON tenant_usage FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');

CREATE POLICY tenant_isolation ON clusters
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON clusters FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');
CREATE POLICY cross_tenant_read ON clusters FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');

CREATE POLICY tenant_isolation ON cluster_inventory
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
-- Templates are offered to every tenant: any scoped (authenticated) request
-- may read the inventory; writing stays with the platform tenant.
CREATE POLICY scoped_read ON cluster_inventory FOR SELECT
    USING ((SELECT nullif(current_setting('app.tenant_id', true), '')) IS NOT NULL
        OR (SELECT current_setting('app.cross_tenant', true)) = 'on');

GRANT SELECT, INSERT, UPDATE, DELETE ON vms, clusters TO accountdb_app;
GRANT SELECT, INSERT, UPDATE ON tenant_usage, cluster_inventory TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE cluster_inventory, clusters, tenant_usage, vms;
