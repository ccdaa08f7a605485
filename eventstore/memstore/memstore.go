// Package memstore is an event store in memory, for tests of code that
// needs an event log but no SQL (the command handler's loads and
// decisions). It behaves as eventstore.Store does where that is not about
// PostgreSQL itself, and passes the same suite (eventstore/storetest):
// appends with expected versions, idempotent command ids, tenant isolation
// of streams, events and snapshots (what row-level security does there),
// reads in log order, folds from snapshots, upcasting on read.
//
// What it does not have: transactions other than one append (so no
// AppendTx), a commit watermark (every append is visible at once, in
// order), the hash chain, durability.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// Store is an event store in memory. Copies made by WithUpcasters share
// its log.
type Store struct {
	log       *log
	upcasters *eventstore.Upcasters
}

// Option configures a Store.
type Option func(*log)

// WithClock makes now the source of recorded_at: a test that turns it back
// appends events recorded before their predecessors, as a PostgreSQL
// transaction that began earlier and committed later does. time.Now
// otherwise.
func WithClock(now func() time.Time) Option { return func(l *log) { l.now = now } }

// New returns an empty store.
func New(opts ...Option) *Store {
	l := &log{now: time.Now, streams: map[eventlog.StreamID]*stream{}, eventIDs: map[uuid.UUID]bool{},
		commands: map[uuid.UUID]command{}, snapshots: map[snapshotKey]eventstore.Snapshot{}}
	for _, o := range opts {
		o(l)
	}
	return &Store{log: l}
}

// WithUpcasters returns a store on the same log that reads events through
// u, as eventstore.Store.WithUpcasters does.
func (s *Store) WithUpcasters(u *eventstore.Upcasters) *Store {
	return &Store{log: s.log, upcasters: u}
}

// log is the state every copy of a Store shares.
type log struct {
	now func() time.Time

	mu        sync.RWMutex
	events    []eventlog.Event // in log order; global position i+1
	streams   map[eventlog.StreamID]*stream
	eventIDs  map[uuid.UUID]bool
	commands  map[uuid.UUID]command
	snapshots map[snapshotKey]eventstore.Snapshot
	txid      uint64 // of the last append: each append is one "transaction"
}

type stream struct {
	tenant  uuid.UUID
	version int64
	events  []int // indexes into log.events, by version
}

type command struct {
	tenant uuid.UUID
	result eventstore.AppendResult
	hash   []byte
}

// recordedAt is now as PostgreSQL keeps it: UTC, to the microsecond.
func (l *log) recordedAt() time.Time { return l.now().UTC().Truncate(time.Microsecond) }

// errForeignCommand: the command id was recorded by another tenant, which
// this one cannot see (PostgreSQL refuses the insert of its row).
var errForeignCommand = errors.New("memstore: command id recorded by another tenant")

// Append records a's events, as eventstore.Store.Append does.
func (s *Store) Append(_ context.Context, a eventstore.Append) (eventstore.AppendResult, error) {
	events, err := a.Prepare()
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.CommandID != uuid.Nil {
		if c, ok := l.commands[a.CommandID]; ok {
			if c.tenant != a.TenantID {
				return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, errForeignCommand)
			}
			if err := eventstore.CheckRequestHash(a.CommandID, c.hash, a.RequestHash); err != nil {
				return eventstore.AppendResult{}, err
			}
			return c.result, nil
		}
	}
	st := l.streams[a.Stream]
	var current int64
	if st != nil {
		if st.tenant != a.TenantID {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, eventstore.ErrTenantMismatch)
		}
		current = st.version
	}
	if !a.Expected.Admits(current) {
		return eventstore.AppendResult{}, &eventstore.ConflictError{Stream: a.Stream, Expected: a.Expected, Actual: current}
	}
	seen := map[uuid.UUID]bool{}
	for _, e := range events {
		if l.eventIDs[e.ID] || seen[e.ID] {
			return eventstore.AppendResult{}, fmt.Errorf("%w: event id %s", eventstore.ErrDuplicateEvent, e.ID)
		}
		seen[e.ID] = true
	}
	if st == nil {
		st = &stream{tenant: a.TenantID}
		l.streams[a.Stream] = st
	}
	l.txid++
	at := l.recordedAt()
	res := eventstore.AppendResult{Stream: a.Stream, FirstVersion: st.version + 1}
	for _, e := range events {
		st.version++
		pos := int64(len(l.events) + 1)
		l.events = append(l.events, eventlog.Event{
			Position: eventlog.Position{TransactionID: l.txid, GlobalPosition: pos},
			Stream:   a.Stream, StreamVersion: st.version, EventID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion,
			TenantID: a.TenantID, ActorID: a.ActorID, CorrelationID: a.CorrelationID, CausationID: e.CausationID,
			Data: append([]byte(nil), e.Data...), Metadata: a.Metadata, RecordedAt: at,
		})
		st.events = append(st.events, len(l.events)-1)
		l.eventIDs[e.ID] = true
		res.LastVersion, res.LastPosition = st.version, pos
	}
	if a.CommandID != uuid.Nil {
		replay := res
		replay.Replayed = true
		l.commands[a.CommandID] = command{tenant: a.TenantID, result: replay, hash: a.RequestHash}
	}
	return res, nil
}

// RecordedCommand is the first result of command id, as
// eventstore.Store.RecordedCommand.
func (s *Store) RecordedCommand(_ context.Context, id uuid.UUID, requestHash []byte) (eventstore.AppendResult, bool, error) {
	s.log.mu.RLock()
	c, ok := s.log.commands[id]
	s.log.mu.RUnlock()
	if !ok {
		return eventstore.AppendResult{}, false, nil
	}
	if err := eventstore.CheckRequestHash(id, c.hash, requestHash); err != nil {
		return eventstore.AppendResult{}, false, err
	}
	return c.result, true, nil
}

// StreamVersion is a stream's version for tenant, 0 if it has none.
func (s *Store) StreamVersion(_ context.Context, tenant uuid.UUID, id eventlog.StreamID) (int64, error) {
	s.log.mu.RLock()
	defer s.log.mu.RUnlock()
	if st := s.log.streams[id]; st != nil && st.tenant == tenant {
		return st.version, nil
	}
	return 0, nil
}

// Upcast brings e to its type's latest version.
func (s *Store) Upcast(e *eventlog.Event) error { return s.upcasters.Upcast(e) }
