package leader

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// scriptedLease answers TryAcquire from a script (then the last answer
// forever) and records releases.
type scriptedLease struct {
	mu       sync.Mutex
	answers  []error // nil: held; errNotHeld: not held; other: failed
	asked    int
	released []string
}

var errNotHeld = errors.New("not held")

func (l *scriptedLease) TryAcquire(context.Context, string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.answers[min(l.asked, len(l.answers)-1)]
	l.asked++
	switch a {
	case nil:
		return true, nil
	case errNotHeld:
		return false, nil
	default:
		return false, a
	}
}

func (l *scriptedLease) Release(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = append(l.released, name)
}

// TestEveryWorksOnlyWhileHeld: rounds run only at the ticks where the lease
// is held; a failed election and a failed round do not end the loop; the
// lease is released when ctx ends.
func TestEveryWorksOnlyWhileHeld(t *testing.T) {
	l := &scriptedLease{answers: []error{errNotHeld, errors.New("database down"), nil, nil, errNotHeld}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu     sync.Mutex
		rounds []int // the TryAcquire call each round followed
	)
	done := make(chan error, 1)
	go func() {
		done <- Every(ctx, l, "job:x", time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), "job", func(context.Context) error {
			l.mu.Lock()
			asked := l.asked
			l.mu.Unlock()
			mu.Lock()
			rounds = append(rounds, asked)
			mu.Unlock()
			return errors.New("round failed") // logged, not fatal
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		asked := l.asked
		l.mu.Unlock()
		if asked >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d elections in 10s", asked)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Every returned %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rounds) != 2 || rounds[0] != 3 || rounds[1] != 4 {
		t.Fatalf("rounds after elections %v, want [3 4] (held only at the 3rd and 4th)", rounds)
	}
	if len(l.released) != 1 || l.released[0] != "job:x" {
		t.Fatalf("released %v, want [job:x]", l.released)
	}
}
