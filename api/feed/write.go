package feed

import (
	"errors"
	"os"
	"time"
)

// Why the server ends a stream (the dropped metric's reason label).
const (
	dropSlowClient      = "slow_client"
	dropConsumerStopped = "consumer_stopped"
	dropUndecodable     = "undecodable_message"
)

// drop ends the stream from another goroutine: the serving goroutine sees
// gone closed, and a write stuck on a full socket is unblocked.
func (c *conn) drop(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped || c.finished {
		return
	}
	c.dropped = true
	close(c.gone)
	_ = c.rc.SetWriteDeadline(time.Now())
	c.feed.metrics.dropped.WithLabelValues(reason).Inc()
	msg := "event feed: stream ended by the server"
	if reason == dropSlowClient {
		msg = "event feed: slow client dropped"
	}
	c.log.Info(msg, "reason", reason, "request_id", c.sub.RequestID, "buffer", c.feed.opts.Buffer)
}

// write sends b, flushing when asked, within WriteTimeout.
func (c *conn) write(b []byte, flush bool) bool {
	c.mu.Lock()
	if c.dropped {
		c.mu.Unlock()
		return false
	}
	_ = c.rc.SetWriteDeadline(time.Now().Add(c.feed.opts.WriteTimeout))
	c.mu.Unlock()
	_, err := c.w.Write(b)
	c.unflushed = true
	if err == nil && flush {
		err = c.rc.Flush()
		c.unflushed = false
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A write that the client did not take within WriteTimeout: a
			// slow client as much as one whose buffer filled, and counted
			// and logged as one (drop does nothing if it was dropped first).
			c.drop(dropSlowClient)
		}
		c.log.Debug("event feed: write failed", "request_id", c.sub.RequestID, "error", err)
		return false
	}
	return true
}

// flushWritten flushes what was written without a flush, if anything.
func (c *conn) flushWritten() bool {
	if !c.unflushed {
		return true
	}
	return c.write(nil, true)
}
