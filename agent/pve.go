package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/luthermonson/go-proxmox"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// Guest kinds, as PVE names them in /cluster/resources.
const (
	kindQEMU = "qemu"
	kindLXC  = "lxc"
)

// pve is the go-proxmox client of one cluster and the few calls the agent
// builds on it.
type pve struct {
	id      uuid.UUID
	name    string
	c       *proxmox.Client
	pollMax time.Duration
	index   *guestIndex // its guests as last known (guestindex.go)
	nodes   nodeMemory  // its nodes' free memory as placement last read it (placement.go)
}

// guest is one row of /cluster/resources?type=vm.
type guest struct {
	Kind     string
	VMID     int
	Node     string
	Name     string
	Status   string
	Tags     []string
	Template bool
	// Uptime is how long the guest has been running, as Proxmox lists it
	// (0 when stopped).
	Uptime time.Duration
	// Live is its power state as status() reads it, when locate just read
	// it to confirm an index hit ("" otherwise).
	Live string
}

func (g guest) hasTag(tag string) bool {
	for _, t := range g.Tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

// accountDBVM is the AccountDB VM id in the guest's tags, if any.
func (g guest) accountDBVM() (uuid.UUID, bool) {
	for _, t := range g.Tags {
		if id, ok := protocol.ParseVMTag(t); ok {
			return id, true
		}
	}
	return uuid.Nil, false
}

func (g guest) tenant() uuid.UUID {
	for _, t := range g.Tags {
		if id, ok := protocol.ParseTenantTag(t); ok {
			return id
		}
	}
	return uuid.Nil
}

func (g guest) path() string { return fmt.Sprintf("/nodes/%s/%s/%d", g.Node, g.Kind, g.VMID) }

// guests lists every guest of the cluster, templates included, and
// refreshes p.index with the listing.
func (p *pve) guests(ctx context.Context) ([]guest, error) {
	since := p.index.beginListing()
	all, err := p.listResources(ctx)
	if err != nil {
		p.index.abortListing(since)
		return nil, err
	}
	p.index.applyListing(since, all)
	return all, nil
}

// listResources is GET /cluster/resources?type=vm: every guest.
func (p *pve) listResources(ctx context.Context) ([]guest, error) {
	rs, err := (&proxmox.Cluster{}).New(p.c).Resources(ctx, "vm")
	if err != nil {
		return nil, fmt.Errorf("list guests: %w", err)
	}
	out := make([]guest, 0, len(rs))
	for _, r := range rs {
		if r == nil || (r.Type != kindQEMU && r.Type != kindLXC) {
			continue
		}
		out = append(out, guest{
			Kind: r.Type, VMID: int(r.VMID), Node: r.Node, Name: r.Name, Status: r.Status,
			Tags: protocol.SplitTags(r.Tags), Template: r.Template == 1, Uptime: time.Duration(r.Uptime) * time.Second,
		})
	}
	return out, nil
}

// config reads a guest's configuration as PVE returns it.
func (p *pve) config(ctx context.Context, g guest) (map[string]any, error) {
	var cfg map[string]any
	if err := p.c.Get(ctx, g.path()+"/config", &cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// status reads a guest's power state (running, stopped; paused for a
// suspended QEMU guest).
func (p *pve) status(ctx context.Context, g guest) (string, error) {
	var st struct {
		Status    string `json:"status"`
		QMPStatus string `json:"qmpstatus"`
	}
	if err := p.c.Get(ctx, g.path()+"/status/current", &st); err != nil {
		return "", err
	}
	if st.QMPStatus == "paused" {
		return "paused", nil
	}
	return st.Status, nil
}

// confirm reads g's status and reports it ("running", "stopped",
// "paused") if g still carries tag, "" if it does not or is gone.
func (p *pve) confirm(ctx context.Context, g guest, tag string) (string, error) {
	var st struct {
		Status    string `json:"status"`
		QMPStatus string `json:"qmpstatus"`
		Tags      string `json:"tags"`
	}
	if err := p.c.Get(ctx, g.path()+"/status/current", &st); err != nil {
		if notFound(err) {
			return "", nil
		}
		return "", err
	}
	g.Tags = protocol.SplitTags(st.Tags)
	if !g.hasTag(tag) {
		return "", nil
	}
	if st.QMPStatus == "paused" {
		return "paused", nil
	}
	return st.Status, nil
}

// snapshots lists the names of a guest's snapshots.
func (p *pve) snapshots(ctx context.Context, g guest) ([]string, error) {
	var list []struct {
		Name string `json:"name"`
	}
	if err := p.c.Get(ctx, g.path()+"/snapshot", &list); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s.Name != "current" {
			out = append(out, s.Name)
		}
	}
	return out, nil
}

// node is a go-proxmox node handle (no request made).
func (p *pve) node(name string) *proxmox.Node { return (&proxmox.Node{}).New(p.c, name) }

// qemu is a go-proxmox VM handle (no request made).
func (p *pve) qemu(g guest) *proxmox.VirtualMachine {
	vm := &proxmox.VirtualMachine{}
	vm.New(p.c, g.Node, g.VMID)
	return vm
}

// lxc is a go-proxmox container handle; go-proxmox only builds one by
// reading the container's status and config.
func (p *pve) lxc(ctx context.Context, g guest) (*proxmox.Container, error) {
	return p.node(g.Node).Container(ctx, g.VMID)
}

// wait polls a task until it ends; a task whose exit status is not OK is a
// *taskError carrying PVE's message. It polls itself, rather than with
// go-proxmox's Task.Wait, to honour ctx while sleeping, to start polling
// fast (most tasks are short) and to ride out a few failed status polls.
func (p *pve) wait(ctx context.Context, t *proxmox.Task) error {
	if t == nil || t.UPID == "" {
		return nil
	}
	interval := min(50*time.Millisecond, p.pollMax)
	failures := 0
	for {
		err := t.Ping(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			if !transient(err) || failures > 10 {
				return fmt.Errorf("task %s status: %w", t.UPID, err)
			}
		case t.IsCompleted:
			if t.IsSuccessful || t.ExitStatus == "OK" {
				return nil
			}
			return &taskError{UPID: string(t.UPID), Exit: t.ExitStatus}
		}
		if !sleep(ctx, interval) {
			return ctx.Err()
		}
		interval = min(interval*2, p.pollMax)
	}
}

// task starts a task on g, with ct when it is a container and with vm when
// it is a QEMU guest, and waits for it; it returns the task's UPID.
func (p *pve) task(ctx context.Context, g guest, ct func(*proxmox.Container) (*proxmox.Task, error), vm func(*proxmox.VirtualMachine) (*proxmox.Task, error)) (string, error) {
	var (
		t   *proxmox.Task
		err error
	)
	if g.Kind == kindLXC {
		var c *proxmox.Container
		if c, err = p.lxc(ctx, g); err == nil {
			t, err = ct(c)
		}
	} else {
		t, err = vm(p.qemu(g))
	}
	if err != nil || t == nil {
		return "", err
	}
	return string(t.UPID), p.wait(ctx, t)
}

// taskError is a PVE task that ended with an exit status other than OK.
type taskError struct {
	UPID string
	Exit string
}

func (e *taskError) Error() string { return e.Exit }

// statusError is an HTTP answer go-proxmox would misread (a 503 with a
// JSON body becomes a silent empty result, a 502 from a proxy a JSON
// error): the transport turns it into an error first.
type statusError struct {
	Code   int
	Status string
}

func (e *statusError) Error() string { return e.Status }

// pveproxy's own statuses for a node it cannot reach (down, partitioned):
// 595 "No route to host" / "Connection refused", 596 "Connection timed out".
const (
	statusNodeUnreachable = 595
	statusNodeTimeout     = 596
)

// statusTransport surfaces gateway and throttling statuses, and pveproxy's
// for an unreachable node, as statusError.
type statusTransport struct{ base http.RoundTripper }

func (t statusTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch res.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests,
		statusNodeUnreachable, statusNodeTimeout:
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		_ = res.Body.Close()
		return nil, &statusError{Code: res.StatusCode, Status: res.Status}
	}
	return res, nil
}

// wrapHTTPClient returns a copy of hc whose transport reports gateway
// errors as statusError.
func wrapHTTPClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = defaultHTTPClient("")
	}
	out := *hc
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = statusTransport{base: base}
	return &out
}

// defaultHTTPClient verifies certificates against the system's CAs, or,
// for a cluster registered with a fingerprint (PVE's self-signed
// certificate), accepts exactly the certificate whose SHA-256 it is.
func defaultHTTPClient(fingerprint string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Operations run concurrently against one Proxmox API: keep enough idle
	// connections that they do not pay a TLS handshake each (Go's default
	// keeps two per host).
	tr.MaxIdleConnsPerHost = 32
	tr.TLSClientConfig = pinnedTLS(fingerprint)
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// errCertificateNotPinned is a handshake with a certificate other than the
// pinned one.
var errCertificateNotPinned = errors.New("the server's certificate does not have the registered tls_fingerprint")

// pinnedTLS is the TLS configuration for a cluster: the system's
// verification, or, with a fingerprint, the leaf certificate's SHA-256
// compared with it in place of chain and name checks (which a self-signed
// certificate cannot pass).
func pinnedTLS(fingerprint string) *tls.Config {
	if fingerprint == "" {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, //nolint:gosec // replaced by the pin below, checked on every handshake
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errCertificateNotPinned
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if domain.FormatFingerprint(sum[:]) != fingerprint {
				return errCertificateNotPinned
			}
			return nil
		},
	}
}

// transient reports whether an operation that failed with err may succeed
// if tried again: connection errors, 5xx answers other than PVE's known
// permanent failures, and lock contention ("got timeout", "locked"), also
// as a task's exit status.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if isLockMessage(err.Error()) {
		return true
	}
	var te *taskError
	if errors.As(err, &te) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return true
	}
	if errors.Is(err, proxmox.ErrNotAuthorized) {
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		var ua x509.UnknownAuthorityError
		var hn x509.HostnameError
		var cv *tls.CertificateVerificationError
		if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &cv) {
			return false
		}
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	code, text := findStatus(err.Error())
	return code >= 500 && code != http.StatusNotImplemented && !permanentMessage(text)
}

func isLockMessage(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "got timeout") || strings.Contains(m, "locked")
}

// permanentWording is how PVE phrases failures that another attempt would
// only repeat.
var permanentWording = []string{
	"does not exist", "already exists", "already running", "not running", "is running",
	"insufficient free space", "cannot allocate memory", "exited with code", "startup for container",
	"not supported", "no such", "shrinking", "protection mode", "hostname lookup", "you can't",
	"not allowed", "permission", "invalid", "unable to", "destroy failed", "start failed", "clone failed",
	"no options specified", "reserved name", "parameter verification",
}

func permanentMessage(text string) bool {
	t := strings.ToLower(text)
	for _, w := range permanentWording {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// capacityError reports a failure caused by a node running out of memory
// or storage, which another node may not have.
func capacityError(err error) bool {
	if err == nil {
		return false
	}
	t := strings.ToLower(err.Error())
	for _, w := range []string{"insufficient free space", "cannot allocate memory", "exited with code", "startup for container", "no space left"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// notFound reports PVE's answer for a guest that is not there.
func notFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "does not exist") || errors.Is(err, proxmox.ErrNotFound))
}

// splitStatus splits go-proxmox's "500 message" error text.
func splitStatus(msg string) (int, string) {
	if len(msg) >= 4 && msg[3] == ' ' {
		if code, err := strconv.Atoi(msg[:3]); err == nil && code >= 100 && code <= 599 {
			return code, msg[4:]
		}
	}
	return 0, msg
}

// findStatus finds go-proxmox's "NNN message" in an error text, at its
// start or after the ": " of a wrapping.
func findStatus(msg string) (int, string) {
	for i := 0; i < len(msg); i++ {
		if i > 0 && (i < 2 || msg[i-2:i] != ": ") {
			continue
		}
		if code, text := splitStatus(msg[i:]); code >= 400 {
			return code, strings.TrimSpace(text)
		}
	}
	return 0, msg
}

// pveMessage is the text of err as PVE phrased it, for a result's Error.
func pveMessage(err error) string {
	var te *taskError
	if errors.As(err, &te) {
		return te.Exit
	}
	if code, text := findStatus(err.Error()); code > 0 {
		return text
	}
	return err.Error()
}
