package pveschema

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Served lists the routes the simulator implements, as PVE spells them.
// The pvesim tests check that its router serves exactly these.
func Served() []string {
	out := []string{
		"POST /access/ticket",
		"GET /version", "GET /nodes", "GET /nodes/{node}/status", "GET /nodes/{node}/version",
		"GET /cluster/status", "GET /cluster/resources", "GET /cluster/nextid", "GET /cluster/tasks",
		"GET /nodes/{node}/tasks", "GET /nodes/{node}/tasks/{upid}/status",
		"GET /nodes/{node}/tasks/{upid}/log", "DELETE /nodes/{node}/tasks/{upid}",
		"POST /nodes/{node}/qemu/{vmid}/config", "POST /nodes/{node}/qemu/{vmid}/status/reset",
		"GET /nodes/{node}/qemu/{vmid}/cloudinit", "PUT /nodes/{node}/qemu/{vmid}/cloudinit",
		"GET /nodes/{node}/qemu/{vmid}/cloudinit/dump",
		"GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
		"GET /nodes/{node}/lxc/{vmid}/interfaces",
		"POST /nodes/{node}/qemu/{vmid}/vncproxy", "POST /nodes/{node}/lxc/{vmid}/termproxy",
		"GET /nodes/{node}/qemu/{vmid}/vncwebsocket", "GET /nodes/{node}/lxc/{vmid}/vncwebsocket",
		"POST /nodes/{node}/vzdump", "GET /nodes/{node}/vzdump/extractconfig",
		"GET /nodes/{node}/storage", "GET /nodes/{node}/storage/{storage}/status",
		"GET /nodes/{node}/storage/{storage}/content",
		"GET /nodes/{node}/storage/{storage}/content/{volume}", "PUT /nodes/{node}/storage/{storage}/content/{volume}",
		"DELETE /nodes/{node}/storage/{storage}/content/{volume}",
		"GET /pools", "POST /pools", "PUT /pools", "DELETE /pools",
		"GET /pools/{poolid}", "PUT /pools/{poolid}", "DELETE /pools/{poolid}",
	}
	for _, kind := range []string{"qemu", "lxc"} {
		b := "/nodes/{node}/" + kind
		out = append(out, "GET "+b, "POST "+b,
			"GET "+b+"/{vmid}", "DELETE "+b+"/{vmid}",
			"GET "+b+"/{vmid}/config", "PUT "+b+"/{vmid}/config",
			"GET "+b+"/{vmid}/status", "GET "+b+"/{vmid}/status/current",
			"POST "+b+"/{vmid}/clone", "PUT "+b+"/{vmid}/resize", "POST "+b+"/{vmid}/template",
			"GET "+b+"/{vmid}/snapshot", "POST "+b+"/{vmid}/snapshot",
			"GET "+b+"/{vmid}/snapshot/{snapname}", "DELETE "+b+"/{vmid}/snapshot/{snapname}",
			"GET "+b+"/{vmid}/snapshot/{snapname}/config", "POST "+b+"/{vmid}/snapshot/{snapname}/rollback")
		for _, a := range []string{"start", "stop", "shutdown", "reboot", "suspend", "resume"} {
			out = append(out, "POST "+b+"/{vmid}/status/"+a)
		}
	}
	sort.Strings(out)
	return out
}

// indexCounts says how many members each "[n]" family has. The API viewer
// data collapses them to one entry; the counts are the constants of
// qemu-server 8.2 (PVE::QemuServer: MAX_NETS, MAX_USB_DEVICES, …,
// PVE::QemuServer::Drive: MAX_IDE_DISKS, …) and pve-container 5.1
// (PVE::LXC::Config: MAX_MOUNT_POINTS, MAX_DEVICES, MAX_LXC_NETWORKS, MAX_UNUSED_DISKS).
var indexCounts = map[string]map[string]int{
	"qemu": {"hostpci": 16, "ide": 4, "ipconfig": 32, "net": 32, "numa": 8, "parallel": 3,
		"sata": 6, "scsi": 31, "serial": 4, "unused": 256, "usb": 14, "virtio": 16},
	"lxc": {"dev": 256, "mp": 256, "net": 32, "unused": 256},
}

// SourcePath is where the Proxmox API data is read from: $PVE_APIDATA, or
// ../shared/data/pve-apidata.json next to the repository (found by walking
// up from the working directory to go.mod).
func SourcePath() (string, error) {
	if p := os.Getenv("PVE_APIDATA"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared", "data", "pve-apidata.json"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory; set PVE_APIDATA to the path of pve-apidata.json")
		}
		dir = parent
	}
}
