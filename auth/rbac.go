package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Permission is a resource:action string.
type Permission string

// Permissions.
const (
	PermVMRead        Permission = "vm:read"
	PermVMCreate      Permission = "vm:create"
	PermVMPower       Permission = "vm:power"
	PermVMConfig      Permission = "vm:config"
	PermVMSnapshot    Permission = "vm:snapshot"
	PermVMDelete      Permission = "vm:delete"
	PermUserRead      Permission = "user:read"
	PermUserManage    Permission = "user:manage"
	PermRoleAssign    Permission = "role:assign"
	PermAuditRead     Permission = "audit:read"
	PermTenantManage  Permission = "tenant:manage"
	PermClusterManage Permission = "cluster:manage"
)

// Built-in role names.
const (
	RoleViewer        = "viewer"
	RoleOperator      = "operator"
	RoleVMAdmin       = "vm_admin"
	RoleTenantAdmin   = "tenant_admin"
	RoleAuditor       = "auditor"
	RolePlatformAdmin = "platform_admin"
)

var allPermissions = []Permission{
	PermVMRead, PermVMCreate, PermVMPower, PermVMConfig, PermVMSnapshot, PermVMDelete,
	PermUserRead, PermUserManage, PermRoleAssign, PermAuditRead,
	PermTenantManage, PermClusterManage,
}

var vmPermissions = []Permission{PermVMRead, PermVMCreate, PermVMPower, PermVMConfig, PermVMSnapshot, PermVMDelete}

// rolePermissions is the built-in role table.
var rolePermissions = map[string][]Permission{
	// ≈ PVEAuditor, restricted to the tenant's VMs: look, do not touch.
	RoleViewer: {PermVMRead},
	// ≈ PVEVMUser (VM.Audit, VM.PowerMgmt, VM.Console, VM.Backup): use
	// existing VMs, power them, snapshot them; no create, reconfigure or
	// delete.
	RoleOperator: {PermVMRead, PermVMPower, PermVMSnapshot},
	// ≈ PVEVMAdmin: everything on VMs.
	RoleVMAdmin: vmPermissions,
	// Everything within a tenant: VMs, users, role assignment, audit log.
	RoleTenantAdmin: append(slices.Clone(vmPermissions), PermUserRead, PermUserManage, PermRoleAssign, PermAuditRead),
	// Read-only compliance view: VMs, users, audit log.
	RoleAuditor: {PermVMRead, PermUserRead, PermAuditRead},
	// Everything, including tenants and the Proxmox cluster.
	RolePlatformAdmin: allPermissions,
}

var allRoles = []string{RoleViewer, RoleOperator, RoleVMAdmin, RoleTenantAdmin, RoleAuditor, RolePlatformAdmin}

// AllPermissions returns every permission, in a fixed order.
func AllPermissions() []Permission { return slices.Clone(allPermissions) }

// AllRoles returns the built-in role names, from least to most privileged
// (auditor aside).
func AllRoles() []string { return slices.Clone(allRoles) }

// ValidRole reports whether role is a built-in role name.
func ValidRole(role string) bool {
	_, ok := rolePermissions[role]
	return ok
}

// ValidPermission reports whether p is a known permission.
func ValidPermission(p Permission) bool { return slices.Contains(allPermissions, p) }

// PermissionsOf returns the union of the permissions of roles, sorted and
// without duplicates. Unknown role names grant nothing. The result is never
// nil.
func PermissionsOf(roles []string) []Permission {
	out := []Permission{}
	for _, r := range roles {
		out = append(out, rolePermissions[r]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// HasPermission reports whether any of roles grants p.
func HasPermission(roles []string, p Permission) bool {
	for _, r := range roles {
		if slices.Contains(rolePermissions[r], p) {
			return true
		}
	}
	return false
}

// Role assignment errors.
var (
	ErrUnknownRole    = errors.New("unknown role")
	ErrNotGrantable   = errors.New("role not grantable")
	errNoAssignRights = fmt.Errorf("%w: granter lacks %s", ErrNotGrantable, PermRoleAssign)
)

// RolesGrantable checks that a user holding granter roles may grant the
// requested roles: the granter needs role:assign, every requested role must
// exist, every permission of every requested role must be one the granter
// holds, and platform_admin is granted only by a platform_admin. Errors
// wrap ErrUnknownRole or ErrNotGrantable.
func RolesGrantable(granter []string, requested []string) error {
	if !HasPermission(granter, PermRoleAssign) {
		return errNoAssignRights
	}
	held := PermissionsOf(granter)
	isPlatformAdmin := slices.Contains(granter, RolePlatformAdmin)
	for _, r := range requested {
		perms, ok := rolePermissions[r]
		if !ok {
			return fmt.Errorf("%w: %.64q", ErrUnknownRole, r)
		}
		if r == RolePlatformAdmin && !isPlatformAdmin {
			return fmt.Errorf("%w: only %s may grant %s", ErrNotGrantable, RolePlatformAdmin, RolePlatformAdmin)
		}
		var missing []string
		for _, p := range perms {
			if _, found := slices.BinarySearch(held, p); !found {
				missing = append(missing, string(p))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: %s needs %s", ErrNotGrantable, r, strings.Join(missing, ", "))
		}
	}
	return nil
}
