package auth

import (
	"errors"
	"slices"
	"testing"
)

func perms(ps ...Permission) []Permission { return ps }

func TestRolePermissionsTable(t *testing.T) {
	vm := perms(PermVMConfig, PermVMConsole, PermVMCreate, PermVMDelete, PermVMPower, PermVMRead, PermVMSnapshot)
	tests := []struct {
		roles []string
		want  []Permission
	}{
		{nil, perms()},
		{[]string{}, perms()},
		{[]string{"no_such_role"}, perms()},
		{[]string{RoleViewer}, perms(PermVMRead)},
		{[]string{RoleOperator}, perms(PermVMConsole, PermVMPower, PermVMRead, PermVMSnapshot)},
		{[]string{RoleVMAdmin}, vm},
		{[]string{RoleTenantAdmin}, perms(PermAuditRead, PermRoleAssign, PermUsageRead, PermUserManage, PermUserRead, PermVMConfig, PermVMConsole, PermVMCreate, PermVMDelete, PermVMPower, PermVMRead, PermVMSnapshot, PermWebhookManage)},
		{[]string{RoleAuditor}, perms(PermAuditRead, PermUserRead, PermVMRead)},
		{[]string{RolePlatformAdmin}, perms(PermAuditRead, PermClusterManage, PermRoleAssign, PermTenantManage, PermUsageRead, PermUserManage, PermUserRead, PermVMConfig, PermVMConsole, PermVMCreate, PermVMDelete, PermVMPower, PermVMRead, PermVMSnapshot, PermWebhookManage)},
		{[]string{RoleViewer, RoleOperator, RoleViewer}, perms(PermVMConsole, PermVMPower, PermVMRead, PermVMSnapshot)},
		{[]string{RoleAuditor, RoleOperator, "bogus"}, perms(PermAuditRead, PermUserRead, PermVMConsole, PermVMPower, PermVMRead, PermVMSnapshot)},
	}
	for _, tt := range tests {
		got := PermissionsOf(tt.roles)
		if got == nil || !slices.Equal(got, tt.want) {
			t.Errorf("PermissionsOf(%v) = %v, want %v", tt.roles, got, tt.want)
		}
		for _, p := range AllPermissions() {
			if HasPermission(tt.roles, p) != slices.Contains(tt.want, p) {
				t.Errorf("HasPermission(%v, %s) disagrees with PermissionsOf", tt.roles, p)
			}
		}
	}
}

func TestRBACVocabulary(t *testing.T) {
	all := AllPermissions()
	if len(all) != 15 {
		t.Fatalf("AllPermissions = %v", all)
	}
	for _, p := range all {
		if !ValidPermission(p) {
			t.Errorf("%s not valid", p)
		}
	}
	if ValidPermission("vm:everything") {
		t.Error("unknown permission valid")
	}
	if got := PermissionsOf([]string{RolePlatformAdmin}); len(got) != len(all) {
		t.Errorf("platform_admin lacks permissions: %v", got)
	}
	roles := AllRoles()
	if !slices.Equal(roles, []string{"viewer", "operator", "vm_admin", "tenant_admin", "auditor", "platform_admin"}) {
		t.Fatalf("AllRoles = %v", roles)
	}
	for _, r := range roles {
		if !ValidRole(r) {
			t.Errorf("%s not valid", r)
		}
	}
	for _, r := range []string{"", "admin", "Viewer", "PVEAuditor", "platform_admin "} {
		if ValidRole(r) {
			t.Errorf("ValidRole(%q) = true", r)
		}
	}
	// Returned slices are copies.
	AllRoles()[0] = "mutated"
	AllPermissions()[0] = "mutated"
	PermissionsOf([]string{RolePlatformAdmin})[0] = "mutated"
	if AllRoles()[0] != RoleViewer || AllPermissions()[0] != PermVMRead || PermissionsOf([]string{RoleVMAdmin})[0] != PermVMConfig {
		t.Fatal("internal tables mutated through returned slices")
	}
	// Only platform_admin holds platform permissions.
	for _, r := range roles {
		if r != RolePlatformAdmin && (HasPermission([]string{r}, PermTenantManage) || HasPermission([]string{r}, PermClusterManage)) {
			t.Errorf("%s holds a platform permission", r)
		}
	}
}

func TestRolesGrantable(t *testing.T) {
	tests := []struct {
		name      string
		granter   []string
		requested []string
		want      error
	}{
		{"tenant_admin grants viewer", []string{RoleTenantAdmin}, []string{RoleViewer}, nil},
		{"tenant_admin grants everything in tenant", []string{RoleTenantAdmin}, []string{RoleViewer, RoleOperator, RoleVMAdmin, RoleAuditor, RoleTenantAdmin}, nil},
		{"tenant_admin grants nothing", []string{RoleTenantAdmin}, nil, nil},
		{"tenant_admin cannot grant platform_admin", []string{RoleTenantAdmin}, []string{RolePlatformAdmin}, ErrNotGrantable},
		{"platform_admin grants platform_admin", []string{RolePlatformAdmin}, []string{RolePlatformAdmin}, nil},
		{"platform_admin grants all", []string{RolePlatformAdmin}, AllRoles(), nil},
		{"viewer lacks role:assign", []string{RoleViewer}, []string{RoleViewer}, ErrNotGrantable},
		{"vm_admin lacks role:assign", []string{RoleVMAdmin}, []string{RoleOperator}, ErrNotGrantable},
		{"auditor lacks role:assign", []string{RoleAuditor}, nil, ErrNotGrantable},
		{"no roles", nil, []string{RoleViewer}, ErrNotGrantable},
		{"unknown granter roles grant nothing", []string{"root"}, []string{RoleViewer}, ErrNotGrantable},
		{"unknown requested role", []string{RolePlatformAdmin}, []string{"root"}, ErrUnknownRole},
		{"unknown among known", []string{RoleTenantAdmin}, []string{RoleViewer, "superuser"}, ErrUnknownRole},
		{"mixed roles still bounded", []string{RoleTenantAdmin, RoleAuditor}, []string{RolePlatformAdmin}, ErrNotGrantable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RolesGrantable(tt.granter, tt.requested)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("RolesGrantable = %v, want %v", err, tt.want)
			}
		})
	}
}

// The subset rule, checked exhaustively: whenever RolesGrantable allows a
// grant, the granted permissions are a subset of the granter's.
func TestRolesGrantableNeverEscalates(t *testing.T) {
	roles := AllRoles()
	for mask := range 1 << len(roles) {
		var granter []string
		for i, r := range roles {
			if mask&(1<<i) != 0 {
				granter = append(granter, r)
			}
		}
		held := PermissionsOf(granter)
		for _, r := range roles {
			err := RolesGrantable(granter, []string{r})
			subset := true
			for _, p := range PermissionsOf([]string{r}) {
				if !slices.Contains(held, p) {
					subset = false
				}
			}
			if err == nil && !subset {
				t.Errorf("%v may grant %s without holding its permissions", granter, r)
			}
			if err == nil && r == RolePlatformAdmin && !slices.Contains(granter, RolePlatformAdmin) {
				t.Errorf("%v may grant platform_admin", granter)
			}
			if err == nil && !slices.Contains(held, PermRoleAssign) {
				t.Errorf("%v may grant without role:assign", granter)
			}
		}
	}
}

func TestHoldsAllOf(t *testing.T) {
	for _, c := range []struct {
		holder, roles []string
		want          bool
	}{
		{[]string{RoleTenantAdmin}, []string{RoleViewer, RoleVMAdmin}, true},
		{[]string{RoleTenantAdmin}, []string{RoleTenantAdmin}, true},
		{[]string{RoleTenantAdmin}, []string{RolePlatformAdmin}, false},
		{[]string{RoleOperator}, []string{RoleAuditor}, false},
		{[]string{RolePlatformAdmin}, AllRoles(), true},
		{nil, []string{RoleViewer}, false},
		{nil, nil, true},
	} {
		if got := HoldsAllOf(c.holder, c.roles); got != c.want {
			t.Errorf("HoldsAllOf(%v, %v) = %v, want %v", c.holder, c.roles, got, c.want)
		}
	}
}
