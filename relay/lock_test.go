package relay

import (
	"context"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// The lock's session commits its checkpoint writes without waiting for the
// WAL flush (align repairs a lost one); the pool's other sessions, including
// one that tried the lock and found it held, keep durable commits.
func TestPublisherLockSessionAloneCommitsAsynchronously(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	lock, err := tryPublisherLock(ctx, db.App)
	if err != nil || lock == nil {
		t.Fatalf("tryPublisherLock = %v, %v; want the free lock", lock, err)
	}
	defer lock.release()
	if got := showSynchronousCommit(t, lock.conn); got != "off" {
		t.Fatalf("lock session: synchronous_commit = %q, want off", got)
	}

	other, err := tryPublisherLock(ctx, db.App)
	if err != nil || other != nil {
		t.Fatalf("second tryPublisherLock = %v, %v; want nil, nil while the lock is held", other, err)
	}
	// Every idle session of the pool, the one that just found the lock held
	// among them, has the server's default.
	idle := db.App.AcquireAllIdle(ctx)
	if len(idle) == 0 {
		t.Fatal("no idle session in the pool after the second attempt released its own")
	}
	for _, c := range idle {
		got := showSynchronousCommit(t, c)
		c.Release()
		if got != "on" {
			t.Fatalf("pooled session: synchronous_commit = %q, want on", got)
		}
	}

	// The checkpoint still round-trips through the session.
	if _, err := lock.loadCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	want := eventlog.Position{TransactionID: 7, GlobalPosition: 42}
	if err := lock.saveCheckpoint(ctx, want); err != nil {
		t.Fatalf("saveCheckpoint on the lock session: %v", err)
	}
	if got, err := lock.loadCheckpoint(ctx); err != nil || got != want {
		t.Fatalf("checkpoint after save = %v, %v; want %v", got, err, want)
	}
}

// showSynchronousCommit is the setting in the session behind q (the lock's
// *pgx.Conn or a pooled connection).
func showSynchronousCommit(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) string {
	t.Helper()
	var v string
	if err := q.QueryRow(context.Background(), `SHOW synchronous_commit`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPollWaitLeavesWhatIsLeftOfTheInterval(t *testing.T) {
	for _, c := range []struct{ elapsed, want time.Duration }{
		{0, 10 * time.Millisecond},                   // a cycle that took no time: the whole interval
		{3 * time.Millisecond, 7 * time.Millisecond}, // a quick cycle: the rest of it
		{10 * time.Millisecond, 0},                   // a cycle of exactly the interval
		{35 * time.Millisecond, 0},                   // a slow cycle: read again at once
	} {
		if got := pollWait(10*time.Millisecond, c.elapsed); got != c.want {
			t.Errorf("pollWait(10ms, %v) = %v, want %v", c.elapsed, got, c.want)
		}
	}
}
