-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Consoles are capped per VM too (ACCOUNTDB_CONSOLES_PER_VM): their slots
-- are of kind 'vm_consoles', counted by the VM's id in user_key.
ALTER TABLE request_slots DROP CONSTRAINT request_slots_kind_check;
ALTER TABLE request_slots ADD CONSTRAINT request_slots_kind_check
    CHECK (kind IN ('exports', 'streams', 'consoles', 'vm_consoles'));

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DELETE FROM request_slots WHERE kind = 'vm_consoles';
ALTER TABLE request_slots DROP CONSTRAINT request_slots_kind_check;
ALTER TABLE request_slots ADD CONSTRAINT request_slots_kind_check
    CHECK (kind IN ('exports', 'streams', 'consoles'));
