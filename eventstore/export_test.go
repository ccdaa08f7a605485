package eventstore

// QueuedAppends is how many Append calls wait for a group commit flusher,
// for tests that must know a group has formed before releasing it.
func QueuedAppends(s *Store) int {
	if s.group == nil {
		return 0
	}
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return s.group.queued()
}

// ActiveFlushers is how many group commit flushers are running or
// lingering, for tests that check they retire.
func ActiveFlushers(s *Store) int {
	if s.group == nil {
		return 0
	}
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return s.group.active
}
