package tenantdb_test

import (
	"context"
	"testing"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// The codec changes how every uuid crosses the wire: values, arrays, NULLs,
// pointers and text parameters must read back exactly as before.
func TestUUIDsRoundTripThroughTheBinaryCodec(t *testing.T) {
	ctx := context.Background()
	pool := openPool(t, tenantdb.PoolOptions{MaxConns: 2})

	a, b := uuid.New(), uuid.Must(uuid.NewV7())
	var (
		one, fromText, null, fromPtr uuid.UUID
		many                         []uuid.UUID
		asText                       string
		nilPtrIsNull, nilIsNil       bool
		pg                           pgtype.UUID
	)
	null = uuid.New() // a reused target: NULL must reset it
	var nilPtr *uuid.UUID
	err := pool.QueryRow(ctx, `SELECT $1::uuid, $2::text::uuid, NULL::uuid, $3::uuid, $4::uuid[],
		$1::uuid::text, $5::uuid IS NULL, $6::uuid = '00000000-0000-0000-0000-000000000000', $1::uuid`,
		a, b.String(), &b, []uuid.UUID{a, b, uuid.Nil}, nilPtr, uuid.Nil,
	).Scan(&one, &fromText, &null, &fromPtr, &many, &asText, &nilPtrIsNull, &nilIsNil, &pg)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"value", one, a},
		{"scanned from a uuid sent as text", fromText, b},
		{"NULL into a reused target", null, uuid.Nil},
		{"pointer", fromPtr, b},
		{"array", len(many) == 3 && many[0] == a && many[1] == b && many[2] == uuid.Nil, true},
		{"as text in SQL", asText, a.String()},
		{"a nil pointer is NULL", nilPtrIsNull, true},
		{"uuid.Nil is the zero uuid, not NULL", nilIsNil, true},
		{"pgtype.UUID still scans", uuid.UUID(pg.Bytes) == a && pg.Valid, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}
