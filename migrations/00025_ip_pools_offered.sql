-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Pools are offered to every tenant, as templates are: whoever may create
-- a VM picks the pool it takes its address from. Which address is held by
-- which VM (ip_pool_addresses) stays with platform admins.
CREATE POLICY scoped_read ON ip_pools FOR SELECT
    USING ((SELECT nullif(current_setting('app.tenant_id', true), '')) IS NOT NULL);

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP POLICY scoped_read ON ip_pools;
