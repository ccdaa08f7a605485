package webhooks

import (
	"context"
	"testing"
)

// A feed with workers subscribed, without a consumer behind it: what join
// and hand decide, which is what keeps one endpoint from waiting on another.
func testFeed(t *testing.T, last uint64) (*feeds, *feed) {
	t.Helper()
	fs := &feeds{m: map[string]*feed{}}
	_, cancel := context.WithCancel(context.Background())
	f := &feed{subject: "s", last: last, subs: map[*worker]*subscription{}, cancel: cancel}
	fs.m["s"] = f
	return fs, f
}

func TestFeedJoinsOnlyWorkersCaughtUp(t *testing.T) {
	fs, _ := testFeed(t, 10)
	if s := fs.join(&worker{}, "s", 9); s != nil {
		t.Fatal("a worker behind the feed joined it: it would miss message 10")
	}
	if s := fs.join(&worker{}, "s", 0); s != nil {
		t.Fatal("a worker without a cursor joined (it reads from its endpoint's start time)")
	}
	at := fs.join(&worker{}, "s", 10)
	ahead := fs.join(&worker{}, "s", 12)
	if at == nil || ahead == nil {
		t.Fatal("a worker at or past the feed did not join")
	}
	for seq := uint64(11); seq <= 13; seq++ {
		fs.hand(fs.m["s"], &item{seq: seq})
	}
	if got := seqs(at); len(got) != 3 || got[0] != 11 || got[2] != 13 {
		t.Fatalf("the worker at 10 got %v, want 11..13", got)
	}
	if got := seqs(ahead); len(got) != 1 || got[0] != 13 {
		t.Fatalf("the worker at 12 got %v, want 13 only (it had read up to 12)", got)
	}
}

// TestFeedDropsAWorkerThatFallsBehind: a worker whose queue is full (its
// endpoint hangs) is dropped, its queue closed, while the others get
// every message: hand never waits.
func TestFeedDropsAWorkerThatFallsBehind(t *testing.T) {
	fs, f := testFeed(t, 1)
	stuck, live := &worker{}, &worker{}
	ss, ls := fs.join(stuck, "s", 1), fs.join(live, "s", 1)
	var got []uint64
	for seq := uint64(2); seq < 2+3*feedQueue; seq++ {
		fs.hand(f, &item{seq: seq})
		for len(ls.ch) > 0 { // the live worker keeps up
			got = append(got, (<-ls.ch).seq)
		}
	}
	if len(got) != 3*feedQueue || got[len(got)-1] != 1+3*feedQueue {
		t.Fatalf("the live worker got %d messages, want %d", len(got), 3*feedQueue)
	}
	if _, ok := f.subs[stuck]; ok {
		t.Fatal("the stuck worker is still subscribed")
	}
	n := 0
	for range ss.ch { // closed after what it had queued
		n++
	}
	if n != feedQueue || ss.err != nil {
		t.Fatalf("the stuck worker's queue held %d (err %v), want %d and no error: it reads on by itself", n, ss.err, feedQueue)
	}
	fs.leave(stuck, "s", ss) // what its worker does next: nothing changes
	if fs.m["s"] != f || len(f.subs) != 1 {
		t.Fatal("the stuck worker's leaving touched the feed")
	}
	fs.leave(live, "s", ls)
	if fs.m["s"] != nil {
		t.Fatal("a feed without workers was kept")
	}
}

func seqs(s *subscription) []uint64 {
	var out []uint64
	for len(s.ch) > 0 {
		out = append(out, (<-s.ch).seq)
	}
	return out
}
