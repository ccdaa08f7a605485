package feed

import (
	"net/http/httptest"
	"slices"
	"testing"
)

// FuzzLastEventID: a resume point is a non-negative global position or a
// refusal; nothing panics.
func FuzzLastEventID(f *testing.F) {
	for _, s := range []string{"0", "1", "1043", "-1", "abc", "", "+7", "9223372036854775808", " 1", "1\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gp, err := parseLastEventID(s)
		if err != nil && err != ErrBadLastEventID {
			t.Fatalf("%q: %v, want ErrBadLastEventID", s, err)
		}
		if err == nil && gp < 0 {
			t.Fatalf("%q accepted as %d", s, gp)
		}
	})
}

// FuzzEventTypes: ?type= yields at most maxEventTypes event type names,
// sorted and without repeats, each a valid filter subject token.
func FuzzEventTypes(f *testing.F) {
	for _, q := range []string{"type=vm_created", "type=b&type=a&type=b", "type=A", "type=a.b", "type=a%00", "type=*", "type=>", ""} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := httptest.NewRequest("GET", "/v1/events", nil)
		r.URL.RawQuery = rawQuery
		types, err := parseTypes(r)
		if err != nil {
			return
		}
		if len(types) > maxEventTypes || !slices.IsSorted(types) || len(slices.Compact(slices.Clone(types))) != len(types) {
			t.Fatalf("%q: %q", rawQuery, types)
		}
		for _, ty := range types {
			if !eventTypeParam.MatchString(ty) {
				t.Fatalf("%q: type %q", rawQuery, ty)
			}
		}
	})
}
