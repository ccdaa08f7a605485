package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Snapshot is an aggregate's state after events 1..StreamVersion of its
// stream, so a replay can start after it (table snapshots, migration 00010).
// It is a cache: the events stay the only source of truth.
type Snapshot struct {
	StreamVersion int64
	// CoveredUntil is the latest recorded_at among events 1..StreamVersion
	// (not that of the last one: recorded_at is the appending transaction's
	// start, so a later version may have been recorded earlier). A replay up
	// to an instant T can start from the snapshot only when T >=
	// CoveredUntil; before that the prefix of events recorded by T ends
	// before StreamVersion.
	CoveredUntil time.Time
	State        json.RawMessage
}

// Valid reports whether sn can be saved: it has a version, a covered
// instant and a state that is JSON.
func (sn Snapshot) Valid() bool {
	return sn.StreamVersion >= 1 && !sn.CoveredUntil.IsZero() && json.Valid(sn.State)
}

// SnapshotStateVersion is what snapshots written and read by this store are
// tagged with: the version of the code that turns events into state
// (codeVersion, the domain's) and the fingerprint of the upcasters events are
// read through, e.g. "d1-u3f2a9c0b7e11". A snapshot tagged otherwise was
// built by other code, possibly from differently shaped events, and is never
// used.
func (s *Store) SnapshotStateVersion(codeVersion int) string {
	return SnapshotStateVersion(codeVersion, s.upcasters)
}

// SnapshotStateVersion is the state version of snapshots built by code of
// codeVersion from events read through u (nil: none); see
// Store.SnapshotStateVersion.
func SnapshotStateVersion(codeVersion int, u *Upcasters) string {
	return fmt.Sprintf("d%d-u%s", codeVersion, u.Fingerprint())
}

// SaveSnapshots records snaps of tenant's stream under this store's state
// version for codeVersion (ErrInvalidSnapshot if one has no version, no
// covered instant or no valid JSON state), in one short write transaction under the tenant's
// scope. A snapshot already recorded (same stream, state version and stream
// version) is left as it is: built by the same code from the same events, it
// is the same. The commit does not wait for the WAL flush (synchronous_commit
// off): a snapshot lost in a crash costs one replay, not data.
func (s *Store) SaveSnapshots(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID, codeVersion int, snaps []Snapshot) error {
	if err := stream.Validate(); err != nil {
		return err
	}
	if len(snaps) == 0 {
		return nil
	}
	versions := make([]int64, len(snaps))
	covered := make([]time.Time, len(snaps))
	states := make([]string, len(snaps))
	for i, sn := range snaps {
		if !sn.Valid() {
			return fmt.Errorf("save snapshots of %s: version %d: %w", stream, sn.StreamVersion, ErrInvalidSnapshot)
		}
		versions[i], covered[i], states[i] = sn.StreamVersion, sn.CoveredUntil, string(sn.State)
	}
	err := tenantdb.InTx(ctx, s.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO snapshots (tenant_id, stream_id, state_version, stream_version, covered_until, state)
			SELECT $1, $2, $3, x.v, x.c, x.s::jsonb FROM unnest($4::bigint[], $5::timestamptz[], $6::text[]) AS x(v, c, s)
			ON CONFLICT DO NOTHING`,
			tenant, stream.String(), s.SnapshotStateVersion(codeVersion), versions, covered, states)
		return err
	})
	if err != nil {
		return fmt.Errorf("save snapshots of %s: %w", stream, err)
	}
	return nil
}

// LatestSnapshot is, among the snapshots of stream visible under sc and
// tagged with this store's state version for codeVersion, the one of the
// highest stream version whose CoveredUntil is at or before until (zero: any);
// false when there is none. Only a tenant's own scope sees its snapshots.
func (s *Store) LatestSnapshot(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, codeVersion int, until time.Time) (Snapshot, bool, error) {
	if err := stream.Validate(); err != nil {
		return Snapshot{}, false, err
	}
	var (
		snap  Snapshot
		found bool
	)
	err := s.inScope(ctx, sc, func(tx pgx.Tx) (err error) {
		snap, found, err = s.latestSnapshot(ctx, tx, stream, codeVersion, until)
		return err
	})
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("latest snapshot of %s: %w", stream, err)
	}
	return snap, found, nil
}

// latestSnapshotSQL finds the snapshot LatestSnapshot returns: $1 the
// stream, $2 the state version, $3 the instant (NULL: any).
const latestSnapshotSQL = `SELECT stream_version, covered_until, state FROM snapshots
	WHERE stream_id = $1 AND state_version = $2 AND ($3::timestamptz IS NULL OR covered_until <= $3)
	ORDER BY stream_version DESC LIMIT 1`

func (s *Store) latestSnapshot(ctx context.Context, tx pgx.Tx, stream eventlog.StreamID, codeVersion int, until time.Time) (Snapshot, bool, error) {
	var (
		snap  Snapshot
		state []byte
	)
	err := tx.QueryRow(ctx, latestSnapshotSQL, stream.String(), s.SnapshotStateVersion(codeVersion), timeBound(until)).
		Scan(&snap.StreamVersion, &snap.CoveredUntil, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, err
	}
	snap.CoveredUntil, snap.State = snap.CoveredUntil.UTC(), state
	return snap, true, nil
}
