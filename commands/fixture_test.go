package commands_test

import (
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
)

// pgFixture is a command handler on PostgreSQL, with its side tables, for
// the commands that write rows beside their events.
type pgFixture struct {
	db    *pgtest.DB
	store *eventstore.Store
	h     *commands.Handler
}

func newPGFixture(t *testing.T) *pgFixture {
	t.Helper()
	db := pgtest.New(t)
	store := eventstore.New(db.App, nil)
	return &pgFixture{db: db, store: store, h: commands.New(store, pgstore.New(store), auth.DefaultPasswordHasher(), commands.SessionConfig{})}
}
