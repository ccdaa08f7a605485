-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Audit queries (GET /v1/audit) read events through row-level security. A
-- tenant reads its own through tenant_isolation; a platform administrator
-- reads another tenant's through this explicit, SELECT-only policy on its own
-- setting (never a bypass), and the query names the tenant in SQL as well.
CREATE POLICY platform_admin_read ON events FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');

-- "Events of type X in this tenant, in log order": the type filter of the
-- audit query. (tenant_id, global_position) exists since 00002.
CREATE INDEX events_tenant_type_position ON events (tenant_id, event_type, global_position);

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP INDEX events_tenant_type_position;
DROP POLICY platform_admin_read ON events;
