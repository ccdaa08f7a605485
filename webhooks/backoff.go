package webhooks

import (
	"math/rand/v2"
	"time"
)

// Backoff is the retry schedule: the wait after the n-th failed attempt is
// Base·2^(n-1), at most Max, of which a random part (up to a fifth) is
// taken off so that endpoints failing together do not retry together.
// Delivery of an event gives up GiveUpAfter after its first failure.
type Backoff struct {
	Base, Max, GiveUpAfter time.Duration
}

// DefaultBackoff retries after 5 s, 10 s, 20 s … up to every 2 h, for a
// day: about 20 attempts.
var DefaultBackoff = Backoff{Base: 5 * time.Second, Max: 2 * time.Hour, GiveUpAfter: 24 * time.Hour}

// Delay is the wait after the attempt-th failed attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}
