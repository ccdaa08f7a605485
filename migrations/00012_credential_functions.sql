-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Sign-in has to find a credential (by email) and a refresh token (by its
-- hash) before it knows the tenant. Until now a SELECT policy on a setting,
-- app.credential_lookup, opened user_credentials, sessions and
-- refresh_tokens to whoever set it; and the service role sets its own
-- settings, so any query of it (an injection, a bug) could read every
-- tenant's password hashes with one SET. The policies go. The two look-ups
-- sign-in needs become functions that run as the owner role: each answers
-- for one exact key, never a list, and the service role may only call them.
DROP POLICY credential_lookup ON user_credentials;
DROP POLICY credential_lookup ON sessions;
DROP POLICY credential_lookup ON refresh_tokens;

-- The tables force row-level security on their owner too: inside the
-- functions (and only there, since no one else runs as accountdb_owner
-- while serving) the owner reads across tenants.
CREATE POLICY definer_lookup ON user_credentials FOR SELECT TO accountdb_owner USING (true);
CREATE POLICY definer_lookup ON sessions FOR SELECT TO accountdb_owner USING (true);
CREATE POLICY definer_lookup ON refresh_tokens FOR SELECT TO accountdb_owner USING (true);

-- A fixed search_path: a SECURITY DEFINER function must not resolve names
-- through a schema its caller controls.
CREATE FUNCTION credential_by_email(p_email text)
    RETURNS TABLE (tenant_id uuid, user_id uuid, password_hash text, roles text[], status text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT c.tenant_id, c.user_id, c.password_hash, c.roles, c.status
    FROM public.user_credentials c WHERE c.email = p_email
$$;

CREATE FUNCTION refresh_token_lookup(p_hash bytea)
    RETURNS TABLE (tenant_id uuid, session_id uuid, used boolean, user_id uuid, ended boolean, expires_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT r.tenant_id, r.session_id, r.used_at IS NOT NULL, s.user_id, s.ended_at IS NOT NULL, s.expires_at
    FROM public.refresh_tokens r JOIN public.sessions s ON s.session_id = r.session_id AND s.tenant_id = r.tenant_id
    WHERE r.token_hash = p_hash
$$;

REVOKE ALL ON FUNCTION credential_by_email(text), refresh_token_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credential_by_email(text), refresh_token_lookup(bytea) TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP FUNCTION refresh_token_lookup(bytea), credential_by_email(text);
DROP POLICY definer_lookup ON refresh_tokens;
DROP POLICY definer_lookup ON sessions;
DROP POLICY definer_lookup ON user_credentials;
CREATE POLICY credential_lookup ON user_credentials FOR SELECT
    USING ((SELECT current_setting('app.credential_lookup', true)) = 'on');
CREATE POLICY credential_lookup ON sessions FOR SELECT
    USING ((SELECT current_setting('app.credential_lookup', true)) = 'on');
CREATE POLICY credential_lookup ON refresh_tokens FOR SELECT
    USING ((SELECT current_setting('app.credential_lookup', true)) = 'on');
