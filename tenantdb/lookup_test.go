package tenantdb_test

import (
	"context"
	"testing"

	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/migrations"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestServiceRoleCannotOpenTheCredentialTables: setting what used to open the
// sign-in tables across tenants (app.credential_lookup) opens nothing; the
// service role finds one credential by its exact email, and one refresh
// token by its exact hash, only through the SECURITY DEFINER functions.
func TestServiceRoleCannotOpenTheCredentialTables(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	admin := db.AdminConn(t)
	tenant, user, session := uuid.New(), uuid.New(), uuid.New()
	hash := []byte("0123456789abcdef0123456789abcdef")
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO user_credentials (tenant_id, user_id, email, password_hash, roles, status)
			VALUES ($1, $2, 'victim@example.com', '$argon2id$secret', '{tenant_admin}', 'active')`, []any{tenant, user}},
		{`INSERT INTO sessions (tenant_id, session_id, user_id, expires_at) VALUES ($1, $2, $3, now() + interval '1 hour')`,
			[]any{tenant, session, user}},
		{`INSERT INTO refresh_tokens (tenant_id, token_hash, session_id) VALUES ($1, $2, $3)`, []any{tenant, hash, session}},
	} {
		if _, err := admin.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		for _, s := range []string{"app.credential_lookup", "app.platform_admin", "app.cross_tenant"} {
			if _, err := tx.Exec(ctx, `SELECT set_config($1, 'on', true)`, s); err != nil {
				return err
			}
		}
		for _, table := range []string{"user_credentials", "sessions", "refresh_tokens"} {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				t.Errorf("the service role, setting every lookup flag, reads %d rows of %s", n, table)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var gotTenant, gotUser uuid.UUID
	var pwHash string
	if err := db.App.QueryRow(ctx, `SELECT tenant_id, user_id, password_hash FROM credential_by_email('victim@example.com')`).
		Scan(&gotTenant, &gotUser, &pwHash); err != nil || gotTenant != tenant || gotUser != user || pwHash != "$argon2id$secret" {
		t.Fatalf("credential_by_email: %v %v %q %v", gotTenant, gotUser, pwHash, err)
	}
	var n int
	if err := db.App.QueryRow(ctx, `SELECT count(*) FROM credential_by_email('%')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("credential_by_email matches a pattern: %d rows (%v)", n, err)
	}
	var gotSession uuid.UUID
	if err := db.App.QueryRow(ctx, `SELECT session_id FROM refresh_token_lookup($1)`, hash).Scan(&gotSession); err != nil || gotSession != session {
		t.Fatalf("refresh_token_lookup: %v %v", gotSession, err)
	}

	// The functions are the owner's, run as it, and resolve names in a fixed
	// search_path; the service role cannot become the owner.
	rows, err := admin.Query(ctx, `SELECT p.proname, p.prosecdef, pg_get_userbyid(p.proowner), coalesce(array_to_string(p.proconfig, ','), '')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'public' AND p.proname IN ('credential_by_email', 'refresh_token_lookup')`)
	if err != nil {
		t.Fatal(err)
	}
	type fn struct {
		name, owner, config string
		definer             bool
	}
	fns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fn, error) {
		var f fn
		return f, r.Scan(&f.name, &f.definer, &f.owner, &f.config)
	})
	if err != nil || len(fns) != 2 {
		t.Fatalf("look-up functions: %v (%v)", fns, err)
	}
	for _, f := range fns {
		if !f.definer || f.owner != migrations.OwnerRole || f.config != "search_path=pg_catalog, public" {
			t.Errorf("%s: security definer %v, owner %s, config %q", f.name, f.definer, f.owner, f.config)
		}
	}
	if _, err := db.App.Exec(ctx, `SET ROLE `+migrations.OwnerRole); err == nil {
		t.Fatal("the service role can SET ROLE to the owner")
	}
}
