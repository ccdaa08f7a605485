package acceptance_test

import (
	"net/http"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestNoOneChangesAUserWhoOutranksThem: inside the platform tenant a
// tenant_admin holds user:manage and role:assign, yet must not reset a
// platform administrator's password (and sign in as them), demote or
// disable them; and the last platform administrator can be neither demoted
// nor disabled, as a tenant's last tenant_admin cannot.
func TestNoOneChangesAUserWhoOutranksThem(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	pa := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)
	other := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)
	ta := s.User(t, domain.PlatformTenant, auth.RoleTenantAdmin)
	viewer := s.User(t, domain.PlatformTenant, auth.RoleViewer)
	paTok, taTok := s.Login(t, pa).AccessToken, s.Login(t, ta).AccessToken
	target := "/v1/users/" + pa.ID.String()

	t.Run("a platform tenant_admin cannot touch a platform_admin", func(t *testing.T) {
		before := d.events(t)
		denied := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'access_denied' AND actor_id = $1`, ta.ID)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPut, target + "/password", map[string]any{"password": strongPassword + " taken over"}},
			{http.MethodPut, target + "/roles", map[string]any{"roles": []string{auth.RoleViewer}}},
			{http.MethodPost, target + "/disable", nil},
			{http.MethodPost, target + "/enable", nil},
		} {
			wantProblem(t, s.Do(t, taTok, c.method, c.path, c.body, nil), http.StatusForbidden, "forbidden")
		}
		if n := d.events(t) - before; n != 4 {
			t.Fatalf("%d events after four refused changes, want the 4 access_denied", n)
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'access_denied' AND actor_id = $1`, ta.ID) - denied; n != 4 {
			t.Fatalf("%d access_denied events, want 4", n)
		}
		wantStatus(t, login(t, s, pa.Email, pa.Password), http.StatusOK)
		// What the tenant_admin may manage, it still may.
		wantStatus(t, s.Do(t, taTok, http.MethodPut, "/v1/users/"+viewer.ID.String()+"/password",
			map[string]any{"password": strongPassword + " reset"}, nil), http.StatusAccepted)
		wantStatus(t, s.Do(t, taTok, http.MethodPost, "/v1/users/"+viewer.ID.String()+"/disable", nil, nil), http.StatusAccepted)
	})

	t.Run("the last platform_admin stays", func(t *testing.T) {
		wantStatus(t, s.Do(t, paTok, http.MethodPost, "/v1/users/"+other.ID.String()+"/disable", nil, nil), http.StatusAccepted)
		before := d.events(t)
		wantProblem(t, s.Do(t, paTok, http.MethodPut, target+"/roles", map[string]any{"roles": []string{auth.RoleTenantAdmin}}, nil),
			http.StatusUnprocessableEntity, "invalid_state")
		wantProblem(t, s.Do(t, paTok, http.MethodPost, target+"/disable", nil, nil), http.StatusUnprocessableEntity, "invalid_state")
		if d.events(t) != before {
			t.Fatal("a refused change of the last platform_admin wrote events")
		}
		// With another platform_admin active again, the first may step down.
		wantStatus(t, s.Do(t, paTok, http.MethodPost, "/v1/users/"+other.ID.String()+"/enable", nil, nil), http.StatusAccepted)
		wantStatus(t, s.Do(t, paTok, http.MethodPut, target+"/roles", map[string]any{"roles": []string{auth.RoleTenantAdmin}}, nil),
			http.StatusAccepted)
	})
}
