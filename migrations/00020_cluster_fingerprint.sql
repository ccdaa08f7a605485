-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- The clusters read model shows the pinned certificate fingerprint, so a
-- platform admin can compare it with `pvenode cert info` (the secret stays
-- out, as before). Clusters registered before this migration get theirs
-- from the cluster_registered event, the source of truth.
ALTER TABLE clusters ADD COLUMN tls_fingerprint text NOT NULL DEFAULT '';

SET LOCAL app.cross_tenant = 'on';
SET LOCAL app.tenant_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff'; -- domain.PlatformTenant: clusters belong to it
UPDATE clusters c SET tls_fingerprint = coalesce((
    SELECT e.data->>'tls_fingerprint' FROM events e
    WHERE e.stream_id = 'cluster-' || c.cluster_id::text AND e.event_type = 'cluster_registered'
    ORDER BY e.global_position LIMIT 1), '');

-- +goose Down
SET LOCAL ROLE accountdb_owner;
ALTER TABLE clusters DROP COLUMN tls_fingerprint;
