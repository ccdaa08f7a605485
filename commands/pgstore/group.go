package pgstore

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AppendGroup implements commands.Tables, in three round trips, for a
// create's POST waits for each of them, and under load each waits its turn
// for the CPU (issue 16: six round trips were half a POST's time at 50
// creates in flight):
//
//  1. BEGIN, the tenants' locks, and each tenant's usage and version;
//  2. the streams' locks, the appends, and the usage they add;
//  3. COMMIT.
//
// The order inside the transaction is what keeps the log's commit
// watermark moving: every lock (the tenants', then the streams') is taken,
// and decide has what it needs, before the first write gives the
// transaction an id; after it nothing waits on anything.
func (t *Tables) AppendGroup(ctx context.Context, tenants []uuid.UUID,
	decide func(context.Context, map[uuid.UUID]commands.TenantState) (commands.Group, error)) ([]eventstore.AppendResult, error) {
	conn, err := t.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// A connection given back inside its transaction (a round trip that
	// failed on the way, a ROLLBACK that did not arrive) is closed by the
	// pool, never reused.
	defer conn.Release()
	results, commit, err := t.writeGroup(ctx, conn, tenants, decide)
	if err != nil || !commit {
		tenantdb.Rollback(conn)
		return results, err
	}
	tag, err := conn.Exec(ctx, "COMMIT")
	if err != nil {
		return nil, err
	}
	if tag.String() != "COMMIT" {
		// The server ended the transaction some other way (an error it
		// had already failed it with): nothing was written.
		return nil, fmt.Errorf("append group: %w", pgx.ErrTxCommitRollback)
	}
	return results, nil
}

// writeGroup is AppendGroup's first two round trips, on conn; commit is
// false when the transaction must be rolled back without an error (a
// replay, or nothing to write).
func (t *Tables) writeGroup(ctx context.Context, conn *pgxpool.Conn, tenants []uuid.UUID,
	decide func(context.Context, map[uuid.UUID]commands.TenantState) (commands.Group, error)) (_ []eventstore.AppendResult, commit bool, _ error) {
	state, err := beginGroup(ctx, conn, tenants)
	if err != nil {
		return nil, false, err
	}
	g, err := decide(ctx, state)
	if err != nil || len(g.Appends) == 0 {
		return nil, false, err
	}
	results, err := t.store.AppendManyTxThen(ctx, conn, g.Appends, eventstore.Then{
		Queue: func(b *pgx.Batch) {
			for _, u := range g.Usage {
				queueAdd(b, u.Tenant, u.Delta, u.Quota)
			}
		},
		Read: func(br pgx.BatchResults) error {
			for _, u := range g.Usage {
				applied, err := readAdd(br)
				if err != nil {
					return err
				}
				if !applied {
					// Decided on the usage read under the tenant's lock,
					// which this transaction still holds.
					return fmt.Errorf("%w: tenant %s's usage changed meanwhile", domain.ErrQuotaExceeded, u.Tenant)
				}
			}
			return nil
		},
	})
	if err != nil {
		return nil, false, err
	}
	if len(results) > 0 && results[len(results)-1].Replayed {
		return results, false, nil
	}
	if g.Write != nil {
		if err := g.Write(ctx, txTables{conn}); err != nil {
			return nil, false, err
		}
	}
	return results, true, nil
}

// tenantLocksSQL takes the tenant lock of every tenant id in $2, in the
// order of the lock keys, so that two groups over overlapping tenants
// cannot each hold a lock the other waits for.
const tenantLocksSQL = `SELECT pg_advisory_xact_lock($1, k)
	FROM (SELECT DISTINCT hashtext(t) AS k FROM unnest($2::text[]) AS t ORDER BY 1) AS keys`

// beginGroup begins conn's transaction and, in the same round trip, takes
// the tenant lock (the one AppendWith's lockTenant takes) of each tenant,
// in the order of the lock keys, so that two groups over overlapping
// tenants cannot each hold a lock the other waits for, then reads each
// tenant's usage and version. An advisory lock assigns no transaction id.
func beginGroup(ctx context.Context, conn *pgxpool.Conn, tenants []uuid.UUID) (map[uuid.UUID]commands.TenantState, error) {
	keys := make([]string, len(tenants))
	for i, id := range tenants {
		keys[i] = id.String()
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(tenantLocksSQL, tenantLockNamespace, keys)
	for _, id := range tenants {
		queueCurrentAt(b, id)
	}
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	state := make(map[uuid.UUID]commands.TenantState, len(tenants))
	for _, id := range tenants {
		st, err := readCurrentAt(br)
		if err != nil {
			return nil, err
		}
		state[id] = st
	}
	return state, br.Close()
}
