package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

// TestProjectionsStatusAndRebuild drives `accountdb projections` as an
// operator would: status shows the vms projector behind the log, rebuild
// replays the log into fresh tables and swaps them in, and status then
// shows it caught up with the VM in its read model.
func TestProjectionsStatusAndRebuild(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := eventstore.New(db.App, nil)
	tenant, cluster := uuid.New(), uuid.New()
	vm := uuid.New()
	e := &domain.VMCreateRequested{Name: "web-1", Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 2, MemoryMB: 2048, DiskGB: 20},
		Template: "debian-12", ClusterID: cluster}
	res, err := store.Append(ctx, eventstore.Append{Stream: eventlog.StreamID{Type: domain.StreamVM, ID: vm}, TenantID: tenant,
		Expected: eventstore.NoStream(), Events: []eventstore.NewEvent{{Type: e.EventType(), Data: e}}})
	if err != nil {
		t.Fatal(err)
	}
	projections := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"projections", "--database-url", db.AdminURL}, args...), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	// vmsRow is the vms projector's line of the status table.
	vmsRow := func(out string) []string {
		t.Helper()
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == "vms" {
				return f
			}
		}
		t.Fatalf("status has no vms line:\n%s", out)
		return nil
	}
	head := strconv.FormatInt(res.LastPosition, 10)
	// A rebuild reads the log below its watermark: wait until the event is
	// readable, or an append still committing could leave the rebuild
	// nothing to read.
	for deadline := time.Now().Add(30 * time.Second); ; {
		evs, err := store.ReadAll(ctx, eventlog.Start, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the appended event never became readable below the watermark")
		}
		time.Sleep(20 * time.Millisecond)
	}

	out, _, err := projections("status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, name := range []string{"PROJECTOR", "tenants", "users", "tenant_activity", "vms", "clusters"} {
		if !strings.Contains(out, name) {
			t.Errorf("status lacks %q:\n%s", name, out)
		}
	}
	if row := vmsRow(out); row[1] != "0" || row[2] != head || row[3] != "1" {
		t.Fatalf("vms before the rebuild: %v, want checkpoint 0, head %s, 1 behind", row, head)
	}

	out, _, err = projections("rebuild", "vms")
	if err != nil || !strings.Contains(out, "rebuilt vms") {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	out, _, err = projections("status")
	if err != nil {
		t.Fatal(err)
	}
	if row := vmsRow(out); row[1] != head || row[3] != "0" {
		t.Fatalf("vms after the rebuild: %v, want checkpoint %s, 0 behind", row, head)
	}
	var name string
	if err := db.AdminConn(t).QueryRow(ctx, `SELECT name FROM vms WHERE vm_id = $1`, vm).Scan(&name); err != nil || name != "web-1" {
		t.Fatalf("the rebuilt read model: %q, %v", name, err)
	}

	if _, _, err := projections("rebuild", "nope"); err == nil || !strings.Contains(err.Error(), "unknown projector") {
		t.Fatalf("an unknown projector: %v", err)
	}
	if _, _, err := projections(); err == nil {
		t.Fatal("no subcommand was accepted")
	}
}
