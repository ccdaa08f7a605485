package pveschema

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The committed schema.json must be exactly what the generator derives
// from Proxmox's API data; a missing source file is a failure, not a skip,
// because otherwise the simulator could drift from Proxmox unnoticed.
func TestCommittedSchemaMatchesProxmoxAPIData(t *testing.T) {
	path, err := SourcePath()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Proxmox API data not found at %s (%v): set PVE_APIDATA to the path of pve-apidata.json (Proxmox VE 8.2's API viewer data, see pvesim/README.md)", path, err)
	}
	want, err := Extract(src)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	if !bytes.Equal(want, schemaJSON) {
		t.Fatalf("pvesim/internal/pveschema/schema.json is stale or hand-edited: run `go generate ./pvesim/...` (it reads %s)", path)
	}
}

func TestSchemaIsCompleteForTheValidator(t *testing.T) {
	f := MustLoad()
	if len(f.Routes) != len(Served()) {
		t.Fatalf("%d routes in schema.json, %d served", len(f.Routes), len(Served()))
	}
	if !strings.Contains(f.License, "AGPL-3.0-or-later") || !strings.Contains(f.Source, "pve-docs") || f.PVEVersion != "8.2" {
		t.Fatalf("provenance missing: %q %q %q", f.Source, f.License, f.PVEVersion)
	}
	for _, r := range f.Routes {
		var walk func(path string, p *Param)
		walk = func(path string, p *Param) {
			if p.Format != "" && !r.KnownFormat(p.Format) {
				t.Errorf("%s %s: no checker for format %q", r.Key(), path, p.Format)
			}
			if p.Pattern != "" {
				if _, err := compiled(p.Pattern); err != nil {
					t.Errorf("%s %s: pattern %q: %v", r.Key(), path, p.Pattern, err)
				}
			}
			for k, kp := range p.Keys {
				walk(path+"."+k, kp)
			}
			for k, kp := range r.namedKeys(p.Format) {
				walk(path+"."+k, kp)
			}
		}
		for name, p := range r.Params {
			walk(name, p)
		}
	}
}

func route(t *testing.T, key string) *Route {
	t.Helper()
	r := MustLoad().Index()[key]
	if r == nil {
		t.Fatalf("no route %s", key)
	}
	return r
}

func TestValidateSpeaksJSONSchemaPM(t *testing.T) {
	create := route(t, "POST /nodes/{node}/qemu")
	base := map[string]string{"node": "pve1", "vmid": "100"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name   string
		params map[string]string
		key    string
		want   string
	}{
		{"unknown parameter", with("hostname", "x"), "hostname", MsgNotDefined},
		{"missing required", map[string]string{"node": "pve1"}, "vmid", MsgMissing},
		{"integer type", with("cores", "two"), "cores", "type check ('integer') failed - got 'two'"},
		{"boolean type", with("onboot", "true"), "onboot", "type check ('boolean') failed - got 'true'"},
		{"minimum", with("sockets", "0"), "sockets", "value must have a minimum value of 1"},
		{"maximum", with("vmid", "1000000000"), "vmid", "invalid format - value does not look like a valid VM ID\n"},
		{"enum", with("lock", "held"), "lock", "value 'held' does not have a value in the enumeration 'backup, clone, create, migrate, rollback, snapshot, snapshot-delete, suspending, suspended'"},
		{"format", with("name", "bad_name"), "name", "invalid format - value does not look like a valid DNS name\n"},
		{"urlencoded", with("sshkeys", "ssh-ed25519 AAAA x@y"), "sshkeys", "invalid format - invalid urlencoded string: ssh-ed25519 AAAA x@y\n"},
		{"index out of range", with("net32", "virtio,bridge=vmbr0"), "net32", MsgNotDefined},
		{"property string key", with("net0", "virtio,bridge=vmbr0,speed=1"), "net0", "invalid format - invalid key in comma-separated list property: speed\n"},
		{"property string value", with("net0", "virtio,bridge=vmbr0,tag=0"), "net0", "invalid format - format error\nnet0.tag: value must have a minimum value of 1\n"},
		{"named hash format", with("ipconfig0", "ip=10.0.0.5/33"), "ipconfig0", "invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration\n\n"},
		{"memory current", with("memory", "8"), "memory", "invalid format - format error\nmemory.current: value must have a minimum value of 16\n"},
		{"maxLength", with("archive", strings.Repeat("a", 256)), "archive", "value may only be 255 characters long"},
		{"requires", with("unique", "1"), "archive", "missing property - 'unique' requires this property"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := create.Validate(c.params)
			if got := errs[c.key]; got != c.want {
				t.Fatalf("errors[%s] = %q, want %q (all: %q)", c.key, got, c.want, errs)
			}
		})
	}
	valid := with("name", "web-1", "cores", "2", "sockets", "8", "memory", "2048", "onboot", "1",
		"net0", "virtio,bridge=vmbr0,firewall=1", "net31", "e1000=BC:24:11:00:00:01,bridge=vmbr1",
		"scsi0", "local-lvm:32,discard=on,ssd=1", "ide2", "local-lvm:cloudinit,media=cdrom",
		"ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1", "sshkeys", "ssh-ed25519%20AAAA%20x%40y",
		"nameserver", "1.1.1.1 9.9.9.9", "tags", "a;b", "usb13", "host=1-2", "cdrom", "none",
		"cpu", "host,flags=+aes", "boot", "order=scsi0;net0", "smbios1", "uuid=5ed6e0d4-7dba-4b5c-9b3e-6a1b1d2f0a11")
	if errs := create.Validate(valid); errs != nil {
		t.Fatalf("valid create refused: %q", errs)
	}
}
