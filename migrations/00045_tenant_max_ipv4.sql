-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- The tenant quota's pool-address limit in the tenants read model: without it
-- GET /v1/tenants answered max_vms (the default) whatever max_ipv4 was set to.
-- 0 means the default (domain.Quota.IPv4Limit). Tenants created before this
-- migration show their max_ipv4 after `accountdb projections rebuild tenants`.
ALTER TABLE tenants ADD COLUMN max_ipv4 integer NOT NULL DEFAULT 0;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
ALTER TABLE tenants DROP COLUMN max_ipv4;
