package api

import (
	"context"
	"net/http"
)

// Counting a request's limits while its session is checked (issue 16).
// The authenticated API's limits are keyed by the access token's user and
// tenant, which the token's signature vouches for before its session is
// read. The count and the session check are a database round trip each,
// and a request used to wait for one, then the other: authenticate now
// starts the count (Start) as soon as the token verifies, and Limit waits
// for that count instead of counting. The verdicts keep their order: a
// request whose session has ended is a 401, never a 429 (it was counted
// all the same, as a request a limit refuses is).

// earlyCount is a count Start began: hits, then rates and err once done
// is closed.
type earlyCount struct {
	hits  []RateHit
	done  chan struct{}
	rates []float64
	err   error
}

// earlyCountKey holds a chain's early count in a request's context.
type earlyCountKey struct{ chain *RateChain }

// Start begins counting r's limits and returns r with the count in its
// context, for Limit. r is returned as it is when the chain cannot count
// in one call or r's keys cannot be had yet: Limit then counts as always.
func (rc *RateChain) Start(r *http.Request) *http.Request {
	if rc.cc == nil {
		return r
	}
	hits, err := rc.hitsOf(r)
	if err != nil || len(hits) == 0 {
		return r
	}
	c := &earlyCount{hits: hits, done: make(chan struct{})}
	ctx := r.Context()
	go func() {
		defer close(c.done)
		// Not cut short when the request ends first (a 401 answered
		// before the count returns): a statement cancelled midway can
		// cost its pooled connection, and the count is one short
		// statement (the pool's statement timeout bounds it).
		c.rates, c.err = rc.cc.HitChain(context.WithoutCancel(ctx), hits)
	}()
	return r.WithContext(context.WithValue(ctx, earlyCountKey{rc}, c))
}

// started waits for the count Start began for r, if it did: hits is nil
// when it did not.
func (rc *RateChain) started(r *http.Request) (hits []RateHit, rates []float64, err error) {
	c, ok := r.Context().Value(earlyCountKey{rc}).(*earlyCount)
	if !ok {
		return nil, nil, nil
	}
	<-c.done
	return c.hits, c.rates, c.err
}
