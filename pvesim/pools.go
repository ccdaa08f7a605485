package pvesim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// checkPool must be called with s.mu held.
func (s *Simulator) checkPool(id string) error {
	if id == "" {
		return nil
	}
	if _, ok := s.pools[id]; !ok {
		return errf("pool '%s' does not exist", id)
	}
	return nil
}

func (s *Simulator) sortedPoolIDs() []string {
	ids := make([]string, 0, len(s.pools))
	for id := range s.pools {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (s *Simulator) poolMembers(id, typ string) []resourceRow {
	out := []resourceRow{}
	for _, vmid := range s.sortedVMIDs() {
		g := s.guests[vmid]
		if g.pool == id && (typ == "" || typ == string(g.kind)) {
			out = append(out, s.guestResource(g))
		}
	}
	return out
}

func (s *Simulator) getPools(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id := c.p["poolid"]; id != "" {
		p, ok := s.pools[id]
		if !ok {
			return nil, errf("pool '%s' does not exist", id)
		}
		return []map[string]any{{"poolid": p.id, "comment": p.comment, "members": s.poolMembers(p.id, c.p["type"])}}, nil
	}
	out := []map[string]any{}
	for _, id := range s.sortedPoolIDs() {
		m := map[string]any{"poolid": id}
		if cm := s.pools[id].comment; cm != "" {
			m["comment"] = cm
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Simulator) getPool(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.r.PathValue("pool")
	p, ok := s.pools[id]
	if !ok {
		return nil, errf("pool '%s' does not exist", id)
	}
	return map[string]any{"comment": p.comment, "members": s.poolMembers(id, c.p["type"])}, nil
}

func (s *Simulator) createPool(c *call) (any, error) {
	v := newValidator(c.p)
	if v.required("poolid") && !poolIDRe.MatchString(c.p["poolid"]) {
		v.fail("poolid", fmt.Sprintf("invalid format - invalid pool ID '%s'", c.p["poolid"]))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.p["poolid"]
	if _, ok := s.pools[id]; ok {
		return nil, errf("create pool failed - pool '%s' already exists", id)
	}
	s.pools[id] = &pool{id: id, comment: c.p["comment"]}
	return nil, nil
}

// updatePool serves both PUT /pools (poolid in the body) and the
// deprecated PUT /pools/{poolid}.
func (s *Simulator) updatePool(c *call) (any, error) {
	v := newValidator(c.p)
	id := c.r.PathValue("pool")
	if id == "" {
		v.required("poolid")
		id = c.p["poolid"]
	}
	del, _ := v.boolean("delete")
	move, _ := v.boolean("allow-move")
	var vmids []int
	for _, f := range strings.FieldsFunc(c.p["vms"], func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			v.fail("vms", fmt.Sprintf("invalid format - value '%s' does not look like a valid VM ID", f))
			continue
		}
		vmids = append(vmids, n)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pools[id]
	if !ok {
		return nil, errf("pool '%s' does not exist", id)
	}
	for _, vmid := range vmids {
		g, ok := s.guests[vmid]
		if !ok {
			return nil, errf("no such VMID '%d'", vmid)
		}
		if del {
			if g.pool != id {
				return nil, errf("VM %d is not a pool member", vmid)
			}
			continue
		}
		if g.pool != "" && g.pool != id && !move {
			return nil, errf("VM %d belongs already to pool '%s'", vmid, g.pool)
		}
	}
	for _, vmid := range vmids {
		if del {
			s.guests[vmid].pool = ""
		} else {
			s.guests[vmid].pool = id
		}
	}
	if cm, ok := c.p["comment"]; ok {
		p.comment = cm
	}
	return nil, nil
}

func (s *Simulator) deletePool(c *call) (any, error) {
	id := c.r.PathValue("pool")
	if id == "" {
		id = c.p["poolid"]
	}
	if id == "" {
		return nil, paramErr1("poolid", "property is missing and it is not optional")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pools[id]; !ok {
		return nil, errf("pool '%s' does not exist", id)
	}
	if len(s.poolMembers(id, "")) > 0 {
		return nil, errf("pool '%s' is not empty", id)
	}
	delete(s.pools, id)
	return nil, nil
}
