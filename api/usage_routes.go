package api

import (
	"encoding/csv"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/projections"
	"github.com/go-chi/chi/v5"
)

// Usage metering (docs/EVENTS.md, "Usage"): usage:read in the caller's
// tenant; platform administrators name any tenant with ?tenant_id=.

type usageItem struct {
	TenantID      string    `json:"tenant_id"`
	VMID          string    `json:"vm_id"`
	PeriodStart   time.Time `json:"period_start"`
	State         string    `json:"state"`
	Seconds       int64     `json:"seconds"`
	Cores         int       `json:"cores"`
	MemoryMB      int       `json:"memory_mb"`
	DiskGB        int       `json:"disk_gb"`
	IPv4Addresses int       `json:"ipv4_addresses"`
	Snapshots     int       `json:"snapshots"`
	Backups       int       `json:"backups"`
	BackupMB      int64     `json:"backup_mb"`
}

// usageTotals sum the items: seconds per state, and each size held times
// the seconds it was held (core-seconds and so on).
type usageTotals struct {
	States           []stateSeconds `json:"states"`
	CoreSeconds      int64          `json:"core_seconds"`
	MemoryMBSeconds  int64          `json:"memory_mb_seconds"`
	DiskGBSeconds    int64          `json:"disk_gb_seconds"`
	IPv4Seconds      int64          `json:"ipv4_seconds"`
	SnapshotsSeconds int64          `json:"snapshot_seconds"`
	BackupMBSeconds  int64          `json:"backup_mb_seconds"`
}

type stateSeconds struct {
	State   string `json:"state"`
	Seconds int64  `json:"seconds"`
}

type usageResponse struct {
	Items  []usageItem `json:"items"`
	Totals usageTotals `json:"totals"`
}

// Bounds of one report: a month of hours, a year of days.
const (
	maxHourlySpan = 31 * 24 * time.Hour
	maxDailySpan  = 366 * 24 * time.Hour
)

func (srv *server) mountUsage(r chi.Router) {
	r.With(srv.require(auth.PermUsageRead)).Get("/v1/usage", srv.usage)
}

func (srv *server) usage(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	fe := FieldErrors{}
	day := false
	switch q.Get("granularity") {
	case "", "hour":
	case "day":
		day = true
	default:
		fe.Add("granularity", "must be hour or day")
	}
	unit, span := time.Hour, maxHourlySpan
	if day {
		unit, span = 24*time.Hour, maxDailySpan
	}
	parse := func(name string) time.Time {
		t, err := time.Parse(time.RFC3339, q.Get(name))
		switch {
		case err != nil:
			fe.Add(name, "must be an RFC 3339 time")
		case !t.UTC().Truncate(unit).Equal(t):
			fe.Add(name, "must start a UTC "+map[bool]string{false: "hour", true: "day"}[day])
		}
		return t.UTC()
	}
	from, to := parse("from"), parse("to")
	if len(fe) == 0 && (!from.Before(to) || to.Sub(from) > span) {
		fe.Add("to", "must be after from, at most "+strconv.Itoa(int(span/(24*time.Hour)))+" days later")
	}
	if err := fe.Err(); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := srv.awaitConsistency(w, r, projections.UsageMeter{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	until := time.Now().UTC()
	if to.Before(until) {
		until = to
	}
	recs, err := projections.UsageReport(r.Context(), srv.pool, tenant, from, to, until, day)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	items := make([]usageItem, len(recs))
	totals := usageTotals{States: []stateSeconds{}}
	byState := map[string]int64{}
	for i, u := range recs {
		s := u.Seconds()
		items[i] = usageItem{TenantID: tenant.String(), VMID: u.VMID.String(), PeriodStart: u.PeriodStart, State: u.State, Seconds: s,
			Cores: u.Cores, MemoryMB: u.MemoryMB, DiskGB: u.DiskGB, IPv4Addresses: u.IPv4, Snapshots: u.Snapshots,
			Backups: u.Backups, BackupMB: u.BackupMB}
		byState[u.State] += s
		totals.CoreSeconds += s * int64(u.Cores)
		totals.MemoryMBSeconds += s * int64(u.MemoryMB)
		totals.DiskGBSeconds += s * int64(u.DiskGB)
		totals.IPv4Seconds += s * int64(u.IPv4)
		totals.SnapshotsSeconds += s * int64(u.Snapshots)
		totals.BackupMBSeconds += s * u.BackupMB
	}
	for _, st := range slices.Sorted(maps.Keys(byState)) {
		totals.States = append(totals.States, stateSeconds{State: st, Seconds: byState[st]})
	}
	if strings.Contains(r.Header.Get("Accept"), "text/csv") {
		writeUsageCSV(w, items)
		return
	}
	writeJSON(w, http.StatusOK, usageResponse{Items: items, Totals: totals})
}

// writeUsageCSV streams the items as CSV (RFC 4180), a header first.
func writeUsageCSV(w http.ResponseWriter, items []usageItem) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="usage.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"tenant_id", "vm_id", "period_start", "state", "seconds", "cores", "memory_mb", "disk_gb", "ipv4_addresses", "snapshots", "backups", "backup_mb"})
	itoa := strconv.Itoa
	for _, it := range items {
		_ = cw.Write([]string{it.TenantID, it.VMID, it.PeriodStart.Format(time.RFC3339), it.State, strconv.FormatInt(it.Seconds, 10),
			itoa(it.Cores), itoa(it.MemoryMB), itoa(it.DiskGB), itoa(it.IPv4Addresses), itoa(it.Snapshots), itoa(it.Backups),
			strconv.FormatInt(it.BackupMB, 10)})
	}
	cw.Flush()
}
