package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

func TestAuditVerifyExitsNonZeroOnTampering(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := eventstore.New(db.App, nil)
	tenant := uuid.New()
	st := eventlog.StreamID{Type: "vm", ID: uuid.New()}
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

// TestAuditAnchor: `audit anchor` writes the heads once (never over an
// existing file), `audit verify --anchor` passes on the untouched log and
// fails on a rewrite that recomputed the chain (which plain verify cannot
// see), an altered anchor file is refused, and a broken log is not anchored.
func TestAuditAnchor(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := eventstore.New(db.App, nil)
	st := eventlog.StreamID{Type: "vm", ID: uuid.New()}
	tenant := uuid.New()
	for i := range 3 {
		if _, err := store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Exactly(int64(i)),
			Events: []eventstore.NewEvent{{Type: "vm_renamed", Data: map[string]int{"n": i}}}}); err != nil {
			t.Fatal(err)
		}
	}
	audit := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append(append([]string{"audit"}, args...), "--database-url", db.AdminURL), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	path := filepath.Join(t.TempDir(), "anchor.json")
	if _, msg, err := audit("anchor", "--out", path); err != nil || !strings.Contains(msg, "anchored 1 streams") {
		t.Fatalf("anchor: %v %s", err, msg)
	}
	if _, _, err := audit("anchor", "--out", path); err == nil {
		t.Fatal("an existing anchor file was overwritten")
	}
	if out, _, err := audit("verify", "--anchor", path); err != nil || !strings.Contains(out, "OK: the log matches anchor") {
		t.Fatalf("verify against the anchor: %v\n%s", err, out)
	}

	// The rewrite: event 1's data changed and every hash after it recomputed.
	admin := db.AdminConn(t)
	for _, sql := range []string{
		`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`,
		`UPDATE events SET data = '{"n":99}' WHERE stream_id = '` + st.String() + `' AND stream_version = 1`,
		`UPDATE events e SET prev_hash = event_chain_origin(), hash = sha256(event_chain_origin() || event_canonical(e.event_id, e.stream_id,
			e.stream_version, e.event_type, e.schema_version, e.tenant_id, e.actor_id, e.correlation_id, e.causation_id, e.data, e.metadata,
			e.recorded_at)) WHERE stream_id = '` + st.String() + `' AND stream_version = 1`,
		`UPDATE events e SET prev_hash = p.hash, hash = sha256(p.hash || event_canonical(e.event_id, e.stream_id,
			e.stream_version, e.event_type, e.schema_version, e.tenant_id, e.actor_id, e.correlation_id, e.causation_id, e.data, e.metadata,
			e.recorded_at)) FROM events p WHERE p.stream_id = e.stream_id AND p.stream_version = 1 AND e.stream_id = '` + st.String() + `' AND e.stream_version = 2`,
		`UPDATE events e SET prev_hash = p.hash, hash = sha256(p.hash || event_canonical(e.event_id, e.stream_id,
			e.stream_version, e.event_type, e.schema_version, e.tenant_id, e.actor_id, e.correlation_id, e.causation_id, e.data, e.metadata,
			e.recorded_at)) FROM events p WHERE p.stream_id = e.stream_id AND p.stream_version = 2 AND e.stream_id = '` + st.String() + `' AND e.stream_version = 3`,
		`ALTER TABLE events ENABLE TRIGGER events_no_update_delete`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if out, _, err := audit("verify"); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("the recomputed chain should pass plain verify (its documented limit): %v\n%s", err, out)
	}
	out, _, err := audit("verify", "--anchor", path)
	if !errors.Is(err, errAnchorMismatch) || !strings.Contains(out, st.String()) || !strings.Contains(out, "rewritten") {
		t.Fatalf("verify against the anchor after the rewrite: %v\n%s", err, out)
	}

	// An anchor file edited to match the rewrite is refused as invalid.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var a eventstore.Anchor
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := admin.QueryRow(ctx, `SELECT hash FROM events WHERE stream_id = $1 AND stream_version = 3`, st.String()).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	a.Heads[0].Hash = hex.EncodeToString(stored)
	forged := filepath.Join(t.TempDir(), "forged.json")
	if b, err = json.Marshal(a); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(forged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := audit("verify", "--anchor", forged); !errors.Is(err, eventstore.ErrAnchorInvalid) {
		t.Fatalf("an edited anchor: %v", err)
	}

	// A log whose chain is broken is not anchored.
	for _, sql := range []string{
		`ALTER TABLE events DISABLE TRIGGER events_no_update_delete`,
		`UPDATE events SET data = '{"n":7}' WHERE stream_id = '` + st.String() + `' AND stream_version = 2`,
		`ALTER TABLE events ENABLE TRIGGER events_no_update_delete`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, msg, err := audit("anchor", "--out", filepath.Join(t.TempDir(), "b.json")); !errors.Is(err, errChainsBroken) || !strings.Contains(msg, "content_changed") {
		t.Fatalf("anchoring a broken log: %v\n%s", err, msg)
	}
}
