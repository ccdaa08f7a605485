package domain

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Retention is a schedule's prune settings, Proxmox's keep-* options.
// All zero keeps every backup (Proxmox's keep-all).
type Retention struct {
	KeepLast    int `json:"keep_last,omitempty"`
	KeepHourly  int `json:"keep_hourly,omitempty"`
	KeepDaily   int `json:"keep_daily,omitempty"`
	KeepWeekly  int `json:"keep_weekly,omitempty"`
	KeepMonthly int `json:"keep_monthly,omitempty"`
	KeepYearly  int `json:"keep_yearly,omitempty"`
}

// KeepsAll reports whether the retention prunes nothing.
func (r Retention) KeepsAll() bool { return r == Retention{} }

func (r Retention) validate(f fieldErrors) {
	for name, n := range map[string]int{"keep_last": r.KeepLast, "keep_hourly": r.KeepHourly, "keep_daily": r.KeepDaily,
		"keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly, "keep_yearly": r.KeepYearly} {
		if n < 0 || n > 10000 {
			f.add("retention."+name, "must be from 0 to 10000")
		}
	}
}

// PruneItem is one backup as prune sees it.
type PruneItem struct {
	ID   uuid.UUID
	Time time.Time
}

// Prune decides which backups to remove, with the semantics of Proxmox's
// prune (pbs-datastore's prune.rs, which Proxmox VE's vzdump and its prune
// simulator share): backups newest first; keep-last keeps the N newest;
// then keep-hourly, -daily, -weekly (ISO weeks, Monday first), -monthly
// and -yearly each keep the newest backup of each of the N newest periods
// not already covered by a backup an earlier option kept (a period without
// backups does not count); everything not kept is removed. Only
// successful backups may be passed: a failed backup is no backup, so it
// neither takes a slot nor makes an older one go. Times are UTC.
func Prune(items []PruneItem, r Retention) (keep, remove []uuid.UUID) {
	list := slices.Clone(items)
	slices.SortFunc(list, func(a, b PruneItem) int { return b.Time.Compare(a.Time) })
	if r.KeepsAll() {
		for _, it := range list {
			keep = append(keep, it.ID)
		}
		return keep, nil
	}
	kept := map[uuid.UUID]bool{}
	marked := map[uuid.UUID]bool{}
	selections := []struct {
		n  int
		id func(time.Time) string
	}{
		{r.KeepLast, nil},
		{r.KeepHourly, func(t time.Time) string { return t.Format("2006/01/02/15") }},
		{r.KeepDaily, func(t time.Time) string { return t.Format("2006/01/02") }},
		{r.KeepWeekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d/%02d", y, w) }},
		{r.KeepMonthly, func(t time.Time) string { return t.Format("2006/01") }},
		{r.KeepYearly, func(t time.Time) string { return t.Format("2006") }},
	}
	for _, sel := range selections {
		if sel.n == 0 {
			continue
		}
		period := sel.id
		if period == nil { // keep-last: every backup its own period
			period = func(t time.Time) string { return t.Format(time.RFC3339Nano) }
		}
		covered := map[string]bool{}
		for _, it := range list {
			if kept[it.ID] {
				covered[period(it.Time.UTC())] = true
			}
		}
		included := map[string]bool{}
		for _, it := range list {
			if marked[it.ID] {
				continue
			}
			p := period(it.Time.UTC())
			if covered[p] {
				continue
			}
			if included[p] {
				marked[it.ID] = true // removed: its period has a newer one
				continue
			}
			if len(included) >= sel.n {
				break
			}
			included[p] = true
			marked[it.ID], kept[it.ID] = true, true
		}
	}
	for _, it := range list {
		if kept[it.ID] {
			keep = append(keep, it.ID)
		} else {
			remove = append(remove, it.ID)
		}
	}
	return keep, remove
}
