package pvesim

import (
	"strings"
)

// extractConfig is GET /nodes/{node}/vzdump/extractconfig?volume=<volid>:
// the guest configuration stored in a backup archive, as vzdump's
// extract_vzdump_config returns it (the config file's text, "key: value"
// lines). pvesim keeps the configuration of every archive, so this reads
// it back; an archive the node cannot see is pve-storage's "does not
// exist".
func (s *Simulator) extractConfig(c *call) (any, error) {
	v := newValidator(c.p)
	v.required("volume")
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.findNode(c.node) == nil {
		return nil, errNoNode(c.node)
	}
	b, err := s.findBackup(c.node, "", c.p["volume"])
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	for _, k := range sortedKeys(b.conf) {
		out.WriteString(k + ": " + b.conf[k] + "\n")
	}
	return out.String(), nil
}
