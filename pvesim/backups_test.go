package pvesim

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// backupEnv is a simulator with VM 100 cloned from the debian template on
// pve1 and running, and a go-proxmox client, as the agent uses it.
func backupEnv(t *testing.T, opts Options) (*env, *proxmox.Node) {
	t.Helper()
	e := newEnv(t, opts, false)
	_, task, err := e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 100, Name: "web-1", Full: true})
	e.ok(t)(task, err)
	e.ok(t)(e.vm(t, "pve1", 100).Start(e.ctx))
	return e, e.node(t, "pve1")
}

// backupEntry is a content entry as Proxmox's schema names its fields
// (go-proxmox's StorageContent reads "protection", not "protected").
type backupEntry struct {
	Volid     string `json:"volid"`
	Format    string `json:"format"`
	Size      uint64 `json:"size"`
	VMID      int    `json:"vmid"`
	Notes     string `json:"notes"`
	Protected int    `json:"protected"`
	Subtype   string `json:"subtype"`
}

func backups(t *testing.T, e *env, node, storage string) []backupEntry {
	t.Helper()
	var out []backupEntry
	if err := e.client.Get(e.ctx, fmt.Sprintf("/nodes/%s/storage/%s/content?content=backup", node, storage), &out); err != nil {
		t.Fatalf("content of %s: %v", storage, err)
	}
	return out
}

func taskLog(t *testing.T, e *env, task *proxmox.Task) string {
	t.Helper()
	lines, err := task.Log(e.ctx, 0, 100)
	if err != nil {
		t.Fatalf("task log: %v", err)
	}
	out := make([]string, 0, len(lines))
	for i := range len(lines) {
		out = append(out, lines[i])
	}
	return strings.Join(out, "\n")
}

func TestStoragesOfANode(t *testing.T) {
	e := newEnv(t, Options{}, false)
	ss, err := e.node(t, "pve2").Storages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range ss {
		got[s.Name] = s.Content
		if s.Total == 0 || s.Active != 1 || s.Enabled != 1 {
			t.Fatalf("storage %+v", s)
		}
	}
	if len(got) != 3 || !strings.Contains(got["local"], "backup") || got["backup-nfs"] != "backup" || strings.Contains(got["local-lvm"], "backup") {
		t.Fatalf("storages = %v", got)
	}
	var onlyBackup []map[string]any
	if err := e.client.Get(e.ctx, "/nodes/pve2/storage?content=backup", &onlyBackup); err != nil || len(onlyBackup) != 2 {
		t.Fatalf("?content=backup = %v, %v", onlyBackup, err)
	}
	if _, err := e.node(t, "pve2").Storage(e.ctx, "nope"); err == nil || !strings.Contains(err.Error(), "storage 'nope' does not exist") {
		t.Fatalf("unknown storage: %v", err)
	}
}

func TestContainerTemplatesAreListed(t *testing.T) {
	e := newEnv(t, Options{}, false)
	var list []backupEntry
	if err := e.client.Get(e.ctx, "/nodes/pve2/storage/local/content?content=vztmpl", &list); err != nil {
		t.Fatal(err)
	}
	if want := DefaultOSTemplates(); len(list) != len(want) || list[0].Volid != want[0] || list[0].Format != "tzst" {
		t.Fatalf("vztmpl = %+v", list)
	}
	if err := e.client.Get(e.ctx, "/nodes/pve2/storage/backup-nfs/content?content=vztmpl", &list); err != nil || len(list) != 0 {
		t.Fatalf("backup-nfs lists templates: %+v %v", list, err)
	}
}

func TestVzdumpSnapshotModeKeepsTheGuestRunning(t *testing.T) {
	e, n := backupEnv(t, Options{})
	task := e.ok(t)(n.Vzdump(e.ctx, &proxmox.VirtualMachineBackupOptions{VMID: 100, Mode: "snapshot", Storage: "local",
		Compress: "zstd", NotesTemplate: "{{guestname}} on {{node}}", Protected: "1"}))
	if task.Type != "vzdump" || task.ID != "100" {
		t.Fatalf("task = %s %s", task.Type, task.ID)
	}
	log := taskLog(t, e, task)
	list := backups(t, e, "pve1", "local")
	if len(list) != 1 {
		t.Fatalf("backups = %+v", list)
	}
	b := list[0]
	if !strings.HasPrefix(b.Volid, "local:backup/vzdump-qemu-100-") || !strings.HasSuffix(b.Volid, ".vma.zst") ||
		b.Format != "vma.zst" || b.VMID != 100 || b.Size == 0 || b.Notes != "web-1 on pve1" || b.Protected != 1 || b.Subtype != "qemu" {
		t.Fatalf("backup = %+v", b)
	}
	if !strings.Contains(log, "INFO: creating vzdump archive '/var/lib/vz/dump/"+strings.TrimPrefix(b.Volid, "local:backup/")+"'") ||
		!strings.Contains(log, "INFO: Backup job finished successfully") {
		t.Fatalf("log:\n%s", log)
	}
	if vm := e.vm(t, "pve1", 100); vm.Status != "running" || vm.VirtualMachineConfig.Lock != "" {
		t.Fatalf("after backup: %s lock %q", vm.Status, vm.VirtualMachineConfig.Lock)
	}
	// local is per node: pve2 does not see pve1's backup.
	if other := backups(t, e, "pve2", "local"); len(other) != 0 {
		t.Fatalf("pve2 sees %+v", other)
	}
}

// While a backup runs the guest carries lock "backup"; mode stop stops a
// running guest and starts it again afterwards.
func TestVzdumpStopModeLocksAndRestarts(t *testing.T) {
	e, n := backupEnv(t, Options{TimeScale: 100 * time.Millisecond})
	task, err := n.Vzdump(e.ctx, &proxmox.VirtualMachineBackupOptions{VMID: 100, Mode: "stop", Storage: "backup-nfs"})
	if err != nil {
		t.Fatal(err)
	}
	vm := e.vm(t, "pve1", 100)
	if vm.VirtualMachineConfig.Lock != "backup" || vm.Status != "stopped" {
		t.Fatalf("during a stop-mode backup: %s lock %q", vm.Status, vm.VirtualMachineConfig.Lock)
	}
	e.fails(t, "VM is locked (backup)")(vm.Start(e.ctx))
	e.ok(t)(task, nil)
	if vm = e.vm(t, "pve1", 100); vm.Status != "running" || vm.VirtualMachineConfig.Lock != "" {
		t.Fatalf("after: %s lock %q", vm.Status, vm.VirtualMachineConfig.Lock)
	}
	// backup-nfs is shared: every node lists it.
	if list := backups(t, e, "pve3", "backup-nfs"); len(list) != 1 || list[0].Format != "vma" {
		t.Fatalf("pve3 sees %+v", list)
	}
}

func TestVzdumpFailures(t *testing.T) {
	e, n := backupEnv(t, Options{})
	// A guest on another node is skipped without a task, as PVE does.
	var answer string
	if err := e.client.Post(e.ctx, "/nodes/pve2/vzdump", map[string]string{"vmid": "100"}, &answer); err != nil || answer != "OK" {
		t.Fatalf("vzdump on the wrong node = %q, %v", answer, err)
	}
	e.fails(t, "can't use storage 'local-lvm' for backups - wrong content type")(n.Vzdump(e.ctx, &proxmox.VirtualMachineBackupOptions{VMID: 100, Storage: "local-lvm"}))
	task := e.fails(t, "job errors")(n.Vzdump(e.ctx, &proxmox.VirtualMachineBackupOptions{VMID: 555}))
	if log := taskLog(t, e, task); !strings.Contains(log, "ERROR: Backup of VM 555 failed - unable to find VM '555'") {
		t.Fatalf("log:\n%s", log)
	}
	var missing map[string]any
	err := e.client.Post(e.ctx, "/nodes/pve1/vzdump", map[string]string{"mode": "stop"}, &missing)
	wantErr(t, err, "property is missing")
}

func TestBackupVolumes(t *testing.T) {
	e, n := backupEnv(t, Options{})
	e.ok(t)(n.Vzdump(e.ctx, &proxmox.VirtualMachineBackupOptions{VMID: 100, Storage: "local", Protected: "1"}))
	volid := backups(t, e, "pve1", "local")[0].Volid
	path := "/nodes/pve1/storage/local/content/" + url.PathEscape(volid)

	var info map[string]any
	if err := e.client.Get(e.ctx, path, &info); err != nil || info["format"] != "vma" || info["protected"] != float64(1) {
		t.Fatalf("volume = %v, %v", info, err)
	}
	// A protected backup is not removed.
	var upid proxmox.UPID
	if err := e.client.Delete(e.ctx, path, &upid); err != nil {
		t.Fatal(err)
	}
	e.fails(t, "cannot remove protected volume '"+strings.TrimPrefix(volid, "local:")+"' on 'local'")(proxmox.NewTask(upid, e.client), nil)
	if err := e.client.Put(e.ctx, path, map[string]string{"protected": "0", "notes": "before upgrade"}, nil); err != nil {
		t.Fatal(err)
	}
	if list := backups(t, e, "pve1", "local"); len(list) != 1 || list[0].Notes != "before upgrade" {
		t.Fatalf("after PUT: %+v", list)
	}
	// Proxmox's router splits the path on "/": an unescaped volume id is
	// not a volume (go-proxmox's DeleteContent sends it so).
	err := e.client.Delete(e.ctx, "/nodes/pve1/storage/local/content/"+volid, &upid)
	wantErr(t, err, "501")
	if err := e.client.Delete(e.ctx, path, &upid); err != nil {
		t.Fatal(err)
	}
	e.ok(t)(proxmox.NewTask(upid, e.client), nil)
	if list := backups(t, e, "pve1", "local"); len(list) != 0 {
		t.Fatalf("after delete: %+v", list)
	}
	err = e.client.Get(e.ctx, path, &info)
	wantErr(t, err, "volume '"+volid+"' does not exist")
}

func TestRestoreQemu(t *testing.T) {
	e, n := backupEnv(t, Options{})
	vm := e.vm(t, "pve1", 100)
	e.ok(t)(vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "cores", Value: 3}))
	e.ok(t)(n.Vzdump(e.ctx, &proxmox.VirtualMachineBackupOptions{VMID: 100, Compress: "zstd"}))
	volid := backups(t, e, "pve1", "local")[0].Volid

	// Into a new id, with new MACs and an override.
	task := e.ok(t)(n.NewVirtualMachine(e.ctx, 200, proxmox.VirtualMachineOption{Name: "archive", Value: volid},
		proxmox.VirtualMachineOption{Name: "unique", Value: 1}, proxmox.VirtualMachineOption{Name: "name", Value: "web-1-copy"}))
	if task.Type != "qmrestore" {
		t.Fatalf("task type %s", task.Type)
	}
	restored := e.vm(t, "pve1", 200)
	cfg := restored.VirtualMachineConfig
	if cfg.Cores == nil || *cfg.Cores != 3 || restored.Name != "web-1-copy" || cfg.SCSIs["scsi0"] != "local-lvm:vm-200-disk-0,size=8G" ||
		cfg.Nets["net0"] == vm.VirtualMachineConfig.Nets["net0"] || restored.Status != "stopped" {
		t.Fatalf("restored = %s %+v", restored.Status, cfg)
	}

	// Over the running original: refused without force, fails while running.
	_, err := n.NewVirtualMachine(e.ctx, 100, proxmox.VirtualMachineOption{Name: "archive", Value: volid})
	wantErr(t, err, "unable to restore VM 100 - VM 100 already exists on node 'pve1'")
	e.fails(t, "unable to restore VM 100 - vm is running")(n.NewVirtualMachine(e.ctx, 100,
		proxmox.VirtualMachineOption{Name: "archive", Value: volid}, proxmox.VirtualMachineOption{Name: "force", Value: 1}))
	if e.vm(t, "pve1", 100).Status != "running" {
		t.Fatal("a failed restore touched the running guest")
	}
	// Stopped, it is replaced in place.
	e.ok(t)(e.vm(t, "pve1", 100).Stop(e.ctx))
	e.ok(t)(e.vm(t, "pve1", 100).Config(e.ctx, proxmox.VirtualMachineOption{Name: "cores", Value: 1}))
	e.ok(t)(n.NewVirtualMachine(e.ctx, 100, proxmox.VirtualMachineOption{Name: "archive", Value: volid},
		proxmox.VirtualMachineOption{Name: "force", Value: 1}, proxmox.VirtualMachineOption{Name: "start", Value: 1}))
	if back := e.vm(t, "pve1", 100); back.VirtualMachineConfig.Cores == nil || *back.VirtualMachineConfig.Cores != 3 || back.Status != "running" {
		t.Fatalf("restored in place: %s cores %v", back.Status, back.VirtualMachineConfig.Cores)
	}

	// Disks come from the archive, not from the request.
	_, err = n.NewVirtualMachine(e.ctx, 201, proxmox.VirtualMachineOption{Name: "archive", Value: volid},
		proxmox.VirtualMachineOption{Name: "scsi1", Value: "local-lvm:4"})
	wantErr(t, err, "option conflicts with option 'archive'")
	_, err = n.NewVirtualMachine(e.ctx, 201, proxmox.VirtualMachineOption{Name: "archive", Value: "local:backup/vzdump-qemu-1-2020_01_01-00_00_00.vma"})
	wantErr(t, err, "volume 'local:backup/vzdump-qemu-1-2020_01_01-00_00_00.vma' does not exist")
}

func TestBackupAndRestoreContainer(t *testing.T) {
	e := newEnv(t, Options{}, false)
	n := e.node(t, "pve1")
	ct, err := n.Container(e.ctx, 9100)
	if err != nil {
		t.Fatal(err)
	}
	_, task, err := ct.Clone(e.ctx, &proxmox.ContainerCloneOptions{NewID: 300, Hostname: "db-1", Full: true})
	e.ok(t)(task, err)
	e.ok(t)(n.Vzdump(e.ctx, &proxmox.VirtualMachineBackupOptions{VMID: 300, Compress: "zstd"}))
	list := backups(t, e, "pve1", "local")
	if len(list) != 1 || list[0].Format != "tar.zst" || !strings.HasPrefix(list[0].Volid, "local:backup/vzdump-lxc-300-") {
		t.Fatalf("backups = %+v", list)
	}
	task = e.ok(t)(n.NewContainer(e.ctx, 301, proxmox.ContainerOption{Name: "ostemplate", Value: list[0].Volid},
		proxmox.ContainerOption{Name: "restore", Value: 1}, proxmox.ContainerOption{Name: "storage", Value: "local"}))
	if task.Type != "vzrestore" {
		t.Fatalf("task type %s", task.Type)
	}
	restored, err := n.Container(e.ctx, 301)
	if err != nil {
		t.Fatal(err)
	}
	if restored.ContainerConfig.Hostname != "db-1" || !strings.HasPrefix(restored.ContainerConfig.RootFS, "local:") {
		t.Fatalf("restored = %+v", restored.ContainerConfig)
	}
	// A container archive is not a VM.
	_, err = n.NewVirtualMachine(e.ctx, 302, proxmox.VirtualMachineOption{Name: "archive", Value: list[0].Volid})
	wantErr(t, err, "is a lxc backup")
}
