-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- An Idempotency-Key repeated with a different body is an error, not a replay:
-- the command row remembers a hash of the request that first used it.
ALTER TABLE commands ADD COLUMN request_hash bytea;

-- Read models, built by projectors from tenant and user events.
CREATE TABLE tenants (
    tenant_id     uuid        PRIMARY KEY,
    name          text        NOT NULL,
    status        text        NOT NULL,
    max_vms       integer     NOT NULL,
    max_cores     integer     NOT NULL,
    max_memory_mb integer     NOT NULL,
    max_disk_gb   integer     NOT NULL,
    version       bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX tenants_tenant_created ON tenants (tenant_id, created_at);

CREATE TABLE users (
    tenant_id    uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    email        text        NOT NULL,
    display_name text        NOT NULL,
    roles        text[]      NOT NULL,
    status       text        NOT NULL,
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX users_tenant_created ON users (tenant_id, created_at, user_id);

CREATE TABLE role_bindings (
    tenant_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    role       text        NOT NULL,
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role)
);

-- Inline state, written in the same transaction as the events that change it
-- (AppendTx), because sign-in needs it at once and exactly: a disabled user's
-- refresh must fail immediately, an email must be unique when it is claimed.
-- Password hashes live here and nowhere else: never in an event.
CREATE TABLE user_credentials (
    tenant_id     uuid        NOT NULL,
    user_id       uuid        NOT NULL UNIQUE,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    roles         text[]      NOT NULL,
    status        text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT user_credentials_email_key UNIQUE (email)
);

CREATE TABLE sessions (
    tenant_id    uuid        NOT NULL,
    session_id   uuid        NOT NULL UNIQUE,
    user_id      uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    end_reason   text,
    ip           text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, session_id)
);
CREATE INDEX sessions_tenant_user ON sessions (tenant_id, user_id, created_at);

-- Every refresh token ever issued, hashed. A token found here with used_at set
-- is a replay of a rotated token: its whole session is revoked.
CREATE TABLE refresh_tokens (
    tenant_id  uuid        NOT NULL,
    token_hash bytea       NOT NULL,
    session_id uuid        NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    PRIMARY KEY (tenant_id, token_hash),
    CONSTRAINT refresh_tokens_hash_key UNIQUE (token_hash)
);

-- Tenant isolation everywhere. Platform administrators read tenants and users
-- across tenants through app.platform_admin; sign-in finds credentials,
-- sessions and refresh tokens before any tenant is known through
-- app.credential_lookup. Both are SELECT-only policies on separate settings.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
ALTER TABLE role_bindings ENABLE ROW LEVEL SECURITY;
ALTER TABLE role_bindings FORCE ROW LEVEL SECURITY;
ALTER TABLE user_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_credentials FORCE ROW LEVEL SECURITY;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenants
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON tenants FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');

CREATE POLICY tenant_isolation ON users
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON users FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');

CREATE POLICY tenant_isolation ON role_bindings
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY platform_admin_read ON role_bindings FOR SELECT
    USING ((SELECT current_setting('app.platform_admin', true)) = 'on');

CREATE POLICY tenant_isolation ON user_credentials
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY credential_lookup ON user_credentials FOR SELECT
    USING ((SELECT current_setting('app.credential_lookup', true)) = 'on');

CREATE POLICY tenant_isolation ON sessions
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY credential_lookup ON sessions FOR SELECT
    USING ((SELECT current_setting('app.credential_lookup', true)) = 'on');

CREATE POLICY tenant_isolation ON refresh_tokens
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY credential_lookup ON refresh_tokens FOR SELECT
    USING ((SELECT current_setting('app.credential_lookup', true)) = 'on');

GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, role_bindings TO accountdb_app;
GRANT SELECT, INSERT, UPDATE ON user_credentials, sessions, refresh_tokens TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE refresh_tokens, sessions, user_credentials, role_bindings, users, tenants;
ALTER TABLE commands DROP COLUMN request_hash;
