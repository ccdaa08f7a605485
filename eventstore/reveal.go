package eventstore

import (
	"context"

	"github.com/accountdb/accountdb/eventlog"
)

// Revealer turns the sealed personal values of events read from the log
// back into what readers may see (privacy.Revealer: the plaintext while its
// key exists, "[erased]" after). The store keeps ciphertext; a reader only
// ever sees what a Revealer gives it.
type Revealer interface {
	Reveal(ctx context.Context, evs []eventlog.Event) error
}

// WithRevealer returns a store that shares s's pool, metrics and upcasters
// and reveals every event it reads through r: ReadStream, ReadStreamUntil,
// ReadAll, FoldStream and the folds from snapshots, AuditPage and AuditEach
// (and so commands, history, audit, export, replay and rebuilds). nil
// reveals nothing. The relay reads through a store without one (the bus
// carries the ciphertext the log holds), and VerifyChains reads the stored
// bytes it hashes. r is called outside any transaction of the store's for
// every read but the folds, whose r must not need a connection of the
// store's pool (privacy.PGKeys reads keys on a pool of its own).
func (s *Store) WithRevealer(r Revealer) *Store {
	c := *s
	c.revealer = r
	return &c
}

// reveal reveals evs in place with the store's revealer, if it has one.
func (s *Store) reveal(ctx context.Context, evs []eventlog.Event) ([]eventlog.Event, error) {
	if s.revealer == nil || len(evs) == 0 {
		return evs, nil
	}
	if err := s.revealer.Reveal(ctx, evs); err != nil {
		return nil, err
	}
	return evs, nil
}
