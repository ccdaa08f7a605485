package acceptance_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// identityRoute is one mounted identity route and the permission API.md and
// DESIGN.md give it ("" = any authenticated user).
type identityRoute struct {
	method, pattern string
	perm            auth.Permission
	// ok is the status an allowed request gets in this test's set-up.
	ok int
}

// identityRoutes is the specification the permission matrix checks the
// server against, in the order requests are sent: state-changing requests
// come in pairs that undo each other (disable, enable; suspend, resume) and
// logout comes last because it ends the caller's session.
var identityRoutes = []identityRoute{
	{http.MethodGet, "/v1/users/me", "", http.StatusOK},
	{http.MethodGet, "/v1/sessions", "", http.StatusOK},
	{http.MethodDelete, "/v1/sessions/{id}", "", http.StatusNotFound}, // an id that names nothing
	{http.MethodPost, "/v1/users/me/ssh-keys", "", http.StatusAccepted},
	{http.MethodGet, "/v1/users/me/ssh-keys", "", http.StatusOK},
	{http.MethodDelete, "/v1/users/me/ssh-keys/{id}", "", http.StatusNotFound}, // an id that names nothing
	{http.MethodPost, "/v1/users/me/tokens", "", http.StatusCreated},
	{http.MethodGet, "/v1/users/me/tokens", "", http.StatusOK},
	{http.MethodDelete, "/v1/users/me/tokens/{id}", "", http.StatusNotFound}, // an id that names nothing
	{http.MethodGet, "/v1/users/{id}/tokens", auth.PermUserManage, http.StatusOK},
	{http.MethodDelete, "/v1/users/{id}/tokens/{token_id}", auth.PermUserManage, http.StatusNotFound}, // a token that is not the user's
	{http.MethodGet, "/v1/users/me/totp", "", http.StatusOK},
	{http.MethodPost, "/v1/users/me/totp", "", http.StatusOK},
	{http.MethodPost, "/v1/users/me/totp/confirm", "", http.StatusBadRequest},    // a wrong code
	{http.MethodDelete, "/v1/users/me/totp", "", http.StatusUnprocessableEntity}, // not enabled
	{http.MethodPost, "/v1/tenants", auth.PermTenantManage, http.StatusAccepted},
	{http.MethodGet, "/v1/tenants", auth.PermTenantManage, http.StatusOK},
	{http.MethodGet, "/v1/tenants/{id}", auth.PermTenantManage, http.StatusOK},
	{http.MethodPatch, "/v1/tenants/{id}", auth.PermTenantManage, http.StatusAccepted},
	{http.MethodPost, "/v1/tenants/{id}/suspend", auth.PermTenantManage, http.StatusAccepted},
	{http.MethodPost, "/v1/tenants/{id}/resume", auth.PermTenantManage, http.StatusAccepted},
	{http.MethodGet, "/v1/tenants/{id}/privacy", auth.PermTenantManage, http.StatusOK},
	{http.MethodPut, "/v1/tenants/{id}/privacy", auth.PermTenantManage, http.StatusAccepted},
	{http.MethodPost, "/v1/users", auth.PermUserManage, http.StatusAccepted},
	{http.MethodGet, "/v1/users", auth.PermUserRead, http.StatusOK},
	{http.MethodGet, "/v1/users/{id}", auth.PermUserRead, http.StatusOK},
	{http.MethodPut, "/v1/users/{id}/roles", auth.PermRoleAssign, http.StatusAccepted},
	{http.MethodPost, "/v1/users/{id}/disable", auth.PermUserManage, http.StatusAccepted},
	{http.MethodPost, "/v1/users/{id}/enable", auth.PermUserManage, http.StatusAccepted},
	// Another user's data (one's own needs none); an erasure with a wrong
	// confirmation, which erases nothing.
	{http.MethodGet, "/v1/users/{id}/export", auth.PermUserManage, http.StatusOK},
	{http.MethodPost, "/v1/users/{id}/erase", auth.PermUserManage, http.StatusUnprocessableEntity},
	// Another user's password: user:manage (one's own needs none).
	{http.MethodPut, "/v1/users/{id}/password", auth.PermUserManage, http.StatusAccepted},
	{http.MethodPost, "/v1/auth/logout", "", http.StatusNoContent},
}

// isIdentityRoute tells the identity API's authenticated routes from other
// /v1 routes (VMs, clusters…) and the public ones.
func isIdentityRoute(pattern string) bool {
	switch pattern {
	case "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/mfa", "/v1/auth/providers",
		"/v1/auth/oidc/{provider}/start", "/v1/auth/oidc/{provider}/callback":
		return false
	}
	for _, p := range []string{"/v1/auth/", "/v1/users", "/v1/sessions", "/v1/tenants"} {
		if strings.HasPrefix(pattern, p) {
			return true
		}
	}
	return false
}

// TestIdentityRoutesAreAllInTheMatrix keeps the matrix honest: every identity
// route the router mounts is in identityRoutes and vice versa.
func TestIdentityRoutesAreAllInTheMatrix(t *testing.T) {
	h := api.NewHandler(api.Deps{V1: &api.V1{}})
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("router is %T, not chi.Routes", h)
	}
	mounted := map[string]bool{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if isIdentityRoute(route) {
			mounted[method+" "+route] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range identityRoutes {
		listed[r.method+" "+r.pattern] = true
		if !mounted[r.method+" "+r.pattern] {
			t.Errorf("%s %s is in the matrix but not mounted", r.method, r.pattern)
		}
	}
	for m := range mounted {
		if !listed[m] {
			t.Errorf("%s is mounted but missing from the permission matrix", m)
		}
	}
}

// TestPermissionMatrix sends every identity route as every built-in role
// (and one combination) and checks the outcome against auth.PermissionsOf:
// allowed requests succeed, refused ones are 403 forbidden and leave an
// access_denied event naming the actor, method, route and permission.
func TestPermissionMatrix(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "matrix")
	other := s.Tenant(t, "matrix-target") // the tenant the tenant routes act on

	roleSets := [][]string{}
	for _, r := range auth.AllRoles() {
		roleSets = append(roleSets, []string{r})
	}
	roleSets = append(roleSets, []string{auth.RoleOperator, auth.RoleAuditor})

	type caller struct {
		roles  []string
		acct   stacktest.Account
		victim stacktest.Account // the user the {id} user routes act on
		token  string
	}
	var callers []*caller
	for _, roles := range roleSets {
		home := tenant
		if slices.Contains(roles, auth.RolePlatformAdmin) {
			home = domain.PlatformTenant
		}
		c := &caller{roles: roles, acct: s.User(t, home, roles...), victim: s.User(t, home, auth.RoleViewer)}
		c.token = s.Login(t, c.acct).AccessToken
		callers = append(callers, c)
	}
	pa := callers[slices.IndexFunc(callers, func(c *caller) bool { return slices.Contains(c.roles, auth.RolePlatformAdmin) })]
	for _, c := range callers {
		waitUser(t, s, pa.token, c.victim.TenantID, c.victim.ID, "active")
	}
	stacktest.Eventually(t, e2eWait, "tenant read model", func() bool {
		return s.Do(t, pa.token, http.MethodGet, "/v1/tenants/"+other.String(), nil, nil).StatusCode == http.StatusOK
	})

	for _, c := range callers {
		held := auth.PermissionsOf(c.roles)
		name := strings.Join(c.roles, "+")
		for _, rt := range identityRoutes {
			path, body := requestFor(rt, c.victim.ID, other)
			before := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'access_denied'`)
			r := s.Do(t, c.token, rt.method, path, body, nil)
			allowed := rt.perm == "" || slices.Contains(held, rt.perm)
			if allowed {
				if r.StatusCode != rt.ok {
					t.Errorf("%s: %s %s: status %d, want %d (allowed): %s", name, rt.method, rt.pattern, r.StatusCode, rt.ok, r.Body)
				}
				if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'access_denied'`); n != before {
					t.Errorf("%s: %s %s: allowed request recorded access_denied", name, rt.method, rt.pattern)
				}
				continue
			}
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %s %s: status %d, want 403: %s", name, rt.method, rt.pattern, r.StatusCode, r.Body)
				continue
			}
			wantProblem(t, r, http.StatusForbidden, "forbidden")
			n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'access_denied'
				AND tenant_id = $1 AND actor_id = $2 AND data->>'method' = $3 AND data->>'route' = $4 AND data->>'permission' = $5`,
				c.acct.TenantID, c.acct.ID, rt.method, rt.pattern, string(rt.perm))
			if n != 1 {
				t.Errorf("%s: %s %s: %d matching access_denied events, want 1", name, rt.method, rt.pattern, n)
			}
			if all := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'access_denied'`); all != before+1 {
				t.Errorf("%s: %s %s: %d new access_denied events, want 1", name, rt.method, rt.pattern, all-before)
			}
		}
		// Logout ran last: the token is dead now.
		wantProblem(t, s.Do(t, c.token, http.MethodGet, "/v1/users/me", nil, nil), http.StatusUnauthorized, "unauthenticated")
	}
}

// requestFor fills a route's path parameters and body.
func requestFor(rt identityRoute, victim, tenant uuid.UUID) (string, any) {
	path := rt.pattern
	switch {
	case strings.HasPrefix(path, "/v1/users/{id}"):
		path = strings.Replace(path, "{id}", victim.String(), 1)
	case strings.HasPrefix(path, "/v1/tenants/{id}"):
		path = strings.Replace(path, "{id}", tenant.String(), 1)
	case strings.HasPrefix(path, "/v1/sessions/{id}"), strings.HasPrefix(path, "/v1/users/me/ssh-keys/{id}"),
		strings.HasPrefix(path, "/v1/users/me/tokens/{id}"):
		path = strings.Replace(path, "{id}", uuid.NewString(), 1)
	}
	path = strings.Replace(path, "{token_id}", uuid.NewString(), 1)
	var body any
	switch rt.method + " " + rt.pattern {
	case "POST /v1/users":
		body = map[string]any{"email": newEmail(), "display_name": "Matrix", "password": strongPassword, "roles": []string{auth.RoleViewer}}
	case "PUT /v1/users/{id}/roles":
		body = map[string]any{"roles": []string{auth.RoleViewer}}
	case "PUT /v1/users/{id}/password":
		body = map[string]any{"password": strongPassword + " reset"}
	case "POST /v1/tenants":
		body = map[string]any{"name": "t-" + uuid.NewString()[:8], "quota": map[string]int{"max_vms": 1, "max_cores": 2, "max_memory_mb": 1024, "max_disk_gb": 10}}
	case "PATCH /v1/tenants/{id}":
		body = map[string]any{"name": "renamed-" + uuid.NewString()[:8]}
	case "POST /v1/users/me/tokens":
		body = map[string]any{"name": "matrix", "permissions": []string{"vm:read"}}
	case "POST /v1/users/me/totp/confirm", "DELETE /v1/users/me/totp":
		body = map[string]any{"code": "000000"}
	case "POST /v1/users/{id}/erase":
		body = map[string]any{"confirm_email": "not-the-victim@example.com"}
	case "PUT /v1/tenants/{id}/privacy":
		body = map[string]any{"request_metadata_retention_days": 30}
	case "POST /v1/users/me/ssh-keys":
		body = map[string]any{"name": "matrix", "public_key": newSSHKeyLine()}
	}
	return path, body
}
