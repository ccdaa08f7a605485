package pgstore

import (
	"context"
	"errors"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AppendGroup implements commands.Tables. The order inside the transaction
// is what keeps the log's commit watermark moving: every lock (the
// tenants', then the streams') is taken, and decide reads what it needs,
// before the first write gives the transaction an id; after it nothing
// waits on anything.
func (t *Tables) AppendGroup(ctx context.Context, tenants []uuid.UUID,
	decide func(context.Context, commands.TxTables) (commands.Group, error)) ([]eventstore.AppendResult, error) {
	var results []eventstore.AppendResult
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		results = nil
		if err := lockTenants(ctx, tx, tenants); err != nil {
			return err
		}
		g, err := decide(ctx, txTables{tx})
		if err != nil || len(g.Appends) == 0 {
			return err
		}
		if results, err = t.store.AppendManyTx(ctx, tx, g.Appends); err != nil {
			return err
		}
		if len(results) > 0 && results[len(results)-1].Replayed {
			return errRollbackReplay
		}
		if g.Write != nil {
			return g.Write(ctx, txTables{tx})
		}
		return nil
	})
	if errors.Is(err, errRollbackReplay) {
		return results, nil
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// lockTenants takes the tenant lock (the one AppendWith's lockTenant takes)
// of each tenant, in the order of the lock keys, so that two groups over
// overlapping tenants cannot each hold a lock the other waits for. An
// advisory lock assigns no transaction id.
func lockTenants(ctx context.Context, tx pgx.Tx, tenants []uuid.UUID) error {
	keys := make([]string, len(tenants))
	for i, id := range tenants {
		keys[i] = id.String()
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, k)
		FROM (SELECT DISTINCT hashtext(t) AS k FROM unnest($2::text[]) AS t ORDER BY 1) AS keys`, tenantLockNamespace, keys)
	return err
}
