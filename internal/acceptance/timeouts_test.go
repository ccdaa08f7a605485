package acceptance_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// shortTimeouts are server timeouts a test can outlast.
var shortTimeouts = api.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}

// TestSlowClientsAreCutOff: a request whose body, or whose headers, never
// arrive is answered or closed once the server's read timeouts pass, not
// kept open (issue 21: a login without its body kept its connection for
// over a minute).
func TestSlowClientsAreCutOff(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{Limits: shortTimeouts})

	start := time.Now()
	login := sendRaw(t, s.URL, "POST /v1/auth/login HTTP/1.1\r\nHost: accountdb\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\n\r\n{\"email\":")
	_ = login.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(login.br, login.req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a login whose body never arrives: %s, want 400", resp.Status)
		}
		_, err = login.br.ReadByte() // then the connection is closed
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a login whose body never arrives: %v after %s, want the connection closed", err, time.Since(start))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a login whose body never arrives was kept %s", d)
	}

	start = time.Now()
	head := sendRaw(t, s.URL, "GET /healthz HTTP/1.1\r\nHost: accountdb\r\n")
	_ = head.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(head.br); err != nil {
		t.Fatalf("a request whose headers never end: %v after %s, want the connection closed", err, time.Since(start))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a request whose headers never end was kept %s", d)
	}
}

// TestLongResponsesOutlastTheServerTimeouts: an event stream and an export
// go on past the server's read and write timeouts, which they replace with
// deadlines of their own.
func TestLongResponsesOutlastTheServerTimeouts(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{Limits: shortTimeouts})
	tenant := s.Tenant(t, "long")
	seedEvents(t, s, tenant, 1500)
	// Signed in through the command layer: over HTTP, hashing the password
	// may take longer than the one-second write timeout on a busy machine.
	u := s.User(t, tenant, auth.RoleAuditor)
	tokens, err := s.Sys.Commands.Login(context.Background(), eventlog.Metadata{}, u.Email, u.Password)
	if err != nil {
		t.Fatal(err)
	}
	token := tokens.AccessToken

	// An event stream that sees an event appended after both timeouts.
	resp, cancel := openStream(t, s.URL, token)
	defer cancel()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %s", resp.Status)
	}
	time.Sleep(2500 * time.Millisecond)
	st, _ := eventlog.NewStreamID("vm", uuid.New())
	if _, err := s.Store.Append(context.Background(), eventstore.Append{Stream: st, TenantID: tenant,
		Expected: eventstore.NoStream(), Events: []eventstore.NewEvent{{Type: "vm_late_marker"}}}); err != nil {
		t.Fatal(err)
	}
	seen := make(chan error, 1)
	go func() {
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				seen <- err
				return
			}
			if strings.TrimSpace(line) == "event: vm_late_marker" {
				seen <- nil
				return
			}
		}
	}()
	select {
	case err := <-seen:
		if err != nil {
			t.Fatalf("the event stream ended before the event appended after the server timeouts: %v", err)
		}
	case <-time.After(45 * time.Second): // a hang guard for a loaded machine, not a timing bar
		t.Fatal("the event appended after the server timeouts never came")
	}

	// An export read slowly, for several times the timeouts, arrives whole.
	// The client's receive buffer is small, so the server's writes wait on
	// the reading once its own send buffer is full.
	ex := sendRaw(t, s.URL, "GET /v1/audit HTTP/1.1\r\nHost: accountdb\r\nAccept: application/x-ndjson\r\n"+
		"Authorization: Bearer "+token+"\r\n\r\n")
	_ = ex.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	exResp, err := http.ReadResponse(ex.br, ex.req)
	if err != nil || exResp.StatusCode != http.StatusOK {
		t.Fatalf("export: %v %v", exResp, err)
	}
	began, lines, buf := time.Now(), 0, make([]byte, 256<<10)
	for {
		n, err := io.ReadFull(exResp.Body, buf)
		lines += strings.Count(string(buf[:n]), "\n")
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) && n > 0 && buf[n-1] == '\n' {
			break
		}
		if err != nil {
			t.Fatalf("export read slowly: %v after %s and %d lines", err, time.Since(began), lines)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if lines < 1500 {
		t.Fatalf("export read slowly: %d lines, want at least 1500", lines)
	}
	if d := time.Since(began); d < 2*time.Second {
		t.Fatalf("the export was read in %s: not past the timeouts, the test proves nothing", d)
	}
}
