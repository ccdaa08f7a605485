package commands

import (
	"context"
	"sync"

	"github.com/google/uuid"
)

// A create looks up the cluster offering its template, then reads the pool
// a VM on that cluster takes its address from (vmPool): two database round
// trips, one after the other, and under load a POST waits its turn for
// each (issue 16). The cluster the offering answers is nearly always the
// one it answered last time for the same template, so the pool's read
// starts on that cluster while the offering is looked up, and is used when
// the offering agrees; else the pool is read after, as before. The read
// itself is the same either way (nothing about the pool is cached here):
// only when it starts differs.

// offerGuesses is the cluster the offering last answered for each
// template and kind.
type offerGuesses struct {
	mu   sync.Mutex
	last map[offerKey]uuid.UUID
}

type offerKey struct{ template, kind string }

// offerGuessesMax bounds the map; past it, it starts over.
const offerGuessesMax = 1_000

func (g *offerGuesses) guess(k offerKey) uuid.UUID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last[k]
}

func (g *offerGuesses) answered(k offerKey, cluster uuid.UUID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil || len(g.last) >= offerGuessesMax {
		g.last = map[offerKey]uuid.UUID{}
	}
	g.last[k] = cluster
}

// vmPoolAhead starts reading the pool of a VM on cluster (named, or else
// the offering's last answer for k) and returns what answers vmPool for
// the cluster the offering finally answers: the read started, when it is
// the same cluster; else a read made then.
func (h *Handler) vmPoolAhead(ctx context.Context, pool, cluster uuid.UUID, k offerKey) func(uuid.UUID) (uuid.UUID, error) {
	if cluster == uuid.Nil {
		cluster = h.offers.guess(k)
	}
	if cluster == uuid.Nil {
		return func(c uuid.UUID) (uuid.UUID, error) {
			h.offers.answered(k, c)
			return h.vmPool(ctx, pool, c)
		}
	}
	var (
		done   = make(chan struct{})
		result uuid.UUID
		err    error
	)
	go func() {
		defer close(done)
		result, err = h.vmPool(ctx, pool, cluster)
	}()
	return func(c uuid.UUID) (uuid.UUID, error) {
		h.offers.answered(k, c)
		if c != cluster {
			return h.vmPool(ctx, pool, c)
		}
		<-done
		return result, err
	}
}
