package commands

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// Snapshots: command loads and time travel start from the latest usable
// snapshot of the aggregate (eventstore.Snapshot) and replay only the events
// after it. A replay that passes a multiple of SnapshotEvery beyond where it
// started records the state there, and saves those snapshots once it is done,
// best effort: a failed save is logged, never the request's failure. Every
// snapshot is kept, because replays up to different instants need different
// ones (a snapshot serves only instants at or after its CoveredUntil).

// SnapshotEvery is how many events apart snapshots are taken: at versions
// that are multiples of it. A replay never applies more than this many events
// beyond the latest snapshot it may use, once an earlier replay has passed
// that far.
const SnapshotEvery = 500

// snapshotSaveTimeout bounds the save that follows a replay; it outlives the
// request's context (a client gone after the replay still leaves the work).
const snapshotSaveTimeout = 5 * time.Second

// snapshotReplay is the outcome of one replay from a snapshot.
type snapshotReplay struct {
	version int64 // the version reached
	taken   []eventstore.Snapshot
	// tenant is the tenant of every replayed event, or uuid.Nil if they
	// disagree (then nothing is saved).
	tenant uuid.UUID
	// covered is the latest recorded_at of events 1..version.
	covered time.Time
	// problem is a snapshot that could not be used or taken; the replay
	// went on without it.
	problem error
}

// replayFromSnapshot applies to agg the prefix of stream recorded at or
// before until (zero: the whole stream), read under sc, starting from the
// latest snapshot that may stand in for its beginning, and takes snapshots
// on the way (not saved: see saveSnapshots).
func replayFromSnapshot(ctx context.Context, store EventStore, sc tenantdb.Scope, stream eventlog.StreamID,
	until time.Time, agg applier) (snapshotReplay, error) {
	var r snapshotReplay
	restore := func(s eventstore.Snapshot) error {
		if err := restoreState(agg, s.State); err != nil {
			return fmt.Errorf("snapshot of %s at version %d: %w", stream, s.StreamVersion, err)
		}
		r.covered = s.CoveredUntil
		return nil
	}
	first := true
	from, restoreErr, err := store.FoldFromSnapshot(ctx, sc, stream, domain.SnapshotVersion, until, restore, func(e eventlog.Event) error {
		de, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			return fmt.Errorf("replay %s: %w", stream, err)
		}
		agg.Apply(de, e.RecordedAt)
		r.version = e.StreamVersion
		if e.RecordedAt.After(r.covered) {
			r.covered = e.RecordedAt
		}
		if first {
			r.tenant, first = e.TenantID, false
		} else if e.TenantID != r.tenant {
			r.tenant = uuid.Nil
		}
		if e.StreamVersion%SnapshotEvery == 0 {
			state, err := json.Marshal(agg)
			if err != nil {
				r.problem = fmt.Errorf("snapshot of %s at version %d: %w", stream, e.StreamVersion, err)
				return nil
			}
			r.taken = append(r.taken, eventstore.Snapshot{StreamVersion: e.StreamVersion, CoveredUntil: r.covered, State: state})
		}
		return nil
	})
	if err != nil {
		return snapshotReplay{}, err
	}
	r.problem = cmp.Or(restoreErr, r.problem)
	if r.version == 0 {
		r.version = from
	}
	return r, nil
}

// restoreState sets agg (a pointer to an aggregate struct) to a snapshot's
// state, or leaves it untouched if the state does not decode.
func restoreState(agg applier, state json.RawMessage) error {
	v := reflect.ValueOf(agg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("aggregate %T is not a pointer to a struct", agg)
	}
	fresh := reflect.New(v.Elem().Type())
	fresh.Elem().Set(v.Elem())
	if err := json.Unmarshal(state, fresh.Interface()); err != nil {
		return err
	}
	v.Elem().Set(fresh.Elem())
	return nil
}

// saveSnapshots saves what a replay took, if anything.
func saveSnapshots(ctx context.Context, store EventStore, stream eventlog.StreamID, r snapshotReplay) error {
	if len(r.taken) == 0 || r.tenant == uuid.Nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), snapshotSaveTimeout)
	defer cancel()
	return store.SaveSnapshots(ctx, r.tenant, stream, domain.SnapshotVersion, r.taken)
}

// replayWithSnapshots is a replay from the latest usable snapshot whose new
// snapshots are then saved; a problem with snapshots is only logged.
func (h *Handler) replayWithSnapshots(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, until time.Time, agg applier) (int64, error) {
	r, err := replayFromSnapshot(ctx, h.store, sc, stream, until, agg)
	if err != nil {
		return 0, err
	}
	if r.problem != nil {
		h.log.WarnContext(ctx, "snapshot not used", "stream", stream.String(), "error", r.problem)
	}
	if err := saveSnapshots(ctx, h.store, stream, r); err != nil {
		h.log.WarnContext(ctx, "snapshots not saved", "stream", stream.String(), "error", err)
	}
	return r.version, nil
}

// WithLogger gives the handler a logger for what it does not fail requests
// over (snapshots not saved); slog.Default() otherwise.
func (h *Handler) WithLogger(log *slog.Logger) *Handler {
	h.log = log
	return h
}
