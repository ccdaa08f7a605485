-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- The vms read model's SELECT policies are OR'ed into every query the
-- service role runs: tenant_id = <the scope's tenant> OR <cross-tenant
-- flag> OR <platform-admin flag>. Written as "(SELECT setting) = 'on'",
-- each flag arm is a comparison the planner cannot see through, which it
-- guesses true for 0.5 % of rows; so it believed that a tenant's VMs
-- passing the policies were about 1 % of them, one row for a tenant of a
-- hundred, and answered GET /v1/vms from any index led by tenant_id
-- followed by a sort of the whole tenant, instead of walking
-- vms_tenant_created in keyset order and stopping after one page
-- (docs/BENCHMARKS.md, "Issue 16: reads at 100,000 VMs"). The same test
-- written as one boolean subquery means exactly the same (NULL or anything
-- but 'on' is not true) but is estimated at the planner's default of one
-- half for an unknown boolean, so the tenant predicate alone decides the
-- estimate and the ordered index scan wins.
ALTER POLICY cross_tenant_read ON vms
    USING ((SELECT current_setting('app.cross_tenant', true) = 'on'));
ALTER POLICY platform_admin_read ON vms
    USING ((SELECT current_setting('app.platform_admin', true) = 'on'));

-- +goose Down
SET LOCAL ROLE accountdb_owner;
ALTER POLICY cross_tenant_read ON vms
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');
ALTER POLICY platform_admin_read ON vms
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');
