package projections

import (
	"errors"
	"slices"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
)

func TestPlanFollowsTheChain(t *testing.T) {
	pos := func(n int64) eventlog.Position {
		if n == 0 {
			return eventlog.Start
		}
		return eventlog.Position{TransactionID: uint64(100 + n), GlobalPosition: n}
	}
	d := func(n, prev int64) delivery {
		dl := delivery{prev: pos(prev)}
		dl.event.Position = pos(n)
		return dl
	}
	bad := delivery{err: errors.New("undecodable")}
	cases := []struct {
		name              string
		cp                int64
		ds                []delivery
		apply, done, late []int
		to                int64
	}{
		{"in order from start", 0, []delivery{d(1, 0), d(2, 1), d(3, 2)}, []int{0, 1, 2}, nil, nil, 3},
		{"already applied", 3, []delivery{d(2, 1), d(3, 2), d(4, 3)}, []int{2}, []int{0, 1}, nil, 4},
		{"gap", 1, []delivery{d(3, 2), d(4, 3)}, nil, nil, []int{0, 1}, 1},
		{"reordered within a batch", 1, []delivery{d(3, 2), d(2, 1), d(4, 3)}, []int{1, 0, 2}, nil, nil, 4},
		{"stops at the gap", 1, []delivery{d(2, 1), d(4, 3), d(5, 4)}, []int{0}, nil, []int{1, 2}, 2},
		{"duplicate in the batch", 1, []delivery{d(2, 1), d(2, 1), d(3, 2)}, []int{0, 2}, []int{1}, nil, 3},
		{"undecodable is never skipped", 1, []delivery{bad, d(2, 1)}, []int{1}, nil, []int{0}, 2},
	}
	for _, c := range cases {
		p := plan(pos(c.cp), c.ds)
		if !slices.Equal(p.apply, c.apply) || !slices.Equal(p.done, c.done) || !slices.Equal(p.later, c.late) || p.to != pos(c.to) {
			t.Errorf("%s: got apply %v done %v later %v to %v", c.name, p.apply, p.done, p.later, p.to)
		}
	}
}
