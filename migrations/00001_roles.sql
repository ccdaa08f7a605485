-- +goose Up
-- Roles are cluster-wide, so this migration tolerates them already existing
-- (another database of the same cluster, or a concurrent test package, may have
-- created them first). Only this file runs as the connecting administrator; every
-- later file switches to accountdb_owner so that the owner role owns all objects.

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'accountdb_owner') THEN
        BEGIN
            CREATE ROLE accountdb_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'accountdb_app') THEN
        BEGIN
            -- The service role: may log in, is never superuser, never bypasses RLS
            -- and owns nothing, so FORCE ROW LEVEL SECURITY always applies to it.
            CREATE ROLE accountdb_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END
$$;
-- +goose StatementEnd

GRANT USAGE, CREATE ON SCHEMA public TO accountdb_owner;
GRANT USAGE ON SCHEMA public TO accountdb_app;
-- Later files run as accountdb_owner, and goose records each version in the same
-- transaction, so the owner role owns goose's bookkeeping table too.
ALTER TABLE goose_db_version OWNER TO accountdb_owner;

-- +goose Down
REVOKE USAGE ON SCHEMA public FROM accountdb_app;
REVOKE USAGE, CREATE ON SCHEMA public FROM accountdb_owner;
