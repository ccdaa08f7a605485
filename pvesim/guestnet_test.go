package pvesim

import (
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// The guest agent answers Proxmox's "QEMU guest agent is not running"
// until the guest has booted, then reports the address cloud-init gave.
func TestGuestAgentReportsAddressesAfterBoot(t *testing.T) {
	e := newEnv(t, Options{TimeScale: 20 * time.Millisecond, GuestBoot: 10}, false)
	vm := e.cloneVM(t, 140, "web-2")
	_, err := vm.AgentGetNetworkIFaces(e.ctx)
	wantErr(t, err, "VM 140 is not running")

	e.ok(t)(vm.Config(e.ctx,
		proxmox.VirtualMachineOption{Name: "ipconfig0", Value: "ip=203.0.113.7/25,gw=203.0.113.1,ip6=2001:db8::7/64,gw6=2001:db8::1"}))
	e.ok(t)(vm.Start(e.ctx))
	_, err = vm.AgentGetNetworkIFaces(e.ctx)
	wantErr(t, err, "500 QEMU guest agent is not running") // what go-proxmox's WaitForAgent matches

	var ifaces []*proxmox.AgentNetworkIface
	deadline := time.Now().Add(5 * time.Second)
	for ifaces == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if ifaces, err = vm.AgentGetNetworkIFaces(e.ctx); err != nil && !strings.Contains(err.Error(), "QEMU guest agent is not running") {
			t.Fatal(err)
		}
	}
	if len(ifaces) != 1 || ifaces[0].Name != "eth0" || len(ifaces[0].IPAddresses) != 3 {
		t.Fatalf("interfaces (lo is dropped by go-proxmox) = %+v", ifaces)
	}
	g, _ := e.sim.Guest(140)
	if mac := strings.ToLower(qemuMAC(g.Config["net0"])); ifaces[0].HardwareAddress != mac {
		t.Fatalf("hardware-address %q, net0 %q", ifaces[0].HardwareAddress, g.Config["net0"])
	}
	got := ifaces[0].IPAddresses
	if got[0].IPAddressType != "ipv4" || got[0].IPAddress != "203.0.113.7" || got[0].Prefix != 25 ||
		got[1].IPAddress != "2001:db8::7" || got[1].Prefix != 64 || !strings.HasPrefix(got[2].IPAddress, "fe80::") {
		t.Fatalf("addresses = %+v %+v %+v", *got[0], *got[1], *got[2])
	}

	e.ok(t)(vm.Pause(e.ctx))
	_, err = vm.AgentGetNetworkIFaces(e.ctx)
	wantErr(t, err, "QEMU guest agent is not running")
}

func TestGuestAgentWithoutIPConfigUsesDHCP(t *testing.T) {
	e := newEnv(t, Options{GuestBoot: -1}, false)
	vm := e.cloneVM(t, 141, "dhcp-1")
	e.ok(t)(vm.Start(e.ctx))
	ifaces, err := vm.AgentGetNetworkIFaces(e.ctx)
	if err != nil || len(ifaces) != 1 || ifaces[0].IPAddresses[0].IPAddress != "10.200.0.142" || ifaces[0].IPAddresses[0].Prefix != 16 {
		t.Fatalf("interfaces = %+v, %v", ifaces, err)
	}

	// A VM without an agent configured answers as qemu-server does.
	e.ok(t)(e.node(t, "pve1").NewVirtualMachine(e.ctx, 150, proxmox.VirtualMachineOption{Name: "net0", Value: "virtio,bridge=vmbr0"}))
	e.ok(t)(e.vm(t, "pve1", 150).Start(e.ctx))
	_, err = e.vm(t, "pve1", 150).AgentGetNetworkIFaces(e.ctx)
	wantErr(t, err, "No QEMU guest agent configured")
}

// Containers: ssh-public-keys at create go into the root file system,
// hostname, nameserver and net0's address are set up at start, and
// GET …/interfaces reports them (null while stopped).
func TestContainerAccessAndInterfaces(t *testing.T) {
	e := newEnv(t, Options{}, true)
	n := e.node(t, "pve2")
	key := testSSHKey(t, "ops@host")
	_, err := n.NewContainer(e.ctx, 210,
		proxmox.ContainerOption{Name: "ostemplate", Value: DefaultOSTemplates()[0]},
		proxmox.ContainerOption{Name: "ssh-public-keys", Value: "ssh-rsa not-a-key"})
	wantErr(t, err, "SSH public key validation error")

	e.ok(t)(n.NewContainer(e.ctx, 210,
		proxmox.ContainerOption{Name: "ostemplate", Value: DefaultOSTemplates()[0]},
		proxmox.ContainerOption{Name: "hostname", Value: "ct-web"},
		proxmox.ContainerOption{Name: "ssh-public-keys", Value: key + "\n"},
		proxmox.ContainerOption{Name: "password", Value: "root-password-1"},
		proxmox.ContainerOption{Name: "nameserver", Value: "192.0.2.53"},
		proxmox.ContainerOption{Name: "searchdomain", Value: "example.org"},
		proxmox.ContainerOption{Name: "net0", Value: "name=eth0,bridge=vmbr0,ip=198.51.100.20/24,gw=198.51.100.1,type=veth"},
	))
	ct, err := n.Container(e.ctx, 210)
	if err != nil {
		t.Fatal(err)
	}
	if ifs, err := ct.Interfaces(e.ctx); err != nil || ifs != nil {
		t.Fatalf("stopped container interfaces = %+v, %v", ifs, err)
	}
	if g, _ := e.sim.Guest(210); strings.Contains(strings.Join(mapValues(g.Config), " "), "ssh-") {
		t.Fatalf("ssh keys must not be in the config: %v", g.Config)
	}
	e.ok(t)(ct.Start(e.ctx))
	ifs, err := ct.Interfaces(e.ctx)
	if err != nil || len(ifs) != 2 || ifs[1].Name != "eth0" || ifs[1].Inet != "198.51.100.20/24" || !strings.HasPrefix(ifs[1].Inet6, "fe80::") || ifs[1].HWAddr == "" {
		t.Fatalf("interfaces = %+v %+v, %v", ifs[0], ifs[len(ifs)-1], err)
	}
	b := e.cloudInit(t, 210).Booted
	if b == nil || b.Hostname != "ct-web" || b.FQDN != "ct-web.example.org" || len(b.SSHKeys) != 1 || b.SSHKeys[0] != key ||
		b.Password == "" || b.Nameservers[0] != "192.0.2.53" {
		t.Fatalf("container setup = %+v", b)
	}

	// NICs of a running container are hotplugged: the new address is live.
	if _, err := ct.Config(e.ctx, proxmox.ContainerOption{Name: "net0", Value: "name=eth0,bridge=vmbr0,ip=198.51.100.21/24,gw=198.51.100.1,type=veth"}); err != nil {
		t.Fatal(err)
	}
	if ifs, _ := ct.Interfaces(e.ctx); len(ifs) != 2 || ifs[1].Inet != "198.51.100.21/24" {
		t.Fatalf("after hotplug = %+v", ifs[1])
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
