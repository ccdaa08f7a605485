package vm_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/shacrypt"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/ssh"
)

// syncBuffer collects logs and request bodies from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tapTransport copies every request the agent sends to Proxmox (URL and
// body) into a buffer.
type tapTransport struct {
	base http.RoundTripper
	tap  *syncBuffer
}

func (t tapTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = t.tap.Write([]byte(r.Method + " " + r.URL.String() + "\n"))
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		_, _ = t.tap.Write(append(b, '\n'))
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return t.base.RoundTrip(r)
}

// ciEnv is the whole system with its core's logs, its agent's logs and the
// agent's requests to Proxmox all kept, to be searched for secrets.
type ciEnv struct {
	*realEnv
	logs, requests *syncBuffer
}

func newCIEnv(t *testing.T) *ciEnv {
	logs, requests := &syncBuffer{}, &syncBuffer{}
	s := stacktest.Start(t, stacktest.Options{LogTo: logs})
	sim, err := pvesim.StartServer(pvesim.Options{}, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	res, err := s.Sys.Commands.RegisterCluster(context.Background(),
		commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}}, commands.Options{},
		commands.NewCluster{Name: "sim", APIURL: sim.URL(), TokenID: pvesim.DefaultTokenID, TokenSecret: pvesim.DefaultTokenSecret,
			TLSFingerprint: domain.CertificateFingerprint(sim.Certificate())})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Config{JS: s.AgentJetStream(t), Vault: s.Vault,
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Concurrency: 16, ReconcileInterval: 300 * time.Millisecond, TaskPollInterval: 20 * time.Millisecond,
		RetryBaseDelay: 20 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
		HTTPClient: func(fingerprint string) *http.Client {
			hc := agent.DefaultHTTPClient(fingerprint)
			hc.Transport = tapTransport{base: hc.Transport, tap: requests}
			return hc
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &ciEnv{realEnv: &realEnv{s: s, sim: sim, cluster: res.ID}, logs: logs, requests: requests}
}

// newSSHKey is a fresh ed25519 public key line.
func newSSHKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
}

// bareKey is line without its comment: VMs get keys without comments, which
// are personal data (docs/PRIVACY.md).
func bareKey(line string) string {
	f := strings.Fields(line)
	return f[0] + " " + f[1]
}

func fingerprintOf(t *testing.T, line string) string {
	t.Helper()
	k, err := domain.ParseSSHPublicKey(line)
	if err != nil {
		t.Fatal(err)
	}
	return k.Fingerprint
}

// addKey stores a key for the holder of token and answers its id.
func (en *env) addKey(t *testing.T, token, line string) string {
	t.Helper()
	var a accepted
	if r := en.s.Do(t, token, http.MethodPost, "/v1/users/me/ssh-keys", map[string]string{"name": "laptop", "public_key": line}, &a); r.StatusCode != http.StatusAccepted {
		t.Fatalf("add key: %d %s", r.StatusCode, r.Body)
	}
	return a.ID
}

// ciView is what GET /v1/vms/{id} shows of cloud-init.
type ciView struct {
	Status    string `json:"status"`
	VMID      int    `json:"vmid"`
	CloudInit *struct {
		User               string   `json:"user"`
		Hostname           string   `json:"hostname"`
		SSHKeyFingerprints []string `json:"ssh_key_fingerprints"`
	} `json:"cloud_init"`
	PendingChanges bool   `json:"pending_changes"`
	Pending        string `json:"pending_action"`
}

func (en *env) ciGet(t *testing.T, id string) ciView {
	t.Helper()
	var v ciView
	if r := en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+id, nil, &v); r.StatusCode != http.StatusOK {
		t.Fatalf("get: %d %s", r.StatusCode, r.Body)
	}
	return v
}

// eventCount is how many events the store holds.
func eventCount(t *testing.T, s *stacktest.Stack) int {
	t.Helper()
	return len(adminQueryText(t, s, `SELECT event_id::text FROM events`))
}

// adminQueryText runs q as the database's superuser and answers each row's
// first column.
func adminQueryText(t *testing.T, s *stacktest.Stack, q string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DB.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// busText is every message on ACCOUNTDB_EVENTS, concatenated.
func busText(t *testing.T, s *stacktest.Stack) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.JetStream(t).OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		m, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return b.String()
		}
		b.Write(m.Data())
		b.WriteString("\n")
	}
}

// TestCloudInitAtCreation: the guest's first boot sees the user, the
// caller's stored key and an inline key, the hostname, DNS and the
// password's hash; the clear password is nowhere: not in an event, on the
// bus, in a read model, in a log, nor in any request to Proxmox.
func TestCloudInitAtCreation(t *testing.T) {
	e := newCIEnv(t)
	en := e.tenant(t, roomyQuota)
	stored, inline := newSSHKey(t, "ada@laptop"), newSSHKey(t, "ada@desk")
	keyID := en.addKey(t, en.token, stored)
	const clear = "Tr0ub4dor&3-horse-battery"

	var a accepted
	r := en.s.Do(t, en.token, http.MethodPost, "/v1/vms", map[string]any{"name": "web-1", "kind": "qemu", "cores": 1, "memory_mb": 1024,
		"disk_gb": 10, "template": "debian-12", "cloud_init": map[string]any{"user": "ada", "ssh_key_ids": []string{keyID},
			"ssh_keys": []string{inline}, "password": clear, "hostname": "web-a", "nameservers": []string{"192.0.2.53"}, "search_domain": "example.net"}}, &a)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	en.waitStatus(t, a.ID, "running")
	v := en.ciGet(t, a.ID)
	want := []string{fingerprintOf(t, inline), fingerprintOf(t, stored)}
	if v.CloudInit == nil || v.CloudInit.User != "ada" || v.CloudInit.Hostname != "web-a" || !slices.Equal(v.CloudInit.SSHKeyFingerprints, want) || v.PendingChanges {
		t.Fatalf("GET shows %+v, want user ada, hostname web-a, fingerprints %v", v, want)
	}
	info, ok := e.sim.Simulator().CloudInit(v.VMID)
	if !ok || info.Booted == nil {
		t.Fatalf("guest %d booted without cloud-init: %+v", v.VMID, info)
	}
	b := info.Booted
	if b.User != "ada" || b.Hostname != "web-a" || len(b.SSHKeys) != 2 || !shacrypt.Verify(b.Password, clear) ||
		!slices.Equal(b.Nameservers, []string{"192.0.2.53"}) || b.FQDN != "web-a.example.net" {
		t.Fatalf("the guest's first boot saw %+v", b)
	}

	for what, text := range map[string]string{
		"the event store":         strings.Join(adminQueryText(t, en.s, `SELECT data::text || metadata::text FROM events`), "\n"),
		"the read models":         strings.Join(adminQueryText(t, en.s, `SELECT row_to_json(v)::text FROM vms v`), "\n"),
		"the bus":                 busText(t, en.s),
		"the logs":                e.logs.String(),
		"the requests to Proxmox": e.requests.String(),
	} {
		if text == "" {
			t.Fatalf("%s: nothing to search", what)
		}
		if strings.Contains(text, clear) {
			t.Errorf("the clear password is in %s", what)
		}
	}
	if !strings.Contains(e.requests.String(), `"cipassword":"$6$`) {
		t.Error("the agent did not send the password's SHA-512 crypt hash as cipassword")
	}
	servedWithoutHash(t, en, a.ID, b.Password)
}

// servedWithoutHash: the password's hash is in the event store, but history,
// audit and the live feed serve "[redacted]" in its place (SECURITY.md).
func servedWithoutHash(t *testing.T, en *env, vm, hash string) {
	t.Helper()
	if !strings.HasPrefix(hash, "$6$") {
		t.Fatalf("the guest's password %q is no SHA-512 crypt hash", hash)
	}
	if stored := strings.Join(adminQueryText(t, en.s, `SELECT data::text FROM events`), "\n"); !strings.Contains(stored, hash) {
		t.Fatal("the event store does not hold the hash the guest got")
	}
	var create json.RawMessage
	for _, ev := range en.history(t, vm) {
		if ev.Type == "vm_create_requested" {
			create = ev.Data
		}
	}
	var d struct {
		CloudInit struct {
			PasswordHash string `json:"password_hash"`
			User         string `json:"user"`
		} `json:"cloud_init"`
	}
	if err := json.Unmarshal(create, &d); err != nil || d.CloudInit.PasswordHash != domain.Redacted || d.CloudInit.User != "ada" {
		t.Fatalf("history's vm_create_requested: %s (%v)", create, err)
	}
	admin := en.s.Login(t, en.s.User(t, en.tenID, auth.RoleTenantAdmin)).AccessToken
	audit := en.s.Do(t, admin, http.MethodGet, "/v1/audit?type=vm_create_requested&limit=200", nil, nil)
	if audit.StatusCode != http.StatusOK || !strings.Contains(string(audit.Body), `"password_hash":"[redacted]"`) {
		t.Fatalf("audit: %d %s", audit.StatusCode, audit.Body)
	}
	live := subscribe(t, en.s.URL, admin, "?type=vm_create_requested", "0")
	ev := live.next(t, 15*time.Second)
	if !strings.Contains(ev.Data, `"password_hash":"[redacted]"`) {
		t.Fatalf("the live feed's vm_create_requested: %s", ev.Data)
	}
	for what, text := range map[string]string{"history": string(create), "audit": string(audit.Body), "the live feed": ev.Data} {
		if strings.Contains(text, hash) {
			t.Errorf("%s serves the password's hash", what)
		}
	}
}

// TestContainerFromOSTemplateGetsKeys: a container of an OS template
// (offered in GET /v1/templates) is created from it, not cloned, and starts
// with root's keys and the password's hash; the same settings with a CT
// template are refused (see TestCloudInitBadInput).
func TestContainerFromOSTemplateGetsKeys(t *testing.T) {
	e := newCIEnv(t)
	en := e.tenant(t, roomyQuota)
	var tpls struct {
		Items []struct{ Name, Kind, OS string }
	}
	stacktest.Eventually(t, 20*time.Second, "the OS template offered", func() bool {
		en.s.Do(t, en.token, http.MethodGet, "/v1/templates", nil, &tpls)
		return slices.ContainsFunc(tpls.Items, func(x struct{ Name, Kind, OS string }) bool {
			return x.Name == "debian-12-standard" && x.Kind == "lxc" && x.OS == "debian"
		})
	})
	key := newSSHKey(t, "root@ops")
	const clear = "a-container-root-password"
	var a accepted
	r := en.s.Do(t, en.token, http.MethodPost, "/v1/vms", map[string]any{"name": "db-1", "kind": "lxc", "cores": 1, "memory_mb": 512,
		"disk_gb": 6, "template": "debian-12-standard", "cloud_init": map[string]any{"ssh_keys": []string{key}, "password": clear}}, &a)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	en.waitStatus(t, a.ID, "running")
	v := en.ciGet(t, a.ID)
	info, ok := e.sim.Simulator().CloudInit(v.VMID)
	if !ok || info.Booted == nil {
		t.Fatalf("container %d: %+v", v.VMID, info)
	}
	if b := info.Booted; len(b.SSHKeys) != 1 || b.SSHKeys[0] != bareKey(key) || !shacrypt.Verify(b.Password, clear) || b.Hostname != "db-1" {
		t.Fatalf("the container started with %+v", b)
	}
	if strings.Contains(e.requests.String(), clear) || !strings.Contains(e.requests.String(), `"ostemplate":"local:vztmpl/debian-12-standard`) {
		t.Fatal("the agent did not create the container from the OS template with the password's hash only")
	}
}

// TestCloudInitBadInput: each bad setting is a 400 naming the field as the
// request spells it, and nothing is recorded.
func TestCloudInitBadInput(t *testing.T) {
	e := newCIEnv(t)
	en := e.tenant(t, roomyQuota)
	other := en.s.Login(t, en.s.User(t, en.tenID, auth.RoleVMAdmin)).AccessToken
	othersKey := en.addKey(t, other, newSSHKey(t, "bob@laptop"))
	rsa2048 := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7vbqajDhA7GBGRDBs0F+ZZn4vPHk1YXdTbWRFZ0hAkVpQ3kRL1yrgeP0tpYdtJ1oB/0cVhCgkMcFs7PxfQ2DQmn6xHr4yXzlMj2vGGMFV6zP0Pxmt5Ff5o+xyPqu14qTZcj5oRMuERxeO7Ei5jXU04dn1exzf/XYeRlydcvyd7p1HOVBx4zE8Jci98Rei6ucHN2UukfxaOtjfKhMuXDJDZMBg9Fm6sOeAG6tlIcYqe8QgURfWhN+6p/h2DTahFg2ixzkP2Oiq56NlqTqr51qeILsS7pgj/HXm6cgwS+DvWSs0Jz0+5PJUfs7RUDVVbl4GHqL7zK5RM+ANgBeXp6Sk1 x"
	base := func(ci map[string]any, kind string) map[string]any {
		return map[string]any{"name": "bad-" + uuid.NewString()[:6], "kind": kind, "cores": 1, "memory_mb": 512, "disk_gb": 4,
			"template": map[string]string{"qemu": "debian-12", "lxc": "debian-12-ct"}[kind], "cloud_init": ci}
	}
	before := eventCount(t, en.s)
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{base(map[string]any{"ssh_key_ids": []string{othersKey}}, "qemu"), "cloud_init.ssh_key_ids[0]"},
		{base(map[string]any{"ssh_key_ids": []string{"not-a-uuid"}}, "qemu"), "cloud_init.ssh_key_ids[0]"},
		{base(map[string]any{"ssh_keys": []string{newSSHKey(t, "ok"), rsa2048}}, "qemu"), "cloud_init.ssh_keys[1]"},
		{base(map[string]any{"password": "too-short"}, "qemu"), "cloud_init.password"},
		{base(map[string]any{"hostname": "Not_A_Label"}, "qemu"), "cloud_init.hostname"},
		{base(map[string]any{"user": "Root!"}, "qemu"), "cloud_init.user"},
		{base(map[string]any{"nameservers": []string{"dns.example"}}, "qemu"), "cloud_init.nameservers[0]"},
		{base(map[string]any{"search_domain": "bad domain"}, "qemu"), "cloud_init.search_domain"},
		{base(map[string]any{"ssh_keys": []string{newSSHKey(t, "ct")}}, "lxc"), "cloud_init.ssh_keys"},
		{base(map[string]any{"password": "long-enough-password"}, "lxc"), "cloud_init.password"},
		{base(map[string]any{"user": "ops"}, "lxc"), "cloud_init.user"},
		{base(map[string]any{"unknown": true}, "qemu"), "cloud_init.unknown"},
	} {
		var p struct {
			Code   string            `json:"code"`
			Errors map[string]string `json:"errors"`
		}
		r := en.s.Do(t, en.token, http.MethodPost, "/v1/vms", c.body, nil)
		_ = json.Unmarshal(r.Body, &p)
		if _, named := p.Errors[c.field]; r.StatusCode != http.StatusBadRequest || !named {
			t.Errorf("%v: %d %s, want 400 naming %s", c.body["cloud_init"], r.StatusCode, r.Body, c.field)
		}
	}
	if after := eventCount(t, en.s); after != before {
		t.Fatalf("%d events recorded by refused requests", after-before)
	}
}

// TestCloudInitChangeAndRebuild: PATCH writes new keys and DNS to Proxmox
// as pending changes, which the VM shows until a reboot; a rebuild then
// re-creates the guest from another template under the same vmid with the
// same settings, each step in the history.
func TestCloudInitChangeAndRebuild(t *testing.T) {
	e := newCIEnv(t)
	en := e.tenant(t, roomyQuota)
	first, second := newSSHKey(t, "ada@laptop"), newSSHKey(t, "ada@phone")
	var a accepted
	if r := en.s.Do(t, en.token, http.MethodPost, "/v1/vms", map[string]any{"name": "web-2", "kind": "qemu", "cores": 1, "memory_mb": 1024,
		"disk_gb": 10, "template": "debian-12", "cloud_init": map[string]any{"user": "ada", "ssh_keys": []string{first}}}, &a); r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	vmid := en.waitStatus(t, a.ID, "running").VMID
	sim := e.sim.Simulator()

	var mixed struct{ Errors map[string]string }
	r := en.s.Do(t, en.token, http.MethodPatch, "/v1/vms/"+a.ID, map[string]any{"cores": 2, "cloud_init": map[string]any{"user": "bob"}}, nil)
	if _ = json.Unmarshal(r.Body, &mixed); r.StatusCode != http.StatusBadRequest || mixed.Errors["cloud_init"] == "" {
		t.Fatalf("size and cloud_init at once: %d %s", r.StatusCode, r.Body)
	}
	en.do(t, http.MethodPatch, "/v1/vms/"+a.ID, map[string]any{"cloud_init": map[string]any{"ssh_keys": []string{second}, "nameservers": []string{"198.51.100.53"}}})
	stacktest.Eventually(t, 15*time.Second, "pending changes", func() bool { return en.ciGet(t, a.ID).PendingChanges })
	if v := en.ciGet(t, a.ID); !slices.Equal(v.CloudInit.SSHKeyFingerprints, []string{fingerprintOf(t, second)}) || v.CloudInit.User != "ada" {
		t.Fatalf("after PATCH: %+v", v.CloudInit)
	}
	if info, _ := sim.CloudInit(vmid); !slices.Contains(info.Pending, "sshkeys") || info.Booted.SSHKeys[0] != bareKey(first) {
		t.Fatalf("Proxmox: pending %v, the guest has %v", info.Pending, info.Booted.SSHKeys)
	}
	en.do(t, http.MethodPost, "/v1/vms/"+a.ID+"/actions/reboot", nil)
	stacktest.Eventually(t, 15*time.Second, "the reboot to clear pending changes", func() bool {
		v := en.ciGet(t, a.ID)
		return v.Status == "running" && !v.PendingChanges
	})
	if info, _ := sim.CloudInit(vmid); len(info.Pending) != 0 || !slices.Equal(info.Booted.SSHKeys, []string{bareKey(second)}) {
		t.Fatalf("after reboot: pending %v, the guest has %v", info.Pending, info.Booted.SSHKeys)
	}

	// An operator may power a VM, not destroy its disks: 403, and for
	// cloud-init changes (vm:config) too.
	operator := en.s.Login(t, en.s.User(t, en.tenID, auth.RoleOperator)).AccessToken
	if r := en.s.Do(t, operator, http.MethodPost, "/v1/vms/"+a.ID+"/actions/rebuild", map[string]any{}, nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("an operator's rebuild: %d %s", r.StatusCode, r.Body)
	}
	if r := en.s.Do(t, operator, http.MethodPatch, "/v1/vms/"+a.ID, map[string]any{"cloud_init": map[string]any{"user": "eve"}}, nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("an operator's cloud-init change: %d %s", r.StatusCode, r.Body)
	}
	var p struct{ Errors map[string]string }
	r = en.s.Do(t, en.token, http.MethodPost, "/v1/vms/"+a.ID+"/actions/rebuild", map[string]string{"template": "no-such"}, nil)
	if _ = json.Unmarshal(r.Body, &p); r.StatusCode != http.StatusBadRequest || p.Errors["template"] == "" {
		t.Fatalf("unknown template: %d %s", r.StatusCode, r.Body)
	}
	en.do(t, http.MethodPost, "/v1/vms/"+a.ID+"/actions/rebuild", map[string]string{"template": "ubuntu-24.04"})
	stacktest.Eventually(t, 20*time.Second, "the rebuild", func() bool {
		h := en.history(t, a.ID)
		return h[len(h)-1].Type == "vm_rebuilt"
	})
	stacktest.Eventually(t, 10*time.Second, "the read model to show the rebuild", func() bool { return en.ciGet(t, a.ID).Pending == "" })
	if v := en.ciGet(t, a.ID); v.Status != "running" || v.VMID != vmid {
		t.Fatalf("after the rebuild: %+v (vmid was %d)", v, vmid)
	}
	var types []string
	for _, ev := range en.history(t, a.ID) {
		types = append(types, ev.Type)
	}
	tail := types[len(types)-5:]
	if want := []string{"vm_rebuild_requested", "vm_rebuild_progressed", "vm_rebuild_progressed", "vm_rebuild_progressed", "vm_rebuilt"}; !slices.Equal(tail, want) {
		t.Fatalf("history ends %v, want %v", tail, want)
	}
	g, ok := sim.Guest(vmid)
	if !ok || g.Status != pvesim.StatusRunning || !strings.Contains(g.Config["tags"], a.ID) {
		t.Fatalf("vmid %d after the rebuild: %+v", vmid, g)
	}
	if info, _ := sim.CloudInit(vmid); info.Booted == nil || info.Booted.User != "ada" || !slices.Equal(info.Booted.SSHKeys, []string{bareKey(second)}) {
		t.Fatalf("the rebuilt guest booted with %+v", info.Booted)
	}
	var vv struct{ Template string }
	en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+a.ID, nil, &vv)
	if vv.Template != "ubuntu-24.04" {
		t.Fatalf("template %q after the rebuild", vv.Template)
	}

	// Deleted: nothing to rebuild (422); another tenant's VM is not found.
	en.do(t, http.MethodDelete, "/v1/vms/"+a.ID, nil)
	en.waitStatus(t, a.ID, "deleted")
	if r := en.s.Do(t, en.token, http.MethodPost, "/v1/vms/"+a.ID+"/actions/rebuild", map[string]any{}, nil); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("rebuild of a deleted VM: %d %s", r.StatusCode, r.Body)
	}
	stranger := e.tenant(t, roomyQuota)
	if r := en.s.Do(t, stranger.token, http.MethodPost, "/v1/vms/"+a.ID+"/actions/rebuild", map[string]any{}, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's rebuild: %d %s", r.StatusCode, r.Body)
	}
}
