package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/relay"
	"github.com/jackc/pgx/v5"
)

// TestRelayPublishesPastTransactionsThatCannotAppend: a transaction of the
// same database that holds an id and appends nothing (a projector's batch, a
// read-model write, an operator's open session), and one of another
// database on the cluster, stay open while events are appended; the relay
// publishes them all meanwhile, in log order (the log's watermark waits only
// for appends, eventstore/watermark.go).
func TestRelayPublishesPastTransactionsThatCannotAppend(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	_, js := env.connect()
	env.startRelay(js, relay.Options{})

	sameDatabase, err := env.db.App.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sameDatabase.Rollback(ctx) }()
	other, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	otherDatabase, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = otherDatabase.Rollback(ctx) }()
	for _, tx := range []pgx.Tx{sameDatabase, otherDatabase} {
		if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
			t.Fatal(err)
		}
	}

	total := env.appendEvents(ctx, 40, 2)
	waitFor(t, 15*time.Second, "every event published while the transactions are open", func() bool {
		return streamMsgCount(t, js) == uint64(total)
	})
	env.verifyStream(js)
}
