package commands

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
)

// touchRecorder is an APITokenStore that records Touch calls (the batched
// last-used writes) and can be made to fail.
type touchRecorder struct {
	APITokenStore
	calls []map[uuid.UUID]APITokenUse // one per Touch, keyed by token
	fail  bool
}

func (r *touchRecorder) Touch(_ context.Context, _ uuid.UUID, uses []APITokenUse) error {
	if r.fail {
		return errors.New("database down")
	}
	m := map[uuid.UUID]APITokenUse{}
	for _, u := range uses {
		m[u.ID] = u
	}
	r.calls = append(r.calls, m)
	return nil
}

type usageTables struct {
	Tables
	tokens *touchRecorder
}

func (t usageTables) APITokens() APITokenStore { return t.tokens }

// TestAPITokenUsesAreBatched: a thousand uses of three tokens in two tenants
// are one write per tenant, each with every token's latest use; nothing is
// written again until a token is used again; uses a failed write could not
// record are kept for the next one.
func TestAPITokenUsesAreBatched(t *testing.T) {
	rec := &touchRecorder{}
	h := &Handler{tables: usageTables{tokens: rec}, usage: &tokenUsage{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tenantA, tenantB := uuid.New(), uuid.New()
	a1, a2, b1 := uuid.New(), uuid.New(), uuid.New()
	base := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for i := range 1000 {
		at := base.Add(time.Duration(i) * time.Millisecond)
		switch i % 3 {
		case 0:
			h.usage.note(tenantA, APITokenUse{ID: a1, At: at, IP: "192.0.2.1"})
		case 1:
			h.usage.note(tenantA, APITokenUse{ID: a2, At: at, IP: "192.0.2.2"})
		default:
			h.usage.note(tenantB, APITokenUse{ID: b1, At: at, IP: "192.0.2.3"})
		}
	}
	// An older use noted late does not replace a newer one.
	h.usage.note(tenantA, APITokenUse{ID: a1, At: base, IP: "198.51.100.9"})
	if err := h.FlushAPITokenUsage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 2 {
		t.Fatalf("%d writes for 1000 uses in 2 tenants, want 2", len(rec.calls))
	}
	latest := map[uuid.UUID]time.Time{a1: base.Add(999 * time.Millisecond), a2: base.Add(997 * time.Millisecond), b1: base.Add(998 * time.Millisecond)}
	seen := 0
	for _, c := range rec.calls {
		for id, u := range c {
			seen++
			if !u.At.Equal(latest[id]) || u.IP == "198.51.100.9" {
				t.Errorf("token %s: written %v from %s, want its latest use %v", id, u.At, u.IP, latest[id])
			}
		}
	}
	if seen != 3 {
		t.Fatalf("%d token uses written, want 3", seen)
	}
	if err := h.FlushAPITokenUsage(context.Background()); err != nil || len(rec.calls) != 2 {
		t.Fatalf("a flush with no new use wrote (%d writes, %v)", len(rec.calls), err)
	}

	rec.fail = true
	h.usage.note(tenantB, APITokenUse{ID: b1, At: base.Add(time.Hour), IP: "192.0.2.3"})
	if err := h.FlushAPITokenUsage(context.Background()); err == nil {
		t.Fatal("a failed write was not reported")
	}
	rec.fail = false
	if err := h.FlushAPITokenUsage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 3 || !rec.calls[2][b1].At.Equal(base.Add(time.Hour)) {
		t.Fatalf("the use a failed write missed was not written next time: %+v", rec.calls)
	}
}
