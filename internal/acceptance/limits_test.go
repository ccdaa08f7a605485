package acceptance_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestExportsAreCappedPerUserAndTenant: NDJSON exports whose clients never
// read hold an export slot each, up to the caps; past them the answer is a
// 429 with Retry-After. A stalled export is dropped by its write deadline,
// which frees its slot.
func TestExportsAreCappedPerUserAndTenant(t *testing.T) {
	// The write timeout outlasts the requests that fill the caps, even on a
	// loaded machine: a stalled export dropped before the refusals are
	// checked would free its slot too early.
	const writeTimeout = 8 * time.Second
	s := stacktest.Start(t, stacktest.Options{Limits: api.Limits{ExportsPerUser: 2, ExportsPerTenant: 3,
		ExportWriteTimeout: writeTimeout}})
	tenant, other := s.Tenant(t, "exports"), s.Tenant(t, "exports-other")
	seedEvents(t, s, tenant, 1500)
	seedEvents(t, s, other, 10)
	a := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	b := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	c := s.Login(t, s.User(t, other, auth.RoleTenantAdmin)).AccessToken
	export := func(token string) stacktest.Response {
		return s.Do(t, token, http.MethodGet, "/v1/audit", nil, nil, "Accept", "application/x-ndjson")
	}
	refused := func(r stacktest.Response, why string) {
		t.Helper()
		p := wantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", why)
		}
		if d, _ := p["detail"].(string); d == "" {
			t.Errorf("%s: no detail", why)
		}
	}

	started := time.Now()
	first := stalledExport(t, s, a)
	stalledExport(t, s, a)
	refused(export(a), "a third export of one user")
	stalledExport(t, s, b)
	refused(export(b), "a fourth export of one tenant")
	wantStatus(t, export(c), http.StatusOK) // another tenant is not affected

	// The stalled exports are dropped once they have taken nothing for the
	// write timeout: the client, reading at last, finds a broken transfer.
	time.Sleep(writeTimeout + time.Second)
	_ = first.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := io.ReadAll(first.resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a stalled export read in full after %s (err %v): its write deadline did not drop it", time.Since(started), err)
	}
	stacktest.Eventually(t, 10*time.Second, "the dropped exports' slots to free", func() bool {
		return export(a).StatusCode == http.StatusOK
	})
}

// TestStalledExportsDoNotHoldThePool: more stalled exports than the pool
// has connections hold none of them, so other tenants are served promptly
// (issue 21: 40 such exports held all 32 connections idle in transaction;
// here a pool of 4 keeps the test light).
func TestStalledExportsDoNotHoldThePool(t *testing.T) {
	const pool = 4
	s := stacktest.Start(t, stacktest.Options{PoolSize: pool})
	tenant, other := s.Tenant(t, "stall"), s.Tenant(t, "stall-other")
	seedEvents(t, s, tenant, 1500)
	token := s.Login(t, s.User(t, tenant, auth.RoleAuditor)).AccessToken
	otherToken := s.Login(t, s.User(t, other, auth.RoleTenantAdmin)).AccessToken
	for range pool + 2 {
		stalledExport(t, s, token)
	}

	stacktest.Eventually(t, 10*time.Second, "no connection of the service idle in transaction", func() bool {
		return openDB(t, s).count(t, `SELECT count(*) FROM pg_stat_activity
			WHERE usename = 'accountdb_app' AND datname = current_database() AND state LIKE 'idle in transaction%'`) == 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v1/users", nil)
	req.Header.Set("Authorization", "Bearer "+otherToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("another tenant's request while exports stall: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("another tenant's request while exports stall: %d", resp.StatusCode)
	}
}
