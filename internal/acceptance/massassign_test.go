package acceptance_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// TestMassAssignment: fields the server decides (tenant_id, id, status,
// version, and roles where a route has no roles field) are refused in any
// letter case, as are duplicated keys; each refusal is a 400 naming the field,
// and nothing is written.
func TestMassAssignment(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant, other := s.Tenant(t, "mass"), s.Tenant(t, "mass-other")
	admin := s.User(t, tenant, auth.RoleTenantAdmin)
	victim := s.User(t, tenant, auth.RoleViewer)
	pa := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)
	adminTok, paTok := s.Login(t, admin).AccessToken, s.Login(t, pa).AccessToken

	email := newEmail()
	createBase := `"email":"` + email + `","display_name":"Mass","password":"` + strongPassword + `","roles":["viewer"]`
	rolesBase := `"roles":["viewer"]`
	tenantBase := `"name":"renamed"`
	// Values that would each be an escalation if they were applied.
	injected := map[string]string{
		"tenant_id": `"` + other.String() + `"`,
		"id":        `"` + uuid.NewString() + `"`,
		"status":    `"disabled"`,
		"version":   `99`,
		"roles":     `["platform_admin"]`,
	}
	variants := func(field string) []string {
		v := []string{field, strings.ToUpper(field), strings.ToUpper(field[:1]) + field[1:]}
		if field == "tenant_id" {
			v = append(v, "Tenant_ID", "tenant_ID", "TENANT_id")
		}
		return v
	}

	type attempt struct {
		name, token, method, path, body, field string
	}
	var attempts []attempt
	routes := []struct {
		name, token, method, path, base string
		fields                          []string
	}{
		{"create user", adminTok, http.MethodPost, "/v1/users", createBase, []string{"tenant_id", "id", "status", "version"}},
		{"change roles", adminTok, http.MethodPut, "/v1/users/" + victim.ID.String() + "/roles", rolesBase, []string{"tenant_id", "id", "status", "version"}},
		{"update tenant", paTok, http.MethodPatch, "/v1/tenants/" + tenant.String(), tenantBase, []string{"tenant_id", "id", "status", "version", "roles"}},
		// Also where tenant_id would be a sort of escalation of its own: the
		// platform admin naming a tenant in the body instead of ?tenant_id=.
		{"create user as platform admin", paTok, http.MethodPost, "/v1/users", createBase, []string{"tenant_id"}},
	}
	for _, rt := range routes {
		for _, f := range rt.fields {
			for _, key := range variants(f) {
				attempts = append(attempts,
					attempt{rt.name + " " + key + " last", rt.token, rt.method, rt.path, "{" + rt.base + `,"` + key + `":` + injected[f] + "}", key},
					attempt{rt.name + " " + key + " first", rt.token, rt.method, rt.path, `{"` + key + `":` + injected[f] + "," + rt.base + "}", key})
			}
		}
	}
	// Known fields in another letter case and duplicated keys.
	attempts = append(attempts,
		attempt{"create user EMAIL", adminTok, http.MethodPost, "/v1/users",
			`{"EMAIL":"` + email + `","display_name":"Mass","password":"` + strongPassword + `","roles":["viewer"]}`, "EMAIL"},
		attempt{"create user duplicate email", adminTok, http.MethodPost, "/v1/users", `{` + createBase + `,"email":"` + newEmail() + `"}`, "email"},
		attempt{"create user email and EMAIL", adminTok, http.MethodPost, "/v1/users", `{` + createBase + `,"EMAIL":"` + newEmail() + `"}`, "EMAIL"},
		attempt{"create user duplicate roles", adminTok, http.MethodPost, "/v1/users", `{` + createBase + `,"roles":["tenant_admin"]}`, "roles"},
		attempt{"create user roles and Roles", adminTok, http.MethodPost, "/v1/users", `{` + createBase + `,"Roles":["tenant_admin"]}`, "Roles"},
		attempt{"change roles duplicate", adminTok, http.MethodPut, "/v1/users/" + victim.ID.String() + "/roles", `{"roles":["viewer"],"roles":["tenant_admin"]}`, "roles"},
		attempt{"change roles ROLES", adminTok, http.MethodPut, "/v1/users/" + victim.ID.String() + "/roles", `{"roles":["viewer"],"ROLES":["tenant_admin"]}`, "ROLES"},
		attempt{"update tenant duplicate name", paTok, http.MethodPatch, "/v1/tenants/" + tenant.String(), `{"name":"a","name":"b"}`, "name"},
		attempt{"update tenant name and NAME", paTok, http.MethodPatch, "/v1/tenants/" + tenant.String(), `{"name":"a","NAME":"b"}`, "NAME"},
		attempt{"update tenant quota.tenant_id", paTok, http.MethodPatch, "/v1/tenants/" + tenant.String(),
			`{"quota":{"max_vms":1,"max_cores":1,"max_memory_mb":1,"max_disk_gb":1,"tenant_id":"` + other.String() + `"}}`, "quota.tenant_id"},
		attempt{"update tenant duplicate quota field", paTok, http.MethodPatch, "/v1/tenants/" + tenant.String(),
			`{"quota":{"max_vms":1,"max_cores":1,"max_memory_mb":1,"max_disk_gb":1,"MAX_VMS":1000}}`, "quota.MAX_VMS"},
		attempt{"disable with a status body", adminTok, http.MethodPost, "/v1/users/" + victim.ID.String() + "/disable", `{"status":"active"}`, "status"},
		attempt{"suspend with a status body", paTok, http.MethodPost, "/v1/tenants/" + other.String() + "/suspend", `{"status":"active"}`, "status"},
	)

	before := d.events(t)
	for _, a := range attempts {
		r := s.Do(t, a.token, a.method, a.path, a.body, nil)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", a.name, r.StatusCode, r.Body)
			continue
		}
		p := wantProblem(t, r, http.StatusBadRequest, "validation_failed")
		if _, ok := fieldErrors(t, p)[a.field]; !ok {
			t.Errorf("%s: errors %v do not name %q", a.name, p["errors"], a.field)
		}
	}
	if after := d.events(t); after != before {
		t.Fatalf("%d events written by refused requests", after-before)
	}
	if n := d.count(t, `SELECT count(*) FROM user_credentials WHERE email = $1`, email); n != 0 {
		t.Fatalf("a refused create user left credentials")
	}

	// Controls: the same bodies without the injected fields are accepted.
	wantStatus(t, s.Do(t, adminTok, http.MethodPost, "/v1/users", "{"+createBase+"}", nil), http.StatusAccepted)
	wantStatus(t, s.Do(t, adminTok, http.MethodPut, "/v1/users/"+victim.ID.String()+"/roles", "{"+rolesBase+"}", nil), http.StatusAccepted)
	wantStatus(t, s.Do(t, paTok, http.MethodPatch, "/v1/tenants/"+tenant.String(), "{"+tenantBase+"}", nil), http.StatusAccepted)
	var created user
	stacktest.Eventually(t, e2eWait, "the control user", func() bool {
		var l userList
		s.Do(t, adminTok, http.MethodGet, "/v1/users?email="+email, nil, &l)
		if len(l.Items) == 1 {
			created = l.Items[0]
		}
		return len(l.Items) == 1
	})
	if created.TenantID != tenant || created.Status != "active" || len(created.Roles) != 1 || created.Roles[0] != auth.RoleViewer {
		t.Fatalf("control user = %+v", created)
	}
}
