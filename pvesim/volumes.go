package pvesim

import (
	"fmt"
	"strconv"
)

// The routes of one volume (/nodes/{node}/storage/{storage}/content/{volume}),
// for the backups pvesim keeps. {volume} is a full volume id
// ("local:backup/vzdump-…", URL-encoded in the path) or a volume name.

func (s *Simulator) lookupVolume(c *call) (*backup, error) {
	n, _, err := s.storageOf(c)
	if err != nil {
		return nil, err
	}
	return s.findBackup(n.name, c.r.PathValue("storage"), c.r.PathValue("volume"))
}

func (s *Simulator) getVolume(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.lookupVolume(c)
	if err != nil {
		return nil, err
	}
	m := map[string]any{"format": b.format, "size": b.size, "used": b.size, "path": b.path(), "protected": boolInt(b.protect)}
	if b.notes != "" {
		m["notes"] = b.notes
	}
	return m, nil
}

// putVolume sets a backup's notes and protection.
func (s *Simulator) putVolume(c *call) (any, error) {
	v := newValidator(c.p)
	protect, hasProtect := v.boolean("protected")
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.lookupVolume(c)
	if err != nil {
		return nil, err
	}
	if notes, ok := c.p["notes"]; ok {
		b.notes = notes
	}
	if hasProtect {
		b.protect = protect
	}
	return nil, nil
}

// deleteVolume removes a backup in an "imgdel" worker, which fails on a
// protected one as pve-storage's free_image does.
func (s *Simulator) deleteVolume(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.lookupVolume(c)
	if err != nil {
		return nil, err
	}
	t := s.startTask(taskSpec{
		node: c.node, typ: "imgdel", id: strconv.Itoa(b.vmid) + "@" + b.storage, user: c.user, weight: weightOf("imgdel"),
		commit: func(t *task) error {
			if b.protect {
				return fmt.Errorf("cannot remove protected volume '%s' on '%s'", b.volname, b.storage)
			}
			s.removeBackup(b)
			t.log = append(t.log, fmt.Sprintf("Removed volume '%s'", b.volid()))
			return nil
		},
	})
	// ?delay=N waits up to N seconds for the worker and answers null if it
	// finished; the simulator's workers do not wait, so only one that has
	// already finished (time scale 0) answers null.
	if _, ok := c.p["delay"]; ok && !t.running && t.exit == "OK" {
		return nil, nil
	}
	return t.upid, nil
}
