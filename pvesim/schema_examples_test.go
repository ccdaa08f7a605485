package pvesim

import (
	"net/http"
	"testing"

	"github.com/accountdb/accountdb/pvesim/internal/pveschema"
)

// The differences from Proxmox that the hand-written validation had, each
// now answered as Proxmox VE 8.2 answers it.
func TestFormerDifferencesFromProxmox(t *testing.T) {
	cases := []struct {
		name, method, path string
		params             map[string]string
		param, want        string // want "" = no 400 about param
	}{
		{"sockets above 4", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"sockets": "8"}, "sockets", ""},
		{"usb13", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"usb13": "host=1-2"}, "usb13", ""},
		{"usb14", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"usb14": "host=1-2"}, "usb14", pveschema.MsgNotDefined},
		{"mp255", "PUT", "/nodes/pve1/lxc/9100/config", map[string]string{"mp255": "local-lvm:1,mp=/data"}, "mp255", ""},
		{"mp256", "PUT", "/nodes/pve1/lxc/9100/config", map[string]string{"mp256": "local-lvm:1,mp=/data"}, "mp256", pveschema.MsgNotDefined},
		{"unused256", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"unused256": "local-lvm:vm-9000-disk-9"}, "unused256", pveschema.MsgNotDefined},
		{"dev256", "PUT", "/nodes/pve1/lxc/9100/config", map[string]string{"dev256": "/dev/ttyUSB0"}, "dev256", pveschema.MsgNotDefined},
		{"qemu clone hostname", "POST", "/nodes/pve1/qemu/9000/clone", map[string]string{"newid": "300", "hostname": "x"}, "hostname", pveschema.MsgNotDefined},
		{"lxc clone name", "POST", "/nodes/pve1/lxc/9100/clone", map[string]string{"newid": "300", "name": "x"}, "name", pveschema.MsgNotDefined},
		{"todisk on start", "POST", "/nodes/pve1/qemu/9000/status/start", map[string]string{"todisk": "1"}, "todisk", pveschema.MsgNotDefined},
		{"skiplock on lxc shutdown", "POST", "/nodes/pve1/lxc/9100/status/shutdown", map[string]string{"skiplock": "1"}, "skiplock", pveschema.MsgNotDefined},
		{"forceStop on stop", "POST", "/nodes/pve1/qemu/9000/status/stop", map[string]string{"forceStop": "1"}, "forceStop", pveschema.MsgNotDefined},
		{"background_delay on PUT", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"background_delay": "5", "cores": "2"}, "background_delay", pveschema.MsgNotDefined},
		{"type=pool", "GET", "/cluster/resources", map[string]string{"type": "pool"}, "type", "value 'pool' does not have a value in the enumeration 'vm, storage, node, sdn'"},
		{"arch", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"arch": "x86_64"}, "arch", ""},
		{"cdrom", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"cdrom": "none"}, "cdrom", ""},
		{"smp", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"smp": "2"}, "smp", ""},
		{"vmstatestorage", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"vmstatestorage": "local-lvm"}, "vmstatestorage", ""},
		{"sshkeys not URL-encoded", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"sshkeys": "ssh-ed25519 AAAA"}, "sshkeys", "invalid format - invalid urlencoded string: ssh-ed25519 AAAA\n"},
		{"ipconfig", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"ipconfig0": "ip=10.0.0.300/24"}, "ipconfig0", "invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration\n\n"},
		{"net model", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"net1": "virtio-net,bridge=vmbr0"}, "net1", "invalid format - format error\nnet1.model: value 'virtio-net' does not have a value in the enumeration 'e1000, e1000-82540em, e1000-82544gc, e1000-82545em, e1000e, i82551, i82557b, i82559er, ne2k_isa, ne2k_pci, pcnet, rtl8139, virtio, vmxnet3'\n"},
		{"nameserver", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"nameserver": "not_an_address"}, "nameserver", "invalid format - value does not look like a valid address: not_an_address\n"},
		{"lock enum", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"lock": "mine"}, "lock", "value 'mine' does not have a value in the enumeration 'backup, clone, create, migrate, rollback, snapshot, snapshot-delete, suspending, suspended'"},
		{"disk string", "PUT", "/nodes/pve1/qemu/9000/config", map[string]string{"scsi1": "local-lvm:8,cache=fast"}, "scsi1", "invalid format - format error\nscsi1.cache: value 'fast' does not have a value in the enumeration 'none, writethrough, writeback, unsafe, directsync'\n"},
		{"archive", "POST", "/nodes/pve1/qemu", map[string]string{"vmid": "300", "archive": "local:backup/vzdump-qemu-100.vma.zst"}, "archive", ""},
		{"live-restore", "POST", "/nodes/pve1/qemu", map[string]string{"vmid": "300", "live-restore": "1"}, "live-restore", "not implemented by pvesim: live restore is not simulated"},
		{"lxc restore", "POST", "/nodes/pve1/lxc", map[string]string{"vmid": "300", "ostemplate": "local:backup/vzdump-lxc-100.tar.zst", "restore": "1"}, "restore", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := schemaCall(t, New(Options{}), c.method, c.path, c.params)
			got := ""
			if a.status == http.StatusBadRequest {
				got = a.errors[c.param]
			}
			if got != c.want {
				t.Fatalf("%d %q, want errors[%s]=%q", a.status, a.errors, c.param, c.want)
			}
		})
	}
}
