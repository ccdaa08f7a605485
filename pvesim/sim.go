// Package pvesim simulates enough of the Proxmox VE HTTP API for AccountDB
// and go-proxmox to run against it as if it were a real cluster.
package pvesim

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const apiPrefix = "/api2/json"

// Simulator is an in-memory Proxmox VE cluster exposed as an http.Handler.
// All state sits behind one mutex: the API is chatty but cheap, and a
// single lock keeps cross-object invariants (unique vmids, capacity) simple.
type Simulator struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	tokenUser   string
	tokenSecret string
	ticketKey   []byte

	mu     sync.Mutex
	nodes  []*node
	guests map[int]*guest
	onNode map[string]map[int]*guest // the same guests by node (nodeguests.go)
	// tallies is each node's reported usage, kept as guests change
	// (nodeguests.go).
	tallies map[string]guestTally
	tasks   map[string]*task
	taskSeq uint32
	pools   map[string]*pool
	backups map[string]*backup // by node ("" when shared) + "/" + volume id
	// consoles are vncproxy/termproxy workers by node + "/" + port.
	consoles map[string]*consoleSession
	certDER  []byte // the TLS certificate, returned as vncproxy's "cert"
	faults   faults

	reqMu    sync.Mutex
	requests []Request
	rng      *mrand.Rand
	now      func() time.Time
}

type pool struct {
	id      string
	comment string
}

// New builds a simulator with its nodes and templates in place.
func New(opts Options) *Simulator {
	opts = opts.withDefaults()
	s := &Simulator{
		opts:     opts,
		log:      opts.Logger,
		guests:   map[int]*guest{},
		onNode:   map[string]map[int]*guest{},
		tallies:  map[string]guestTally{},
		tasks:    map[string]*task{},
		pools:    map[string]*pool{},
		backups:  map[string]*backup{},
		consoles: map[string]*consoleSession{},
		rng:      mrand.New(mrand.NewPCG(uint64(opts.Seed), 0x5eed)),
		now:      time.Now,
	}
	s.tokenUser, s.tokenSecret = splitToken(opts.Token)
	s.ticketKey = make([]byte, 32)
	_, _ = rand.Read(s.ticketKey)
	boot := s.now().Add(-72 * time.Hour)
	for i := 1; i <= opts.Nodes; i++ {
		s.nodes = append(s.nodes, &node{
			name:    fmt.Sprintf("pve%d", i),
			id:      i,
			ip:      fmt.Sprintf("10.0.0.%d", 10+i),
			cores:   opts.NodeCores,
			memory:  opts.NodeMemory,
			storage: opts.NodeStorage,
			boot:    boot,
		})
	}
	for _, t := range opts.Templates {
		s.seedTemplate(t)
	}
	s.seedGuests(opts.Guests)
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

// Options returns the effective options, defaults filled in.
func (s *Simulator) Options() Options { return s.opts }

// splitToken accepts "user@realm!id=secret" and PVE's older ':' separator.
func splitToken(tok string) (id, secret string) {
	if i := strings.IndexByte(tok, '='); i >= 0 {
		return tok[:i], tok[i+1:]
	}
	bang := strings.IndexByte(tok, '!')
	if i := strings.LastIndexByte(tok, ':'); i > bang && bang >= 0 {
		return tok[:i], tok[i+1:]
	}
	return tok, ""
}

// call is one authenticated API request with its path values resolved.
type call struct {
	r    *http.Request
	p    params
	user string // what PVE writes into UPIDs: root@pam or root@pam!tokenid
	node string
	kind guestKind
	vmid int
}

type handlerFunc func(c *call) (any, error)

func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r.URL.Path = strings.TrimRight(p, "/")
	}
	if d := s.requestLatency(); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if ae := s.injectedRequestFailure(); ae != nil {
		writeError(w, r, ae)
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeError(w, r, unknownMethod(r.Method, strings.TrimPrefix(r.URL.Path, apiPrefix)))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// handle registers an authenticated endpoint.
func (s *Simulator) handle(method, path string, h handlerFunc) {
	s.mux.HandleFunc(method+" "+apiPrefix+path, func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, true, path, h)
	})
}

func (s *Simulator) handleGuest(method, path string, h handlerFunc) {
	for _, kind := range []guestKind{kindQemu, kindLXC} {
		s.handle(method, "/nodes/{node}/"+string(kind)+path, func(c *call) (any, error) {
			c.kind = kind
			return h(c)
		})
	}
}

// serve authenticates, parses and validates a request against Proxmox's
// schema for template (the router path), then runs h.
func (s *Simulator) serve(w http.ResponseWriter, r *http.Request, auth bool, template string, h handlerFunc) {
	c := &call{r: r, node: r.PathValue("node")}
	if auth {
		user, err := s.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		c.user = user
	}
	p, err := parseParams(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c.p = p
	if err := s.checkRequest(c, template); err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.nodeUnreachable(c.node); err != nil {
		writeError(w, r, err)
		return
	}
	if v := r.PathValue("vmid"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 999999999 {
			writeError(w, r, paramErr1("vmid", fmt.Sprintf("type check ('integer') failed - got '%s'", v)))
			return
		}
		c.vmid = n
	}
	data, err := h(c)
	if r.Method != http.MethodGet && c.vmid != 0 {
		s.mu.Lock()
		if g := s.guests[c.vmid]; g != nil {
			s.retally(g)
		}
		s.mu.Unlock()
	}
	if err != nil {
		s.log.Debug("pvesim request failed", "method", r.Method, "path", r.URL.Path, "err", err.Error())
		writeError(w, r, err)
		return
	}
	if t, ok := data.(*wsTarget); ok && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		t.serveUpgrade(w, r)
		return
	}
	writeData(w, data)
}

// qemuOnly marks a handler of a /nodes/{node}/qemu/{vmid}/… route.
func (s *Simulator) qemuOnly(h handlerFunc) handlerFunc {
	return func(c *call) (any, error) {
		c.kind = kindQemu
		return h(c)
	}
}

func (s *Simulator) routes() {
	s.mux.HandleFunc("POST "+apiPrefix+"/access/ticket", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, false, "/access/ticket", s.postTicket)
	})
	s.handle("GET", "/version", s.getVersion)
	s.handle("GET", "/nodes", s.getNodes)
	s.handle("GET", "/nodes/{node}/status", s.getNodeStatus)
	s.handle("GET", "/nodes/{node}/version", s.getVersion)
	s.handle("GET", "/cluster/status", s.getClusterStatus)
	s.handle("GET", "/cluster/resources", s.getClusterResources)
	s.handle("GET", "/cluster/nextid", s.getNextID)
	s.handle("GET", "/cluster/tasks", s.getClusterTasks)

	s.handle("GET", "/nodes/{node}/tasks", s.getNodeTasks)
	s.handle("GET", "/nodes/{node}/tasks/{upid}/status", s.getTaskStatus)
	s.handle("GET", "/nodes/{node}/tasks/{upid}/log", s.getTaskLog)
	s.handle("DELETE", "/nodes/{node}/tasks/{upid}", s.deleteTask)

	s.handle("GET", "/nodes/{node}/qemu", s.listGuests(kindQemu))
	s.handle("GET", "/nodes/{node}/lxc", s.listGuests(kindLXC))
	s.handle("POST", "/nodes/{node}/qemu", s.createQemu)
	s.handle("POST", "/nodes/{node}/lxc", s.createLXC)

	s.handleGuest("GET", "/{vmid}", s.guestIndex)
	s.handleGuest("DELETE", "/{vmid}", s.deleteGuest)
	s.handleGuest("GET", "/{vmid}/config", s.getConfig)
	s.handleGuest("PUT", "/{vmid}/config", s.putConfig)
	s.handle("POST", "/nodes/{node}/qemu/{vmid}/config", func(c *call) (any, error) {
		c.kind = kindQemu
		return s.postConfig(c)
	})
	s.handle("GET", "/nodes/{node}/qemu/{vmid}/cloudinit", s.qemuOnly(s.getCloudInit))
	s.handle("PUT", "/nodes/{node}/qemu/{vmid}/cloudinit", s.qemuOnly(s.putCloudInit))
	s.handle("GET", "/nodes/{node}/qemu/{vmid}/cloudinit/dump", s.qemuOnly(s.dumpCloudInit))
	s.handle("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces", s.qemuOnly(s.agentNetworkInterfaces))
	s.handle("GET", "/nodes/{node}/lxc/{vmid}/interfaces", func(c *call) (any, error) {
		c.kind = kindLXC
		return s.lxcInterfaces(c)
	})
	s.handle("POST", "/nodes/{node}/qemu/{vmid}/vncproxy", s.qemuOnly(s.postVNCProxy))
	s.handle("POST", "/nodes/{node}/lxc/{vmid}/termproxy", func(c *call) (any, error) {
		c.kind = kindLXC
		return s.postTermProxy(c)
	})
	s.handleGuest("GET", "/{vmid}/vncwebsocket", s.getVNCWebSocket)
	s.handleGuest("GET", "/{vmid}/status", s.statusIndex)
	s.handleGuest("GET", "/{vmid}/status/current", s.getStatusCurrent)
	s.handleGuest("POST", "/{vmid}/status/{action}", s.postStatusAction)
	s.handleGuest("POST", "/{vmid}/clone", s.cloneGuest)
	s.handleGuest("PUT", "/{vmid}/resize", s.resizeDisk)
	s.handleGuest("POST", "/{vmid}/template", s.convertToTemplate)
	s.handleGuest("GET", "/{vmid}/snapshot", s.listSnapshots)
	s.handleGuest("POST", "/{vmid}/snapshot", s.createSnapshot)
	s.handleGuest("GET", "/{vmid}/snapshot/{snap}", s.snapshotIndex)
	s.handleGuest("DELETE", "/{vmid}/snapshot/{snap}", s.deleteSnapshot)
	s.handleGuest("GET", "/{vmid}/snapshot/{snap}/config", s.getSnapshotConfig)
	s.handleGuest("POST", "/{vmid}/snapshot/{snap}/rollback", s.rollbackSnapshot)

	s.handle("POST", "/nodes/{node}/vzdump", s.postVzdump)
	s.handle("GET", "/nodes/{node}/vzdump/extractconfig", s.extractConfig)
	s.handle("GET", "/nodes/{node}/storage", s.getStorages)
	s.handle("GET", "/nodes/{node}/storage/{storage}/status", s.getStorageStatus)
	s.handle("GET", "/nodes/{node}/storage/{storage}/content", s.getStorageContent)
	s.handle("GET", "/nodes/{node}/storage/{storage}/content/{volume}", s.getVolume)
	s.handle("PUT", "/nodes/{node}/storage/{storage}/content/{volume}", s.putVolume)
	s.handle("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", s.deleteVolume)

	s.handle("GET", "/pools", s.getPools)
	s.handle("POST", "/pools", s.createPool)
	s.handle("PUT", "/pools", s.updatePool)
	s.handle("DELETE", "/pools", s.deletePool)
	s.handle("GET", "/pools/{pool}", s.getPool)
	s.handle("PUT", "/pools/{pool}", s.updatePool)
	s.handle("DELETE", "/pools/{pool}", s.deletePool)
}
