package assistant

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

func TestRedactEvent(t *testing.T) {
	st := eventlog.StreamID{Type: "user", ID: uuid.New()}
	e := eventlog.Event{Position: eventlog.Position{GlobalPosition: 42}, Stream: st, StreamVersion: 1, Type: "user_created",
		ActorID: uuid.New(), RecordedAt: time.Now(),
		Data: json.RawMessage(`{"email":"ann@example.com","display_name":"Ann","roles":["viewer"],"password_hash":"$argon2id$x",
			"nested":{"token":"abc","token_id":"root@pam!x","client_secret":"s3"},"note":"adb_0123","sealed":"v1:xyz","flag_secret":true}`),
		Metadata: eventlog.Metadata{ClientIP: "192.0.2.1", UserAgent: "probe/1", RequestID: "req-9", SessionID: "sess-9"}}
	got := string(redactEvent(e, false))
	for _, never := range []string{"ann@example.com", "Ann\"", "$argon2id", "\"abc\"", "s3", "adb_0123", "v1:xyz", "192.0.2.1", "probe/1", "req-9", "sess-9"} {
		if strings.Contains(got, never) {
			t.Errorf("sent %q: %s", never, got)
		}
	}
	for _, kept := range []string{`"position":42`, `"roles":["viewer"]`, `root@pam!x`, Withheld, domain.Redacted, `"flag_secret":true`} {
		if !strings.Contains(got, kept) {
			t.Errorf("lost %s: %s", kept, got)
		}
	}
	shared := string(redactEvent(e, true))
	if !strings.Contains(shared, "192.0.2.1") || !strings.Contains(shared, "probe/1") {
		t.Errorf("sharing on, metadata missing: %s", shared)
	}
	e.Metadata.ClientIP = domain.Erased
	if strings.Contains(string(redactEvent(e, true)), domain.Erased) {
		t.Error("an erased address is sent as a value")
	}
}

func TestCitationsKeepOnlySentPositions(t *testing.T) {
	sent := map[int64]bool{5: true, 12: true}
	got := citations("see [#12], [#5] and [#12] again, not [#7] nor [#99999999999999999999] nor [12]", sent)
	if !slices.Equal(got, []int64{12, 5}) {
		t.Fatalf("citations %v", got)
	}
	if got := citations("nothing", sent); got == nil || len(got) != 0 {
		t.Fatalf("no citations: %#v, want an empty list", got)
	}
}
