-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Reconciliation's memory of guests a cluster's listing missed (issue 11):
-- a VM missing from one listing is not taken for deleted (which releases
-- its address and its quota) until a later listing misses it too. A row is
-- the first listing that missed the VM; any listing that does not miss it
-- removes it. Kept in the platform tenant, like cluster_inventory.
CREATE TABLE vm_unseen (
    tenant_id  uuid        NOT NULL,
    cluster_id uuid        NOT NULL,
    vm_id      uuid        NOT NULL,
    missed_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, cluster_id, vm_id)
);
ALTER TABLE vm_unseen ENABLE ROW LEVEL SECURITY;
ALTER TABLE vm_unseen FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vm_unseen
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
GRANT SELECT, INSERT, DELETE ON vm_unseen TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE vm_unseen;
