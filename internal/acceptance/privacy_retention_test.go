package acceptance_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/privacy"
	"github.com/google/uuid"
)

// TestPrivacyRetention: a tenant's retention of request metadata. Once its
// days have passed, the client IPs and user agents of its old events read
// "[erased]" and its sessions forget them; its users' personal data stays,
// and a tenant on the default policy keeps its metadata.
func TestPrivacyRetention(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}})
	d := openDB(t, s)
	platform := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	short, long := s.Tenant(t, "short"), s.Tenant(t, "long")
	path := "/v1/tenants/" + short.String() + "/privacy"

	var pol struct {
		Days    int  `json:"request_metadata_retention_days"`
		Default bool `json:"default"`
	}
	wantStatus(t, s.Do(t, platform, http.MethodGet, path, nil, &pol), http.StatusOK)
	if pol.Days != domain.DefaultRequestMetadataDays || !pol.Default {
		t.Fatalf("a new tenant's policy: %+v", pol)
	}
	for _, bad := range []any{map[string]int{"request_metadata_retention_days": 0}, map[string]int{"request_metadata_retention_days": 4000},
		map[string]string{"request_metadata_retention_days": "7"}} {
		wantProblem(t, s.Do(t, platform, http.MethodPut, path, bad, nil), http.StatusBadRequest, "validation_failed")
	}
	wantProblem(t, s.Do(t, platform, http.MethodPut, "/v1/tenants/"+uuid.NewString()+"/privacy",
		map[string]int{"request_metadata_retention_days": 7}, nil), http.StatusNotFound, "not_found")
	shortAdmin := s.User(t, short, auth.RoleTenantAdmin)
	wantProblem(t, s.Do(t, s.Login(t, shortAdmin).AccessToken, http.MethodPut, path, map[string]int{"request_metadata_retention_days": 7}, nil),
		http.StatusForbidden, "forbidden")
	wantStatus(t, s.Do(t, platform, http.MethodPut, path, map[string]int{"request_metadata_retention_days": 7}, nil), http.StatusAccepted)
	wantStatus(t, s.Do(t, platform, http.MethodGet, path, nil, &pol), http.StatusOK)
	if pol.Days != 7 || pol.Default {
		t.Fatalf("after setting 7 days: %+v", pol)
	}

	// A person of each tenant signs in from their own address.
	ps, pl := newPerson(), newPerson()
	pl.ip = "198.51.100.9" // never the same as ps's (203.0.113.0/24)
	signIn := func(tenant uuid.UUID, p *person) uuid.UUID {
		a := s.User(t, tenant, auth.RoleTenantAdmin)
		var tok stacktest.Tokens
		wantStatus(t, s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": a.Email, "password": a.Password},
			&tok, p.as()...), http.StatusOK)
		p.token = tok.AccessToken
		return a.ID
	}
	shortUser, longUser := signIn(short, &ps), signIn(long, &pl)

	// The audit log lists committed events below the cluster's watermark: a
	// transaction elsewhere may hold a new one back for a while.
	sessionIP := func(token string, user uuid.UUID) string {
		t.Helper()
		var ip string
		stacktest.Eventually(t, e2eWait, "the session_started of "+user.String()+" in the audit log", func() bool {
			r := s.Do(t, token, http.MethodGet, "/v1/audit?type=session_started&actor_id="+user.String(), nil, nil)
			wantStatus(t, r, http.StatusOK)
			var page struct {
				Items []struct {
					Metadata map[string]string `json:"metadata"`
				} `json:"items"`
			}
			if err := json.Unmarshal(r.Body, &page); err != nil {
				t.Fatalf("audit: %s (%v)", r.Body, err)
			}
			if len(page.Items) != 1 {
				return false
			}
			ip = page.Items[0].Metadata["client_ip"]
			return true
		})
		return ip
	}
	if got := sessionIP(ps.token, shortUser); got != ps.ip {
		t.Fatalf("before retention: client_ip %q, want %q", got, ps.ip)
	}

	// Eight days later, the retention job runs.
	ret := privacy.NewRetention(privacy.RetentionConfig{Pool: s.Sys.Pool, Keys: s.Sys.Privacy.Keys, Policies: s.Sys.Commands,
		Now: func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }})
	res, err := ret.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.KeysDestroyed == 0 || res.RowsCleared == 0 {
		t.Fatalf("retention did nothing: %+v", res)
	}
	if got := sessionIP(ps.token, shortUser); got != domain.Erased {
		t.Fatalf("after retention: client_ip %q, want %q", got, domain.Erased)
	}
	if n := d.count(t, `SELECT count(*) FROM sessions WHERE tenant_id = $1 AND (ip <> '' OR user_agent <> '')`, short); n != 0 {
		t.Fatalf("%d sessions of the short tenant keep an address or agent", n)
	}
	if got := sessionIP(pl.token, longUser); got != pl.ip {
		t.Fatalf("the default policy's tenant lost its metadata: %q", got)
	}
	var me struct {
		Email string `json:"email"`
	}
	wantStatus(t, s.Do(t, ps.token, http.MethodGet, "/v1/users/me", nil, &me), http.StatusOK)
	if me.Email == "" || me.Email == domain.Erased {
		t.Fatalf("retention must not touch personal data: %q", me.Email)
	}
}
