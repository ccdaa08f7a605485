package commands_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/authtest"
)

// stubThrottle never locks; each operation fails with its error when set.
type stubThrottle struct{ allowErr, failureErr, successErr error }

func (s stubThrottle) Allow(context.Context, string) (bool, time.Duration, error) {
	return s.allowErr == nil, 0, s.allowErr
}
func (s stubThrottle) Failure(context.Context, string) error { return s.failureErr }
func (s stubThrottle) Success(context.Context, string) error { return s.successErr }

// TestLoginWhenTheThrottleIsDown: an attempt the throttle cannot check or
// record gets ErrThrottleUnavailable (503), whether the password was right or
// wrong: never a 401 that would be an uncounted guess, never a session.
func TestLoginWhenTheThrottleIsDown(t *testing.T) {
	ctx := context.Background()
	f := newPGFixture(t)
	keys := authtest.KeySet(t)
	platform := commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}}
	tenant, err := f.h.CreateTenant(ctx, platform, commands.Options{}, "throttle", domain.Quota{MaxVMs: 1, MaxCores: 1, MaxMemoryMB: 512, MaxDiskGB: 10})
	if err != nil {
		t.Fatal(err)
	}
	const email, password = "throttle@example.com", "correct horse battery staple"
	if _, err := f.h.CreateUser(ctx, platform, commands.Options{}, commands.NewUser{TenantID: tenant.ID, Email: email,
		DisplayName: "T", Password: password, Roles: []string{auth.RoleViewer}}); err != nil {
		t.Fatal(err)
	}
	down := errors.New("connection refused")
	handler := func(th auth.Throttle) *commands.Handler {
		return commands.New(f.store, pgstore.New(f.store), auth.DefaultPasswordHasher(), commands.SessionConfig{Issuer: &auth.Issuer{Keys: keys},
			AccountThrottle: th, AddressThrottle: stubThrottle{}})
	}
	meta := eventlog.Metadata{ClientIP: "192.0.2.7"}
	admin := f.db.AdminConn(t)
	count := func(query string) int {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	failedEvents := `SELECT count(*) FROM events WHERE event_type = 'login_failed'`
	sessions := `SELECT count(*) FROM sessions`

	cases := []struct {
		name          string
		h             *commands.Handler
		password      string
		want          error
		failedRecords int // login_failed events it adds
	}{
		{"no throttle configured", f.h, password, commands.ErrThrottleUnavailable, 0},
		{"allow fails: not even checked", handler(stubThrottle{allowErr: down}), password, commands.ErrThrottleUnavailable, 0},
		{"failure not recorded: no 401", handler(stubThrottle{failureErr: down}), "wrong", commands.ErrThrottleUnavailable, 1},
		{"success not recorded: no session", handler(stubThrottle{successErr: down}), password, commands.ErrThrottleUnavailable, 0},
		{"store back: a wrong password is a 401", handler(stubThrottle{}), "wrong", commands.ErrUnauthenticated, 1},
	}
	for _, c := range cases {
		before := count(failedEvents)
		_, err := c.h.Login(ctx, meta, email, c.password)
		if !errors.Is(err, c.want) || (c.want == commands.ErrThrottleUnavailable && errors.Is(err, commands.ErrUnauthenticated)) {
			t.Fatalf("%s: Login = %v, want %v", c.name, err, c.want)
		}
		if c.want == commands.ErrThrottleUnavailable && c.h != f.h && !errors.Is(err, down) {
			t.Fatalf("%s: %v does not carry the cause", c.name, err)
		}
		if n := count(failedEvents) - before; n != c.failedRecords {
			t.Fatalf("%s: %d login_failed events, want %d", c.name, n, c.failedRecords)
		}
		if n := count(sessions); n != 0 {
			t.Fatalf("%s: %d sessions opened", c.name, n)
		}
	}
	if _, err := handler(stubThrottle{}).Login(ctx, meta, email, password); err != nil {
		t.Fatalf("store back: Login = %v", err)
	}
}
