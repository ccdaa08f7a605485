-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Crypto-shredding (docs/PRIVACY.md). Personal fields of events and request
-- metadata are encrypted before the append with a data key of the person
-- they are about; destroying the key erases them from the log, the bus and
-- every copy, without touching the insert-only, hashed events.
--
-- subject_keys: one row per key. key_name is "data" for personal data
-- fields, "meta-YYYYMMDD" for one day's request metadata (period is that
-- day), so retention destroys a day's keys and erasure all of a subject's.
-- sealed_key is the 32-byte key sealed with the service's secrets key
-- (AES-256-GCM, bound to tenant, subject and name): a database dump alone
-- opens nothing. Rows are inserted and deleted, never updated.
CREATE TABLE subject_keys (
    tenant_id  uuid        NOT NULL,
    subject_id uuid        NOT NULL,
    key_name   text        NOT NULL CHECK (key_name ~ '^[a-z0-9-]{1,32}$'),
    period     date,
    sealed_key text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_id, key_name)
);
CREATE INDEX subject_keys_period ON subject_keys (tenant_id, period) WHERE period IS NOT NULL;

-- erased_subjects: the people erased, so that no key is ever made for them
-- again (a late append of theirs seals nothing readable). Only ids.
CREATE TABLE erased_subjects (
    tenant_id  uuid        NOT NULL,
    subject_id uuid        NOT NULL,
    erased_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_id)
);

ALTER TABLE subject_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE subject_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE erased_subjects ENABLE ROW LEVEL SECURITY;
ALTER TABLE erased_subjects FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON subject_keys
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON erased_subjects
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));

-- The privacy report (accountdb admin privacy-report) lists, across
-- tenants, old plaintext events of erased people: it reads ids, never keys.
CREATE POLICY cross_tenant_read ON erased_subjects FOR SELECT
    USING ((SELECT current_setting('app.cross_tenant', true)) = 'on');

-- Keys are made, read and destroyed; never changed.
GRANT SELECT, INSERT, DELETE ON subject_keys TO accountdb_app;
GRANT SELECT, INSERT ON erased_subjects TO accountdb_app;

-- Erasure removes what side tables hold of the person in the transaction of
-- its user_erased event: their credentials row (email, password hash)...
GRANT DELETE ON user_credentials TO accountdb_app;

-- ...and the snapshots of their stream (a cache whose state holds the
-- decrypted email). The service role still may not delete snapshots at
-- will (they are the owner's cache, docs/AUDIT.md): this function, run as
-- the owner, deletes one user stream's snapshots in the caller's tenant
-- scope, and nothing else.
CREATE POLICY definer_erase ON snapshots FOR DELETE TO accountdb_owner
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));

-- +goose StatementBegin
CREATE FUNCTION erase_user_snapshots(p_user uuid) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    WITH d AS (
        DELETE FROM public.snapshots
        WHERE tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)
          AND stream_id = 'user-' || p_user::text
        RETURNING 1)
    SELECT count(*) FROM d
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION erase_user_snapshots(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION erase_user_snapshots(uuid) TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP FUNCTION erase_user_snapshots(uuid);
DROP POLICY definer_erase ON snapshots;
REVOKE DELETE ON user_credentials FROM accountdb_app;
DROP TABLE erased_subjects, subject_keys;
