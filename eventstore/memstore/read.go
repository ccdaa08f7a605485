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

// What a scope sees is what row-level security lets it see in PostgreSQL:
// a tenant its own events, streams and snapshots; the cross-tenant scope
// every event; a platform administrator every event (the audit policy);
// nobody another tenant's snapshots.

func checkScope(sc tenantdb.Scope) error {
	if sc.TenantID == uuid.Nil && !sc.CrossTenant && !sc.PlatformAdmin {
		return tenantdb.ErrNoScope
	}
	return nil
}

func seesEvent(sc tenantdb.Scope, e eventlog.Event) bool {
	return sc.CrossTenant || sc.PlatformAdmin || e.TenantID == sc.TenantID
}

// visible is the events of stream id that sc sees, by version, copied so
// callers run without the lock.
func (l *log) visible(sc tenantdb.Scope, id eventlog.StreamID) []eventlog.Event {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.visibleLocked(sc, id)
}

func (l *log) visibleLocked(sc tenantdb.Scope, id eventlog.StreamID) []eventlog.Event {
	st := l.streams[id]
	if st == nil {
		return nil
	}
	out := make([]eventlog.Event, 0, len(st.events))
	for _, i := range st.events {
		if seesEvent(sc, l.events[i]) {
			out = append(out, l.events[i])
		}
	}
	return out
}

func clampLimit(n int) int {
	if n <= 0 {
		return eventstore.DefaultReadLimit
	}
	return min(n, eventstore.MaxReadLimit)
}

func (s *Store) upcastAll(evs []eventlog.Event) ([]eventlog.Event, error) {
	for i := range evs {
		if err := s.upcasters.Upcast(&evs[i]); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// ReadStream returns up to limit events of tenant's stream from version
// fromVersion on.
func (s *Store) ReadStream(ctx context.Context, tenant uuid.UUID, id eventlog.StreamID, fromVersion int64, limit int) ([]eventlog.Event, error) {
	return s.ReadStreamUntil(ctx, tenantdb.Tenant(tenant), id, fromVersion, time.Time{}, limit)
}

// ReadStreamUntil is ReadStream under sc, keeping only events recorded at or
// before until (zero: no bound).
func (s *Store) ReadStreamUntil(_ context.Context, sc tenantdb.Scope, id eventlog.StreamID, fromVersion int64, until time.Time, limit int) ([]eventlog.Event, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if err := checkScope(sc); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", id, err)
	}
	limit = clampLimit(limit)
	var out []eventlog.Event
	for _, e := range s.log.visible(sc, id) {
		if len(out) == limit {
			break
		}
		if e.StreamVersion >= fromVersion && (until.IsZero() || !e.RecordedAt.After(until)) {
			out = append(out, e)
		}
	}
	return s.upcastAll(out)
}

// ReadAll returns up to limit events after the position, in log order,
// across tenants. Every append is committed when it returns, so there is no
// watermark to wait for.
func (s *Store) ReadAll(_ context.Context, after eventlog.Position, limit int) ([]eventlog.Event, error) {
	limit = clampLimit(limit)
	s.log.mu.RLock()
	var out []eventlog.Event
	for _, e := range s.log.events {
		if len(out) == limit {
			break
		}
		if after.Less(e.Position) {
			out = append(out, e)
		}
	}
	s.log.mu.RUnlock()
	return s.upcastAll(out)
}

// FoldStream calls fn with the events of stream after version after,
// recorded at or before until, in version order, up to the first gap; see
// eventstore.Store.FoldStream.
func (s *Store) FoldStream(_ context.Context, sc tenantdb.Scope, id eventlog.StreamID, after int64, until time.Time, fn func(eventlog.Event) error) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if err := checkScope(sc); err != nil {
		return fmt.Errorf("read stream %s: %w", id, err)
	}
	return s.fold(s.log.visible(sc, id), after, until, fn)
}

func (s *Store) fold(events []eventlog.Event, after int64, until time.Time, fn func(eventlog.Event) error) error {
	version := after
	for _, e := range events {
		if e.StreamVersion <= after || (!until.IsZero() && e.RecordedAt.After(until)) {
			continue
		}
		if e.StreamVersion != version+1 {
			return nil // a later event recorded earlier: the prefix ends here
		}
		version = e.StreamVersion
		if err := s.upcasters.Upcast(&e); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// AuditEach calls fn with every event sc sees that matches f, in global
// position order, as recorded (not upcast).
func (s *Store) AuditEach(_ context.Context, sc tenantdb.Scope, f eventstore.AuditFilter, fn func(eventlog.Event) error) error {
	if err := checkScope(sc); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	s.log.mu.RLock()
	var match []eventlog.Event
	for _, e := range s.log.events {
		if seesEvent(sc, e) && f.Matches(e) {
			match = append(match, e)
		}
	}
	s.log.mu.RUnlock()
	for _, e := range match {
		if err := fn(e); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	return nil
}
