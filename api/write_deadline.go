package api

import (
	"io"
	"net/http"
	"time"
)

// writeDeadline keeps a long response's write deadline a timeout ahead of
// its last write: the server's own write timeout would cut a long export,
// and no deadline at all would let a client that never reads keep the
// handler forever. Setting a deadline costs a timer reset, so it is moved
// at most every timeout/8.
type writeDeadline struct {
	rc      *http.ResponseController
	timeout time.Duration
	set     time.Time // when the deadline was last moved
}

func newWriteDeadline(rc *http.ResponseController, timeout time.Duration) *writeDeadline {
	return &writeDeadline{rc: rc, timeout: timeout}
}

// extend moves the deadline to timeout from now.
func (d *writeDeadline) extend() {
	now := time.Now()
	if now.Sub(d.set) < d.timeout/8 {
		return
	}
	d.set = now
	_ = d.rc.SetWriteDeadline(now.Add(d.timeout))
}

// deadlineWriter extends the deadline before every write to w.
type deadlineWriter struct {
	w io.Writer
	d *writeDeadline
}

func (dw deadlineWriter) Write(p []byte) (int, error) {
	dw.d.extend()
	return dw.w.Write(p)
}
