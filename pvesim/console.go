package pvesim

import (
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Consoles follow qemu-server and pve-container 8.2: vncproxy/termproxy
// pick the node's next free port from 5900, assemble a VNC ticket
// ("PVEVNC:HEXTIME::sig", valid 40 s, bound to the user and /vms/{vmid})
// and fork a "vncproxy" worker that waits 10 s for one connection, serves
// it until it ends and then frees the port. vncwebsocket checks the ticket
// and, on an Upgrade, pveproxy splices the WebSocket to that port.
const (
	vncPortMin        = 5900
	vncPortMax        = 5999
	vncTicketMaxAge   = 40 * time.Second
	vncTicketMinAge   = -20 * time.Second
	consoleAcceptWait = 10 * time.Second
)

// consoleSession is one vncproxy/termproxy worker's listening port.
type consoleSession struct {
	node      string
	kind      guestKind
	vmid      int
	port      int
	terminal  bool   // termproxy (Proxmox's terminal protocol) rather than RFB
	password  string // the VNC protocol password (qemu vncproxy)
	task      *task
	connected bool
}

func consoleKey(node string, port int) string { return node + "/" + strconv.Itoa(port) }

// assembleVNCTicket is PVE::AccessControl::assemble_vnc_ticket: the user
// and path are signed but not carried in the ticket.
func (s *Simulator) assembleVNCTicket(user, path string, at time.Time) string {
	plain := fmt.Sprintf("PVEVNC:%08X", at.Unix())
	return plain + "::" + s.sign("vnc", plain+":"+user+":"+path)
}

// verifyVNCTicket is verify_vnc_ticket: signature over user and path, age
// within PVE's -20..40 s window.
func (s *Simulator) verifyVNCTicket(ticket, user, path string) bool {
	plain, sig, ok := strings.Cut(ticket, "::")
	if !ok || !strings.HasPrefix(plain, "PVEVNC:") || sig != s.sign("vnc", plain+":"+user+":"+path) {
		return false
	}
	ts, err := strconv.ParseInt(strings.TrimPrefix(plain, "PVEVNC:"), 16, 64)
	if err != nil {
		return false
	}
	age := s.now().Sub(time.Unix(ts, 0))
	return age >= vncTicketMinAge && age <= vncTicketMaxAge
}

// genVNCPassword is qemu-server's gen_rand_chars(8): printable ASCII from '!'.
func genVNCPassword() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = (b[i] & 0x3f) + '!'
	}
	return string(b)
}

// nextVNCPort is PVE::Tools::next_vnc_port; must be called with s.mu held.
func (s *Simulator) nextVNCPort(node string) (int, error) {
	for p := vncPortMin; p <= vncPortMax; p++ {
		if _, used := s.consoles[consoleKey(node, p)]; !used {
			return p, nil
		}
	}
	return 0, errf("unable to find free port (%d-%d)", vncPortMin, vncPortMax)
}

func (s *Simulator) postVNCProxy(c *call) (any, error) {
	return s.openConsole(c, false)
}

func (s *Simulator) postTermProxy(c *call) (any, error) {
	return s.openConsole(c, true)
}

func (s *Simulator) openConsole(c *call, terminal bool) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupGuest(c); err != nil {
		return nil, err
	}
	port, err := s.nextVNCPort(c.node)
	if err != nil {
		return nil, err
	}
	path := fmt.Sprintf("/vms/%d", c.vmid)
	ticket := s.assembleVNCTicket(c.user, path, s.now())
	sess := &consoleSession{node: c.node, kind: c.kind, vmid: c.vmid, port: port, terminal: terminal}
	res := map[string]any{"user": c.user, "ticket": ticket, "port": port}
	if !terminal {
		// qemu-server 8.2: the VNC password is the ticket itself unless
		// generate-password asks for 8 random characters.
		sess.password = ticket
		if gen, _ := newValidator(c.p).boolean("generate-password"); gen {
			sess.password = genVNCPassword()
			res["password"] = sess.password
		}
		res["cert"] = s.rootCAPEM()
	}
	sess.task = s.startTask(taskSpec{node: c.node, typ: "vncproxy", id: strconv.Itoa(c.vmid), user: c.user, open: true})
	s.consoles[consoleKey(c.node, port)] = sess
	res["upid"] = sess.task.upid
	time.AfterFunc(s.opts.ConsoleWait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !sess.connected {
			s.endConsole(sess, "connection timed out")
		}
	})
	return res, nil
}

// endConsole finishes the worker and frees its port; s.mu must be held.
func (s *Simulator) endConsole(sess *consoleSession, failure string) {
	if s.consoles[consoleKey(sess.node, sess.port)] == sess {
		delete(s.consoles, consoleKey(sess.node, sess.port))
	}
	if failure != "" && sess.task.running {
		sess.task.forced = failure
	}
	s.finishTask(sess.task)
}

// rootCAPEM stands in for /etc/pve/pve-root-ca.pem, which vncproxy returns
// as "cert"; with TLS it is the server's own self-signed certificate.
func (s *Simulator) rootCAPEM() string {
	if s.certDER == nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.certDER}))
}

// getVNCWebSocket is the API half of vncwebsocket: it checks the VNC
// ticket and the guest and answers the port; serve() turns the answer into
// the spliced WebSocket when the request asks for an Upgrade.
func (s *Simulator) getVNCWebSocket(c *call) (any, error) {
	if !s.verifyVNCTicket(c.p["vncticket"], c.user, fmt.Sprintf("/vms/%d", c.vmid)) {
		return nil, errf("permission denied - invalid PVEVNC ticket")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupGuest(c); err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(c.p["port"])
	return &wsTarget{sim: s, node: c.node, port: port, user: c.user}, nil
}

// claimConsole takes the session listening on node:port for one
// connection, like the worker's accept(); nil when nothing listens.
func (s *Simulator) claimConsole(node string, port int) *consoleSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.consoles[consoleKey(node, port)]
	if sess == nil || sess.connected {
		return nil
	}
	sess.connected = true
	return sess
}

// guestState reads a guest's power state and name for a console; ok is
// false once the guest is gone.
func (s *Simulator) guestState(vmid int) (state, name string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, found := s.guests[vmid]
	if !found {
		return "", "", false
	}
	return g.state, g.name(), true
}
