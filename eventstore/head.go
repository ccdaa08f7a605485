package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Head is the log position of the newest committed event that readers of the
// log can see (below the log's watermark, watermark.go) and when it was recorded;
// Start and the zero time when the log is empty. Compared with a relay's or a
// projector's checkpoint it tells how far behind the follower is.
func (s *Store) Head(ctx context.Context) (eventlog.Position, time.Time, error) {
	var (
		p    eventlog.Position
		txid string
		at   time.Time
	)
	err := s.readBelowWatermark(ctx, crossTenantRead, func(b *pgx.Batch) {
		b.Queue(`SELECT global_position, transaction_id::text AS txid_text, recorded_at FROM events
			WHERE ` + belowWatermark + `
			ORDER BY transaction_id DESC, global_position DESC LIMIT 1`,
		).QueryRow(func(row pgx.Row) error { return row.Scan(&p.GlobalPosition, &txid, &at) })
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return eventlog.Start, time.Time{}, nil
	}
	if err != nil {
		return eventlog.Position{}, time.Time{}, fmt.Errorf("head: %w", err)
	}
	if p.TransactionID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return eventlog.Position{}, time.Time{}, fmt.Errorf("head: transaction id %q: %w", txid, err)
	}
	return p, at.UTC(), nil
}

// EventAt looks up the id and log position of the event at a global position;
// found is false when there is none. The relay uses it to check that the bus
// stream's last message is an event of this database.
func (s *Store) EventAt(ctx context.Context, globalPosition int64) (id uuid.UUID, pos eventlog.Position, found bool, err error) {
	var txid string
	err = s.inScope(ctx, crossTenantRead, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT event_id, transaction_id::text AS txid_text FROM events WHERE global_position = $1`,
			globalPosition).Scan(&id, &txid)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, eventlog.Position{}, false, nil
	}
	if err != nil {
		return uuid.Nil, eventlog.Position{}, false, fmt.Errorf("event at %d: %w", globalPosition, err)
	}
	t, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return uuid.Nil, eventlog.Position{}, false, fmt.Errorf("event at %d: %w", globalPosition, err)
	}
	return id, eventlog.Position{TransactionID: t, GlobalPosition: globalPosition}, true, nil
}
