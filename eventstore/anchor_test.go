package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// rewrite replaces the data of st's event at version from and recomputes
// every hash from there to the stream's head, as the superuser with the
// insert-only trigger off: the rewrite an attacker with the owner's rights
// would make so that the chain is consistent again.
func rewrite(t *testing.T, db *pgtest.DB, st eventlog.StreamID, from int64, data string) {
	t.Helper()
	ctx := context.Background()
	withoutInsertOnly(t, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE events SET data = $3 WHERE stream_id = $1 AND stream_version = $2`, st.String(), from, data); err != nil {
			return err
		}
		var head int64
		if err := tx.QueryRow(ctx, `SELECT max(stream_version) FROM events WHERE stream_id = $1`, st.String()).Scan(&head); err != nil {
			return err
		}
		for v := from; v <= head; v++ {
			if _, err := tx.Exec(ctx, `UPDATE events e
				SET prev_hash = p.link,
				    hash = sha256(p.link || event_canonical(e.event_id, e.stream_id, e.stream_version, e.event_type,
				        e.schema_version, e.tenant_id, e.actor_id, e.correlation_id, e.causation_id,
				        e.data, e.metadata, e.recorded_at))
				FROM (SELECT CASE WHEN $2::bigint = 1 THEN event_chain_origin()
				      ELSE (SELECT hash FROM events WHERE stream_id = $1 AND stream_version = $2::bigint - 1) END AS link) p
				WHERE e.stream_id = $1 AND e.stream_version = $2`, st.String(), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestAnchorRevealsARewrittenChain: a rewrite that recomputes the chain
// passes VerifyChains (the chain's documented limit), and the anchor taken
// before it finds it; so it does a deleted stream. Events appended after the
// anchor are not its business.
func TestAnchorRevealsARewrittenChain(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	tenantA, tenantB := uuid.New(), uuid.New()
	rewritten, deleted, grown, clean := stream(t), stream(t), stream(t), stream(t)
	appendN(t, s, tenantA, rewritten, 5, 1)
	appendN(t, s, tenantA, deleted, 2, 2)
	appendN(t, s, tenantB, grown, 3, 1)
	appendN(t, s, tenantB, clean, 2, 1)

	all, err := s.AnchorLog(ctx, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	if all.Streams != 4 || all.Events != 12 || all.TenantID != nil || all.Validate() != nil {
		t.Fatalf("anchor of the whole log: %+v (%v)", all, all.Validate())
	}
	onlyB, err := s.AnchorLog(ctx, tenantB)
	if err != nil {
		t.Fatal(err)
	}
	if onlyB.Streams != 2 || onlyB.Events != 5 || onlyB.TenantID == nil || *onlyB.TenantID != tenantB {
		t.Fatalf("tenant B's anchor: %+v", onlyB)
	}
	// It survives its own JSON, which is how it is kept.
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	var kept eventstore.Anchor
	if err := json.Unmarshal(b, &kept); err != nil {
		t.Fatal(err)
	}
	if m, err := s.CheckAnchor(ctx, kept); err != nil || len(m) != 0 {
		t.Fatalf("untouched log against its anchor: %v %+v", err, m)
	}

	// Later appends extend a chain past its anchored head: nothing to report.
	appendLater := func() {
		if _, err := s.Append(ctx, eventstore.Append{Stream: grown, TenantID: tenantB, Expected: eventstore.Exactly(3),
			Events: []eventstore.NewEvent{{Type: "vm_renamed", Data: map[string]string{"name": "later"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	appendLater()

	rewrite(t, db, rewritten, 2, `{"name":"forged"}`)
	tamper(t, db, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 2`, deleted.String())
	tamper(t, db, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 1`, deleted.String())
	if _, err := db.AdminConn(t).Exec(ctx, `DELETE FROM streams WHERE stream_id = $1`, deleted.String()); err != nil {
		t.Fatal(err)
	}

	// The chain alone cannot see either: both streams are consistent.
	if rep := verify(t, s, eventstore.VerifyFilter{}); !rep.OK() {
		t.Fatalf("the chains were made consistent again, yet: %+v", rep)
	}
	m, err := s.CheckAnchor(ctx, kept)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 {
		t.Fatalf("mismatches: %+v, want the rewritten and the deleted stream", m)
	}
	got := map[string]eventstore.AnchorMismatch{m[0].Head.Stream: m[0], m[1].Head.Stream: m[1]}
	if r := got[rewritten.String()]; r.Reason != eventstore.AnchorRewritten || r.Head.Version != 5 || len(r.Stored) != 32 {
		t.Fatalf("rewritten stream: %+v", r)
	}
	if d := got[deleted.String()]; d.Reason != eventstore.AnchorMissing || d.Stored != nil {
		t.Fatalf("deleted stream: %+v", d)
	}
	// Tenant B's anchor, checked in B's scope, is still matched.
	if m, err := s.CheckAnchor(ctx, onlyB); err != nil || len(m) != 0 {
		t.Fatalf("tenant B: %v %+v", err, m)
	}

	// An anchor document altered after it was taken is refused, not used.
	forged := kept
	forged.Heads = append([]eventstore.Head(nil), kept.Heads...)
	for i := range forged.Heads {
		if forged.Heads[i].Stream == rewritten.String() {
			forged.Heads[i].Version = 4
		}
	}
	if _, err := s.CheckAnchor(ctx, forged); !errors.Is(err, eventstore.ErrAnchorInvalid) {
		t.Fatalf("an altered anchor: %v", err)
	}
	dropped := kept
	dropped.Heads = kept.Heads[1:]
	if err := dropped.Validate(); !errors.Is(err, eventstore.ErrAnchorInvalid) {
		t.Fatalf("an anchor with a head removed: %v", err)
	}
}
