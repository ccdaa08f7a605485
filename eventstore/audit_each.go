package eventstore

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
)

// AuditEach reads in chunks of auditChunk events, each in a short READ ONLY
// transaction of its own. A caller's fn may wait on a client (the NDJSON
// export writes each event to the socket): were it called inside one long
// transaction, a client that never reads would hold a pooled connection
// "idle in transaction" for as long as it liked, and a few dozen such
// clients would exhaust the pool for every tenant (issue 21). Between
// chunks no connection is held.
const auditChunk = 1000

// auditStatementTimeout replaces the pool's statement timeout for a chunk: a
// selective filter (one actor among a million events) may scan far for its
// thousand matches. The statement never waits on a client.
const auditStatementTimeout = "5min"

// AuditEach calls fn with every event matching f, in global position order,
// as of one snapshot: the first chunk's, which every later chunk keeps to
// (pg_visible_in_snapshot), so the events are exactly those one long
// transaction would have listed, with no gap and no late arrival. Memory
// stays bounded by a few chunks whatever the count; fn is never called
// inside a transaction, and fn returning an error stops the reading.
func (s *Store) AuditEach(ctx context.Context, sc tenantdb.Scope, f AuditFilter, fn func(eventlog.Event) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One chunk is read ahead while fn works through the previous one, so
	// PostgreSQL and the client overlap; the reader waits outside any
	// transaction when fn is slower.
	chunks := make(chan []eventlog.Event, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		readErr <- s.readAuditChunks(ctx, sc, f, chunks)
	}()
	for chunk := range chunks {
		for _, e := range chunk {
			if err := fn(e); err != nil {
				cancel()
				for range chunks { // let the reader end
				}
				return fmt.Errorf("audit: %w", err)
			}
		}
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// readAuditChunks sends f's events to out, a chunk at a time, until there
// are no more or ctx ends.
func (s *Store) readAuditChunks(ctx context.Context, sc tenantdb.Scope, f AuditFilter, out chan<- []eventlog.Event) error {
	for {
		chunk, err := s.auditChunk(ctx, sc, &f)
		if err != nil || len(chunk) == 0 {
			return err
		}
		select {
		case out <- chunk:
		case <-ctx.Done():
			return ctx.Err()
		}
		if len(chunk) < auditChunk {
			return nil
		}
		f.After = chunk[len(chunk)-1].Position.GlobalPosition
	}
}

// auditChunk reads the next chunk of f in its own transaction. The first
// fixes f's snapshot: the transaction's own.
func (s *Store) auditChunk(ctx context.Context, sc tenantdb.Scope, f *AuditFilter) ([]eventlog.Event, error) {
	var chunk []eventlog.Event
	err := s.inScope(ctx, sc, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, auditStatementTimeout); err != nil {
			return err
		}
		if f.snapshot == "" {
			if err := tx.QueryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&f.snapshot); err != nil {
				return err
			}
		}
		q, args := f.query("", auditChunk)
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		chunk, err = scanEvents(rows, auditChunk)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.reveal(ctx, chunk)
}
