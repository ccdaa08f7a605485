package feed

import (
	"context"
	"errors"
	"strconv"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// resumePoint is where a Last-Event-ID sends a connection: every event
// after `after` in log order, the first of them at stream sequence startSeq
// (or none yet when startSeq is past lastSeq, the stream's last sequence
// when it was looked up).
type resumePoint struct {
	after             eventlog.Position
	startSeq, lastSeq uint64
}

// resume turns a Last-Event-ID header into a resume point.
func (f *Feed) resume(ctx context.Context, tenant uuid.UUID, lastID string) (resumePoint, error) {
	gp, err := parseLastEventID(lastID)
	if err != nil {
		return resumePoint{}, err
	}
	var rp resumePoint
	if gp > 0 {
		pos, found, err := f.positions.EventPosition(ctx, tenant, gp)
		if err != nil {
			return resumePoint{}, err
		}
		if !found {
			return resumePoint{}, ErrBadLastEventID
		}
		rp.after = pos
	}
	rp.startSeq, rp.lastSeq, err = firstSeqAfter(ctx, f.bus, tenantSubjects(tenant.String()), rp.after)
	return rp, err
}

// parseLastEventID reads a Last-Event-ID: a global position, or 0 for "from
// the beginning".
func parseLastEventID(s string) (int64, error) {
	gp, err := strconv.ParseInt(s, 10, 64)
	if err != nil || gp < 0 {
		return 0, ErrBadLastEventID
	}
	return gp, nil
}

// firstSeqAfter is the sequence of the first message on subject whose log
// position is after pos (or the sequence after the last message), and the
// stream's last sequence: the stream is in log order, so a binary search
// over sequences finds it in O(log n) direct gets, without trusting any
// clock.
func firstSeqAfter(ctx context.Context, js Bus, subject string, pos eventlog.Position) (first, last uint64, err error) {
	stream, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		return 0, 0, err
	}
	st := stream.CachedInfo().State
	lo, hi := max(st.FirstSeq, 1), st.LastSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// The first message on subject at or after mid.
		m, err := stream.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			hi = mid
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		at, _, err := bus.MessagePositions(m.Header)
		if err != nil {
			return 0, 0, err
		}
		if at.Less(pos) || at == pos {
			lo = m.Sequence + 1
		} else {
			hi = mid
		}
	}
	return lo, st.LastSeq, nil
}
