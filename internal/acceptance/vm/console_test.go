package vm_test

import (
	"bytes"
	"context"
	"crypto/des"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/gorilla/websocket"
)

type consoleTicket struct {
	Ticket    string    `json:"ticket"`
	URL       string    `json:"url"`
	Protocol  string    `json:"protocol"`
	Password  string    `json:"password"`
	ExpiresAt time.Time `json:"expires_at"`
}

// consoleEnv: the whole system with small console caps and frequent
// checks, and a running VM (or container) of a tenant's operator.
func consoleEnv(t *testing.T, kind string) (*realEnv, *env, string) {
	t.Helper()
	e := newRealEnv(t, stacktest.Options{Limits: api.Limits{ConsolesPerUser: 2, ConsolesPerVM: 3, ConsoleCheckInterval: 50 * time.Millisecond}}, pvesim.Options{})
	en := e.tenant(t, roomyQuota)
	tmpl := map[string]string{"qemu": "debian-12", "lxc": "debian-12-ct"}[kind]
	var a accepted
	r := en.s.Do(t, en.token, http.MethodPost, "/v1/vms", map[string]any{"name": "web-1", "kind": kind, "cores": 1,
		"memory_mb": 1024, "disk_gb": 10, "template": tmpl}, &a)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	en.waitStatus(t, a.ID, "running")
	return e, en, a.ID
}

func (en *env) console(t *testing.T, token, id string, want int) consoleTicket {
	t.Helper()
	var c consoleTicket
	r := en.s.Do(t, token, http.MethodPost, "/v1/vms/"+id+"/console", nil, &c)
	if r.StatusCode != want {
		t.Fatalf("POST console: %d %s, want %d", r.StatusCode, r.Body, want)
	}
	return c
}

// dialConsole opens the ticket's WebSocket; the status is the handshake's.
func dialConsole(t *testing.T, s *stacktest.Stack, url string) (*websocket.Conn, int) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"binary"}, HandshakeTimeout: 10 * time.Second}
	conn, res, err := d.Dial(strings.Replace(s.URL, "http://", "ws://", 1)+url, nil)
	if err != nil {
		if res == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, res.StatusCode
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, res.StatusCode
}

// dialConsoleFrom opens the ticket's WebSocket from the local address
// from (a loopback address other than the one the ticket was asked from)
// and returns the handshake's status.
func dialConsoleFrom(t *testing.T, s *stacktest.Stack, url, from string) int {
	t.Helper()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	d := websocket.Dialer{Subprotocols: []string{"binary"}, HandshakeTimeout: 10 * time.Second, NetDialContext: nd.DialContext}
	conn, res, err := d.Dial(strings.Replace(s.URL, "http://", "ws://", 1)+url, nil)
	if err == nil {
		_ = conn.Close()
		return http.StatusSwitchingProtocols
	}
	if res == nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	return res.StatusCode
}

// wsReader reads the relayed byte stream, whatever its message boundaries.
type wsReader struct {
	t    *testing.T
	conn *websocket.Conn
	buf  bytes.Buffer
}

func (r *wsReader) next(n int) []byte {
	r.t.Helper()
	for r.buf.Len() < n {
		_ = r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, m, err := r.conn.ReadMessage()
		if err != nil {
			r.t.Fatalf("read after %d of %d bytes: %v", r.buf.Len(), n, err)
		}
		r.buf.Write(m)
	}
	return r.buf.Next(n)
}

func (r *wsReader) until(want string) string {
	r.t.Helper()
	var seen strings.Builder
	for !strings.Contains(seen.String(), want) {
		seen.Write(r.next(1))
	}
	return seen.String()
}

// closes waits until the server ends the socket and returns its close code.
func (r *wsReader) closes() int {
	r.t.Helper()
	for {
		_ = r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, _, err := r.conn.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			r.t.Fatalf("the console did not close: %v", err)
		}
	}
}

func (r *wsReader) send(b []byte) {
	r.t.Helper()
	if err := r.conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
		r.t.Fatal(err)
	}
}

// vncResponse is RFB's VNC authentication: DES with the bit-reversed password.
func vncResponse(password string, challenge []byte) []byte {
	key := make([]byte, 8)
	copy(key, password)
	for i := range key {
		key[i] = bits.Reverse8(key[i])
	}
	c, _ := des.NewCipher(key)
	out := make([]byte, 16)
	c.Encrypt(out[:8], challenge[:8])
	c.Encrypt(out[8:], challenge[8:])
	return out
}

// rfbLogin runs the RFB 3.8 handshake through the proxy and returns the
// desktop name of ServerInit.
func rfbLogin(r *wsReader, password string) string {
	r.t.Helper()
	if v := string(r.next(12)); v != "RFB 003.008\n" {
		r.t.Fatalf("version %q", v)
	}
	r.send([]byte("RFB 003.008\n"))
	if st := r.next(2); !bytes.Equal(st, []byte{1, 2}) {
		r.t.Fatalf("security types %v", st)
	}
	r.send([]byte{2})
	r.send(vncResponse(password, r.next(16)))
	if res := r.next(4); !bytes.Equal(res, []byte{0, 0, 0, 0}) {
		r.t.Fatalf("VNC authentication failed: %v", res)
	}
	r.send([]byte{1})
	init := r.next(24)
	return string(r.next(int(binary.BigEndian.Uint32(init[20:]))))
}

type consoleEvent struct {
	Type string
	Data map[string]any
}

func consoleEvents(t *testing.T, s *stacktest.Stack) []consoleEvent {
	t.Helper()
	rows, err := s.DB.AdminConn(t).Query(context.Background(),
		`SELECT event_type, data FROM events WHERE event_type IN ('console_opened', 'console_closed') ORDER BY global_position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []consoleEvent
	for rows.Next() {
		var ev consoleEvent
		var raw []byte
		if err := rows.Scan(&ev.Type, &raw); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(raw, &ev.Data)
		out = append(out, ev)
	}
	return out
}

// problemOf checks a response's status and returns its body.
func problemOf(t *testing.T, r stacktest.Response, want int) string {
	t.Helper()
	if r.StatusCode != want {
		t.Fatalf("%d %s, want %d", r.StatusCode, r.Body, want)
	}
	return string(r.Body)
}

func TestConsoleRelaysVNCAndClosesWhenTheVMStops(t *testing.T) {
	e, en, id := consoleEnv(t, "qemu")
	c := en.console(t, en.token, id, http.StatusOK)
	if c.Protocol != "vnc" || len(c.Password) != 8 || !strings.HasPrefix(c.URL, "/v1/consoles/") ||
		!strings.HasSuffix(c.URL, c.Ticket) || time.Until(c.ExpiresAt) > 31*time.Second {
		t.Fatalf("console answer %+v", c)
	}
	conn, code := dialConsole(t, e.s, c.URL)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("handshake %d", code)
	}
	r := &wsReader{t: t, conn: conn}
	if name := rfbLogin(r, c.Password); !strings.HasPrefix(name, "QEMU (") {
		t.Fatalf("desktop name %q", name)
	}
	// A framebuffer update comes back whole through the relay.
	r.send([]byte{3, 0, 0, 0, 0, 0, 2, 128, 1, 144})
	if hdr := r.next(16); hdr[0] != 0 || binary.BigEndian.Uint16(hdr[2:]) != 1 {
		t.Fatalf("update header %v", hdr)
	}
	if px := r.next(640 * 400 * 4); !bytes.Equal(px[:4], []byte{0x5f, 0x3a, 0x1e, 0}) {
		t.Fatalf("first pixel %v", px[:4])
	}

	// The ticket was used once.
	if _, code := dialConsole(t, e.s, c.URL); code != http.StatusUnauthorized {
		t.Fatalf("second use of a ticket: %d", code)
	}
	en.do(t, http.MethodPost, "/v1/vms/"+id+"/actions/stop", nil)
	r.closes()
	en.waitStatus(t, id, "stopped")
	en.console(t, en.token, id, http.StatusUnprocessableEntity)
	stacktest.Eventually(t, 10*time.Second, "console_closed", func() bool { return len(consoleEvents(t, e.s)) == 2 })
	evs := consoleEvents(t, e.s)
	closed := evs[1].Data
	if evs[0].Type != "console_opened" || evs[0].Data["vm_id"] != id || evs[0].Data["protocol"] != "vnc" ||
		evs[1].Type != "console_closed" || closed["bytes_out"].(float64) < 640*400*4 || closed["bytes_in"].(float64) < 12 {
		t.Fatalf("console events %+v", evs)
	}
	if reason := closed["reason"]; reason != "guest_closed" && reason != "vm_not_running" {
		t.Fatalf("closed for %v", reason)
	}
	raw, _ := json.Marshal(evs)
	if strings.Contains(string(raw), c.Password) || strings.Contains(string(raw), c.Ticket) || strings.Contains(string(raw), "PVEVNC") {
		t.Fatalf("a secret reached the events: %s", raw)
	}
}

func TestConsoleTicketRules(t *testing.T) {
	e, en, id := consoleEnv(t, "qemu")
	s := e.s
	// Another tenant's VM is a 404; a user without vm:console a 403.
	other := e.tenant(t, roomyQuota)
	en.console(t, other.token, id, http.StatusNotFound)
	viewer := s.Login(t, s.User(t, en.tenID, auth.RoleViewer)).AccessToken
	en.console(t, viewer, id, http.StatusForbidden)

	// An expired ticket is refused.
	c := en.console(t, en.token, id, http.StatusOK)
	if _, err := s.DB.AdminConn(t).Exec(context.Background(), `UPDATE console_tickets SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if _, code := dialConsole(t, s, c.URL); code != http.StatusUnauthorized {
		t.Fatalf("expired ticket: %d", code)
	}
	if _, code := dialConsole(t, s, "/v1/consoles/not-a-ticket"); code != http.StatusUnauthorized {
		t.Fatalf("forged ticket: %d", code)
	}
	// A ticket presented from another client address (someone else who
	// read it) is refused like an unknown one.
	c = en.console(t, en.token, id, http.StatusOK)
	if code := dialConsoleFrom(t, s, c.URL, "127.0.0.2"); code != http.StatusUnauthorized {
		t.Fatalf("a ticket from another address: %d", code)
	}

	// Two consoles per user here: a third is refused while they are open.
	var open []*wsReader
	for i := 0; i < 2; i++ {
		c := en.console(t, en.token, id, http.StatusOK)
		conn, code := dialConsole(t, s, c.URL)
		if code != http.StatusSwitchingProtocols {
			t.Fatalf("console %d: %d", i, code)
		}
		open = append(open, &wsReader{t: t, conn: conn})
		rfbLogin(open[i], c.Password)
	}
	if p := problemOf(t, en.s.Do(t, en.token, http.MethodPost, "/v1/vms/"+id+"/console", nil, nil), http.StatusTooManyRequests); !strings.Contains(p, "per user") {
		t.Fatalf("the user's third console: %s", p)
	}

	// Three per VM here: another operator gets one more, then no more.
	colleague := s.Login(t, s.User(t, en.tenID, auth.RoleOperator)).AccessToken
	cc := en.console(t, colleague, id, http.StatusOK)
	cconn, code := dialConsole(t, s, cc.URL)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("the colleague's console: %d", code)
	}
	rfbLogin(&wsReader{t: t, conn: cconn}, cc.Password)
	if p := problemOf(t, en.s.Do(t, colleague, http.MethodPost, "/v1/vms/"+id+"/console", nil, nil), http.StatusTooManyRequests); !strings.Contains(p, "per VM") {
		t.Fatalf("the VM's fourth console: %s", p)
	}

	// Losing vm:console (demoted to viewer) closes both at once.
	var me struct{ ID string }
	if r := s.Do(t, en.token, http.MethodGet, "/v1/users/me", nil, &me); r.StatusCode != http.StatusOK {
		t.Fatalf("me: %d", r.StatusCode)
	}
	admin := s.Login(t, s.User(t, en.tenID, auth.RoleTenantAdmin)).AccessToken
	if r := s.Do(t, admin, http.MethodPut, "/v1/users/"+me.ID+"/roles", map[string]any{"roles": []string{"viewer"}}, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("demote: %d %s", r.StatusCode, r.Body)
	}
	for _, r := range open {
		if code := r.closes(); code != websocket.ClosePolicyViolation {
			t.Fatalf("close code %d", code)
		}
	}
	stacktest.Eventually(t, 10*time.Second, "console_closed", func() bool {
		n := 0
		for _, ev := range consoleEvents(t, s) {
			if ev.Type == "console_closed" && ev.Data["reason"] == "permission_lost" {
				n++
			}
		}
		return n == 2
	})

	// Deleting the VM closes the colleague's console; a deleted VM has none.
	if r := s.Do(t, admin, http.MethodDelete, "/v1/vms/"+id, nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
	}
	(&wsReader{t: t, conn: cconn}).closes()
	stacktest.Eventually(t, 10*time.Second, "the colleague's console_closed", func() bool {
		for _, ev := range consoleEvents(t, s) {
			if ev.Type == "console_closed" && (ev.Data["reason"] == "vm_not_running" || ev.Data["reason"] == "guest_closed") {
				return true
			}
		}
		return false
	})
	en.waitStatus(t, id, "deleted")
	en.console(t, admin, id, http.StatusNotFound)
}

func TestConsoleTerminalClosesWhenTheSessionEnds(t *testing.T) {
	e, en, id := consoleEnv(t, "lxc")
	c := en.console(t, en.token, id, http.StatusOK)
	if c.Protocol != "terminal" || c.Password != "" {
		t.Fatalf("console answer %+v", c)
	}
	conn, code := dialConsole(t, e.s, c.URL)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("handshake %d", code)
	}
	r := &wsReader{t: t, conn: conn}
	// The proxy logged in to termproxy itself; its "OK" comes through.
	if ok := string(r.next(2)); ok != "OK" {
		t.Fatalf("termproxy answered %q", ok)
	}
	r.until(":~# ")
	r.send([]byte("1:80:24:"))
	cmd := "echo console-works\r"
	r.send([]byte(fmt.Sprintf("0:%d:%s", len(cmd), cmd)))
	if out := r.until(":~# "); !strings.Contains(out, "\r\nconsole-works\r\n") {
		t.Fatalf("output %q", out)
	}
	// A console asked for with an API token holding vm:console works, and
	// ends when the token is revoked (the session's console stays open).
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if res := e.s.Do(t, en.token, http.MethodPost, "/v1/users/me/tokens",
		map[string]any{"name": "console", "permissions": []string{"vm:console", "vm:read"}}, &tok); res.StatusCode != http.StatusCreated {
		t.Fatalf("token: %d %s", res.StatusCode, res.Body)
	}
	tc := en.console(t, tok.Token, id, http.StatusOK)
	tconn, code := dialConsole(t, e.s, tc.URL)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("handshake with a token's ticket: %d", code)
	}
	tr := &wsReader{t: t, conn: tconn}
	if ok := string(tr.next(2)); ok != "OK" {
		t.Fatalf("termproxy answered %q", ok)
	}
	tr.until(":~# ")
	if res := e.s.Do(t, en.token, http.MethodDelete, "/v1/users/me/tokens/"+tok.ID, nil, nil); res.StatusCode != http.StatusAccepted {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if code := tr.closes(); code != websocket.ClosePolicyViolation {
		t.Fatalf("token console close code %d", code)
	}
	stacktest.Eventually(t, 10*time.Second, "the token console's console_closed", func() bool { return len(consoleEvents(t, e.s)) == 3 })
	var byToken int
	if err := e.s.DB.AdminConn(t).QueryRow(context.Background(), `SELECT count(*) FROM events
		WHERE event_type IN ('console_opened', 'console_closed') AND metadata->>'api_token_id' = $1`, tok.ID).Scan(&byToken); err != nil {
		t.Fatal(err)
	}
	if byToken != 2 {
		t.Fatalf("%d console events name the token, want 2", byToken)
	}
	r.send([]byte(fmt.Sprintf("0:%d:%s", len(cmd), cmd)))
	if out := r.until(":~# "); !strings.Contains(out, "\r\nconsole-works\r\n") {
		t.Fatalf("the session's console after the token's ended: %q", out)
	}

	// Logging out ends the session, and the console with it.
	if res := e.s.Do(t, en.token, http.MethodPost, "/v1/auth/logout", nil, nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if code := r.closes(); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d", code)
	}
	stacktest.Eventually(t, 10*time.Second, "console_closed", func() bool { return len(consoleEvents(t, e.s)) == 4 })
	evs := consoleEvents(t, e.s)
	var reasons []any
	for _, ev := range evs {
		if ev.Type == "console_closed" {
			reasons = append(reasons, ev.Data["reason"])
			if ev.Data["protocol"] != "terminal" {
				t.Fatalf("console events %+v", evs)
			}
		}
	}
	if len(reasons) != 2 || reasons[0] != "session_ended" || reasons[1] != "session_ended" {
		t.Fatalf("closed for %v", reasons)
	}
}

// TestConsoleEndsWithTheProcess: a ticket asked of one core instance opens
// its WebSocket on another; a core that stops ends its open consoles
// (WebSocket code 1001) and records their console_closed before it lets go
// of the database (its WebSockets are connections http.Server.Shutdown does
// not wait for).
func TestConsoleEndsWithTheProcess(t *testing.T) {
	e, en, id := consoleEnv(t, "lxc")
	replica := e.s.Replica(t)
	c := en.console(t, en.token, id, http.StatusOK)
	conn, code := dialConsole(t, replica, c.URL)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("handshake on another instance %d", code)
	}
	r := &wsReader{t: t, conn: conn}
	r.until(":~# ")
	replica.Stop()
	if code := r.closes(); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d", code)
	}
	evs := consoleEvents(t, e.s)
	if len(evs) != 2 || evs[1].Type != "console_closed" || evs[1].Data["reason"] != "shutdown" {
		t.Fatalf("console events once the core stopped: %+v", evs)
	}
}
