package pvesim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// Server serves a Simulator on a TCP listener.
type Server struct {
	sim  *Simulator
	srv  *http.Server
	ln   net.Listener
	base string
	cert *x509.Certificate
	done chan struct{}
}

// StartServer builds a simulator from opts and serves it; see Start.
func StartServer(opts Options, addr string, useTLS bool) (*Server, error) {
	return New(opts).Start(addr, useTLS)
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves the
// simulator until Stop. With useTLS it serves HTTPS with a fresh
// self-signed certificate, like a PVE node out of the box.
func (s *Simulator) Start(addr string, useTLS bool) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &Server{
		sim:  s,
		ln:   ln,
		done: make(chan struct{}),
		srv: &http.Server{
			Handler:           s,
			ReadHeaderTimeout: 10 * time.Second,
			// pveproxy speaks HTTP/1.1 only, and error reason phrases need a
			// hijackable connection, so HTTP/2 stays off.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		},
	}
	scheme := "http"
	if useTLS {
		cert, leaf, err := selfSignedCert(ln.Addr())
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		srv.cert = leaf
		s.mu.Lock()
		s.certDER = leaf.Raw
		s.mu.Unlock()
		srv.ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		})
		scheme = "https"
	}
	srv.base = fmt.Sprintf("%s://%s", scheme, ln.Addr().String())
	go func() {
		defer close(srv.done)
		if err := srv.srv.Serve(srv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("pvesim server stopped", "err", err)
		}
	}()
	return srv, nil
}

// URL is the API base to hand to proxmox.NewClient, e.g.
// "https://127.0.0.1:8006/api2/json".
func (srv *Server) URL() string { return srv.base + apiPrefix }

// BaseURL is the scheme://host:port part without the API prefix.
func (srv *Server) BaseURL() string { return srv.base }

// Addr is the listening address.
func (srv *Server) Addr() string { return srv.ln.Addr().String() }

// Simulator returns the simulator behind the server, for fault injection.
func (srv *Server) Simulator() *Simulator { return srv.sim }

// Certificate is the self-signed leaf in TLS mode, nil otherwise; add it
// to a CertPool to verify instead of skipping verification.
func (srv *Server) Certificate() *x509.Certificate { return srv.cert }

// Stop shuts the server down, waiting for in-flight requests until ctx ends.
func (srv *Server) Stop(ctx context.Context) error {
	err := srv.srv.Shutdown(ctx)
	if err != nil {
		_ = srv.srv.Close()
	}
	<-srv.done
	return err
}

// Close stops the server immediately.
func (srv *Server) Close() error {
	err := srv.srv.Close()
	<-srv.done
	return err
}

func selfSignedCert(addr net.Addr) (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "pvesim", Organization: []string{"PVE Cluster Node (pvesim)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "pvesim"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, tcp.IP)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
