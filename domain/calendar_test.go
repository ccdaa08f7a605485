package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestCalendarEventsOfProxmoxDocs: the examples of the Proxmox VE
// administration guide's "Schedule Format" table, each checked by the
// times it names after a Thursday noon (2026-12-03 12:00 UTC).
func TestCalendarEventsOfProxmoxDocs(t *testing.T) {
	from := at("2026-12-03 12:00") // a Thursday
	for _, tc := range []struct {
		spec string
		want []string // the next runs, in order
	}{
		{"mon,tue,wed,thu,fri", []string{"2026-12-04 00:00", "2026-12-07 00:00"}},
		{"mon..fri", []string{"2026-12-04 00:00", "2026-12-07 00:00"}},
		{"sat,sun", []string{"2026-12-05 00:00", "2026-12-06 00:00", "2026-12-12 00:00"}},
		{"sat..sun", []string{"2026-12-05 00:00", "2026-12-06 00:00", "2026-12-12 00:00"}},
		{"mon,wed,fri", []string{"2026-12-04 00:00", "2026-12-07 00:00", "2026-12-09 00:00"}},
		{"12:05", []string{"2026-12-03 12:05", "2026-12-04 12:05"}},
		{"*/5", []string{"2026-12-03 12:05", "2026-12-03 12:10"}},
		{"mon..wed 30/10", []string{"2026-12-07 00:30", "2026-12-07 00:40", "2026-12-07 00:50", "2026-12-07 01:30"}},
		{"mon..fri 8..17,22:0/15", []string{"2026-12-03 12:15", "2026-12-03 12:30"}},
		{"fri 12..13:5/20", []string{"2026-12-04 12:05", "2026-12-04 12:25", "2026-12-04 12:45", "2026-12-04 13:05",
			"2026-12-04 13:25", "2026-12-04 13:45", "2026-12-11 12:05"}},
		{"12,14,16,18,20,22:5", []string{"2026-12-03 12:05", "2026-12-03 14:05"}},
		{"*", []string{"2026-12-03 12:01", "2026-12-03 12:02"}},
		{"*-05", []string{"2026-12-05 00:00", "2027-01-05 00:00"}},
		{"Sat *-1..7 15:00", []string{"2026-12-05 15:00", "2027-01-02 15:00"}},
		{"2027-10-21", []string{"2027-10-21 00:00"}},
		// The words and the issue's own examples.
		{"daily", []string{"2026-12-04 00:00", "2026-12-05 00:00"}},
		{"hourly", []string{"2026-12-03 13:00"}},
		{"weekly", []string{"2026-12-07 00:00", "2026-12-14 00:00"}},
		{"monthly", []string{"2027-01-01 00:00"}},
		{"mon..fri 02:00", []string{"2026-12-04 02:00", "2026-12-07 02:00"}},
		{"sat *-*-* 03:00", []string{"2026-12-05 03:00", "2026-12-12 03:00"}},
	} {
		c, err := domain.ParseCalendarEvent(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		next := from
		for _, want := range tc.want {
			next = c.Next(next)
			if !next.Equal(at(want)) {
				t.Errorf("%q: next %s, want %s", tc.spec, next.Format("2006-01-02 15:04 Mon"), want)
				break
			}
		}
	}
	if c, _ := domain.ParseCalendarEvent("2015-10-21"); !c.Next(from).IsZero() {
		t.Error("a date in the past has a next run")
	}
}

func TestCalendarEventErrorsSayWhat(t *testing.T) {
	for spec, want := range map[string]string{
		"":                "calendar event",
		"funday 02:00":    "unknown weekday",
		"mon..fri 25:00":  "hour \"25\"",
		"mon 02:61":       "minute \"61\"",
		"*-13-01":         "month \"13\"",
		"mon 1 2 3":       "too many fields",
		"*/0":             "repetition",
		"17..8:00":        "backwards",
		"mon 02:00:30":    "seconds",
		"mon,,tue":        "unknown weekday",
		"*-*-* 02:00 x y": "too many fields",
	} {
		if _, err := domain.ParseCalendarEvent(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to say %q", spec, err, want)
		}
	}
}

// TestCalendarLatestCatchesUpOnce: after a week down, the missed nightly
// runs are one: the latest.
func TestCalendarLatestCatchesUpOnce(t *testing.T) {
	c, _ := domain.ParseCalendarEvent("daily")
	got := c.Latest(at("2026-12-01 00:00"), at("2026-12-08 09:30"))
	if !got.Equal(at("2026-12-08 00:00")) {
		t.Fatalf("latest %s", got)
	}
	if got := c.Latest(at("2026-12-09 00:00"), at("2026-12-08 09:30")); !got.IsZero() {
		t.Fatalf("nothing due yet, got %s", got)
	}
}
