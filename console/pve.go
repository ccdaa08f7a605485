// Package console is the core's side of a VM's console: single-use tickets
// in PostgreSQL, the Proxmox calls that open a console (vncproxy or
// termproxy, then vncwebsocket) and the byte-for-byte relay between the
// browser's WebSocket and Proxmox's. docs/DESIGN.md ("Consoles") says why
// the core, not the agent, makes the Proxmox connection.
package console

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/gorilla/websocket"
)

// Target is the guest a console is for.
type Target struct {
	Cluster commands.ConsoleCluster
	Node    string
	Kind    domain.VMKind
	VMID    int
}

// Grant is Proxmox's answer to vncproxy/termproxy: the port of the
// worker waiting for one connection, the VNC ticket (a secret: it never
// leaves the core) and, for qemu, the VNC password the browser needs.
type Grant struct {
	User     string `json:"user"`
	Ticket   string `json:"ticket"`
	Port     int    `json:"port"`
	Password string `json:"password,omitempty"`
}

// ErrProxmox is a console Proxmox would not open; its text is Proxmox's.
var ErrProxmox = errors.New("console: proxmox refused")

// Protocol is the console protocol of a guest kind.
func Protocol(kind domain.VMKind) string {
	if kind == domain.KindLXC {
		return domain.ConsoleTerminal
	}
	return domain.ConsoleVNC
}

// HTTPClient reaches a cluster: the system's CAs, or exactly the pinned
// certificate, as the agent does (docs/SECURITY.md, "Proxmox").
func HTTPClient(fingerprint string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = TLSConfig(fingerprint)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TLSConfig verifies with the system's CAs, or with a fingerprint accepts
// only the certificate whose SHA-256 it is.
func TLSConfig(fingerprint string) *tls.Config {
	if fingerprint == "" {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, //nolint:gosec // replaced by the pin below, checked on every handshake
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("console: no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if domain.FormatFingerprint(sum[:]) != fingerprint {
				return errors.New("console: the server's certificate does not have the registered tls_fingerprint")
			}
			return nil
		},
	}
}

func authHeader(c commands.ConsoleCluster) string {
	return "PVEAPIToken=" + c.TokenID + "=" + c.TokenSecret
}

func guestPath(t Target) string {
	return fmt.Sprintf("/nodes/%s/%s/%d", url.PathEscape(t.Node), t.Kind, t.VMID)
}

// Open asks Proxmox for a console: qemu's vncproxy with websocket and a
// generated VNC password (so the password is not the ticket), lxc's
// termproxy. The worker it starts waits 10 s for the connection.
func Open(ctx context.Context, t Target) (Grant, error) {
	endpoint, form := "/vncproxy", url.Values{"websocket": {"1"}, "generate-password": {"1"}}
	if t.Kind == domain.KindLXC {
		endpoint, form = "/termproxy", url.Values{}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		strings.TrimSuffix(t.Cluster.APIURL, "/")+guestPath(t)+endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Grant{}, err
	}
	req.Header.Set("Authorization", authHeader(t.Cluster))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := HTTPClient(t.Cluster.TLSFingerprint).Do(req)
	if err != nil {
		return Grant{}, fmt.Errorf("console: %s: %w", endpoint, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return Grant{}, fmt.Errorf("%w: %s: %s", ErrProxmox, endpoint, res.Status)
	}
	var env struct {
		Data Grant `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.Ticket == "" || env.Data.Port == 0 {
		return Grant{}, fmt.Errorf("%w: %s: unreadable answer", ErrProxmox, endpoint)
	}
	return env.Data, nil
}

// Dial opens Proxmox's vncwebsocket for a grant with the API token (which
// stays here) and, for a terminal, sends termproxy's "user:ticket" line
// itself, so the browser never holds a Proxmox credential.
func Dial(ctx context.Context, t Target, g Grant) (*websocket.Conn, error) {
	u, err := url.Parse(strings.TrimSuffix(t.Cluster.APIURL, "/") + guestPath(t) + "/vncwebsocket")
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	u.RawQuery = url.Values{"port": {strconv.Itoa(g.Port)}, "vncticket": {g.Ticket}}.Encode()
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		TLSClientConfig:  TLSConfig(t.Cluster.TLSFingerprint),
		Subprotocols:     []string{"binary"},
	}
	h := http.Header{"Authorization": {authHeader(t.Cluster)}}
	conn, res, err := d.DialContext(ctx, u.String(), h)
	if res != nil && res.Body != nil {
		_ = res.Body.Close()
	}
	if err != nil {
		if res != nil {
			return nil, fmt.Errorf("%w: vncwebsocket: %s", ErrProxmox, res.Status)
		}
		return nil, fmt.Errorf("console: vncwebsocket: %w", err)
	}
	if t.Kind == domain.KindLXC {
		if err := conn.WriteMessage(websocket.BinaryMessage, []byte(g.User+":"+g.Ticket+"\n")); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("console: termproxy login: %w", err)
		}
	}
	return conn, nil
}
