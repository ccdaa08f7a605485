-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- The login throttle (auth.Throttle, implemented by auth/pgthrottle): failed
-- sign-ins per key, shared by every API replica and kept across restarts.
-- Keys are "acct:<lower-cased email>" and "ip:<address>", personal data, so
-- only their SHA-256 is stored. Like emails, keys are platform-wide: there is
-- no tenant_id and no row-level security (nothing here belongs to a tenant;
-- the service role reads and writes every row, always by key_hash).
--
-- Each statement of the throttle is one atomic UPSERT, SELECT or DELETE;
-- the row lock serialises concurrent failures of one key across replicas.
-- forget_at is last_failure + Window + MaxLockout of the throttle that wrote
-- the row: from then on the row says nothing a missing row would not (not
-- locked, window over, lockout escalation forgotten), so each failure also
-- deletes a few such rows (bounded, oldest first): the table holds the keys
-- that failed within the last Window + MaxLockout, whatever a spray of
-- distinct emails or addresses tries.
CREATE TABLE login_throttle (
    key_hash     bytea       PRIMARY KEY CHECK (length(key_hash) = 32),
    failures     integer     NOT NULL CHECK (failures >= 0),
    window_start timestamptz NOT NULL,
    lockouts     integer     NOT NULL CHECK (lockouts >= 0),
    locked_until timestamptz,
    last_failure timestamptz NOT NULL,
    forget_at    timestamptz NOT NULL
);
CREATE INDEX login_throttle_forget_at ON login_throttle (forget_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE login_throttle;
