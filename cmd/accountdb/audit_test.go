package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

func TestAuditVerifyExitsNonZeroOnTampering(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := eventstore.New(db.App, nil)
	tenant := uuid.New()
	st := eventstore.StreamID{Type: "vm", ID: uuid.New()}
	if _, err := store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
		Events: []eventstore.NewEvent{{Type: "vm_renamed", Data: map[string]string{"name": "a"}},
			{Type: "vm_renamed", Data: map[string]string{"name": "b"}}}}); err != nil {
		t.Fatal(err)
	}
	verify := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"audit", "verify", "--database-url", db.AdminURL}, args...), &out, io.Discard)
		return out.String(), err
	}
	out, err := verify()
	if err != nil || !strings.Contains(out, "checked 2 events in 1 streams") || !strings.Contains(out, "OK") {
		t.Fatalf("clean log: %v\n%s", err, out)
	}

	admin := db.AdminConn(t)
	if _, err := admin.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_no_update_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `UPDATE events SET data = '{"name":"z"}' WHERE stream_id = $1 AND stream_version = 1`, st.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ALTER TABLE events ENABLE TRIGGER events_no_update_delete`); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{nil, {"--stream", st.String()}, {"--tenant", tenant.String()}} {
		out, err = verify(args...)
		if !errors.Is(err, errChainsBroken) || !strings.Contains(out, st.String()) || !strings.Contains(out, "content_changed") {
			t.Fatalf("tampered log, %v: %v\n%s", args, err, out)
		}
	}
	if out, err := verify("--tenant", uuid.NewString()); err != nil || !strings.Contains(out, "checked 0 events") {
		t.Fatalf("another tenant: %v\n%s", err, out)
	}
	if _, err := verify("--stream", "nope"); err == nil {
		t.Fatal("a malformed stream id was accepted")
	}
}
