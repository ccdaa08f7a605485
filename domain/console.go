package domain

import "github.com/google/uuid"

// StreamConsole is a console session's stream: "console-<console id>" in
// the VM's tenant, holding console_opened and, when it ends,
// console_closed. Consoles have a stream of their own so that opening one
// does not move the VM's stream version (If-Match on the VM stays valid).
const StreamConsole = "console"

// Console protocols: noVNC's RFB for QEMU VMs, Proxmox's terminal protocol
// (xterm.js) for containers.
const (
	ConsoleVNC      = "vnc"
	ConsoleTerminal = "terminal"
)

// Console events. Who opened the console and from where are the event's
// actor and request metadata; no ticket, password or keystroke is recorded.
type (
	ConsoleOpened struct {
		VMID     uuid.UUID `json:"vm_id"`
		Protocol string    `json:"protocol"`
	}
	ConsoleClosed struct {
		VMID       uuid.UUID `json:"vm_id"`
		Protocol   string    `json:"protocol"`
		DurationMS int64     `json:"duration_ms"`
		// BytesIn went from the browser to the guest, BytesOut back.
		BytesIn  int64 `json:"bytes_in"`
		BytesOut int64 `json:"bytes_out"`
		// Reason: client_closed, guest_closed, session_ended,
		// permission_lost, vm_not_running, idle_timeout, shutdown, error.
		Reason string `json:"reason"`
	}
)

func (ConsoleOpened) EventType() string { return "console_opened" }
func (ConsoleClosed) EventType() string { return "console_closed" }

var consoleEvents = []func() Event{
	func() Event { return &ConsoleOpened{} },
	func() Event { return &ConsoleClosed{} },
}
