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

	pgtest.HoldingID(t, env.db.App)
	other, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	pgtest.HoldingID(t, other)

	total := env.appendEvents(ctx, 40, 2)
	waitFor(t, 15*time.Second, "every event published while the transactions are open", func() bool {
		return streamMsgCount(t, js) == uint64(total)
	})
	env.verifyStream(js)
}
