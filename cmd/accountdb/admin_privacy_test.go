package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/authtest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/vault"
)

// TestAdminEraseUserAndPrivacyReport: the operator's erasure by id, seen
// through the replay command (the CLI reads through the same revealer), and
// the privacy report of a deployment with nothing in plaintext.
func TestAdminEraseUserAndPrivacyReport(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	key := bytes.Repeat([]byte{5}, 32)
	t.Setenv("ACCOUNTDB_SECRETS_KEY", base64.StdEncoding.EncodeToString(key))
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := app.OpenPrivacy(ctx, db.AppURL, v)
	if err != nil {
		t.Fatal(err)
	}
	defer priv.Close()
	keys := authtest.KeySet(t)
	h := priv.Commands(app.NewCommandHandler(priv.Store(app.NewStore(eventstore.New(db.App, nil))), keys))
	sys := commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}}
	tenant, err := h.CreateTenant(ctx, sys, commands.Options{}, "cli", domain.Quota{MaxVMs: 1, MaxCores: 1, MaxMemoryMB: 512, MaxDiskGB: 1})
	if err != nil {
		t.Fatal(err)
	}
	const email = "grace.cli@example.com"
	u, err := h.CreateUser(ctx, sys, commands.Options{}, commands.NewUser{TenantID: tenant.ID, Email: email, DisplayName: "Grace CLI",
		Password: "correct horse battery staple 42", Roles: []string{auth.RoleViewer}})
	if err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append(args[:1:1], append([]string{"--database-url", db.AdminURL, "--data-dir", t.TempDir()}, args[1:]...)...), &out, io.Discard)
		return out.String(), err
	}
	admin := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"admin", args[0], "--database-url", db.AdminURL, "--data-dir", t.TempDir()}, args[1:]...), &out, io.Discard)
		return out.String(), err
	}
	stream := "user-" + u.ID.String()
	if out, err := cli("replay", "--stream", stream); err != nil || !strings.Contains(out, email) {
		t.Fatalf("replay before: %v\n%s", err, out)
	}
	// A snapshot of the user's stream (taken every 500 events) holds the
	// decrypted email: erasure deletes it.
	conn := db.AdminConn(t)
	if _, err := conn.Exec(ctx, `INSERT INTO snapshots (tenant_id, stream_id, state_version, stream_version, covered_until, state)
		VALUES ($1, $2, 'test', 1, now(), jsonb_build_object('Email', $3::text))`, tenant.ID, stream, email); err != nil {
		t.Fatal(err)
	}
	if _, err := admin("erase-user", "--tenant", tenant.ID.String(), "--user", u.ID.String()); err == nil {
		t.Fatal("erase-user without --yes ran")
	}
	out, err := admin("erase-user", "--tenant", tenant.ID.String(), "--user", u.ID.String(), "--yes")
	if err != nil || !strings.Contains(out, "erased") {
		t.Fatalf("erase-user: %v\n%s", err, out)
	}
	if out, err := cli("replay", "--stream", stream); err != nil || strings.Contains(out, email) || !strings.Contains(out, domain.Erased) {
		t.Fatalf("replay after: %v\n%s", err, out)
	}
	var snaps int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM snapshots WHERE stream_id = $1`, stream).Scan(&snaps); err != nil || snaps != 0 {
		t.Fatalf("%d snapshots of the erased user's stream remain (%v)", snaps, err)
	}
	if _, err := admin("erase-user", "--tenant", tenant.ID.String(), "--user", u.ID.String(), "--yes"); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Fatalf("erasing twice: %v", err)
	}
	if out, err := admin("privacy-report"); err != nil || !strings.Contains(out, "no event holds personal data in plaintext") {
		t.Fatalf("privacy-report: %v\n%s", err, out)
	}
}
