// Package pgstore keeps the command handler's side tables in PostgreSQL:
// sessions, refresh tokens, credentials, tenant usage, cluster inventory,
// and the vms read model commands consults. It implements commands.Tables,
// whose AppendWith commits those rows in one transaction with the events
// (eventstore.Store.AppendTx), so commands itself holds no SQL.
package pgstore

import (
	"context"
	"errors"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// txAppender is the one event-store method that needs a PostgreSQL
// transaction; commands.EventStore leaves it out so that stores without
// one (eventstore/memstore) can serve commands too.
type txAppender interface {
	AppendTx(ctx context.Context, tx pgx.Tx, a eventstore.Append) (eventstore.AppendResult, error)
	LockStreamsTx(ctx context.Context, tx pgx.Tx, streams ...eventlog.StreamID) error
	AppendTxLocked(ctx context.Context, tx pgx.Tx, a eventstore.Append) (eventstore.AppendResult, error)
	AppendManyTxThen(ctx context.Context, tx eventstore.BatchSender, apps []eventstore.Append, then eventstore.Then) ([]eventstore.AppendResult, error)
}

var _ txAppender = (*eventstore.Store)(nil)

// Tables are the side tables in the database of an event store.
type Tables struct {
	pool  *pgxpool.Pool
	store txAppender
}

var _ commands.Tables = (*Tables)(nil)

// New returns the side tables beside store, on its pool (the service role's).
func New(store *eventstore.Store) *Tables {
	return &Tables{pool: store.Pool(), store: store}
}

// tenantLockNamespace is the first key of the advisory locks that serialise
// one tenant's cross-stream rules (apart from the stream locks, 69).
const tenantLockNamespace = 84

var errRollbackReplay = errors.New("replayed command: roll back side writes")

// AppendWith implements commands.Tables.
func (t *Tables) AppendWith(ctx context.Context, a eventstore.Append, lockTenant bool,
	write func(context.Context, commands.TxTables) error) (eventstore.AppendResult, error) {
	var ar eventstore.AppendResult
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if lockTenant {
			// An advisory lock assigns no transaction id, so AppendTx is
			// still the first write after it.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, tenantLockNamespace, a.TenantID.String()); err != nil {
				return err
			}
		}
		var err error
		if ar, err = t.store.AppendTx(ctx, tx, a); err != nil {
			return err
		}
		if ar.Replayed {
			return errRollbackReplay
		}
		return write(ctx, txTables{tx})
	})
	if errors.Is(err, errRollbackReplay) {
		return ar, nil
	}
	return ar, err
}

// AppendLinked implements commands.Tables. Every stream's lock is taken
// before the first write (eventstore.LockStreamsTx), after the tenant's.
func (t *Tables) AppendLinked(ctx context.Context, a eventstore.Append, linked []eventstore.Append, lockTenant bool,
	write func(context.Context, commands.TxTables) error) (eventstore.AppendResult, error) {
	if len(linked) == 0 {
		return t.AppendWith(ctx, a, lockTenant, write)
	}
	var ar eventstore.AppendResult
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if lockTenant {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, tenantLockNamespace, a.TenantID.String()); err != nil {
				return err
			}
		}
		streams := []eventlog.StreamID{a.Stream}
		for _, l := range linked {
			streams = append(streams, l.Stream)
		}
		if err := t.store.LockStreamsTx(ctx, tx, streams...); err != nil {
			return err
		}
		var err error
		if ar, err = t.store.AppendTxLocked(ctx, tx, a); err != nil {
			return err
		}
		if ar.Replayed {
			return errRollbackReplay
		}
		if write != nil {
			if err := write(ctx, txTables{tx}); err != nil {
				return err
			}
		}
		for _, l := range linked {
			if _, err := t.store.AppendTxLocked(ctx, tx, l); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errRollbackReplay) {
		return ar, nil
	}
	return ar, err
}

// txTables are the side tables inside one transaction, scoped (by AppendTx)
// to the append's tenant.
type txTables struct{ tx dbTx }

// dbTx is what the side tables' writers run on: a pgx.Tx, or a pooled
// connection inside the transaction a group began itself (group.go).
type dbTx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

func (t txTables) Sessions() commands.SessionWriter       { return sessionWriter(t) }
func (t txTables) Credentials() commands.CredentialWriter { return credentialWriter(t) }
func (t txTables) Usage() commands.UsageWriter            { return usageWriter(t) }
func (t txTables) APITokens() commands.APITokenWriter     { return apiTokenWriter(t) }
func (t txTables) MFA() commands.MFAWriter                { return mfaWriter(t) }
func (t txTables) Identities() commands.IdentityWriter    { return identityWriter(t) }
func (t txTables) Privacy() commands.PrivacyWriter        { return privacyWriter(t) }

// Sessions implements commands.Tables.
func (t *Tables) Sessions() commands.SessionStore { return sessions{t.pool} }

// Credentials implements commands.Tables.
func (t *Tables) Credentials() commands.CredentialStore { return credentials{t.pool} }

// Inventory implements commands.Tables.
func (t *Tables) Inventory() commands.InventoryStore { return inventory{t.pool} }

// APITokens implements commands.Tables.
func (t *Tables) APITokens() commands.APITokenStore { return apiTokens{t.pool} }

// MFA implements commands.Tables.
func (t *Tables) MFA() commands.MFAStore { return mfaStore{t.pool} }

// Identities implements commands.Tables.
func (t *Tables) Identities() commands.IdentityStore { return identities{t.pool} }

// VMs implements commands.Tables.
func (t *Tables) VMs() commands.VMIndex { return vmIndex{t.pool} }

// Unseen implements commands.Tables.
func (t *Tables) Unseen() commands.UnseenGuests { return unseen{t.pool} }

// queryRow scans one row read under sc; false when there is none.
func queryRow(ctx context.Context, pool *pgxpool.Pool, sc tenantdb.Scope, sql string, args []any, dest ...any) (bool, error) {
	// One round trip (the scope and the query in one pipeline): every
	// authenticated request reads its session through here.
	return tenantdb.ReadRow(ctx, pool, sc, sql, args, dest...)
}

// lookup scans the one row of a sign-in look-up function, called outside
// any tenant scope: the function (SECURITY DEFINER, owned by the owner
// role) is what reads across tenants, for one exact key; false when there
// is no row.
func lookup(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, dest ...any) (bool, error) {
	err := pool.QueryRow(ctx, sql, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func tenantScope(id uuid.UUID) tenantdb.Scope { return tenantdb.Tenant(id) }
