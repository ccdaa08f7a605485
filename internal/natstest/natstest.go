// Package natstest runs a real, embedded NATS server with JetStream for tests,
// on a free loopback port with its store in a temporary directory. Like
// every AccountDB server it runs in operator mode (internal/natsauth): a test
// connects as the core, the agent or a subscriber, never anonymously.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an embedded NATS server that a test can stop and start again on
// the same port and store, to simulate an outage.
type Server struct {
	// Keys are the server's trust root; they issue the tests' credentials.
	Keys *natsauth.Keys

	tb   testing.TB
	opts server.Options
	srv  *server.Server
}

// Start runs a JetStream-enabled server and stops it at cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	keys, err := natsauth.Generate()
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	s := &Server{Keys: keys, tb: tb, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	if err := keys.ConfigureServer(&s.opts); err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	s.start()
	// Later restarts keep the port the first start was given.
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	opts := s.opts // NewServer fills in derived options; a restart starts from the originals
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.tb.Fatalf("natstest: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.tb.Fatalf("natstest: server not ready")
	}
	for deadline := time.Now().Add(10 * time.Second); !accountSetUp(srv, s.Keys); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.tb.Fatalf("natstest: the server did not set up AccountDB's account within 10s")
		}
	}
	s.srv = srv
}

// accountSetUp registers AccountDB's account on srv and says whether srv
// has enabled JetStream for it. The memory resolver registers an account on
// the server's first use of it: clients that raced that set-up were refused
// ("Authorization Violation") or had a stream's store fail ("error creating
// store for stream", 10049), in CI, on one server as on a cluster's nodes.
func accountSetUp(srv *server.Server, keys *natsauth.Keys) bool {
	pub, err := keys.Account.PublicKey()
	if err != nil {
		return false
	}
	acc, err := srv.LookupAccount(pub)
	return err == nil && acc.JetStreamEnabled()
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.srv.ClientURL() }

// Options are the connect options of a client authenticated as u.
func (s *Server) Options(tb testing.TB, u natsauth.User) []nats.Option {
	tb.Helper()
	opts, err := s.Keys.ConnectOptions(u)
	if err != nil {
		tb.Fatalf("natstest: credentials: %v", err)
	}
	return opts
}

// CoreOptions are the core's connect options.
func (s *Server) CoreOptions(tb testing.TB) []nats.Option { return s.Options(tb, natsauth.Core()) }

// Connect opens a connection as u, closed at cleanup.
func (s *Server) Connect(tb testing.TB, u natsauth.User, extra ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(s.URL(), append(s.Options(tb, u), extra...)...)
	if err != nil {
		tb.Fatalf("natstest: connect as %s: %v", u.Name(), err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream opens a connection as u and returns its JetStream context.
func (s *Server) JetStream(tb testing.TB, u natsauth.User, extra ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc := s.Connect(tb, u, extra...)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	return nc, js
}

// Stop shuts the server down (idempotent).
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart starts the server again on the same port with the same store.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}
