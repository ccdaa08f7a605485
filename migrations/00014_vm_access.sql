-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- What GET /v1/vms/{id} shows of a VM's cloud-init: the user, the hostname
-- and the SSH keys' fingerprints (never the password's hash), as JSON, NULL
-- for a VM without cloud-init; and whether Proxmox holds settings the
-- guest has not booted with yet.
ALTER TABLE vms ADD COLUMN cloud_init jsonb;
ALTER TABLE vms ADD COLUMN pending_changes boolean NOT NULL DEFAULT false;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
ALTER TABLE vms DROP COLUMN pending_changes;
ALTER TABLE vms DROP COLUMN cloud_init;
