package acceptance_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// getFields GETs path and decodes the 200 answer into a field map.
func getFields(t *testing.T, s *stacktest.Stack, token, path string) map[string]any {
	t.Helper()
	r := s.Do(t, token, http.MethodGet, path, nil, nil)
	wantStatus(t, r, http.StatusOK)
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, r.Body)
	}
	return m
}

// sameFields compares two answers field by field, naming every difference.
func sameFields(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s = %v, want %v", what, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected field %s", what, k)
		}
	}
}

func asOfQuery(sep string, at time.Time) string {
	return sep + "as_of=" + url.QueryEscape(at.Format(time.RFC3339Nano))
}

// TestTimeTravelOnUsersAndTenants: ?as_of= rebuilds a user (roles changed)
// and a tenant (renamed) from their events; the past answer is the one the
// read model gave at that time, the present one the read model's now.
func TestTimeTravelOnUsersAndTenants(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	beforeAll := time.Now()
	ten := s.Tenant(t, "travel-co")
	admin := s.User(t, ten, auth.RoleTenantAdmin)
	pa := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)
	tokA, tokP := s.Login(t, admin).AccessToken, s.Login(t, pa).AccessToken
	target := s.User(t, ten, auth.RoleViewer)
	waitUser(t, s, tokP, ten, target.ID, "active")

	// The user: viewer, then operator.
	userPath := "/v1/users/" + target.ID.String()
	then := getFields(t, s, tokA, userPath)
	mid := time.Now()
	wantStatus(t, s.Do(t, tokA, http.MethodPut, userPath+"/roles", map[string]any{"roles": []string{auth.RoleOperator}}, nil), http.StatusAccepted)
	stacktest.Eventually(t, e2eWait, "roles changed", func() bool {
		return getFields(t, s, tokA, userPath)["version"] == float64(2)
	})
	now := getFields(t, s, tokA, userPath)
	sameFields(t, "user as_of mid", getFields(t, s, tokA, userPath+asOfQuery("?", mid)), then)
	sameFields(t, "user as_of now", getFields(t, s, tokA, userPath+asOfQuery("?", time.Now())), now)
	if then["roles"].([]any)[0] != auth.RoleViewer || now["roles"].([]any)[0] != auth.RoleOperator {
		t.Fatalf("roles: then %v, now %v", then["roles"], now["roles"])
	}
	// A platform administrator names the tenant, as for the read model.
	sameFields(t, "user as_of mid (platform)", getFields(t, s, tokP, userPath+"?tenant_id="+ten.String()+asOfQuery("&", mid)), then)
	wantProblem(t, s.Do(t, tokA, http.MethodGet, userPath+asOfQuery("?", beforeAll), nil, nil), http.StatusNotFound, "not_found")

	// The tenant: renamed by a platform administrator.
	tenPath := "/v1/tenants/" + ten.String()
	tThen := getFields(t, s, tokP, tenPath)
	tMid := time.Now()
	wantStatus(t, s.Do(t, tokP, http.MethodPatch, tenPath, map[string]any{"name": "travel-co renamed"}, nil), http.StatusAccepted)
	stacktest.Eventually(t, e2eWait, "tenant renamed", func() bool {
		return getFields(t, s, tokP, tenPath)["name"] == "travel-co renamed"
	})
	tNow := getFields(t, s, tokP, tenPath)
	sameFields(t, "tenant as_of mid", getFields(t, s, tokP, tenPath+asOfQuery("?", tMid)), tThen)
	sameFields(t, "tenant as_of now", getFields(t, s, tokP, tenPath+asOfQuery("?", time.Now())), tNow)
	if tThen["name"] != "travel-co" {
		t.Fatalf("tenant then: %v", tThen)
	}
	wantProblem(t, s.Do(t, tokP, http.MethodGet, tenPath+asOfQuery("?", beforeAll), nil, nil), http.StatusNotFound, "not_found")

	// Bad instants name the parameter; the permission still applies.
	for _, bad := range []string{"yesterday", "2024-05-01", "2024-05-01T12:00:00"} {
		p := wantProblem(t, s.Do(t, tokA, http.MethodGet, userPath+"?as_of="+url.QueryEscape(bad), nil, nil), http.StatusBadRequest, "validation_failed")
		if fieldErrors(t, p)["as_of"] == nil {
			t.Fatalf("as_of=%s: %v", bad, p)
		}
	}
	wantProblem(t, s.Do(t, tokA, http.MethodGet, tenPath+asOfQuery("?", time.Now()), nil, nil), http.StatusForbidden, "forbidden")

	// Another tenant's user is a 404 in the past as in the present.
	other := s.Tenant(t, "elsewhere")
	otherAdmin := s.Login(t, s.User(t, other, auth.RoleTenantAdmin)).AccessToken
	wantProblem(t, s.Do(t, otherAdmin, http.MethodGet, userPath+asOfQuery("?", time.Now()), nil, nil), http.StatusNotFound, "not_found")
	wantProblem(t, s.Do(t, otherAdmin, http.MethodGet, userPath+"?tenant_id="+ten.String()+asOfQuery("&", time.Now()), nil, nil), http.StatusNotFound, "not_found")
}
