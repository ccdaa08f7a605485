package eventstore

// QueuedAppends is how many Append calls wait for a group commit flusher,
// for tests that must know a group has formed before releasing it.
func QueuedAppends(s *Store) int {
	if s.group == nil {
		return 0
	}
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	n := 0
	for _, q := range s.group.pending {
		if !q.taken {
			n++
		}
	}
	return n
}
