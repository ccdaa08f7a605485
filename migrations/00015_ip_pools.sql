-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Read models of IP address pools, built by the ip_pools projector from the
-- pools' streams (platform tenant): platform administrators read them. A
-- VM's tenant sees its own addresses in the vms read model (below).
CREATE TABLE ip_pools (
    tenant_id   uuid        NOT NULL,
    pool_id     uuid        NOT NULL,
    name        text        NOT NULL,
    cluster_id  uuid        NOT NULL,
    bridge      text        NOT NULL,
    vlan        integer     NOT NULL DEFAULT 0,
    cidr        text        NOT NULL,
    gateway     text        NOT NULL,
    range_start text        NOT NULL,
    range_end   text        NOT NULL,
    nameservers text[]      NOT NULL DEFAULT '{}',
    ipv6_prefix text        NOT NULL DEFAULT '',
    is_default  boolean     NOT NULL DEFAULT false,
    size        integer     NOT NULL,
    allocated   integer     NOT NULL DEFAULT 0,
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, pool_id)
);
CREATE INDEX ip_pools_tenant_created ON ip_pools (tenant_id, created_at, pool_id);

-- One row per address held, with the VM and its tenant.
CREATE TABLE ip_pool_addresses (
    tenant_id    uuid        NOT NULL,
    pool_id      uuid        NOT NULL,
    address      inet        NOT NULL,
    vm_id        uuid        NOT NULL,
    vm_tenant_id uuid        NOT NULL,
    allocated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, pool_id, address)
);
CREATE INDEX ip_pool_addresses_vm ON ip_pool_addresses (tenant_id, vm_id);

ALTER TABLE ip_pools ENABLE ROW LEVEL SECURITY;
ALTER TABLE ip_pools FORCE ROW LEVEL SECURITY;
ALTER TABLE ip_pool_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE ip_pool_addresses FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON ip_pools
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON ip_pools FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');
CREATE POLICY tenant_isolation ON ip_pool_addresses
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON ip_pool_addresses FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');

GRANT SELECT, INSERT, UPDATE, DELETE ON ip_pools, ip_pool_addresses TO accountdb_app;

-- A VM's pool network (its address, gateway, bridge) and what its guest
-- reported; the API shows them as ip_addresses.
ALTER TABLE vms ADD COLUMN network jsonb;
ALTER TABLE vms ADD COLUMN guest_addresses text[] NOT NULL DEFAULT '{}';

-- Pool IPv4 addresses held, counted against the tenant's max_ipv4.
ALTER TABLE tenant_usage ADD COLUMN ipv4 integer NOT NULL DEFAULT 0 CHECK (ipv4 >= 0);

-- +goose Down
SET LOCAL ROLE accountdb_owner;
ALTER TABLE tenant_usage DROP COLUMN ipv4;
ALTER TABLE vms DROP COLUMN guest_addresses, DROP COLUMN network;
DROP TABLE ip_pool_addresses, ip_pools;
