package eventlog_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

func TestStreamIDRoundTrip(t *testing.T) {
	id := uuid.New()
	for _, typ := range []string{"vm", "tenant", "cluster_node", "a" + strings.Repeat("b", 39)} {
		s, err := eventlog.NewStreamID(typ, id)
		if err != nil {
			t.Fatalf("NewStreamID(%q): %v", typ, err)
		}
		if want := typ + "-" + id.String(); s.String() != want {
			t.Fatalf("String() = %s, want %s", s, want)
		}
		parsed, err := eventlog.ParseStreamID(s.String())
		if err != nil || parsed != s {
			t.Fatalf("ParseStreamID(%s) = %+v, %v", s, parsed, err)
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != `"`+s.String()+`"` {
			t.Fatalf("JSON %s, %v: want a plain string", b, err)
		}
		var back eventlog.StreamID
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("JSON round trip: %+v, %v", back, err)
		}
	}
}

func TestParseStreamIDRejectsMalformedIDs(t *testing.T) {
	for _, bad := range []string{
		"", "vm", "vm-not-a-uuid", "Vm-" + uuid.NewString(), "-" + uuid.NewString(),
		"vm-" + uuid.Nil.String(), "vm." + uuid.NewString(), "has.dot-" + uuid.NewString(),
		"a" + strings.Repeat("b", 40) + "-" + uuid.NewString(), strings.Repeat("a", 300) + "-" + uuid.NewString(),
	} {
		if _, err := eventlog.ParseStreamID(bad); !errors.Is(err, eventlog.ErrInvalidStreamID) {
			t.Errorf("ParseStreamID(%.20q): want ErrInvalidStreamID, got %v", bad, err)
		}
		var s eventlog.StreamID
		if err := json.Unmarshal([]byte(`"`+bad+`"`), &s); !errors.Is(err, eventlog.ErrInvalidStreamID) {
			t.Errorf("unmarshal %.20q: want ErrInvalidStreamID, got %v", bad, err)
		}
	}
	if _, err := eventlog.NewStreamID("vm", uuid.Nil); !errors.Is(err, eventlog.ErrInvalidStreamID) {
		t.Errorf("NewStreamID with a nil id: want ErrInvalidStreamID, got %v", err)
	}
}

func TestExcerptBoundsUntrustedInput(t *testing.T) {
	if got := eventlog.Excerpt("short"); got != "short" {
		t.Fatalf("Excerpt(short) = %q", got)
	}
	long := eventlog.Excerpt(strings.Repeat("x", 200))
	if want := strings.Repeat("x", 80) + "…"; long != want {
		t.Fatalf("Excerpt of 200 bytes = %q, want 80 bytes and an ellipsis", long)
	}
	if got := eventlog.Excerpt("a\xffb"); got != "a?b" {
		t.Fatalf("Excerpt of invalid UTF-8 = %q, want a?b", got)
	}
}
