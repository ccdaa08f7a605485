package acceptance_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// seedEvents appends n events of about 4 KiB each to one stream of tenant.
// An export of 1500 is more than the socket buffers hold: up to 4 MiB on
// the server's side (net.ipv4.tcp_wmem), which loopback's large segments
// let it reach.
func seedEvents(t *testing.T, s *stacktest.Stack, tenant uuid.UUID, n int) {
	t.Helper()
	st, err := eventlog.NewStreamID("vm", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 4000)
	for v := 0; v < n; v += 250 {
		var evs []eventstore.NewEvent
		for i := v; i < min(n, v+250); i++ {
			evs = append(evs, eventstore.NewEvent{Type: "vm_renamed", Data: map[string]any{"name": "vm", "n": i, "pad": pad}})
		}
		if _, err := s.Store.Append(context.Background(), eventstore.Append{Stream: st, TenantID: tenant,
			Expected: eventstore.Exactly(int64(v)), Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
}

// rawRequest is a request sent by hand on its own connection, whose receive
// buffer is tiny: once the server has filled it and its own send buffer,
// its writes block until the test reads.
type rawRequest struct {
	conn net.Conn
	br   *bufio.Reader
	req  *http.Request
	resp *http.Response // once read
}

func sendRaw(t *testing.T, base, head string) *rawRequest {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, base, nil)
	return &rawRequest{conn: conn, br: bufio.NewReaderSize(conn, 16), req: req}
}

// stalledExport starts GET /v1/audit as NDJSON and reads only the answer's
// head: the export has begun (it holds its slot) and then stalls.
func stalledExport(t *testing.T, s *stacktest.Stack, token string) *rawRequest {
	t.Helper()
	r := sendRaw(t, s.URL, "GET /v1/audit HTTP/1.1\r\nHost: accountdb\r\nAccept: application/x-ndjson\r\n"+
		"Authorization: Bearer "+token+"\r\n\r\n")
	_ = r.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(r.br, r.req)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %s", resp.Status)
	}
	r.resp = resp
	return r
}
