package domain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Errors of the domain. The API maps them to HTTP in one table.
var (
	// ErrInvalidTransition: the command is not allowed in the aggregate's
	// current state (start a deleted VM, resume an active tenant). HTTP 422.
	ErrInvalidTransition = errors.New("invalid state transition")
	// ErrTenantSuspended: a suspended tenant accepts no commands. HTTP 422.
	ErrTenantSuspended = errors.New("tenant is suspended")
	// ErrQuotaExceeded: the tenant's quota does not allow it. HTTP 422.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrNotFound: no such aggregate (or not the caller's). HTTP 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness rule (an email already in use). HTTP 409.
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the actor may not do this (grant a permission it lacks). HTTP 403.
	ErrForbidden = errors.New("forbidden")
	// ErrLastAdmin: a tenant must keep at least one tenant_admin (the
	// platform tenant, one platform_admin). HTTP 422.
	ErrLastAdmin = errors.New("a tenant must keep at least one active tenant_admin")
	// ErrOutranked: the actor tried to change the password, roles or status
	// of a user who holds a permission the actor does not. HTTP 403.
	ErrOutranked = fmt.Errorf("%w: the user holds a permission you do not hold", ErrForbidden)
)

// ValidationError lists what is wrong with a command's fields. HTTP 400.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// fieldErrors collects validation failures.
type fieldErrors map[string]string

func (f fieldErrors) add(field, msg string) {
	if _, ok := f[field]; !ok {
		f[field] = msg
	}
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &ValidationError{Fields: f}
}
