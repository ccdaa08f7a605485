package feed

// live is a connection's phase in its tenant's hub: every matching event
// the hub hands it, except those the catch-up delivered already, until the
// client leaves, the server drops it or shuts down, or the session ends.
func (c *conn) live() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.shutdown:
			return
		case <-c.gone:
			return
		case <-c.heartbeat.C:
			if !c.ping() {
				return
			}
		case <-c.place.recheck:
			if !c.stillAllowed() {
				return
			}
		case ev := <-c.place.live:
			if !c.after.Less(ev.pos) {
				continue // delivered already, by the connection's own consumer
			}
			c.after = ev.pos
			// Flush when nothing else is waiting: one syscall per burst.
			if !c.write(c.sub.frameFor(ev), len(c.place.live) == 0) {
				return
			}
			c.feed.metrics.sent.Inc()
		}
	}
}
