package acceptance_test

import (
	"net/http"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestUnknownRoles: a role name that does not exist is a 400 naming roles,
// whoever asks, not a 403 (which would also be recorded as access_denied).
func TestUnknownRoles(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "roles")
	admin := s.User(t, tenant, auth.RoleTenantAdmin)
	victim := s.User(t, tenant, auth.RoleViewer)
	tok := s.Login(t, admin).AccessToken

	before := d.events(t)
	for _, roles := range [][]string{{"superuser"}, {auth.RoleViewer, "root"}} {
		create := map[string]any{"email": newEmail(), "display_name": "x", "password": strongPassword, "roles": roles}
		for _, r := range []stacktest.Response{
			s.Do(t, tok, http.MethodPost, "/v1/users", create, nil),
			s.Do(t, tok, http.MethodPut, "/v1/users/"+victim.ID.String()+"/roles", map[string]any{"roles": roles}, nil),
		} {
			if p := wantProblem(t, r, http.StatusBadRequest, "validation_failed"); fieldErrors(t, p)["roles"] == nil {
				t.Fatalf("%s %s %v: errors %v do not name roles", r.Request.Method, r.Request.URL.Path, roles, p["errors"])
			}
		}
	}
	if after := d.events(t); after != before {
		t.Fatalf("%d events written by refused requests", after-before)
	}
}
