package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

func TestReplayPrintsTimelineAndState(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := eventstore.New(db.App, nil)
	tenant, actor, cluster := uuid.New(), uuid.New(), uuid.New()
	st := eventlog.StreamID{Type: domain.StreamVM, ID: uuid.New()}
	appendVM := func(events ...domain.Event) {
		t.Helper()
		a := eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), ActorID: actor}
		for _, e := range events {
			a.Events = append(a.Events, eventstore.NewEvent{Type: e.EventType(), Data: e})
		}
		if _, err := store.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	appendVM(&domain.VMCreateRequested{Name: "web-1", Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 2, MemoryMB: 2048, DiskGB: 20},
		Template: "debian-12", ClusterID: cluster},
		&domain.VMProvisioned{ClusterID: cluster, Node: "pve1", VMID: 101})
	time.Sleep(2 * time.Millisecond) // distinct recorded_at on each side of mid
	mid := time.Now()
	time.Sleep(2 * time.Millisecond)
	appendVM(&domain.VMActionRequested{Action: domain.ActionStop})
	appendVM(&domain.VMActionSucceeded{Action: domain.ActionStop})

	replay := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"replay", "--database-url", db.AdminURL}, args...), &out, io.Discard)
		return out.String(), err
	}
	out, err := replay("--stream", st.String())
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	for _, want := range []string{"stream " + st.String(), "vm_create_requested", `name="web-1"`, "vm_provisioned", `node="pve1"`,
		"vm_action_requested", `action="stop"`, "vm_action_succeeded", actor.String(),
		"state after 4 events", `"Status": "stopped"`, `"VMID": 101`, `"TenantID": "` + tenant.String()} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "vm_create_requested") > strings.Index(out, "vm_action_succeeded") {
		t.Errorf("the timeline is not in order:\n%s", out)
	}

	out, err = replay("--stream", st.String(), "--until", mid.Format(time.RFC3339Nano), "--tenant", tenant.String())
	if err != nil || !strings.Contains(out, "state after 2 events") || !strings.Contains(out, `"Status": "running"`) || strings.Contains(out, "vm_action_requested") {
		t.Fatalf("until mid: %v\n%s", err, out)
	}
	if _, err := replay("--stream", st.String(), "--tenant", uuid.NewString()); !errors.Is(err, errEmptyStream) {
		t.Fatalf("another tenant: %v", err)
	}
	if _, err := replay("--stream", st.String(), "--until", "2000-01-01T00:00:00Z"); !errors.Is(err, errEmptyStream) {
		t.Fatalf("before the first event: %v", err)
	}

	// A stream type without an aggregate: the timeline and a count.
	other := eventlog.StreamID{Type: "bench", ID: uuid.New()}
	if _, err := store.Append(ctx, eventstore.Append{Stream: other, TenantID: tenant, Expected: eventstore.NoStream(),
		Events: []eventstore.NewEvent{{Type: "bench_appended", Data: map[string]any{"n": 1, "token_secret": "s3cret"}}}}); err != nil {
		t.Fatal(err)
	}
	out, err = replay("--stream", other.String())
	if err != nil || !strings.Contains(out, "1 events (no aggregate") || !strings.Contains(out, "system") || strings.Contains(out, "s3cret") {
		t.Fatalf("bench stream: %v\n%s", err, out)
	}

	for _, bad := range [][]string{{}, {"--stream", "nope"}, {"--stream", st.String(), "--until", "soon"}, {"--stream", st.String(), "--tenant", "x"}} {
		if _, err := replay(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
