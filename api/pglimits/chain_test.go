package pglimits_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/api/pglimits"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

// HitChain counts a user's and a tenant's limit in one statement as two
// Hits one after the other would: the tenant's only while the user is
// within their rate, on the same rows Hit counts on.
func TestHitChainCountsLikeNestedLimits(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	s := pglimits.New(db.App, slog.New(slog.DiscardHandler))
	user, tenant := "user:"+uuid.NewString(), "tenant:"+uuid.NewString()
	chain := []api.RateHit{{Key: user, Window: time.Hour, N: 3}, {Key: tenant, Window: time.Hour, N: 100}}
	for i := 1; i <= 3; i++ {
		rates, err := s.HitChain(ctx, chain)
		if err != nil || !slices.Equal(rates, []float64{float64(i), float64(i)}) {
			t.Fatalf("request %d: rates %v (%v), want both %d", i, rates, err, i)
		}
	}
	// Over the user's 3: counted for the user, not for the tenant.
	for i := 4; i <= 5; i++ {
		rates, err := s.HitChain(ctx, chain)
		if err != nil || !slices.Equal(rates, []float64{float64(i)}) {
			t.Fatalf("request %d: rates %v (%v), want the user's %d alone", i, rates, err, i)
		}
	}
	if rate, err := s.Hit(ctx, tenant, time.Hour); err != nil || rate != 4 {
		t.Fatalf("the tenant's rate after 3 counted requests: %v (%v), want 4 with this one", rate, err)
	}
	if rate, err := s.Hit(ctx, user, time.Hour); err != nil || rate != 6 {
		t.Fatalf("the user's rate after 5 requests: %v (%v), want 6 with this one", rate, err)
	}
	// Another user of the tenant is counted apart, the tenant together.
	other := []api.RateHit{{Key: "user:" + uuid.NewString(), Window: time.Hour, N: 3}, {Key: tenant, Window: time.Minute, N: 100}}
	if rates, err := s.HitChain(ctx, other); err != nil || !slices.Equal(rates, []float64{1, 1}) {
		t.Fatalf("another user, the tenant under a one-minute limit: %v (%v), want 1 and 1 (each window its own row)", rates, err)
	}
	// A chain one statement does not cover is counted one by one.
	same := []api.RateHit{{Key: user, Window: time.Hour, N: 100}, {Key: user, Window: time.Hour, N: 100}}
	if rates, err := s.HitChain(ctx, same); err != nil || !slices.Equal(rates, []float64{7, 8}) {
		t.Fatalf("one key twice: %v (%v), want 7 and 8", rates, err)
	}
}
