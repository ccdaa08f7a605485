package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Cluster is a JetStream cluster of real nats-server instances on loopback,
// each on its own free client and route port, with one trust root. Nodes
// can be stopped and started again (same ports and store), to take a node
// away as an operator's outage would.
type Cluster struct {
	Keys  *natsauth.Keys
	Nodes []*Server
}

// StartCluster runs n clustered JetStream servers (n >= 3 for replicated
// streams to survive the loss of one) and waits until they have a meta
// leader.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	keys, err := natsauth.Generate()
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	// Route ports are taken up front: every node's configuration names all
	// of them.
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = freePort(tb)
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	name := "accountdb-test-" + strings.ToLower(tb.Name())
	name = strings.NewReplacer("/", "-", " ", "-").Replace(name)
	c := &Cluster{Keys: keys}
	for i := range n {
		s := &Server{Keys: keys, tb: tb, opts: server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       freePort(tb),
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: name,
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes: routes,
		}}
		if err := keys.ConfigureServer(&s.opts); err != nil {
			tb.Fatalf("natstest: %v", err)
		}
		c.Nodes = append(c.Nodes, s)
	}
	for _, s := range c.Nodes {
		s.startNoWait()
	}
	for _, s := range c.Nodes {
		if !s.srv.ReadyForConnections(20 * time.Second) {
			tb.Fatalf("natstest: cluster node %s not ready", s.opts.ServerName)
		}
		tb.Cleanup(s.Stop)
	}
	c.WaitForMetaLeader(tb)
	return c
}

// URLs is the comma-separated list of every node's client URL, the form
// NATS_URL takes for a cluster.
func (c *Cluster) URLs() string {
	var urls []string
	for _, s := range c.Nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port))
	}
	return strings.Join(urls, ",")
}

// Options are the connect options of a client authenticated as u.
func (c *Cluster) Options(tb testing.TB, u natsauth.User) []nats.Option {
	return c.Nodes[0].Options(tb, u)
}

// Node is the running node named name (n1, n2, …), or nil.
func (c *Cluster) Node(name string) *Server {
	for _, s := range c.Nodes {
		if s.opts.ServerName == name {
			return s
		}
	}
	return nil
}

// WaitForMetaLeader waits until the running nodes agree on a JetStream
// meta leader (one node leads and every running node's meta layer is
// current) and each has set up AccountDB's account (accountReady). One
// leader alone was not enough: a stream created meanwhile could be
// assigned to a node that then failed to create its store (two relay tests
// failed so in CI).
func (c *Cluster) WaitForMetaLeader(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		leaders, current, running := 0, 0, 0
		for _, s := range c.Nodes {
			if s.srv == nil {
				continue
			}
			running++
			if s.srv.JetStreamIsLeader() {
				leaders++
			}
			if s.srv.JetStreamIsCurrent() {
				current++
			}
		}
		if leaders == 1 && current == running && c.accountReady() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("natstest: the running nodes agreed on no JetStream meta leader within 30s")
}

// accountReady is accountSetUp on every running node.
func (c *Cluster) accountReady() bool {
	for _, s := range c.Nodes {
		if s.srv != nil && !accountSetUp(s.srv, c.Keys) {
			return false
		}
	}
	return true
}

// Name is the node's server name.
func (s *Server) Name() string { return s.opts.ServerName }

// Running says whether the node is up.
func (s *Server) Running() bool { return s.srv != nil }

// Start starts a stopped node again on its ports and store.
func (s *Server) Start() {
	s.tb.Helper()
	if s.srv == nil {
		s.start()
	}
}

func (s *Server) startNoWait() {
	s.tb.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.tb.Fatalf("natstest: %v", err)
	}
	// Warnings and errors go to the test's log (shown when it fails):
	// a cluster's troubles are in the servers' own words.
	srv.SetLoggerV2(tbLogger{tb: s.tb, name: s.opts.ServerName}, false, false, false)
	srv.Start()
	s.srv = srv
}

type tbLogger struct {
	tb   testing.TB
	name string
}

func (l tbLogger) Noticef(string, ...any) {}
func (l tbLogger) Debugf(string, ...any)  {}
func (l tbLogger) Tracef(string, ...any)  {}
func (l tbLogger) Warnf(f string, v ...any) {
	l.tb.Logf("nats %s: warning: %s", l.name, fmt.Sprintf(f, v...))
}
func (l tbLogger) Errorf(f string, v ...any) {
	l.tb.Logf("nats %s: error: %s", l.name, fmt.Sprintf(f, v...))
}
func (l tbLogger) Fatalf(f string, v ...any) {
	l.tb.Logf("nats %s: fatal: %s", l.name, fmt.Sprintf(f, v...))
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
