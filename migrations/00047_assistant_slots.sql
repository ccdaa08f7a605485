-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Assistant answers in progress are capped per user and per tenant
-- (ACCOUNTDB_ASSISTANT_PER_USER, _PER_TENANT): their slots are of kind
-- 'assistant'.
ALTER TABLE request_slots DROP CONSTRAINT request_slots_kind_check;
ALTER TABLE request_slots ADD CONSTRAINT request_slots_kind_check
    CHECK (kind IN ('exports', 'streams', 'consoles', 'vm_consoles', 'assistant'));

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DELETE FROM request_slots WHERE kind = 'assistant';
ALTER TABLE request_slots DROP CONSTRAINT request_slots_kind_check;
ALTER TABLE request_slots ADD CONSTRAINT request_slots_kind_check
    CHECK (kind IN ('exports', 'streams', 'consoles', 'vm_consoles'));
