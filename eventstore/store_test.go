package eventstore_test

import (
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/eventstore/storetest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

func newStore(t *testing.T) (*eventstore.Store, *pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	return eventstore.New(db.App, nil), db
}

func stream(t testing.TB) eventlog.StreamID {
	t.Helper()
	s, err := eventlog.NewStreamID("vm", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func oneEvent(typ string, data any) []eventstore.NewEvent {
	return []eventstore.NewEvent{{Type: typ, Data: data}}
}

// TestConformance runs the event store suite on PostgreSQL; memstore runs
// the same one.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) storetest.Store {
			s, _ := newStore(t)
			return s
		},
		WithUpcasters: func(s storetest.Store, u *eventstore.Upcasters) storetest.Store {
			return s.(*eventstore.Store).WithUpcasters(u)
		},
		AppendLate: func(t *testing.T, s storetest.Store, tenant uuid.UUID, st eventlog.StreamID, events []eventstore.NewEvent, during func()) {
			appendLate(t, s.(*eventstore.Store), tenant, st, events, during)
		},
	})
}
