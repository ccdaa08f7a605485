package domain

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CalendarEvent is a Proxmox calendar event (the schedule format of
// vzdump jobs, a subset of systemd.time(7)): `[WEEKDAYS] [[YEAR-]MONTH-DAY]
// [HOUR:]MINUTE`, or a word (minutely, hourly, daily, weekly, monthly,
// yearly/annually, quarterly, semiannually). Weekdays are mon..sun,
// lists (mon,wed) and ranges (mon..fri); every other field is `*`, a
// number, a list (8,12), a range (8..17) or a repetition (*/15, 0/15).
// A time alone is daily; weekdays alone mean 00:00; a minute alone
// (`*/5`, `30/10`) runs every hour. Times are UTC.
type CalendarEvent struct {
	spec     string
	weekdays [7]bool // time.Weekday
	years    map[int]bool
	months   [13]bool
	days     [32]bool
	hours    [24]bool
	minutes  [60]bool
}

// String is the event as written.
func (c *CalendarEvent) String() string { return c.spec }

var calendarWords = map[string]string{
	"minutely": "*-*-* *:*", "hourly": "*-*-* *:00", "daily": "*-*-* 00:00", "weekly": "mon *-*-* 00:00",
	"monthly": "*-*-01 00:00", "yearly": "*-01-01 00:00", "annually": "*-01-01 00:00",
	"quarterly": "*-01,04,07,10-01 00:00", "semiannually": "*-01,07-01 00:00",
}

var weekdayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseCalendarEvent parses spec; an error says what is wrong with it.
func ParseCalendarEvent(spec string) (*CalendarEvent, error) {
	spec = strings.TrimSpace(spec)
	c := &CalendarEvent{spec: spec}
	if spec == "" || len(spec) > 256 {
		return nil, fmt.Errorf("must be a calendar event such as \"mon..fri 02:00\" or \"daily\"")
	}
	text := strings.ToLower(spec)
	if w, ok := calendarWords[text]; ok {
		text = w
	}
	fields := strings.Fields(text)
	// Weekdays come first, when the first field starts with a letter.
	if len(fields) > 0 && fields[0][0] >= 'a' && fields[0][0] <= 'z' {
		if err := c.parseWeekdays(fields[0]); err != nil {
			return nil, err
		}
		fields = fields[1:]
	} else {
		for i := range c.weekdays {
			c.weekdays[i] = true
		}
	}
	var date, clock string
	switch len(fields) {
	case 0:
		clock = "0:0"
	case 1:
		if strings.Contains(fields[0], "-") {
			date, clock = fields[0], "0:0"
		} else {
			clock = fields[0]
		}
	case 2:
		date, clock = fields[0], fields[1]
	default:
		return nil, fmt.Errorf("%q: too many fields (weekdays, date and time at most)", spec)
	}
	if err := c.parseDate(date); err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	if err := c.parseClock(clock); err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	return c, nil
}

func (c *CalendarEvent) parseWeekdays(s string) error {
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "..")
		a, b := weekdayIndex(from), weekdayIndex(to)
		if !isRange {
			b = a
		}
		if a < 0 || b < 0 {
			return fmt.Errorf("%q: unknown weekday in %q (mon, tue, wed, thu, fri, sat, sun)", c.spec, part)
		}
		for d := a; ; d = (d + 1) % 7 {
			c.weekdays[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

func weekdayIndex(s string) int {
	for i, n := range weekdayNames {
		if len(s) >= 3 && strings.HasPrefix(n, s[:3]) && strings.HasPrefix(s, n) {
			return i
		}
	}
	return -1
}

func (c *CalendarEvent) parseDate(s string) error {
	parts := []string{"*", "*", "*"}
	if s != "" {
		p := strings.Split(s, "-")
		switch len(p) {
		case 2:
			parts[1], parts[2] = p[0], p[1]
		case 3:
			parts = p
		default:
			return fmt.Errorf("date %q must be [YEAR-]MONTH-DAY", s)
		}
	}
	if parts[0] != "*" {
		c.years = map[int]bool{}
		var years [10000]bool
		if err := setField(years[:], parts[0], 1970, 9999, "year"); err != nil {
			return err
		}
		for y, ok := range years {
			if ok {
				c.years[y] = true
			}
		}
	}
	if err := setField(c.months[:], parts[1], 1, 12, "month"); err != nil {
		return err
	}
	return setField(c.days[:], parts[2], 1, 31, "day")
}

func (c *CalendarEvent) parseClock(s string) error {
	h, m, hasHour := strings.Cut(s, ":")
	if !hasHour {
		h, m = "*", s
	}
	if strings.Count(m, ":") == 1 { // seconds: only 0 is kept
		var sec string
		m, sec, _ = strings.Cut(m, ":")
		if n, err := strconv.Atoi(sec); err != nil || n != 0 {
			return fmt.Errorf("seconds %q: only 00 is supported", sec)
		}
	}
	if err := setField(c.hours[:], h, 0, 23, "hour"); err != nil {
		return err
	}
	return setField(c.minutes[:], m, 0, 59, "minute")
}

// setField marks in set the values spec names within [lo, hi].
func setField(set []bool, spec string, lo, hi int, what string) error {
	num := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s %q must be a number from %d to %d", what, s, lo, hi)
		}
		return n, nil
	}
	for _, part := range strings.Split(spec, ",") {
		base, step, repeats := strings.Cut(part, "/")
		from, to := lo, hi
		switch {
		case base == "*":
		case strings.Contains(base, ".."):
			a, b, _ := strings.Cut(base, "..")
			var err error
			if from, err = num(a); err != nil {
				return err
			}
			if to, err = num(b); err != nil {
				return err
			}
			if to < from {
				return fmt.Errorf("%s range %q runs backwards", what, base)
			}
		default:
			n, err := num(base)
			if err != nil {
				return err
			}
			from = n
			if !repeats {
				to = n
			}
		}
		inc := 1
		if repeats {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 || n > hi {
				return fmt.Errorf("%s repetition %q must be a positive number", what, step)
			}
			inc = n
		}
		for v := from; v <= to; v += inc {
			set[v] = true
		}
	}
	return nil
}

// Next is the first time after t (to the minute, UTC) the event names;
// zero when there is none within ten years (a date in the past).
func (c *CalendarEvent) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(10, 0, 0)
	for t.Before(end) {
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.hours[t.Hour()] {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, time.UTC)
			continue
		}
		if !c.minutes[t.Minute()] {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

// Latest is the last time at or before t the event names, not before
// since; zero when there is none (no slot was missed since then).
func (c *CalendarEvent) Latest(since, t time.Time) time.Time {
	var last time.Time
	for n := c.Next(since.Add(-time.Minute)); !n.IsZero() && !n.After(t); n = c.Next(n) {
		last = n
	}
	return last
}

func (c *CalendarEvent) dayMatches(t time.Time) bool {
	if c.years != nil && !c.years[t.Year()] {
		return false
	}
	return c.weekdays[t.Weekday()] && c.months[t.Month()] && c.days[t.Day()]
}
