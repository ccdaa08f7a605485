// Package leader runs a periodic job in one process of many: the one that
// holds the job's lease (projections.Leases, a PostgreSQL advisory lock) at
// each tick. The backup scheduler and the privacy retention job are such
// jobs; each declares its own Lease port and passes it here.
package leader

import (
	"context"
	"log/slog"
	"time"
)

// Lease is the election: TryAcquire says whether this process holds name
// (taking it if free), Release gives it up.
type Lease interface {
	TryAcquire(ctx context.Context, name string) (bool, error)
	Release(name string)
}

// Every runs work at once and then every interval while this process holds
// the lease name, until ctx ends; it releases the lease when it returns. A
// failed election or a failed round is logged as job and tried again at
// the next tick: a periodic job outlives a database outage.
func Every(ctx context.Context, l Lease, name string, interval time.Duration, log *slog.Logger, job string, work func(context.Context) error) error {
	defer l.Release(name)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if held, err := l.TryAcquire(ctx, name); err != nil {
			log.Warn(job+": lease", "err", err)
		} else if held {
			if err := work(ctx); err != nil && ctx.Err() == nil {
				log.Warn(job, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
