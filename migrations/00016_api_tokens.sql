-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- API tokens, written in the same transaction as their events (like
-- sessions): a revoked token must stop working at once. Only the SHA-256 of
-- a token is kept (it has 214 random bits; see auth/apitoken.go).
-- last_used_at and last_used_ip are written in batches (commands/apitoken_usage.go),
-- never once per request.
CREATE TABLE api_tokens (
    tenant_id     uuid        NOT NULL,
    token_id      uuid        NOT NULL UNIQUE,
    user_id       uuid        NOT NULL,
    name          text        NOT NULL,
    prefix        text        NOT NULL,
    token_hash    bytea       NOT NULL,
    permissions   text[]      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    first_used_at timestamptz,
    last_used_at  timestamptz,
    last_used_ip  text,
    PRIMARY KEY (tenant_id, token_id),
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX api_tokens_user ON api_tokens (tenant_id, user_id, created_at, token_id);

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_tokens
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
-- Only the look-up function below reads across tenants (migrations/00012).
CREATE POLICY definer_lookup ON api_tokens FOR SELECT TO accountdb_owner USING (true);

GRANT SELECT, INSERT, UPDATE ON api_tokens TO accountdb_app;

-- A request's API token is found by its hash before its tenant is known:
-- one exact key, with what authenticating it needs (the token's state, its
-- user's roles and status now).
CREATE FUNCTION api_token_lookup(p_hash bytea)
    RETURNS TABLE (tenant_id uuid, token_id uuid, user_id uuid, permissions text[], expires_at timestamptz,
                   revoked boolean, first_used boolean, roles text[], status text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT t.tenant_id, t.token_id, t.user_id, t.permissions, t.expires_at, t.revoked_at IS NOT NULL,
           t.first_used_at IS NOT NULL, c.roles, c.status
    FROM public.api_tokens t JOIN public.user_credentials c ON c.tenant_id = t.tenant_id AND c.user_id = t.user_id
    WHERE t.token_hash = p_hash
$$;
REVOKE ALL ON FUNCTION api_token_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_token_lookup(bytea) TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP FUNCTION api_token_lookup(bytea);
DROP TABLE api_tokens;
