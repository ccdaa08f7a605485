package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/console"
	"github.com/accountdb/accountdb/domain"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// consoles is what the console routes share: tickets, the per-user and
// per-tenant caps (slots), the per-VM cap (vmSlots: keyed by the VM, its
// tenant cap the same as slots'), and an open console's idle timeout and
// check interval.
type consoles struct {
	tickets        *console.Tickets // nil without a secrets key: 503
	slots, vmSlots *slots
	idle, check    time.Duration
	drain          *ConsoleDrain
}

func newConsoles(d *V1, lim Limits) *consoles {
	c := &consoles{slots: newSlots("consoles", "consoles", lim.ConsolesPerUser, lim.ConsolesPerTenant, d.Slots),
		vmSlots: newSlots("vm_consoles", "consoles", lim.ConsolesPerVM, lim.ConsolesPerTenant, d.Slots),
		idle:    lim.ConsoleIdleTimeout, check: lim.ConsoleCheckInterval}
	c.vmSlots.userKey = "VM"
	if c.drain = d.ConsoleDrain; c.drain == nil {
		c.drain = NewConsoleDrain()
	}
	if d.Vault != nil {
		c.tickets = &console.Tickets{Pool: d.Pool, Vault: d.Vault}
	}
	return c
}

// acquire takes a console slot of p's user and tenant and one of vm, or
// answers 429 and reports false.
func (c *consoles) acquire(w http.ResponseWriter, r *http.Request, p *Principal, vm uuid.UUID) (release func(), ok bool) {
	releaseUser, ok := c.slots.acquire(w, r, p)
	if !ok {
		return nil, false
	}
	releaseVM, ok := c.vmSlots.acquireFor(w, r, vm, p.TenantID)
	if !ok {
		releaseUser()
		return nil, false
	}
	return func() { releaseVM(); releaseUser() }, true
}

type consoleResponse struct {
	Ticket    string    `json:"ticket"`
	URL       string    `json:"url"`
	Protocol  string    `json:"protocol"`
	Password  string    `json:"password,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// runningVM loads a VM of tenant that a console may open on: another
// tenant's or a deleted VM is a 404, one that is not running a 422.
func (srv *server) runningVM(ctx context.Context, tenant, id uuid.UUID) (*domain.VM, error) {
	v, err := srv.commands.LoadVM(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if !v.Exists() || v.Status == domain.VMDeleted {
		return nil, domain.ErrNotFound
	}
	if v.Status != domain.VMRunning || v.Pending != "" {
		return nil, errConsoleNotRunning
	}
	return v, nil
}

var errConsoleNotRunning = errors.New("console: the VM is not running")

// openConsole asks Proxmox for the console and answers a single-use
// ticket for its WebSocket; for a VM, Proxmox's VNC password too.
func (srv *server) openConsole(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	vid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	if srv.consoles.tickets == nil {
		WriteProblem(w, r, Unavailable())
		return
	}
	v, err := srv.runningVM(r.Context(), p.TenantID, vid)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	// Checked here so the client hears of the caps before Proxmox is
	// asked; the socket takes the slots.
	release, ok := srv.consoles.acquire(w, r, p, vid)
	if !ok {
		return
	}
	release()
	cl, err := srv.commands.ConsoleCluster(r.Context(), v.ClusterID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	target := console.Target{Cluster: cl, Node: v.Node, Kind: v.Kind, VMID: v.VMID}
	grant, err := console.Open(r.Context(), target)
	if err != nil {
		loggerFrom(r).Error("console: proxmox", "request_id", RequestID(r.Context()), "vm_id", vid, "error", err)
		WriteProblem(w, r, Unavailable())
		return
	}
	// The ticket is bound to the credential the request came with: its
	// session, or its API token (re-checked as such by ConsoleAccess).
	credential := p.SessionID
	if p.TokenID != uuid.Nil {
		credential = p.TokenID
	}
	t := console.Ticket{ConsoleID: uuid.Must(uuid.NewV7()), TenantID: p.TenantID, UserID: p.UserID, SessionID: credential,
		VMID: vid, ClusterID: v.ClusterID, ClientIP: ClientIP(r).String(), Protocol: console.Protocol(v.Kind),
		Node: v.Node, Kind: v.Kind, VMIDNumber: v.VMID, Grant: grant}
	str, expires, err := srv.consoles.tickets.Issue(r.Context(), t)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, consoleResponse{Ticket: str, URL: "/v1/consoles/" + str, Protocol: t.Protocol,
		Password: grant.Password, ExpiresAt: expires})
}

var consoleUpgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	// noVNC asks for "binary"; a client asking for nothing gets nothing.
	Subprotocols: []string{"binary"},
	// The ticket, bound to the client's address and used once, is the
	// credential: no cookie rides along, so another origin gains nothing.
	CheckOrigin: func(*http.Request) bool { return true },
}

// consoleSocket redeems a ticket and relays the browser's WebSocket to
// Proxmox's until either side closes, the session ends, the permission
// or the VM's running state is lost, or the console idles.
func (srv *server) consoleSocket(w http.ResponseWriter, r *http.Request) {
	if srv.consoles.tickets == nil {
		WriteProblem(w, r, Unavailable())
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		WriteProblem(w, r, BadRequest("a WebSocket upgrade is required", nil))
		return
	}
	t, err := srv.consoles.tickets.Redeem(r.Context(), chi.URLParam(r, "ticket"), ClientIP(r).String())
	if errors.Is(err, console.ErrTicket) {
		WriteProblem(w, r, Unauthenticated("the console ticket is invalid, used or expired"))
		return
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	p := &Principal{UserID: t.UserID, TenantID: t.TenantID, SessionID: t.SessionID}
	if reason := srv.consoleAllowed(r.Context(), p, t.VMID); reason != "" {
		WriteError(w, r, consoleRefusal(reason))
		return
	}
	release, ok := srv.consoles.acquire(w, r, p, t.VMID)
	if !ok {
		return
	}
	defer release()
	cl, err := srv.commands.ConsoleCluster(r.Context(), t.ClusterID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	target := console.Target{Cluster: cl, Node: t.Node, Kind: t.Kind, VMID: t.VMIDNumber}
	guest, err := console.Dial(r.Context(), target, t.Grant)
	if err != nil {
		loggerFrom(r).Error("console: proxmox", "request_id", RequestID(r.Context()), "vm_id", t.VMID, "error", err)
		WriteProblem(w, r, Unavailable())
		return
	}
	base, done, ok := srv.consoles.drain.enter()
	if !ok {
		_ = guest.Close()
		WriteProblem(w, r, Unavailable())
		return
	}
	defer done()
	browser, err := consoleUpgrader.Upgrade(w, r, nil)
	if err != nil {
		_ = guest.Close()
		return
	}
	srv.relayConsole(base, r, p, t, browser, guest)
}

// relayConsole relays until the console ends; base ends it at the process's
// drain (reason shutdown).
func (srv *server) relayConsole(base context.Context, r *http.Request, p *Principal, t console.Ticket, browser, guest *websocket.Conn) {
	a := actorOf(r)
	a.UserID, a.TenantID, a.SessionID = p.UserID, p.TenantID, p.SessionID
	if p.TokenID != uuid.Nil {
		a.SessionID, a.Metadata.APITokenID = uuid.Nil, p.TokenID.String()
	}
	log := loggerFrom(r)
	if err := srv.commands.RecordConsoleOpened(r.Context(), a, t.TenantID, t.ConsoleID,
		domain.ConsoleOpened{VMID: t.VMID, Protocol: t.Protocol}); err != nil {
		log.Error("console: recording console_opened", "console_id", t.ConsoleID, "error", err)
	}
	opened := time.Now()
	ctx, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	go srv.watchConsole(ctx, cancel, p, t.VMID)
	stats, reason := console.Relay(ctx, browser, guest, srv.consoles.idle)
	cancel(nil)
	closed := domain.ConsoleClosed{VMID: t.VMID, Protocol: t.Protocol, DurationMS: time.Since(opened).Milliseconds(),
		BytesIn: stats.In, BytesOut: stats.Out, Reason: reason}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer rcancel()
	if err := srv.commands.RecordConsoleClosed(rctx, a, t.TenantID, t.ConsoleID, closed); err != nil {
		log.Error("console: recording console_closed", "console_id", t.ConsoleID, "error", err)
	}
}

// watchConsole re-checks an open console every interval and ends it once
// it is no longer allowed.
func (srv *server) watchConsole(ctx context.Context, cancel context.CancelCauseFunc, p *Principal, vm uuid.UUID) {
	tick := time.NewTicker(srv.consoles.check)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if reason := srv.consoleAllowed(ctx, p, vm); reason != "" {
				console.End(cancel, reason)
				return
			}
		}
	}
}

// consoleAllowed is "" while the session or API token p's console was
// opened with (p.SessionID) is good, allows vm:console now and the VM
// runs; otherwise the reason the console must end. p's permissions and
// token are refreshed. A failed check (the database away) does not end a
// console.
func (srv *server) consoleAllowed(ctx context.Context, p *Principal, vm uuid.UUID) string {
	access, err := srv.commands.ConsoleAccess(ctx, p.TenantID, p.UserID, p.SessionID)
	if err != nil {
		return ""
	}
	if !access.Open {
		return console.ReasonSessionEnded
	}
	p.Permissions, p.TokenID = access.Permissions, access.TokenID
	if !p.Can(auth.PermVMConsole) {
		return console.ReasonPermissionLost
	}
	if _, err := srv.runningVM(ctx, p.TenantID, vm); errors.Is(err, errConsoleNotRunning) || errors.Is(err, domain.ErrNotFound) {
		return console.ReasonVMNotRunning
	}
	return ""
}

// consoleRefusal is the answer to a socket whose console may not open.
func consoleRefusal(reason string) error {
	switch reason {
	case console.ReasonSessionEnded:
		return errConsoleSession
	case console.ReasonPermissionLost:
		return errConsolePermission
	}
	return errConsoleNotRunning
}

var (
	errConsoleSession    = errors.New("console: the session has ended")
	errConsolePermission = errors.New("console: the vm:console permission is required")
)
