package api

import (
	"context"
	"sync"
)

// ConsoleDrain ends the open consoles of a process that stops. Their
// WebSockets are hijacked connections, which http.Server.Shutdown neither
// waits for nor closes: without this, the process would close its database
// pool under them and their console_closed events would be lost.
type ConsoleDrain struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	draining bool
	open     sync.WaitGroup
}

// NewConsoleDrain returns a drain with no console open.
func NewConsoleDrain() *ConsoleDrain {
	ctx, cancel := context.WithCancel(context.Background())
	return &ConsoleDrain{ctx: ctx, cancel: cancel}
}

// enter counts a console that starts, with the context that ends it at the
// drain; false once the drain has begun (the console must not start).
func (d *ConsoleDrain) enter() (context.Context, func(), bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining {
		return nil, nil, false
	}
	d.open.Add(1)
	return d.ctx, d.open.Done, true
}

// Drain ends every open console (reason shutdown, WebSocket code 1001) and
// waits until each has recorded its console_closed, or ctx ends. Call it
// after http.Server.Shutdown and before the database pool closes.
func (d *ConsoleDrain) Drain(ctx context.Context) error {
	d.mu.Lock()
	d.draining = true
	d.mu.Unlock()
	d.cancel()
	done := make(chan struct{})
	go func() { d.open.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
