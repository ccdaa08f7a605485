package acceptance_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

func newUserBody(email string, roles ...string) map[string]any {
	return map[string]any{"email": email, "display_name": "Domain", "password": strongPassword, "roles": roles}
}

// TestIdentityDomainRulesOverHTTP checks the identity rules as a client sees
// them: unique emails, no granting beyond one's own permissions, a tenant
// always keeps an administrator, a suspended tenant is frozen, and the
// command controls (Idempotency-Key, If-Match, X-Consistency-Token).
func TestIdentityDomainRulesOverHTTP(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "rules")
	admin := s.User(t, tenant, auth.RoleTenantAdmin)
	auditor := s.User(t, tenant, auth.RoleAuditor)
	pa := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)
	adminTok, auditorTok, paTok := s.Login(t, admin).AccessToken, s.Login(t, auditor).AccessToken, s.Login(t, pa).AccessToken

	create := func(t *testing.T, token string, body any, headers ...string) stacktest.Response {
		t.Helper()
		return s.Do(t, token, http.MethodPost, "/v1/users", body, nil, headers...)
	}

	t.Run("read your writes", func(t *testing.T) {
		r := create(t, adminTok, newUserBody(newEmail(), auth.RoleViewer))
		wantStatus(t, r, http.StatusAccepted)
		tok, loc := r.Header.Get("X-Consistency-Token"), r.Header.Get("Location")
		if tok == "" || !strings.HasPrefix(loc, "/v1/users/") {
			t.Fatalf("202 without X-Consistency-Token or Location: %v", r.Header)
		}
		var u user
		got := s.Do(t, adminTok, http.MethodGet, loc, nil, &u, "X-Consistency-Token", tok)
		wantStatus(t, got, http.StatusOK)
		if got.Header.Get("X-Consistency") == "stale" || u.Status != "active" || "/v1/users/"+u.ID.String() != loc {
			t.Fatalf("read after write: %s %v", got.Body, got.Header)
		}
	})

	t.Run("duplicate email in any case", func(t *testing.T) {
		email := newEmail()
		wantStatus(t, create(t, adminTok, newUserBody(email, auth.RoleViewer)), http.StatusAccepted)
		otherTenant := s.Tenant(t, "rules-other")
		before := d.events(t)
		for _, e := range []string{email, strings.ToUpper(email), "  " + strings.ToUpper(email[:1]) + email[1:]} {
			r := create(t, adminTok, newUserBody(e, auth.RoleViewer))
			if r.StatusCode != http.StatusConflict {
				t.Fatalf("%q: status %d, want 409: %s", e, r.StatusCode, r.Body)
			}
			wantProblem(t, r, http.StatusConflict, "conflict")
		}
		// Emails are unique across the platform, not only within a tenant.
		wantStatus(t, s.Do(t, paTok, http.MethodPost, "/v1/users?tenant_id="+otherTenant.String(),
			newUserBody(strings.ToUpper(email), auth.RoleViewer), nil), http.StatusConflict)
		if after := d.events(t); after != before {
			t.Fatalf("%d events written by refused creations", after-before)
		}
	})

	t.Run("no granting beyond one's own permissions", func(t *testing.T) {
		target := s.User(t, tenant, auth.RoleViewer)
		before := d.events(t)
		wantProblem(t, create(t, adminTok, newUserBody(newEmail(), auth.RolePlatformAdmin)), http.StatusForbidden, "forbidden")
		wantProblem(t, create(t, adminTok, newUserBody(newEmail(), auth.RoleViewer, auth.RolePlatformAdmin)), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, adminTok, http.MethodPut, "/v1/users/"+target.ID.String()+"/roles",
			map[string]any{"roles": []string{auth.RolePlatformAdmin}}, nil), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, adminTok, http.MethodPut, "/v1/users/"+admin.ID.String()+"/roles",
			map[string]any{"roles": []string{auth.RoleTenantAdmin, auth.RolePlatformAdmin}}, nil), http.StatusForbidden, "forbidden")
		// Without role:assign, no role at all, not even one the caller holds.
		for _, roles := range [][]string{{auth.RoleAuditor}, {auth.RoleViewer}, {}} {
			wantProblem(t, s.Do(t, auditorTok, http.MethodPut, "/v1/users/"+target.ID.String()+"/roles",
				map[string]any{"roles": roles}, nil), http.StatusForbidden, "forbidden")
		}
		// Every refusal is recorded as a denied request; nothing else is written.
		if n := d.events(t) - before; n != 7 {
			t.Fatalf("7 refused grants wrote %d events, want 7 access_denied", n)
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'access_denied' AND actor_id = $1 AND data->>'permission' = 'role:assign'`,
			admin.ID); n != 4 {
			t.Fatalf("%d access_denied events for the admin's grants, want 4", n)
		}
		u := waitUser(t, s, adminTok, tenant, target.ID, "active")
		if len(u.Roles) != 1 || u.Roles[0] != auth.RoleViewer {
			t.Fatalf("target's roles became %v", u.Roles)
		}
	})

	t.Run("the last tenant admin stays", func(t *testing.T) {
		self := "/v1/users/" + admin.ID.String()
		before := d.events(t)
		wantProblem(t, s.Do(t, adminTok, http.MethodPut, self+"/roles", map[string]any{"roles": []string{auth.RoleViewer}}, nil),
			http.StatusUnprocessableEntity, "invalid_state")
		wantProblem(t, s.Do(t, adminTok, http.MethodPut, self+"/roles", map[string]any{"roles": []string{auth.RoleAuditor, auth.RoleVMAdmin}}, nil),
			http.StatusUnprocessableEntity, "invalid_state")
		wantProblem(t, s.Do(t, adminTok, http.MethodPost, self+"/disable", nil, nil), http.StatusUnprocessableEntity, "invalid_state")
		// Nor can a platform administrator remove it.
		wantProblem(t, s.Do(t, paTok, http.MethodPost, self+"/disable?tenant_id="+tenant.String(), nil, nil),
			http.StatusUnprocessableEntity, "invalid_state")
		if after := d.events(t); after != before {
			t.Fatalf("%d events written by refused demotions", after-before)
		}
		wantStatus(t, s.Do(t, adminTok, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)

		// With a second admin, either may step down, and then the other is
		// the last one.
		second := s.User(t, tenant, auth.RoleTenantAdmin)
		secondTok := s.Login(t, second).AccessToken
		wantStatus(t, s.Do(t, secondTok, http.MethodPut, "/v1/users/"+second.ID.String()+"/roles",
			map[string]any{"roles": []string{auth.RoleViewer}}, nil), http.StatusAccepted)
		wantProblem(t, s.Do(t, adminTok, http.MethodPost, self+"/disable", nil, nil), http.StatusUnprocessableEntity, "invalid_state")
	})

	t.Run("a role change applies to live tokens", func(t *testing.T) {
		deputy := s.User(t, tenant, auth.RoleTenantAdmin)
		deputyTok := s.Login(t, deputy).AccessToken
		wantStatus(t, create(t, deputyTok, newUserBody(newEmail(), auth.RoleViewer)), http.StatusAccepted)
		wantStatus(t, s.Do(t, adminTok, http.MethodPut, "/v1/users/"+deputy.ID.String()+"/roles",
			map[string]any{"roles": []string{auth.RoleViewer}}, nil), http.StatusAccepted)
		// The demoted deputy's token, issued before, no longer manages users,
		// and above all cannot grant itself its role back.
		wantProblem(t, create(t, deputyTok, newUserBody(newEmail(), auth.RoleViewer)), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, deputyTok, http.MethodPut, "/v1/users/"+deputy.ID.String()+"/roles",
			map[string]any{"roles": []string{auth.RoleTenantAdmin}}, nil), http.StatusForbidden, "forbidden")
		var me struct {
			Roles       []string `json:"roles"`
			Permissions []string `json:"permissions"`
		}
		wantStatus(t, s.Do(t, deputyTok, http.MethodGet, "/v1/users/me", nil, &me), http.StatusOK)
		if len(me.Roles) != 1 || me.Roles[0] != auth.RoleViewer || len(me.Permissions) != 1 || me.Permissions[0] != string(auth.PermVMRead) {
			t.Fatalf("after demotion /v1/users/me = %+v", me)
		}
	})

	t.Run("own password", func(t *testing.T) {
		me := s.User(t, tenant, auth.RoleViewer)
		tok := s.Login(t, me).AccessToken
		path := "/v1/users/" + me.ID.String() + "/password"
		next := strongPassword + " mine"
		p := wantProblem(t, s.Do(t, tok, http.MethodPut, path, map[string]any{"password": next}, nil), http.StatusBadRequest, "validation_failed")
		if _, ok := fieldErrors(t, p)["current_password"]; !ok {
			t.Fatalf("errors %v do not name current_password", p["errors"])
		}
		wantProblem(t, s.Do(t, tok, http.MethodPut, path, map[string]any{"password": next, "current_password": "wrong"}, nil),
			http.StatusBadRequest, "validation_failed")
		wantProblem(t, s.Do(t, tok, http.MethodPut, path, map[string]any{"password": "short", "current_password": me.Password}, nil),
			http.StatusBadRequest, "validation_failed")
		wantStatus(t, s.Do(t, tok, http.MethodPut, path, map[string]any{"password": next, "current_password": me.Password}, nil), http.StatusAccepted)
		wantProblem(t, login(t, s, me.Email, me.Password), http.StatusUnauthorized, "unauthenticated")
		wantStatus(t, login(t, s, me.Email, next), http.StatusOK)
		if n := d.count(t, `SELECT count(*) FROM events WHERE stream_id = $1 AND data::text ILIKE '%mine%'`, "user-"+me.ID.String()); n != 0 {
			t.Fatal("the password reached an event")
		}
	})

	t.Run("consistency token must be a position", func(t *testing.T) {
		wantProblem(t, s.Do(t, adminTok, http.MethodGet, "/v1/users", nil, nil, "X-Consistency-Token", "soon"), http.StatusBadRequest, "validation_failed")
	})

	t.Run("idempotency key", func(t *testing.T) {
		body := newUserBody(newEmail(), auth.RoleViewer)
		first := create(t, adminTok, body, "Idempotency-Key", "create-1")
		wantStatus(t, first, http.StatusAccepted)
		before := d.events(t)
		again := create(t, adminTok, body, "Idempotency-Key", "create-1")
		wantStatus(t, again, http.StatusAccepted)
		if !bytes.Equal(first.Body, again.Body) || first.Header.Get("Location") != again.Header.Get("Location") ||
			first.Header.Get("X-Consistency-Token") != again.Header.Get("X-Consistency-Token") {
			t.Fatalf("repeat answered differently:\n%s %v\n%s %v", first.Body, first.Header, again.Body, again.Header)
		}
		if d.events(t) != before {
			t.Fatal("a repeated command wrote events")
		}
		other := newUserBody(newEmail(), auth.RoleViewer)
		wantProblem(t, create(t, adminTok, other, "Idempotency-Key", "create-1"), http.StatusUnprocessableEntity, "idempotency_mismatch")
		// The same key on another route is another request.
		var a accepted
		if err := json.Unmarshal(first.Body, &a); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, s.Do(t, adminTok, http.MethodPost, "/v1/users/"+a.ID.String()+"/disable", nil, nil, "Idempotency-Key", "create-1"),
			http.StatusUnprocessableEntity, "idempotency_mismatch")
		if d.events(t) != before {
			t.Fatal("a mismatched idempotency key wrote events")
		}

		// A state change repeated with its key answers the same, once.
		dis := s.Do(t, adminTok, http.MethodPost, "/v1/users/"+a.ID.String()+"/disable", nil, nil, "Idempotency-Key", "disable-1")
		wantStatus(t, dis, http.StatusAccepted)
		before = d.events(t)
		dis2 := s.Do(t, adminTok, http.MethodPost, "/v1/users/"+a.ID.String()+"/disable", nil, nil, "Idempotency-Key", "disable-1")
		wantStatus(t, dis2, http.StatusAccepted)
		if !bytes.Equal(dis.Body, dis2.Body) || d.events(t) != before {
			t.Fatalf("repeated disable: %s then %s, %d new events", dis.Body, dis2.Body, d.events(t)-before)
		}
		// A repeat carrying the If-Match of the first request still gets the
		// first answer, not a 412 against the version it produced.
		var dv accepted
		if err := json.Unmarshal(dis.Body, &dv); err != nil {
			t.Fatal(err)
		}
		ifMatch := `"` + strconv.FormatInt(dv.StreamVersion, 10) + `"`
		en := s.Do(t, adminTok, http.MethodPost, "/v1/users/"+a.ID.String()+"/enable", nil, nil, "Idempotency-Key", "enable-1", "If-Match", ifMatch)
		wantStatus(t, en, http.StatusAccepted)
		before = d.events(t)
		en2 := s.Do(t, adminTok, http.MethodPost, "/v1/users/"+a.ID.String()+"/enable", nil, nil, "Idempotency-Key", "enable-1", "If-Match", ifMatch)
		wantStatus(t, en2, http.StatusAccepted)
		if !bytes.Equal(en.Body, en2.Body) || en2.Header.Get("Idempotent-Replayed") != "true" || d.events(t) != before {
			t.Fatalf("repeated enable: %s then %s", en.Body, en2.Body)
		}
		// Another user's identical key is theirs alone.
		// (a replay would be a 202; this is a new command, and the email is taken).
		r := s.Do(t, paTok, http.MethodPost, "/v1/users?tenant_id="+tenant.String(), body, nil, "Idempotency-Key", "create-1")
		wantProblem(t, r, http.StatusConflict, "conflict")
	})

	t.Run("if-match", func(t *testing.T) {
		target := s.User(t, tenant, auth.RoleViewer)
		u := waitUser(t, s, adminTok, tenant, target.ID, "active")
		v := strconv.FormatInt(u.Version, 10)
		r := s.Do(t, adminTok, http.MethodPost, "/v1/users/"+target.ID.String()+"/disable", nil, nil, "If-Match", `"`+v+`"`)
		wantStatus(t, r, http.StatusAccepted)
		var a accepted
		if err := json.Unmarshal(r.Body, &a); err != nil {
			t.Fatal(err)
		}
		if a.StreamVersion != u.Version+1 {
			t.Fatalf("stream_version %d after version %d", a.StreamVersion, u.Version)
		}
		before := d.events(t)
		wantProblem(t, s.Do(t, adminTok, http.MethodPost, "/v1/users/"+target.ID.String()+"/enable", nil, nil, "If-Match", `"`+v+`"`),
			http.StatusPreconditionFailed, "precondition_failed")
		wantProblem(t, s.Do(t, adminTok, http.MethodPut, "/v1/users/"+target.ID.String()+"/roles",
			map[string]any{"roles": []string{auth.RoleAuditor}}, nil, "If-Match", `"`+v+`"`), http.StatusPreconditionFailed, "precondition_failed")
		wantProblem(t, s.Do(t, paTok, http.MethodPatch, "/v1/tenants/"+tenant.String(), map[string]any{"name": "x"}, nil, "If-Match", `"999"`),
			http.StatusPreconditionFailed, "precondition_failed")
		if d.events(t) != before {
			t.Fatal("a failed If-Match wrote events")
		}
		wantStatus(t, s.Do(t, adminTok, http.MethodPost, "/v1/users/"+target.ID.String()+"/enable", nil, nil,
			"If-Match", `"`+strconv.FormatInt(a.StreamVersion, 10)+`"`), http.StatusAccepted)
	})

	t.Run("suspended tenant", func(t *testing.T) {
		frozen := s.Tenant(t, "rules-frozen")
		fAdmin := s.User(t, frozen, auth.RoleTenantAdmin)
		fUser := s.User(t, frozen, auth.RoleViewer)
		fTok := s.Login(t, fAdmin)
		fid := "/v1/tenants/" + frozen.String()
		wantStatus(t, s.Do(t, paTok, http.MethodPost, fid+"/suspend", nil, nil), http.StatusAccepted)
		wantProblem(t, s.Do(t, paTok, http.MethodPost, fid+"/suspend", nil, nil), http.StatusUnprocessableEntity, "invalid_state")

		before := d.tenantEvents(t, frozen)
		u := "/v1/users/" + fUser.ID.String()
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/v1/users", newUserBody(newEmail(), auth.RoleViewer)},
			{http.MethodPut, u + "/roles", map[string]any{"roles": []string{auth.RoleAuditor}}},
			{http.MethodPost, u + "/disable", nil},
			{http.MethodPost, u + "/enable", nil},
			{http.MethodPut, u + "/password", map[string]any{"password": strongPassword + " new"}},
		} {
			// Its users' sessions ended with the suspension: they are told
			// so. A platform administrator acting on the tenant meets the
			// suspended tenant's rule.
			wantProblem(t, s.Do(t, fTok.AccessToken, c.method, c.path, c.body, nil), http.StatusForbidden, "tenant_suspended")
			pathAs := c.path + "?tenant_id=" + frozen.String()
			wantProblem(t, s.Do(t, paTok, c.method, pathAs, c.body, nil), http.StatusUnprocessableEntity, "invalid_state")
		}
		if n := d.tenantEvents(t, frozen) - before; n != 0 {
			t.Fatalf("a suspended tenant's commands wrote %d events", n)
		}
		// Its users cannot sign in, with the answer a wrong password gets,
		// nor refresh.
		r := login(t, s, fUser.Email, fUser.Password)
		wrong := login(t, s, newEmail(), "whatever password")
		wantProblem(t, r, http.StatusUnauthorized, "unauthenticated")
		if withoutRequestID(t, r) != withoutRequestID(t, wrong) {
			t.Fatalf("a suspended tenant's login is told apart: %s", r.Body)
		}
		_, rr := refresh(t, s, fTok.RefreshToken)
		wantProblem(t, rr, http.StatusUnauthorized, "unauthenticated")

		wantStatus(t, s.Do(t, paTok, http.MethodPost, fid+"/resume", nil, nil), http.StatusAccepted)
		wantStatus(t, login(t, s, fUser.Email, fUser.Password), http.StatusOK)
		// The sessions the suspension ended stay ended; a new one works.
		wantProblem(t, create(t, fTok.AccessToken, newUserBody(newEmail(), auth.RoleViewer)), http.StatusUnauthorized, "unauthenticated")
		wantStatus(t, create(t, s.Login(t, fAdmin).AccessToken, newUserBody(newEmail(), auth.RoleViewer)), http.StatusAccepted)
	})

}
