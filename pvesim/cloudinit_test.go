package pvesim

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
	"golang.org/x/crypto/ssh"

	"github.com/accountdb/accountdb/internal/shacrypt"
)

func testSSHKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}

// cloneVM clones template 9000 (which has a cloud-init drive) to vmid.
func (e *env) cloneVM(t *testing.T, vmid int, name string) *proxmox.VirtualMachine {
	t.Helper()
	_, task, err := e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: vmid, Name: name})
	e.ok(t)(task, err)
	return e.vm(t, "pve1", vmid)
}

func (e *env) cloudInit(t *testing.T, vmid int) CloudInitInfo {
	t.Helper()
	info, ok := e.sim.CloudInit(vmid)
	if !ok {
		t.Fatalf("no guest %d", vmid)
	}
	return info
}

type pendingItem struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Pending string `json:"pending"`
	Delete  int    `json:"delete"`
}

func (e *env) pendingCloudInit(t *testing.T, vmid int) map[string]pendingItem {
	t.Helper()
	var items []pendingItem
	if err := e.client.Get(e.ctx, fmt.Sprintf("/nodes/pve1/qemu/%d/cloudinit", vmid), &items); err != nil {
		t.Fatal(err)
	}
	out := map[string]pendingItem{}
	for _, it := range items {
		out[it.Key] = it
	}
	return out
}

// The agent's path: clone, set the cloud-init keys before the first start,
// regenerate, start. The guest boots with exactly those settings.
func TestCloudInitOnCloneReachesTheGuest(t *testing.T) {
	e := newEnv(t, Options{}, true)
	vm := e.cloneVM(t, 120, "web-1")
	if ci := e.cloudInit(t, 120); ci.DriveKey != "ide2" || ci.Drive != nil || ci.Booted != nil {
		t.Fatalf("a clone's cloud-init drive starts empty: %+v", ci)
	}
	key1, key2 := testSSHKey(t, "alice@laptop"), testSSHKey(t, "alice@desk")
	hash := shacrypt.SHA512("correct horse battery")
	e.ok(t)(vm.Config(e.ctx,
		proxmox.VirtualMachineOption{Name: "ciuser", Value: "alice"},
		proxmox.VirtualMachineOption{Name: "cipassword", Value: hash},
		proxmox.VirtualMachineOption{Name: "sshkeys", Value: proxmox.EncodeSSHKeys(key1, key2)},
		proxmox.VirtualMachineOption{Name: "ipconfig0", Value: "ip=192.0.2.10/24,gw=192.0.2.1"},
		proxmox.VirtualMachineOption{Name: "nameserver", Value: "192.0.2.53 192.0.2.54"},
		proxmox.VirtualMachineOption{Name: "searchdomain", Value: "example.net"},
	))
	vm = e.vm(t, "pve1", 120)
	cfg := vm.VirtualMachineConfig
	if cfg.CIUser != "alice" || cfg.CIPassword != "**********" || cfg.SSHKeys != proxmox.EncodeSSHKeys(key1, key2) {
		t.Fatalf("config: ciuser %q cipassword %q sshkeys %q", cfg.CIUser, cfg.CIPassword, cfg.SSHKeys)
	}
	if g, _ := e.sim.Guest(120); g.Config["cipassword"] != hash {
		t.Fatalf("a hashed cipassword is stored as given, got %q", g.Config["cipassword"])
	}
	// Stopped: nothing is recorded as pending, the start regenerates anyway.
	if p := e.pendingCloudInit(t, 120); p["ciuser"].Value != "alice" || p["ciuser"].Pending != "" || p["cipassword"].Value != "**********" {
		t.Fatalf("GET cloudinit = %+v", p)
	}
	if ci := e.cloudInit(t, 120); !ci.Stale {
		t.Fatal("the drive should differ from the config before it is regenerated")
	}
	if err := e.client.Put(e.ctx, "/nodes/pve1/qemu/120/cloudinit", nil, nil); err != nil {
		t.Fatal(err)
	}
	ci := e.cloudInit(t, 120)
	if ci.Stale || ci.Drive == nil || ci.Drive.User != "alice" || ci.Booted != nil {
		t.Fatalf("after PUT cloudinit: %+v", ci)
	}
	e.ok(t)(vm.Start(e.ctx))
	b := e.cloudInit(t, 120).Booted
	if b == nil || b.User != "alice" || b.Password != hash || !slices.Equal(b.SSHKeys, []string{key1, key2}) ||
		b.Hostname != "web-1" || b.FQDN != "web-1.example.net" ||
		!slices.Equal(b.Nameservers, []string{"192.0.2.53", "192.0.2.54"}) || !slices.Equal(b.SearchDomains, []string{"example.net"}) {
		t.Fatalf("the guest saw %+v", b)
	}
	if nic := b.Interfaces[0]; nic.Name != "eth0" || nic.IPv4 != "192.0.2.10/24" || nic.Gateway4 != "192.0.2.1" || nic.MAC == "" {
		t.Fatalf("the guest's eth0: %+v", nic)
	}
	for _, want := range []string{"#cloud-config\nhostname: web-1\n", "user: alice\n", "password: " + hash + "\n", "  - " + key1 + "\n"} {
		if !strings.Contains(b.Files.UserData, want) {
			t.Errorf("user-data lacks %q:\n%s", want, b.Files.UserData)
		}
	}
	if !strings.Contains(b.Files.NetworkConfig, "address: '192.0.2.10'\n        netmask: '255.255.255.0'\n        gateway: '192.0.2.1'") ||
		!strings.HasPrefix(b.Files.MetaData, "instance-id: ") {
		t.Errorf("network-config:\n%s\nmeta-data: %s", b.Files.NetworkConfig, b.Files.MetaData)
	}
	var dump string
	if err := e.client.Get(e.ctx, "/nodes/pve1/qemu/120/cloudinit/dump?type=user", &dump); err != nil || dump != b.Files.UserData {
		t.Fatalf("dump = %q, %v", dump, err)
	}
}

// A start alone applies the config: qemu-server regenerates the drive at
// every start, so an agent that forgets PUT …/cloudinit still gets it right.
func TestStartRegeneratesTheDrive(t *testing.T) {
	e := newEnv(t, Options{}, false)
	vm := e.cloneVM(t, 121, "db-1")
	e.ok(t)(vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "ciuser", Value: "bob"}))
	e.ok(t)(vm.Start(e.ctx))
	if b := e.cloudInit(t, 121).Booted; b == nil || b.User != "bob" {
		t.Fatalf("booted = %+v", b)
	}
}

// Changes to a running VM are written to the config but reach the guest
// only through a regenerated drive and a boot: GET …/cloudinit shows them
// pending until then, as qemu-server's [special:cloudinit] section does.
func TestChangesToARunningVMArePending(t *testing.T) {
	e := newEnv(t, Options{}, false)
	vm := e.cloneVM(t, 122, "app-1")
	e.ok(t)(vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "ciuser", Value: "carol"}))
	e.ok(t)(vm.Start(e.ctx))

	if err := vm.ConfigSync(e.ctx,
		proxmox.VirtualMachineOption{Name: "ciuser", Value: "dave"},
		proxmox.VirtualMachineOption{Name: "nameserver", Value: "198.51.100.53"},
	); err != nil {
		t.Fatal(err)
	}
	p := e.pendingCloudInit(t, 122)
	if p["ciuser"].Value != "carol" || p["ciuser"].Pending != "dave" || p["nameserver"].Pending != "198.51.100.53" || p["nameserver"].Value != "" {
		t.Fatalf("GET cloudinit = %+v", p)
	}
	if ci := e.cloudInit(t, 122); !slices.Equal(ci.Pending, []string{"ciuser", "nameserver"}) || ci.Booted.User != "carol" {
		t.Fatalf("cloud-init = %+v", ci)
	}
	// Reverting a value to what the drive holds clears it from the record.
	// Deleting a key the drive never had clears it from the record.
	if err := vm.ConfigSync(e.ctx, proxmox.VirtualMachineOption{Name: "delete", Value: "nameserver"}); err != nil {
		t.Fatal(err)
	}
	if ci := e.cloudInit(t, 122); !slices.Equal(ci.Pending, []string{"ciuser"}) {
		t.Fatalf("after deleting the added key: %+v", ci.Pending)
	}

	if err := e.client.Put(e.ctx, "/nodes/pve1/qemu/122/cloudinit", nil, nil); err != nil {
		t.Fatal(err)
	}
	ci := e.cloudInit(t, 122)
	if len(ci.Pending) != 0 || ci.Drive.User != "dave" || ci.Booted.User != "carol" {
		t.Fatalf("regenerated while running: the guest has not re-read it yet: %+v", ci)
	}
	e.ok(t)(vm.Reset(e.ctx))
	if b := e.cloudInit(t, 122).Booted; b.User != "dave" {
		t.Fatalf("after reset the guest read the new drive: %+v", b)
	}
	if err := vm.ConfigSync(e.ctx, proxmox.VirtualMachineOption{Name: "ciuser", Value: "erin"}); err != nil {
		t.Fatal(err)
	}
	e.ok(t)(vm.Reset(e.ctx))
	if b := e.cloudInit(t, 122).Booted; b.User != "dave" {
		t.Fatalf("a reset does not regenerate the drive: %+v", b)
	}
	e.ok(t)(vm.Reboot(e.ctx))
	if b := e.cloudInit(t, 122).Booted; b.User != "erin" {
		t.Fatalf("an API reboot is stop+start and regenerates: %+v", b)
	}
}

func TestCloudInitParameters(t *testing.T) {
	e := newEnv(t, Options{}, false)
	vm := e.cloneVM(t, 123, "x")

	task, err := vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "cipassword", Value: "clear-text-password"})
	task = e.ok(t)(task, err)
	g, _ := e.sim.Guest(123)
	if !strings.HasPrefix(g.Config["cipassword"], "$5$") || !shacrypt.Verify(g.Config["cipassword"], "clear-text-password") {
		t.Fatalf("a clear-text cipassword is stored as encrypt_pw's $5$ hash, got %q", g.Config["cipassword"])
	}
	log, err := task.Log(e.ctx, 0, 50)
	if err != nil || !strings.Contains(strings.Join(logLines(log), "\n"), "-cipassword <hidden>") {
		t.Fatalf("task log %v, %v", log, err)
	}

	_, err = vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "sshkeys", Value: "ssh-ed25519 AAAA not-encoded"})
	wantErr(t, err, `"sshkeys":"invalid format - invalid urlencoded string: ssh-ed25519 AAAA not-encoded`)
	_, err = vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "sshkeys", Value: proxmox.EncodeSSHKeys("ssh-ed25519 bm90IGEga2V5")})
	wantErr(t, err, "SSH public key validation error")
	_, err = vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "ipconfig0", Value: "ip=300.0.0.1/24"})
	wantErr(t, err, "ipconfig0")
	_, err = vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "cicustom", Value: "user=local:snippets/u.yaml"})
	wantErr(t, err, "not implemented by pvesim")

	// qemu create stores cipassword as given and accepts a new cloud-init drive.
	e.ok(t)(e.node(t, "pve1").NewVirtualMachine(e.ctx, 130,
		proxmox.VirtualMachineOption{Name: "ide2", Value: "local-lvm:cloudinit"},
		proxmox.VirtualMachineOption{Name: "cipassword", Value: "given-at-create"},
		proxmox.VirtualMachineOption{Name: "net0", Value: "virtio,bridge=vmbr0"},
		proxmox.VirtualMachineOption{Name: "agent", Value: "1"},
	))
	g, _ = e.sim.Guest(130)
	if g.Config["ide2"] != "local-lvm:vm-130-cloudinit,media=cdrom" || g.Config["cipassword"] != "given-at-create" {
		t.Fatalf("created: %v", g.Config)
	}
}

func logLines(l proxmox.Log) []string {
	out := make([]string, 0, len(l))
	for _, line := range l {
		out = append(out, line)
	}
	return out
}
