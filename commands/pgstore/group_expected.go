package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// AppendGroupExpecting implements commands.Tables in one round trip: the
// BEGIN, the tenants' locks, a check that each tenant is in the state
// expected, the appends, a check that each was written, the usage they add,
// a check that each tenant's usage is now expected plus that, and the
// COMMIT, all in one pipeline. Under load each round trip of a create's
// POST waits its turn for the CPU (issue 16: a round trip was 2.5-3 ms on
// average at 50 creates in flight on 2 cores, and AppendGroup takes three).
//
// The checks raise (migration 00052), and an error in a pipeline skips
// every statement after it until the end of the round trip, the COMMIT
// among them: a group whose state is not the one expected, or one of whose
// appends was refused, leaves its transaction failed, is rolled back, and
// wrote nothing. The locks come before the first write, in AppendGroup's
// order, for the same reason (the commit watermark).
func (t *Tables) AppendGroupExpecting(ctx context.Context, expected map[uuid.UUID]commands.TenantState,
	decide func(context.Context, map[uuid.UUID]commands.TenantState) (commands.Group, error)) ([]eventstore.AppendResult, error) {
	g, err := decide(ctx, expected)
	if err != nil || len(g.Appends) == 0 {
		return nil, err
	}
	if g.Write != nil {
		return nil, errors.New("append group: a group with side writes needs AppendGroup")
	}
	conn, err := t.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	keys := make([]string, 0, len(expected))
	after := make(map[uuid.UUID]commands.Usage, len(expected))
	for id, st := range expected {
		keys = append(keys, id.String())
		after[id] = st.Usage
	}
	for _, u := range g.Usage {
		after[u.Tenant] = after[u.Tenant].Plus(u.Delta)
	}
	committed := false
	results, err := t.store.AppendManyTxThen(ctx, conn, g.Appends, eventstore.Then{
		Begin: func(b *pgx.Batch) {
			b.Queue("BEGIN")
			b.Queue(tenantLocksSQL, tenantLockNamespace, keys)
			for id, st := range expected {
				queueExpect(b, id, st.Version, st.Usage)
			}
		},
		ReadBegin: func(br pgx.BatchResults) error { return execN(br, 2+2*len(expected)) },
		Queue: func(b *pgx.Batch) {
			for _, a := range g.Appends {
				b.Queue(scopeSQL, a.TenantID.String())
				b.Queue(`SELECT events_expect_appended($1, $2)`, a.Stream.String(), appendedVersion(a))
			}
			for _, u := range g.Usage {
				queueAdd(b, u.Tenant, u.Delta, u.Quota)
			}
			for id, st := range expected {
				queueExpect(b, id, st.Version, after[id])
			}
			b.Queue("COMMIT")
		},
		Read: func(br pgx.BatchResults) error {
			if err := execN(br, 2*len(g.Appends)); err != nil {
				return err
			}
			for range g.Usage {
				// Not applied is caught by the check after it.
				if _, err := readAdd(br); err != nil {
					return err
				}
			}
			if err := execN(br, 2*len(expected)); err != nil {
				return err
			}
			tag, err := br.Exec()
			committed = err == nil && tag.String() == "COMMIT"
			return err
		},
	})
	if committed {
		return results, nil
	}
	tenantdb.Rollback(conn)
	var pgErr *pgconn.PgError
	if err == nil || errors.As(err, &pgErr) || errors.As(err, new(*eventstore.ConflictError)) {
		// Refused by the database (the checks, a conflict, a constraint):
		// the transaction failed before its COMMIT was reached.
		return nil, fmt.Errorf("%w: %v", commands.ErrGroupNotAsExpected, err)
	}
	// The round trip itself failed: whether the COMMIT ran is unknown.
	return nil, err
}

// appendedVersion is the version a's stream is at once a is written.
func appendedVersion(a eventstore.Append) int64 {
	v, _ := a.Expected.Version()
	return v + int64(len(a.Events))
}

func queueExpect(b *pgx.Batch, tenant uuid.UUID, version int64, u commands.Usage) {
	b.Queue(scopeSQL, tenant.String())
	b.Queue(`SELECT create_group_expect($1, $2, $3, $4, $5, $6, $7, $8)`, tenant,
		eventlog.StreamID{Type: domain.StreamTenant, ID: tenant}.String(), version,
		u.VMs, u.Cores, int64(u.MemoryMB), int64(u.DiskGB), u.IPv4)
}

// execN reads the results of the next n statements, which return nothing
// the caller needs.
func execN(br pgx.BatchResults, n int) error {
	for range n {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	return nil
}
