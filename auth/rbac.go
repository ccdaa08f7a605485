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
	PermVMRead     Permission = "vm:read"
	PermVMCreate   Permission = "vm:create"
	PermVMPower    Permission = "vm:power"
	PermVMConfig   Permission = "vm:config"
	PermVMSnapshot Permission = "vm:snapshot"
	PermVMDelete   Permission = "vm:delete"
	// PermVMConsole opens a VM's console (noVNC, or a container's terminal).
	PermVMConsole     Permission = "vm:console"
	PermUserRead      Permission = "user:read"
	PermUserManage    Permission = "user:manage"
	PermRoleAssign    Permission = "role:assign"
	PermAuditRead     Permission = "audit:read"
	PermTenantManage  Permission = "tenant:manage"
	PermClusterManage Permission = "cluster:manage"
	// PermWebhookManage registers and manages the tenant's webhook
	// endpoints (and reads their deliveries).
	PermWebhookManage Permission = "webhook:manage"
	// PermUsageRead reads the tenant's metered usage (billing).
	PermUsageRead Permission = "usage:read"
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
	PermVMRead, PermVMCreate, PermVMPower, PermVMConfig, PermVMSnapshot, PermVMDelete, PermVMConsole,
	PermUserRead, PermUserManage, PermRoleAssign, PermAuditRead,
	PermTenantManage, PermClusterManage, PermWebhookManage, PermUsageRead,
}

var vmPermissions = []Permission{PermVMRead, PermVMCreate, PermVMPower, PermVMConfig, PermVMSnapshot, PermVMDelete, PermVMConsole}

// rolePermissions is the built-in role table.
var rolePermissions = map[string][]Permission{
	// ≈ PVEAuditor, restricted to the tenant's VMs: look, do not touch.
	RoleViewer: {PermVMRead},
	// ≈ PVEVMUser (VM.Audit, VM.PowerMgmt, VM.Console, VM.Backup): use
	// existing VMs, power them, open their consoles, snapshot them; no
	// create, reconfigure or delete.
	RoleOperator: {PermVMRead, PermVMPower, PermVMSnapshot, PermVMConsole},
	// ≈ PVEVMAdmin: everything on VMs.
	RoleVMAdmin: vmPermissions,
	// Everything within a tenant: VMs, users, role assignment, audit log.
	RoleTenantAdmin: append(slices.Clone(vmPermissions), PermUserRead, PermUserManage, PermRoleAssign, PermAuditRead, PermWebhookManage, PermUsageRead),
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

// HoldsAllOf reports whether a user holding holder roles holds every
// permission of roles: the rule for changing another user's password,
// roles or status, so that no one can take over, demote or lock out a
// user who can do more than they can.
func HoldsAllOf(holder, roles []string) bool {
	held := PermissionsOf(holder)
	for _, p := range PermissionsOf(roles) {
		if _, found := slices.BinarySearch(held, p); !found {
			return false
		}
	}
	return true
}

// Intersect returns the permissions in both a and b, sorted and without
// duplicates (never nil): an API token may do what it was given and its
// user may still do.
func Intersect(a, b []Permission) []Permission {
	out := []Permission{}
	for _, p := range a {
		if slices.Contains(b, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RolesWithin returns the built-in roles an API token acts as: those whose
// every permission is in perms (the token's permissions that its user still
// holds), platform_admin only if the user holds it. Rules that look at roles
// rather than permissions (platform_admin's reach across tenants, what a
// granter may grant, the event feed's re-check) then never give a token more
// than its permissions.
func RolesWithin(userRoles []string, perms []Permission) []string {
	out := []string{}
	for _, r := range allRoles {
		if r == RolePlatformAdmin && !slices.Contains(userRoles, r) {
			continue
		}
		all := true
		for _, p := range rolePermissions[r] {
			if !slices.Contains(perms, p) {
				all = false
				break
			}
		}
		if all {
			out = append(out, r)
		}
	}
	return out
}
