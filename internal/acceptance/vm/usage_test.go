package vm_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

type usageItem struct {
	VMID        string    `json:"vm_id"`
	PeriodStart time.Time `json:"period_start"`
	State       string    `json:"state"`
	Seconds     int64     `json:"seconds"`
	Cores       int       `json:"cores"`
	Backups     int       `json:"backups"`
	BackupMB    int64     `json:"backup_mb"`
}

// TestUsageMeteredFromEvents: a VM created, running, then stopped by hand
// on Proxmox is metered from its events: provisioning until the create's
// result, running until the drift, stopped from the drift on; the seconds
// of the closed intervals are the events' recorded times apart; a rebuild
// of the read model gives the same report; the CSV has the same rows;
// another tenant cannot read it and a platform administrator can.
func TestUsageMeteredFromEvents(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	admin := e.s.Login(t, e.s.User(t, e.tenID, auth.RoleTenantAdmin)).AccessToken
	v := e.create(t, "metered")
	e.succeed(t, v.ID, domain.ActionCreate, func(r *protocol.Result) { r.ClusterID, r.Node, r.PVEVMID = e.agent.cluster, "pve1", 400100 })
	e.waitStatus(t, v.ID, "running")
	e.agent.observe(protocol.ObservedGuest{VMID: uuid.MustParse(v.ID), TenantID: e.tenID, Node: "pve1", PVEVMID: 400100, Status: "stopped"})
	e.waitStatus(t, v.ID, "stopped")

	// The VM's events and their recorded times, from the audit log.
	var audit struct {
		Items []struct {
			Type       string    `json:"type"`
			Position   int64     `json:"position"`
			RecordedAt time.Time `json:"recorded_at"`
		}
	}
	e.s.Do(t, admin, http.MethodGet, "/v1/audit?stream_id=vm-"+v.ID+"&limit=200", nil, &audit)
	types := []string{}
	for _, ev := range audit.Items {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []string{"vm_create_requested", "vm_provisioned", "vm_drift_detected"}) {
		t.Fatalf("the VM's events: %v", types)
	}
	created, provisioned, drift := audit.Items[0].RecordedAt, audit.Items[1].RecordedAt, audit.Items[2].RecordedAt
	last := audit.Items[2].Position

	from := created.UTC().Truncate(time.Hour)
	to := drift.UTC().Truncate(time.Hour).Add(time.Hour)
	path := "/v1/usage?from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	var rep struct{ Items []usageItem }
	if r := e.s.Do(t, admin, http.MethodGet, path, nil, &rep, "X-Consistency-Token", strconv.FormatInt(last, 10)); r.StatusCode != http.StatusOK {
		t.Fatalf("usage: %d %s", r.StatusCode, r.Body)
	}
	// Expected seconds of the closed intervals, hour by hour, from the events' times.
	want := map[string]int64{}
	for _, iv := range []struct {
		state    string
		from, to time.Time
	}{{"provisioning", created, provisioned}, {"running", provisioned, drift}} {
		for t0 := iv.from; t0.Before(iv.to); {
			end := t0.Truncate(time.Hour).Add(time.Hour)
			if end.After(iv.to) {
				end = iv.to
			}
			want[t0.UTC().Truncate(time.Hour).Format(time.RFC3339)+" "+iv.state] += int64(end.Sub(t0))
			t0 = end
		}
	}
	got := map[string]int64{}
	stopped := false
	for _, it := range rep.Items {
		if it.VMID != v.ID || it.Cores != 2 {
			t.Fatalf("an item of another VM or size: %+v", it)
		}
		if it.State == "stopped" {
			stopped = true
			continue
		}
		got[it.PeriodStart.Format(time.RFC3339)+" "+it.State] = it.Seconds
	}
	for k, ns := range want {
		if s := (time.Duration(ns).Round(time.Second) / time.Second); got[k] != int64(s) {
			t.Errorf("%s: %d s, want %d s (from the events' times)", k, got[k], s)
		}
	}
	if len(got) != len(want) || !stopped {
		t.Fatalf("items %+v, want %v and a stopped interval from the drift on", rep.Items, want)
	}

	// A rebuild of the usage read model answers the same, to the second.
	until := drift.Add(time.Minute)
	before, err := projections.UsageReport(context.Background(), e.s.DB.App, e.tenID, from, to, until, false)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := projections.OpenOwnerPool(context.Background(), e.s.DB.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := projections.Rebuild(context.Background(), owner, e.s.Store, projections.UsageMeter{}, nil); err != nil {
		t.Fatal(err)
	}
	after, err := projections.UsageReport(context.Background(), e.s.DB.App, e.tenID, from, to, until, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Fatalf("after a rebuild:\n%+v\nbefore:\n%+v", after, before)
	}

	// CSV: a header and the same rows.
	r := e.s.Do(t, admin, http.MethodGet, path, nil, nil, "Accept", "text/csv")
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil || r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %v %s", r.StatusCode, err, r.Body)
	}
	if len(rows) != len(rep.Items)+1 || strings.Join(rows[0], ",") != "tenant_id,vm_id,period_start,state,seconds,cores,memory_mb,disk_gb,ipv4_addresses,snapshots,backups,backup_mb" {
		t.Fatalf("csv rows %v", rows)
	}

	// Who may read it.
	other := e.s.TenantWithQuota(t, "other", roomyQuota)
	otherAdmin := e.s.Login(t, e.s.User(t, other, auth.RoleTenantAdmin)).AccessToken
	if r := e.s.Do(t, otherAdmin, http.MethodGet, path+"&tenant_id="+e.tenID.String(), nil, nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("another tenant's admin: %d", r.StatusCode)
	}
	var theirs struct{ Items []usageItem }
	if r := e.s.Do(t, otherAdmin, http.MethodGet, path, nil, &theirs); r.StatusCode != http.StatusOK || len(theirs.Items) != 0 {
		t.Errorf("another tenant's own usage: %d %+v", r.StatusCode, theirs.Items)
	}
	if r := e.s.Do(t, e.token, http.MethodGet, path, nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("a vm_admin reads usage: %d", r.StatusCode)
	}
	platform := e.s.Login(t, e.s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	var plat struct{ Items []usageItem }
	if r := e.s.Do(t, platform, http.MethodGet, path+"&tenant_id="+e.tenID.String(), nil, &plat); r.StatusCode != http.StatusOK || len(plat.Items) != len(rep.Items) {
		t.Errorf("a platform admin: %d %+v", r.StatusCode, plat.Items)
	}
	for _, bad := range []string{"?from=x&to=y", "?from=" + from.Add(time.Minute).Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339),
		"?from=" + to.Format(time.RFC3339) + "&to=" + from.Format(time.RFC3339), path[len("/v1/usage"):] + "&granularity=week",
		"?from=" + from.Format(time.RFC3339) + "&to=" + from.Add(40*24*time.Hour).Format(time.RFC3339)} {
		if r := e.s.Do(t, admin, http.MethodGet, "/v1/usage"+bad, nil, nil); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, r.StatusCode, r.Body)
		}
	}
}

// backupUsage is vmID's items of the tenant's usage report over the last
// and the next hour, read over HTTP by a tenant administrator.
func backupUsage(t *testing.T, s *stacktest.Stack, tenantAdmin, vmID string) []usageItem {
	t.Helper()
	now := time.Now().UTC()
	path := "/v1/usage?from=" + now.Add(-time.Hour).Truncate(time.Hour).Format(time.RFC3339) +
		"&to=" + now.Add(2*time.Hour).Truncate(time.Hour).Format(time.RFC3339)
	var rep struct{ Items []usageItem }
	if r := s.Do(t, tenantAdmin, http.MethodGet, path, nil, &rep); r.StatusCode != http.StatusOK {
		t.Fatalf("usage: %d %s", r.StatusCode, r.Body)
	}
	var mine []usageItem
	for _, it := range rep.Items {
		if it.VMID == vmID {
			mine = append(mine, it)
		}
	}
	return mine
}

// expectBackupMetered: once the archive of sizeBytes is stored, vmID is
// metered as holding one backup of that size (MiB, rounded up); the failed
// backup before it was never counted.
func expectBackupMetered(t *testing.T, s *stacktest.Stack, tenantAdmin, vmID string, sizeBytes int64) {
	t.Helper()
	mb := (sizeBytes + 1<<20 - 1) >> 20
	var items []usageItem
	stacktest.Eventually(t, 20*time.Second, "the backup metered", func() bool {
		items = backupUsage(t, s, tenantAdmin, vmID)
		return slices.ContainsFunc(items, func(it usageItem) bool { return it.Backups == 1 })
	})
	for _, it := range items {
		if it.Backups > 1 || it.Backups == 1 && it.BackupMB != mb || it.Backups == 0 && it.BackupMB != 0 {
			t.Fatalf("usage items %+v: want one backup of %d MiB from its creation on, none before", items, mb)
		}
	}
	// (Seconds not pinned: on a quick machine the VM runs under a second
	// before its backup.)
	if !slices.ContainsFunc(items, func(it usageItem) bool { return it.Backups == 0 }) {
		t.Fatalf("usage items %+v: the VM was metered without a backup first", items)
	}
}

// expectBackupNoLongerMetered: after the archive's deletion, the seconds
// metered with a backup stop growing while the clock moves on.
func expectBackupNoLongerMetered(t *testing.T, s *stacktest.Stack, tenantAdmin, vmID string) {
	t.Helper()
	withBackup := func() (n int64) {
		for _, it := range backupUsage(t, s, tenantAdmin, vmID) {
			if it.Backups > 0 {
				n += it.Seconds
			}
		}
		return n
	}
	// The seconds with a backup may be 0: the report rounds each item to the
	// second, and on a quick stack the VM held the archive under half a
	// second per state (expectBackupMetered saw it metered). An interval
	// still open would grow by a second meanwhile, whatever it held before.
	stacktest.Eventually(t, 30*time.Second, "the backup's metering to end with its deletion", func() bool {
		before := withBackup()
		time.Sleep(1100 * time.Millisecond)
		return withBackup() == before
	})
}
