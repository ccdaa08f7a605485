package pvesim

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsMaxPayload is pveproxy's websocket_proxy limit: client frames above it
// end the connection, and what it relays back is chunked to it.
const wsMaxPayload = 128 * 1024

// wsTarget is vncwebsocket's answer: {"port": "<port>"} as JSON, or the
// spliced connection when the request is a WebSocket upgrade.
type wsTarget struct {
	sim  *Simulator
	node string
	port int
	user string
}

func (t *wsTarget) MarshalJSON() ([]byte, error) {
	return []byte(`{"port":"` + strconv.Itoa(t.port) + `"}`), nil
}

// serveUpgrade mirrors pveproxy: the subprotocol the client asked for is
// echoed, frames are binary, and when nothing listens on the port the
// connection is dropped without an answer (tcp_connect failed).
func (t *wsTarget) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	sess := t.sim.claimConsole(t.node, t.port)
	if sess == nil {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		http.Error(w, "connect failed", http.StatusBadGateway)
		return
	}
	up := websocket.Upgrader{
		Subprotocols:    websocket.Subprotocols(r),
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 16 << 10,
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		t.sim.mu.Lock()
		t.sim.endConsole(sess, "connection failed: "+err.Error())
		t.sim.mu.Unlock()
		return
	}
	conn.SetReadLimit(wsMaxPayload)
	stream := &wsStream{conn: conn}
	failure := ""
	if sess.terminal {
		failure = t.sim.serveTerminal(sess, stream)
	} else {
		failure = t.sim.serveRFB(sess, stream)
	}
	_ = stream.Close()
	t.sim.mu.Lock()
	t.sim.endConsole(sess, failure)
	t.sim.mu.Unlock()
}

// wsStream turns a WebSocket into the byte stream the console backends
// see on their TCP port: message boundaries carry no meaning.
type wsStream struct {
	conn   *websocket.Conn
	cur    io.Reader
	wmu    sync.Mutex
	closed sync.Once
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.cur == nil {
			_, r, err := s.conn.NextReader()
			if err != nil {
				return 0, io.EOF
			}
			s.cur = r
		}
		n, err := s.cur.Read(p)
		if err == io.EOF {
			s.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *wsStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), wsMaxPayload)
		if err := s.conn.WriteMessage(websocket.BinaryMessage, p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// Close drops the connection without a close frame, as pveproxy's
// client_do_disconnect does when the console behind it ends; safe to call
// twice and from another goroutine (a guest that stops ends its console).
func (s *wsStream) Close() error {
	s.closed.Do(func() { _ = s.conn.Close() })
	return nil
}

// watchGuest closes stream when the guest stops or disappears, as the
// console ends with the qemu or lxc-console process behind it.
func (s *Simulator) watchGuest(vmid int, stream io.Closer, done <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if state, _, ok := s.guestState(vmid); !ok || state == StatusStopped {
				_ = stream.Close()
				return
			}
		}
	}
}
