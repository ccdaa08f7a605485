package acceptance_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/privacy"
)

// TestPrivacyUpgradedDeployment: a person recorded before encryption
// existed (a command handler without a sealer writes as the old release did)
// is erased like anyone: read models and side tables cleaned, the user gone.
// Their old events keep their plaintext (the log is never rewritten), and the
// privacy report lists exactly those events.
func TestPrivacyUpgradedDeployment(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	ctx := context.Background()
	tenant := s.Tenant(t, "upgraded")
	admin := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	old := app.NewCommandHandler(app.NewStore(eventstore.New(s.Sys.Pool, nil)), s.Keys)
	p := newPerson()
	res, err := old.CreateUser(ctx, commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}},
		commands.Options{}, commands.NewUser{TenantID: tenant, Email: p.email, DisplayName: p.name, Password: strongPassword, Roles: []string{"viewer"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := d.count(t, `SELECT count(*) FROM events WHERE stream_id = $1 AND data->>'email' = $2`, "user-"+res.ID.String(), p.email); n != 1 {
		t.Fatalf("the old release's user_created should hold the email in clear (%d)", n)
	}
	stacktest.Eventually(t, e2eWait, "the old user in the read model", func() bool {
		return s.Do(t, admin, http.MethodGet, "/v1/users/"+res.ID.String(), nil, nil).StatusCode == http.StatusOK
	})
	before, err := privacy.PlaintextReport(ctx, s.Sys.Pool, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Groups) != 1 || before.Groups[0].EventType != "user_created" || before.Groups[0].Events != 1 || len(before.Erased) != 0 {
		t.Fatalf("report before the erasure: %+v", before)
	}

	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/users/"+res.ID.String()+"/erase", map[string]string{"confirm_email": p.email}, nil),
		http.StatusAccepted)
	stacktest.Eventually(t, e2eWait, "the old user gone from the read model", func() bool {
		return s.Do(t, admin, http.MethodGet, "/v1/users/"+res.ID.String(), nil, nil).StatusCode == http.StatusNotFound
	})
	for _, table := range []string{"users", "user_credentials", "role_bindings"} {
		if n := d.count(t, `SELECT count(*) FROM `+table+` WHERE user_id = $1`, res.ID); n != 0 {
			t.Errorf("%s keeps %d rows of the erased user", table, n)
		}
	}
	// What erasure cannot reach, said plainly: the old event, and the report.
	if body := auditOf(t, s, admin, res.ID); !strings.Contains(body, p.email) || !strings.Contains(body, "user_erased") {
		t.Fatalf("audit of the erased old user: %s", body)
	}
	after, err := privacy.PlaintextReport(ctx, s.Sys.Pool, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Erased) != 1 || after.Erased[0].Subject != res.ID || after.Erased[0].EventType != "user_created" {
		t.Fatalf("report after the erasure: %+v", after.Erased)
	}
	if rep, err := privacy.PlaintextReport(ctx, s.Sys.Pool, s.Tenant(t, "new")); err != nil || len(rep.Groups) != 0 {
		t.Fatalf("a tenant with only sealed data: %+v %v", rep, err)
	}
}
