package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// snapshotKey is what identifies a snapshot (the table's primary key).
type snapshotKey struct {
	tenant       uuid.UUID
	stream       eventlog.StreamID
	stateVersion string
	version      int64
}

// SnapshotStateVersion is the state version of the snapshots this store
// saves and reads for codeVersion.
func (s *Store) SnapshotStateVersion(codeVersion int) string {
	return eventstore.SnapshotStateVersion(codeVersion, s.upcasters)
}

// SaveSnapshots records snaps of tenant's stream; one already recorded is
// left as it is.
func (s *Store) SaveSnapshots(_ context.Context, tenant uuid.UUID, id eventlog.StreamID, codeVersion int, snaps []eventstore.Snapshot) error {
	if err := id.Validate(); err != nil {
		return err
	}
	for _, sn := range snaps {
		if !sn.Valid() {
			return fmt.Errorf("save snapshots of %s: version %d: %w", id, sn.StreamVersion, eventstore.ErrInvalidSnapshot)
		}
	}
	sv := s.SnapshotStateVersion(codeVersion)
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	for _, sn := range snaps {
		k := snapshotKey{tenant, id, sv, sn.StreamVersion}
		if _, ok := s.log.snapshots[k]; !ok {
			sn.CoveredUntil = sn.CoveredUntil.UTC().Truncate(time.Microsecond)
			sn.State = append([]byte(nil), sn.State...)
			s.log.snapshots[k] = sn
		}
	}
	return nil
}

// LatestSnapshot is the snapshot of stream of the highest version, among
// those sc's tenant saved under this store's state version for codeVersion,
// whose CoveredUntil is at or before until (zero: any).
func (s *Store) LatestSnapshot(_ context.Context, sc tenantdb.Scope, id eventlog.StreamID, codeVersion int, until time.Time) (eventstore.Snapshot, bool, error) {
	if err := id.Validate(); err != nil {
		return eventstore.Snapshot{}, false, err
	}
	if err := checkScope(sc); err != nil {
		return eventstore.Snapshot{}, false, fmt.Errorf("latest snapshot of %s: %w", id, err)
	}
	s.log.mu.RLock()
	defer s.log.mu.RUnlock()
	snap, found := s.latestSnapshotLocked(sc, id, codeVersion, until)
	return snap, found, nil
}

func (s *Store) latestSnapshotLocked(sc tenantdb.Scope, id eventlog.StreamID, codeVersion int, until time.Time) (eventstore.Snapshot, bool) {
	sv := s.SnapshotStateVersion(codeVersion)
	var (
		best  eventstore.Snapshot
		found bool
	)
	for k, sn := range s.log.snapshots {
		if k.tenant != sc.TenantID || k.stream != id || k.stateVersion != sv {
			continue
		}
		if !until.IsZero() && sn.CoveredUntil.After(until) {
			continue
		}
		if !found || sn.StreamVersion > best.StreamVersion {
			best, found = sn, true
		}
	}
	return best, found
}

// FoldFromSnapshot is LatestSnapshot then FoldStream after it; see
// eventstore.Store.FoldFromSnapshot.
func (s *Store) FoldFromSnapshot(_ context.Context, sc tenantdb.Scope, id eventlog.StreamID, codeVersion int, until time.Time,
	restore func(eventstore.Snapshot) error, fn func(eventlog.Event) error) (after int64, restoreErr, err error) {
	if err := id.Validate(); err != nil {
		return 0, nil, err
	}
	if err := checkScope(sc); err != nil {
		return 0, nil, fmt.Errorf("read stream %s: %w", id, err)
	}
	// One read, as PostgreSQL's one transaction: the snapshot and the events
	// after it are of the same moment.
	s.log.mu.RLock()
	events := s.log.visibleLocked(sc, id)
	snap, found := s.latestSnapshotLocked(sc, id, codeVersion, until)
	s.log.mu.RUnlock()
	if found {
		if restoreErr = restore(snap); restoreErr == nil {
			after = snap.StreamVersion
		}
	}
	if err := s.fold(events, after, until, fn); err != nil {
		return 0, restoreErr, fmt.Errorf("read stream %s: %w", id, err)
	}
	return after, restoreErr, nil
}

// DropSnapshots deletes every snapshot, as the owner role may in
// PostgreSQL (they are a cache the next replay rebuilds): tests use it to
// replay from no snapshot again.
func (s *Store) DropSnapshots() {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	clear(s.log.snapshots)
}
