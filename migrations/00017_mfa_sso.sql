-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- TOTP two-factor (commands/mfa.go). The secret is sealed with the vault
-- (AES-256-GCM, bound to the user's id) and never leaves this table in
-- clear; last_step is the last time step a code was accepted for, so a
-- code is never accepted twice. A row with enabled = false is an enrolment
-- awaiting its first code.
CREATE TABLE user_totp (
    tenant_id     uuid        NOT NULL,
    user_id       uuid        NOT NULL UNIQUE,
    sealed_secret text        NOT NULL,
    enabled       boolean     NOT NULL DEFAULT false,
    last_step     bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

-- Recovery codes, SHA-256 of each (80 random bits: auth/totp.go).
CREATE TABLE user_recovery_codes (
    tenant_id uuid        NOT NULL,
    user_id   uuid        NOT NULL,
    code_hash bytea       NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (tenant_id, user_id, code_hash)
);

-- Per-tenant settings written with their tenant events.
CREATE TABLE tenant_settings (
    tenant_id   uuid    PRIMARY KEY,
    require_mfa boolean NOT NULL DEFAULT false
);

-- A session opened for a user who must enrol in two-factor before anything
-- else (the tenant requires it): it reaches only the enrolment routes.
ALTER TABLE sessions ADD COLUMN enrolment_only boolean NOT NULL DEFAULT false;

ALTER TABLE user_totp ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_totp FORCE ROW LEVEL SECURITY;
ALTER TABLE user_recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_recovery_codes FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_totp
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON user_recovery_codes
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON tenant_settings
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
GRANT SELECT, INSERT, UPDATE, DELETE ON user_totp, user_recovery_codes, tenant_settings TO accountdb_app;

-- OpenID Connect sign-in (commands/oidc.go). Providers are platform
-- configuration: their rows live in the platform tenant, written with their
-- events; the client secret is sealed with the vault and never in an event.
CREATE TABLE identity_providers (
    tenant_id     uuid        NOT NULL,
    provider_id   uuid        NOT NULL,
    name          text        NOT NULL,
    issuer        text        NOT NULL,
    client_id     text        NOT NULL,
    sealed_secret text        NOT NULL,
    scopes        text[]      NOT NULL,
    groups_claim  text        NOT NULL,
    mappings      jsonb       NOT NULL,
    create_users  boolean     NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider_id),
    CONSTRAINT identity_providers_name_key UNIQUE (tenant_id, name)
);

-- A sign-in in flight, from /start to /callback: the state (only its
-- SHA-256), the nonce and the PKCE verifier (sealed), good once and for ten
-- minutes. Platform rows, like the providers.
CREATE TABLE oidc_logins (
    tenant_id       uuid        NOT NULL,
    state_hash      bytea       NOT NULL,
    provider_id     uuid        NOT NULL,
    nonce           text        NOT NULL,
    sealed_verifier text        NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    PRIMARY KEY (tenant_id, state_hash)
);

-- Which AccountDB user a provider's subject is, in the user's tenant.
CREATE TABLE user_identities (
    tenant_id   uuid        NOT NULL,
    provider_id uuid        NOT NULL,
    subject     text        NOT NULL,
    user_id     uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider_id, subject)
);

ALTER TABLE identity_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_providers FORCE ROW LEVEL SECURITY;
ALTER TABLE oidc_logins ENABLE ROW LEVEL SECURITY;
ALTER TABLE oidc_logins FORCE ROW LEVEL SECURITY;
ALTER TABLE user_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_identities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON identity_providers
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON oidc_logins
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON user_identities
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
GRANT SELECT, INSERT, UPDATE, DELETE ON identity_providers, oidc_logins, user_identities TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
ALTER TABLE sessions DROP COLUMN enrolment_only;
DROP TABLE user_identities, oidc_logins, identity_providers;
DROP TABLE tenant_settings, user_recovery_codes, user_totp;
