package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// startProgress shows a phase's progress on stderr: a line that updates in
// place on a terminal, one line per phase otherwise (CI logs). The report
// itself goes to stdout, so redirecting stdout keeps it clean.
func startProgress(label string, total time.Duration, status func() string) (stop func()) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		if total > 0 {
			fmt.Fprintf(os.Stderr, "… %s (%s)\n", label, total)
		} else {
			fmt.Fprintf(os.Stderr, "… %s\n", label)
		}
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	draw := func() {
		el := time.Since(start).Truncate(100 * time.Millisecond)
		if total > 0 {
			fmt.Fprintf(os.Stderr, "\r\033[K… %s: %s / %s  %s", label, el, total, status())
		} else {
			fmt.Fprintf(os.Stderr, "\r\033[K… %s: %s  %s", label, el, status())
		}
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}
