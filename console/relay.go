package console

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Reasons a console ends, as console_closed records them.
const (
	ReasonClientClosed   = "client_closed"
	ReasonGuestClosed    = "guest_closed"
	ReasonSessionEnded   = "session_ended"
	ReasonPermissionLost = "permission_lost"
	ReasonVMNotRunning   = "vm_not_running"
	ReasonIdle           = "idle_timeout"
	ReasonShutdown       = "shutdown"
)

// maxMessage bounds one browser message, like pveproxy's 128 KiB frames.
const maxMessage = 128 << 10

// Stats is what a relay moved: bytes from the browser to the guest (In)
// and back (Out).
type Stats struct {
	In, Out int64
}

// endError carries a reason through context.Cause.
type endError struct{ reason string }

func (e endError) Error() string { return "console ended: " + e.reason }

// End cancels a relay's context with a reason.
func End(cancel context.CancelCauseFunc, reason string) { cancel(endError{reason}) }

// Relay copies messages both ways, byte for byte, until one side closes,
// ctx is cancelled (End gives the reason) or nothing moves for idle. Both
// connections are closed when it returns.
func Relay(ctx context.Context, browser, guest *websocket.Conn, idle time.Duration) (Stats, string) {
	browser.SetReadLimit(maxMessage)
	var in, out, last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan string, 2)
	pump := func(from, to *websocket.Conn, n *atomic.Int64, reason string, forceBinary bool) {
		for {
			typ, msg, err := from.ReadMessage()
			if err != nil {
				done <- reason
				return
			}
			if forceBinary {
				typ = websocket.BinaryMessage
			}
			if err := to.WriteMessage(typ, msg); err != nil {
				done <- reason
				return
			}
			n.Add(int64(len(msg)))
			last.Store(time.Now().UnixNano())
		}
	}
	go pump(browser, guest, &in, ReasonClientClosed, false)
	go pump(guest, browser, &out, ReasonGuestClosed, true)

	tick := time.NewTicker(min(idle/4+time.Millisecond, time.Second))
	defer tick.Stop()
	reason := ""
	for reason == "" {
		select {
		case reason = <-done:
		case <-ctx.Done():
			var e endError
			if errors.As(context.Cause(ctx), &e) {
				reason = e.reason
			} else {
				reason = ReasonShutdown
			}
		case <-tick.C:
			if time.Since(time.Unix(0, last.Load())) >= idle {
				reason = ReasonIdle
			}
		}
	}
	deadline := time.Now().Add(time.Second)
	_ = browser.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeCode(reason), reason), deadline)
	_ = browser.Close()
	_ = guest.Close()
	return Stats{In: in.Load(), Out: out.Load()}, reason
}

// closeCode tells the browser why: 1000 when either side simply closed,
// 1008 (policy) when AccountDB ended the console, 1001 on shutdown.
func closeCode(reason string) int {
	switch reason {
	case ReasonClientClosed, ReasonGuestClosed:
		return websocket.CloseNormalClosure
	case ReasonShutdown:
		return websocket.CloseGoingAway
	}
	return websocket.ClosePolicyViolation
}
