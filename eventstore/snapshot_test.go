package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func state(v int64) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"at": %d}`, v)) }

// TestSnapshotsResistRawSQL: what storetest.SnapshotsAreTenantIsolated
// proves through the store's methods (run on PostgreSQL by the conformance
// suite), row-level security and grants also hold against raw SQL: the
// service role can neither write another tenant's snapshot nor change or
// delete any.
func TestSnapshotsResistRawSQL(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	a, b, st := uuid.New(), uuid.New(), stream(t)
	if err := s.SaveSnapshots(ctx, a, st, 1, []eventstore.Snapshot{{StreamVersion: 500, CoveredUntil: time.Now(), State: state(500)}}); err != nil {
		t.Fatal(err)
	}
	write := func(sql string, args ...any) error {
		return tenantdb.InTx(ctx, db.App, tenantdb.Tenant(b), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql, args...)
			return err
		})
	}
	if err := write(`INSERT INTO snapshots (tenant_id, stream_id, state_version, stream_version, covered_until, state)
		VALUES ($1, $2, $3, 1000, now(), '{}')`, a, st.String(), s.SnapshotStateVersion(1)); err == nil {
		t.Error("tenant b wrote a snapshot for tenant a")
	}
	if err := write(`UPDATE snapshots SET state = '{}'`); err == nil {
		t.Error("the service role may update snapshots")
	}
	if err := write(`DELETE FROM snapshots`); err == nil {
		t.Error("the service role may delete snapshots")
	}
}

// appendLate appends evs to st in a transaction that begins before
// during runs, so they are recorded (recorded_at is the transaction's start)
// before whatever during appends, and get the versions after it.
func appendLate(t *testing.T, s *eventstore.Store, tenant uuid.UUID, st eventlog.StreamID, evs []eventstore.NewEvent, during func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := tenantdb.SetScope(ctx, tx, tenantdb.Tenant(tenant)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	during()
	if _, err := s.AppendTx(ctx, tx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
