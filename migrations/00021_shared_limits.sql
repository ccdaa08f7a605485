-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Limits shared by every `accountdb serve` replica (api/pglimits): with the
-- counts in process memory, N replicas behind a load balancer allowed N
-- times each rate and each cap. Like login_throttle, the keys are
-- platform-wide ("user:<id>", "tenant:<id>", "ip:<address>"), so there is no
-- tenant_id and no row-level security; addresses are personal data, so only
-- SHA-256 hashes of the keys are stored.

-- Request rates: one row per key and limit, a fixed window on the
-- database's clock and the count of the window before it (the API weighs
-- the two into a sliding-window rate, as the in-process limiter did). One
-- UPSERT per request and limit; its row lock serialises one key's requests
-- across replicas. Rows whose window ended two windows ago say nothing a
-- missing row would not; the API deletes a few of them now and then.
CREATE TABLE rate_counters (
    key_hash     bytea       NOT NULL CHECK (length(key_hash) = 32),
    window_secs  integer     NOT NULL CHECK (window_secs > 0),
    window_start timestamptz NOT NULL,
    count        integer     NOT NULL CHECK (count >= 0),
    prev_count   integer     NOT NULL CHECK (prev_count >= 0),
    PRIMARY KEY (key_hash, window_secs)
);
CREATE INDEX rate_counters_window_start ON rate_counters (window_start);

-- Long requests in progress (event streams, exports, consoles): one row each, held
-- by the replica serving it, which renews expires_at while it runs; a row
-- of a replica that died expires on its own. Caps count the live rows of a
-- user and of a tenant, under a transaction-level advisory lock per tenant
-- and kind, so two replicas cannot both take the last slot. The user and
-- tenant are counting keys, not tenant data (nothing here is served to
-- anyone): like login_throttle the table is platform-wide without row-level
-- security, and the columns are named *_key, not tenant_id, which marks
-- tenant data that must be row-level secured.
CREATE TABLE request_slots (
    id         uuid        PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('exports', 'streams', 'consoles')),
    user_key   uuid        NOT NULL,
    tenant_key uuid        NOT NULL,
    holder     uuid        NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX request_slots_tenant ON request_slots (tenant_key, kind, expires_at);
CREATE INDEX request_slots_holder ON request_slots (holder);

GRANT SELECT, INSERT, UPDATE, DELETE ON rate_counters, request_slots TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE request_slots;
DROP TABLE rate_counters;
