// Package tenantdb runs database work inside one transaction whose first
// statement sets the caller's scope with set_config(..., true). The setting is
// transaction-local, so a pooled connection never carries one tenant's scope
// into the next request; row-level security policies read it back with
// current_setting('app.tenant_id', true).
package tenantdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Scope is who a transaction acts for. TenantID selects the rows RLS lets it see
// and write. The flags each open one explicit, SELECT-only policy:
// CrossTenant the event store across tenants, for system components (relay,
// rebuild, audit verification); PlatformAdmin the tenant and user read models,
// for platform administrators' routes. (Sign-in's look-ups before a tenant
// is known are SECURITY DEFINER functions, not a setting: see
// migrations/00012_credential_functions.sql.)
type Scope struct {
	TenantID      uuid.UUID
	ActorID       uuid.UUID
	Role          string
	Permissions   []string
	CrossTenant   bool
	PlatformAdmin bool
}

// ErrNoScope is returned when a scope names neither a tenant nor any
// cross-tenant policy: such a transaction could see nothing, a caller bug.
var ErrNoScope = errors.New("tenantdb: scope has no tenant and is not cross-tenant")

// Tenant is the common scope of a request or projector write for one tenant.
func Tenant(id uuid.UUID) Scope { return Scope{TenantID: id} }

// System is the scope of a component that reads across tenants.
func System() Scope { return Scope{CrossTenant: true} }

const setScopeSQL = `SELECT set_config('app.tenant_id', $1, true),
       set_config('app.actor_id', $2, true),
       set_config('app.role', $3, true),
       set_config('app.permissions', $4, true),
       set_config('app.cross_tenant', $5, true),
       set_config('app.platform_admin', $6, true)`

// SetScope sets s on tx. Projectors call it between events of different tenants
// inside one transaction; everything else goes through InTx.
func SetScope(ctx context.Context, tx pgx.Tx, s Scope) error {
	if s.TenantID == uuid.Nil && !s.CrossTenant && !s.PlatformAdmin {
		return ErrNoScope
	}
	if _, err := tx.Exec(ctx, setScopeSQL, s.args()...); err != nil {
		return fmt.Errorf("set scope: %w", err)
	}
	return nil
}

func on(b bool) string {
	if b {
		return "on"
	}
	return ""
}

func (s Scope) args() []any {
	tenant, actor := "", ""
	if s.TenantID != uuid.Nil {
		tenant = s.TenantID.String()
	}
	if s.ActorID != uuid.Nil {
		actor = s.ActorID.String()
	}
	return []any{tenant, actor, s.Role, strings.Join(s.Permissions, ","),
		on(s.CrossTenant), on(s.PlatformAdmin)}
}

// InTx runs fn in one transaction scoped to s, committing if fn returns nil.
func InTx(ctx context.Context, pool *pgxpool.Pool, s Scope, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := SetScope(ctx, tx, s); err != nil {
			return err
		}
		return fn(tx)
	})
}

// ReadTx is InTx for read-only work: the transaction is READ ONLY, so a bug in a
// query path cannot write.
func ReadTx(ctx context.Context, pool *pgxpool.Pool, s Scope, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := SetScope(ctx, tx, s); err != nil {
			return err
		}
		return fn(tx)
	})
}
