package api

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestConsoleDrainEndsOpenConsolesAndWaitsForThem(t *testing.T) {
	d := NewConsoleDrain()
	ctx, done, ok := d.enter()
	if !ok {
		t.Fatal("a console was refused before the drain")
	}
	closed := make(chan struct{})
	go func() {
		<-ctx.Done() // the relay ends at the drain, then records console_closed
		close(closed)
		done()
	}()
	if err := d.Drain(context.Background()); err != nil {
		t.Fatalf("drain: %v", err)
	}
	select {
	case <-closed:
	default:
		t.Fatal("the drain returned before the open console ended")
	}
	if _, _, ok := d.enter(); ok {
		t.Fatal("a console started after the drain began")
	}
}

func TestConsoleDrainGivesUpWithItsContext(t *testing.T) {
	d := NewConsoleDrain()
	_, done, ok := d.enter()
	if !ok {
		t.Fatal("a console was refused before the drain")
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("drain of a console that never ends: %v, want the context's deadline", err)
	}
}
