// Package migrations holds the numbered SQL files that define AccountDB's
// schema, embedded in the binary and applied with goose. They are the only way
// the schema changes: never by hand.
//
// The first file creates two roles: accountdb_owner, which owns every object
// (each later file starts with SET LOCAL ROLE accountdb_owner), and
// accountdb_app, the LOGIN role the service connects as. accountdb_app is not
// superuser, not BYPASSRLS and owns nothing, so FORCE ROW LEVEL SECURITY binds it.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

//go:embed *.sql
var files embed.FS

// OwnerRole owns every schema object; AppRole is what the service logs in as.
const (
	OwnerRole = "accountdb_owner"
	AppRole   = "accountdb_app"
)

// Up applies every pending migration. adminURL must name a role that can create
// roles and SET ROLE accountdb_owner (a superuser, or the database owner with
// CREATEROLE); it is used for migrations only, never to serve requests.
func Up(ctx context.Context, adminURL string) (applied int, err error) {
	p, db, err := provider(adminURL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	results, err := p.Up(ctx)
	if err != nil {
		return len(results), fmt.Errorf("migrate up: %w", err)
	}
	return len(results), nil
}

// Status reports the applied version and the latest version embedded.
func Status(ctx context.Context, adminURL string) (current, latest int64, err error) {
	p, db, err := provider(adminURL)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	current, err = p.GetDBVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate status: %w", err)
	}
	sources := p.ListSources()
	if len(sources) > 0 {
		latest = sources[len(sources)-1].Version
	}
	return current, latest, nil
}

func provider(adminURL string) (*goose.Provider, *sql.DB, error) {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: open: %w", err)
	}
	// Out of order: features are developed on branches in parallel, each
	// with its own migration number, and land in any order. A database
	// already at a higher version then still gets the lower-numbered
	// migration that landed later, instead of refusing to start. Each
	// migration touches only its own tables, so their order does not matter.
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithAllowOutofOrder(true))
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	return p, db, nil
}

// The pgx database/sql driver registers itself as "pgx" on import; referencing
// the package keeps that import explicit rather than a blank one.
var _ = stdlib.GetDefaultDriver
