package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/eventstore/memstore"
	"github.com/accountdb/accountdb/eventstore/storetest"
	"github.com/google/uuid"
)

// store is a Store with the clock it records by.
type store struct {
	*memstore.Store
	clock *memstore.Clock
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(*testing.T) storetest.Store {
			c := &memstore.Clock{}
			return store{memstore.New(memstore.WithClock(c.Now)), c}
		},
		WithUpcasters: func(s storetest.Store, u *eventstore.Upcasters) storetest.Store {
			return store{s.(store).WithUpcasters(u), s.(store).clock}
		},
		// As a PostgreSQL transaction that began before during and commits
		// after it: the events are recorded at the instant it began.
		AppendLate: func(t *testing.T, s storetest.Store, tenant uuid.UUID, st eventlog.StreamID, events []eventstore.NewEvent, during func()) {
			c := s.(store).clock
			began := time.Now()
			time.Sleep(2 * time.Millisecond)
			during()
			c.Pin(began)
			defer c.Pin(time.Time{})
			if _, err := s.Append(context.Background(), eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), Events: events}); err != nil {
				t.Fatal(err)
			}
		},
	})
}
