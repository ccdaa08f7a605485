package feed

import (
	"errors"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseTypes(t *testing.T) {
	tooMany := make([]string, maxEventTypes+1)
	for i := range tooMany {
		tooMany[i] = "type=t" + strconv.Itoa(i)
	}
	for _, c := range []struct {
		query  string
		want   []string
		reason string // "" = accepted
	}{
		{"", nil, ""},
		{"type=vm_started&type=vm_created&type=vm_started", []string{"vm_created", "vm_started"}, ""},
		{"type=VM_started", nil, "lower snake case"},
		{"type=", nil, "lower snake case"},
		{"type=" + strings.Repeat("a", 41), nil, "lower snake case"},
		{strings.Join(tooMany, "&"), nil, "at most 20 types"},
	} {
		got, err := parseTypes(httptest.NewRequest("GET", "/v1/events?"+c.query, nil))
		var te *TypeFilterError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%q: %v", c.query, err)
		case c.reason == "" && !slices.Equal(got, c.want):
			t.Errorf("%q: %v, want %v", c.query, got, c.want)
		case c.reason != "" && (!errors.As(err, &te) || !strings.Contains(te.Reason, c.reason)):
			t.Errorf("%q: %v, want a TypeFilterError about %q", c.query, err, c.reason)
		}
	}
}

func TestMatcher(t *testing.T) {
	vmOnly := matcher(Subscriber{}, nil)
	if !vmOnly("vm", "vm_created") || vmOnly("user", "user_created") {
		t.Error("without audit:read a subscriber sees its VM events and nothing else")
	}
	all := matcher(Subscriber{AuditRead: true}, []string{"user_created"})
	if !all("user", "user_created") || all("vm", "vm_created") {
		t.Error("with audit:read and ?type= a subscriber sees exactly the types it asked for")
	}
}

func TestFrameCacheBounded(t *testing.T) {
	c := &frameCache{m: map[int64]frames{}, max: 100}
	c.put(1, frames{frame: make([]byte, 13), redacted: make([]byte, 13)}) // both count: over max/4, never cached
	if _, ok := c.get(1, 0); ok {
		t.Error("a frame over a quarter of the cache was cached")
	}
	for pos := int64(2); pos <= 6; pos++ {
		c.put(pos, frames{frame: make([]byte, 25), made: time.Now()})
	}
	if _, ok := c.get(2, 0); ok {
		t.Error("the oldest frame was kept past the bound")
	}
	for pos := int64(3); pos <= 6; pos++ {
		if _, ok := c.get(pos, 0); !ok {
			t.Errorf("frame %d evicted while within the bound", pos)
		}
	}
	if c.bytes != 100 {
		t.Errorf("%d bytes accounted, want 100", c.bytes)
	}
}
