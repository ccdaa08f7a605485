package pvesim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// consoleEnv is a simulator with a running VM 100 "web-1" and container
// 200 "ct-1" on pve1, and a go-proxmox client logged in with a password
// (go-proxmox refuses websockets with API tokens).
func consoleEnv(t *testing.T) (*env, *proxmox.Client) {
	t.Helper()
	e := newEnv(t, Options{}, true)
	n := e.node(t, "pve1")
	e.ok(t)(n.NewVirtualMachine(e.ctx, 100,
		proxmox.VirtualMachineOption{Name: "name", Value: "web-1"},
		proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:8"}))
	e.ok(t)(e.vm(t, "pve1", 100).Start(e.ctx))
	e.ok(t)(n.NewContainer(e.ctx, 200,
		proxmox.ContainerOption{Name: "ostemplate", Value: DefaultOSTemplates()[0]},
		proxmox.ContainerOption{Name: "hostname", Value: "ct-1"},
		proxmox.ContainerOption{Name: "rootfs", Value: "local-lvm:8"}))
	ct, err := n.Container(e.ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	e.ok(t)(ct.Start(e.ctx))
	user := proxmox.NewClient(e.srv.URL(), proxmox.WithHTTPClient(insecureHTTP()),
		proxmox.WithCredentials(&proxmox.Credentials{Username: DefaultUser, Password: DefaultPassword}))
	return e, user
}

// chanReader reads the byte stream behind go-proxmox's message channels.
type chanReader struct {
	t    *testing.T
	recv chan []byte
	errs chan error
	buf  bytes.Buffer
}

func (r *chanReader) fill(n int) []byte {
	r.t.Helper()
	for r.buf.Len() < n {
		select {
		case m, ok := <-r.recv:
			if !ok || m == nil {
				r.t.Fatalf("stream ended with %d of %d bytes", r.buf.Len(), n)
			}
			r.buf.Write(m)
		case err := <-r.errs:
			r.t.Fatalf("stream error after %d of %d bytes: %v", r.buf.Len(), n, err)
		case <-time.After(20 * time.Second):
			r.t.Fatalf("no data after %d of %d bytes", r.buf.Len(), n)
		}
	}
	return r.buf.Next(n)
}

// until reads until the stream's text contains want.
func (r *chanReader) until(want string) string {
	r.t.Helper()
	var seen strings.Builder
	for !strings.Contains(seen.String(), want) {
		seen.Write(r.fill(1))
	}
	return seen.String()
}

// ended reports whether the stream closes (the channels deliver an error).
func (r *chanReader) ended() bool {
	for {
		select {
		case m := <-r.recv:
			if m == nil {
				return true
			}
		case <-r.errs:
			return true
		case <-time.After(20 * time.Second):
			return false
		}
	}
}

func TestQemuVNCProxyRFB(t *testing.T) {
	e, user := consoleEnv(t)
	vm, err := user.Node(e.ctx, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	v, err := vm.VirtualMachine(e.ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	vnc, err := v.VNCProxy(e.ctx, &proxmox.VNCConfig{Websocket: true, GeneratePassword: true})
	if err != nil {
		t.Fatal(err)
	}
	if vnc.User != DefaultUser || int(vnc.Port) != 5900 || !strings.HasPrefix(vnc.Ticket, "PVEVNC:") ||
		len(vnc.Password) != 8 || !strings.Contains(vnc.Cert, "BEGIN CERTIFICATE") ||
		!strings.Contains(vnc.UPID, ":vncproxy:100:root@pam:") {
		t.Fatalf("vncproxy = %+v", vnc)
	}
	send, recv, errs, closer, err := v.VNCWebSocket(vnc)
	if err != nil {
		t.Fatal(err)
	}
	r := &chanReader{t: t, recv: recv, errs: errs}
	if got := string(r.fill(12)); got != "RFB 003.008\n" {
		t.Fatalf("server version %q", got)
	}
	send <- []byte("RFB 003.008\n")
	if got := r.fill(2); !bytes.Equal(got, []byte{1, 2}) {
		t.Fatalf("security types %v", got)
	}
	send <- []byte{2}
	send <- vncAuthResponse(vnc.Password, r.fill(16))
	if got := r.fill(4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Fatalf("security result %v", got)
	}
	send <- []byte{1}
	init := r.fill(24)
	w, h := binary.BigEndian.Uint16(init[0:]), binary.BigEndian.Uint16(init[2:])
	name := string(r.fill(int(binary.BigEndian.Uint32(init[20:]))))
	if w != rfbWidth || h != rfbHeight || name != "QEMU (web-1)" || init[4] != 32 {
		t.Fatalf("server init %dx%d %q %v", w, h, name, init[4:20])
	}
	send <- []byte{3, 0, 0, 0, 0, 0, byte(w >> 8), byte(w), byte(h >> 8), byte(h)}
	hdr := r.fill(16)
	if hdr[0] != 0 || binary.BigEndian.Uint16(hdr[2:]) != 1 || binary.BigEndian.Uint32(hdr[12:]) != 0 {
		t.Fatalf("update header %v", hdr)
	}
	pix := r.fill(int(w) * int(h) * 4)
	// QEMU's format, little endian: blue, green, red, unused.
	bg := []byte{rfbBackground[2], rfbBackground[1], rfbBackground[0], 0}
	if !bytes.Equal(pix[:4], bg) {
		t.Fatalf("pixel (0,0) = %v, want the background %v", pix[:4], bg)
	}
	if !bytes.Contains(pix, []byte{0xff, 0xff, 0xff, 0}) {
		t.Fatal("no text drawn on the framebuffer")
	}

	// One connection per vncproxy worker: the port is gone once claimed.
	if _, _, _, _, err := v.VNCWebSocket(vnc); err == nil {
		t.Fatal("a second connection to the same vncproxy port was accepted")
	}
	// Stopping the VM ends the console and the worker succeeds.
	e.ok(t)(e.vm(t, "pve1", 100).Stop(e.ctx))
	if !r.ended() {
		t.Fatal("the console stayed open after the VM stopped")
	}
	_ = closer()
	task := proxmox.NewTask(proxmox.UPID(vnc.UPID), e.client)
	if err := task.Wait(e.ctx, 10*time.Millisecond, 10*time.Second); err != nil || !task.IsSuccessful {
		t.Fatalf("vncproxy task: %v %+v", err, task)
	}
}

func TestQemuVNCAuthFailure(t *testing.T) {
	e, user := consoleEnv(t)
	n, _ := user.Node(e.ctx, "pve1")
	v, err := n.VirtualMachine(e.ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	vnc, err := v.VNCProxy(e.ctx, &proxmox.VNCConfig{Websocket: true})
	if err != nil {
		t.Fatal(err)
	}
	if vnc.Password != "" {
		t.Fatalf("password returned without generate-password: %q", vnc.Password)
	}
	send, recv, errs, closer, err := v.VNCWebSocket(vnc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closer() }()
	r := &chanReader{t: t, recv: recv, errs: errs}
	r.fill(12)
	send <- []byte("RFB 003.008\n")
	r.fill(2)
	send <- []byte{2}
	send <- vncAuthResponse("wrong", r.fill(16))
	res := r.fill(8)
	reason := string(r.fill(int(binary.BigEndian.Uint32(res[4:]))))
	if binary.BigEndian.Uint32(res) != 1 || reason != "Authentication failed\x00" {
		t.Fatalf("security result %v %q", res, reason)
	}
}

func TestVNCWebSocketTicketChecks(t *testing.T) {
	e, user := consoleEnv(t)
	n, _ := user.Node(e.ctx, "pve1")
	v, _ := n.VirtualMachine(e.ctx, 100)
	vnc, err := v.VNCProxy(e.ctx, &proxmox.VNCConfig{Websocket: true})
	if err != nil {
		t.Fatal(err)
	}
	get := func(vmid int, ticket string) (int, string) {
		q := url.Values{"port": {fmt.Sprint(int(vnc.Port))}, "vncticket": {ticket}}
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/nodes/pve1/%s/%d/vncwebsocket?%s",
			e.srv.URL(), map[int]string{100: "qemu", 200: "lxc"}[vmid], vmid, q.Encode()), nil)
		id, secret := splitToken(e.sim.Options().Token)
		req.Header.Set("Authorization", "PVEAPIToken="+id+"="+secret)
		res, err := insecureHTTP().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, res.Status + " " + b.String()
	}
	// The ticket is bound to the user it was issued to and the VM's path.
	if code, body := get(100, vnc.Ticket); code != 500 || !strings.Contains(body, "permission denied - invalid PVEVNC ticket") {
		t.Fatalf("another user's ticket: %d %s", code, body)
	}
	if code, body := get(200, vnc.Ticket); code != 500 || !strings.Contains(body, "invalid PVEVNC ticket") {
		t.Fatalf("another guest's ticket: %d %s", code, body)
	}
	// The token's own ticket answers the port, as a string.
	own, err := e.vm(t, "pve1", 100).VNCProxy(e.ctx, &proxmox.VNCConfig{Websocket: true})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(100, own.Ticket); code != 200 || !strings.Contains(body, `{"data":{"port":"5900"}}`) {
		t.Fatalf("own ticket: %d %s", code, body)
	}
	// Expired tickets (older than 40 s) are refused.
	e.sim.mu.Lock()
	e.sim.now = func() time.Time { return time.Now().Add(41 * time.Second) }
	e.sim.mu.Unlock()
	if code, _ := get(100, own.Ticket); code != 500 {
		t.Fatalf("expired ticket answered %d", code)
	}
}

func TestLXCTermProxy(t *testing.T) {
	e, user := consoleEnv(t)
	n, _ := user.Node(e.ctx, "pve1")
	ct, err := n.Container(e.ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	term, err := ct.TermProxy(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if term.User != DefaultUser || int(term.Port) != 5900 || !strings.Contains(term.UPID, ":vncproxy:200:") {
		t.Fatalf("termproxy = %+v", term)
	}
	// TermWebSocket sends "user:ticket\n" and wants "OK". Its closer is not
	// called: it panics once the server has dropped the connection.
	send, recv, errs, _, err := ct.TermWebSocket(term)
	if err != nil {
		t.Fatal(err)
	}
	r := &chanReader{t: t, recv: recv, errs: errs}
	r.until("root@ct-1:~# ")
	send <- []byte("hostname\r")
	if out := r.until("root@ct-1:~# "); !strings.Contains(out, "hostname\r\nct-1\r\n") {
		t.Fatalf("hostname output %q", out)
	}
	send <- []byte("nope\r")
	if out := r.until("# "); !strings.Contains(out, "-bash: nope: command not found") {
		t.Fatalf("unknown command output %q", out)
	}
	e.ok(t)(func() (*proxmox.Task, error) {
		c, err := e.node(t, "pve1").Container(e.ctx, 200)
		if err != nil {
			return nil, err
		}
		return c.Stop(e.ctx)
	}())
	// go-proxmox's terminal reader stops silently on a dropped connection;
	// the worker ending shows the console closed.
	task := proxmox.NewTask(proxmox.UPID(term.UPID), e.client)
	if err := task.Wait(e.ctx, 10*time.Millisecond, 10*time.Second); err != nil || task.IsRunning {
		t.Fatalf("termproxy task after the container stopped: %v %+v", err, task)
	}
}

func TestTermProxyRefusesBadTicket(t *testing.T) {
	e, user := consoleEnv(t)
	n, _ := user.Node(e.ctx, "pve1")
	ct, _ := n.Container(e.ctx, 200)
	term, err := ct.TermProxy(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	term.Ticket = strings.Replace(term.Ticket, "::", "::x", 1)
	// vncwebsocket itself refuses the bad ticket before any upgrade.
	if _, _, _, _, err := ct.TermWebSocket(term); err == nil {
		t.Fatal("a forged ticket opened the terminal")
	}
}

// A worker nobody connects to gives up, as qemu-server's does after 10 s,
// and frees its port.
func TestConsoleWorkerTimesOutWithoutAConnection(t *testing.T) {
	e := newEnv(t, Options{ConsoleWait: 50 * time.Millisecond}, true)
	n := e.node(t, "pve1")
	e.ok(t)(n.NewVirtualMachine(e.ctx, 100, proxmox.VirtualMachineOption{Name: "name", Value: "web-1"}))
	vnc, err := e.vm(t, "pve1", 100).VNCProxy(e.ctx, &proxmox.VNCConfig{Websocket: true})
	if err != nil {
		t.Fatal(err)
	}
	e.fails(t, "connection timed out")(proxmox.NewTask(proxmox.UPID(vnc.UPID), e.client), nil)
	again, err := e.vm(t, "pve1", 100).VNCProxy(e.ctx, &proxmox.VNCConfig{Websocket: true})
	if err != nil || int(again.Port) != int(vnc.Port) {
		t.Fatalf("the port was not freed: %+v %v", again, err)
	}
}
