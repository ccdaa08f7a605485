package acceptance_test

import (
	"net/http"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// TestCrossTenant: tenant A's administrator cannot see or touch tenant B's
// users and sessions: every id of B is a 404, exactly like an id that does
// not exist, and nothing is written to B. Only a platform administrator may
// name another tenant with ?tenant_id=.
func TestCrossTenant(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	a, b := s.Tenant(t, "tenant-a"), s.Tenant(t, "tenant-b")
	adminA := s.User(t, a, auth.RoleTenantAdmin)
	adminB := s.User(t, b, auth.RoleTenantAdmin)
	userB := s.User(t, b, auth.RoleViewer)
	pa := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)

	tokA := s.Login(t, adminA).AccessToken
	tokB := s.Login(t, adminB).AccessToken
	tokP := s.Login(t, pa).AccessToken
	sessB := sessionOf(t, tokB)
	waitUser(t, s, tokP, b, userB.ID, "active")
	waitUser(t, s, tokP, b, adminB.ID, "active")

	before := d.tenantEvents(t, b)
	notFound := func(method, path string, body any) {
		t.Helper()
		wantProblem(t, s.Do(t, tokA, method, path, body, nil), http.StatusNotFound, "not_found")
	}
	for _, target := range []uuid.UUID{userB.ID, adminB.ID} {
		id := target.String()
		notFound(http.MethodGet, "/v1/users/"+id, nil)
		notFound(http.MethodPut, "/v1/users/"+id+"/roles", map[string]any{"roles": []string{auth.RoleViewer}})
		notFound(http.MethodPost, "/v1/users/"+id+"/disable", nil)
		notFound(http.MethodPost, "/v1/users/"+id+"/enable", nil)
		notFound(http.MethodPut, "/v1/users/"+id+"/password", map[string]any{"password": strongPassword + " stolen"})
	}
	notFound(http.MethodDelete, "/v1/sessions/"+sessB.String(), nil)

	// Naming B explicitly does not help a tenant administrator.
	q := "?tenant_id=" + b.String()
	notFound(http.MethodGet, "/v1/users"+q, nil)
	notFound(http.MethodGet, "/v1/users/"+userB.ID.String()+q, nil)
	notFound(http.MethodPost, "/v1/users"+q, map[string]any{"email": newEmail(), "display_name": "Intruder", "password": strongPassword, "roles": []string{auth.RoleTenantAdmin}})
	notFound(http.MethodPut, "/v1/users/"+userB.ID.String()+"/roles"+q, map[string]any{"roles": []string{auth.RoleTenantAdmin}})
	notFound(http.MethodPost, "/v1/users/"+userB.ID.String()+"/disable"+q, nil)
	notFound(http.MethodPost, "/v1/users/"+userB.ID.String()+"/enable"+q, nil)
	notFound(http.MethodPut, "/v1/users/"+userB.ID.String()+"/password"+q, map[string]any{"password": strongPassword + " stolen"})

	// Within A, another user's session is no more visible than B's.
	userA := s.User(t, a, auth.RoleViewer)
	tokUserA := s.Login(t, userA).AccessToken
	beforeA := d.tenantEvents(t, a)
	notFound(http.MethodDelete, "/v1/sessions/"+sessionOf(t, tokUserA).String(), nil)
	wantStatus(t, s.Do(t, tokUserA, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
	if n := d.tenantEvents(t, a); n != beforeA {
		t.Fatalf("revoking another user's session wrote %d events", n-beforeA)
	}

	if after := d.tenantEvents(t, b); after != before {
		t.Fatalf("tenant B has %d new events after tenant A's attempts", after-before)
	}
	// B is untouched: its session lives, its users keep their roles and status.
	wantStatus(t, s.Do(t, tokB, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
	var u user
	wantStatus(t, s.Do(t, tokB, http.MethodGet, "/v1/users/"+userB.ID.String(), nil, &u), http.StatusOK)
	if u.Status != "active" || len(u.Roles) != 1 || u.Roles[0] != auth.RoleViewer {
		t.Fatalf("tenant B's user changed: %+v", u)
	}

	// A's own list shows only A.
	var listA userList
	wantStatus(t, s.Do(t, tokA, http.MethodGet, "/v1/users", nil, &listA), http.StatusOK)
	for _, it := range listA.Items {
		if it.TenantID != a {
			t.Fatalf("tenant A's list holds %+v", it)
		}
	}

	// A platform administrator reads B's users through ?tenant_id=.
	var listB userList
	wantStatus(t, s.Do(t, tokP, http.MethodGet, "/v1/users"+q, nil, &listB), http.StatusOK)
	seen := map[uuid.UUID]bool{}
	for _, it := range listB.Items {
		if it.TenantID != b {
			t.Fatalf("?tenant_id=B lists %+v", it)
		}
		seen[it.ID] = true
	}
	if len(listB.Items) != 2 || !seen[userB.ID] || !seen[adminB.ID] {
		t.Fatalf("platform admin's list of B = %+v, want B's two users", listB.Items)
	}
	var got user
	wantStatus(t, s.Do(t, tokP, http.MethodGet, "/v1/users/"+userB.ID.String()+q, nil, &got), http.StatusOK)
	if got.ID != userB.ID || got.TenantID != b {
		t.Fatalf("platform admin's read of B's user = %+v", got)
	}
	// Without ?tenant_id= the platform admin is in its own tenant: B's ids are 404 there too.
	wantProblem(t, s.Do(t, tokP, http.MethodGet, "/v1/users/"+userB.ID.String(), nil, nil), http.StatusNotFound, "not_found")
	// A tenant that does not exist takes no users; a malformed one is a 400.
	before = d.events(t)
	wantProblem(t, s.Do(t, tokP, http.MethodPost, "/v1/users?tenant_id="+uuid.NewString(),
		map[string]any{"email": newEmail(), "display_name": "Ghost", "password": strongPassword, "roles": []string{auth.RoleViewer}}, nil),
		http.StatusNotFound, "not_found")
	wantProblem(t, s.Do(t, tokP, http.MethodGet, "/v1/users?tenant_id=not-a-uuid", nil, nil), http.StatusBadRequest, "validation_failed")
	if d.events(t) != before {
		t.Fatal("a user was created in a tenant that does not exist")
	}
}
