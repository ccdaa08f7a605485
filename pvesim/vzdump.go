package pvesim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// vzdumpSimulated are the vzdump options pvesim implements; every other
// option Proxmox defines is refused as not simulated (see validate.go).
var vzdumpSimulated = setOf("node", "vmid", "mode", "storage", "compress", "notes-template", "protected", "remove", "quiet")

// postVzdump is POST /nodes/{node}/vzdump for one guest, as PVE's API
// does it: a guest on another node is skipped silently (the answer is
// "OK", not a task), and everything else is decided inside the worker,
// whose log says what happened. While the worker runs the guest carries
// lock "backup"; mode stop shuts a running guest down and starts it again
// afterwards, mode suspend pauses it, mode snapshot leaves it running.
// Like vzdump, the worker does not hold the guest's config flock: other
// operations meet the "backup" lock ("VM is locked (backup)").
func (s *Simulator) postVzdump(c *call) (any, error) {
	v := newValidator(c.p)
	if !v.has("vmid") {
		// verify_vzdump_parameters: vmid, all or pool is needed (only vmid is simulated).
		v.fail("vmid", "property is missing")
	}
	protect, _ := v.boolean("protected")
	if err := v.err(); err != nil {
		return nil, err
	}
	ids := strings.FieldsFunc(c.p["vmid"], func(r rune) bool { return r == ',' || r == ';' || r == ' ' })
	if len(ids) != 1 {
		return nil, paramErr1("vmid", "not implemented by pvesim: backing up several guests in one job is not simulated")
	}
	vmid, _ := strconv.Atoi(ids[0])
	mode := orDefault(c.p["mode"], "snapshot")
	storage := orDefault(c.p["storage"], "local")
	compress := orDefault(c.p["compress"], "0")

	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.findNode(c.node)
	if n == nil {
		return nil, errNoNode(c.node)
	}
	g := s.guests[vmid]
	if g != nil && g.node != n.name {
		return "OK", nil
	}
	d := findStorage(storage)
	var (
		wasRunning bool
		started    = s.now()
	)
	header := []string{
		fmt.Sprintf("INFO: starting new backup job: vzdump %d --mode %s --storage %s --compress %s", vmid, mode, storage, compress),
	}
	fail := func(t *task, msg string) error {
		t.log = append(t.log, fmt.Sprintf("ERROR: Backup of VM %d failed - %s", vmid, msg), "INFO: Failed at "+s.now().UTC().Format(time.DateTime))
		return fmt.Errorf("job errors")
	}
	t := s.startTask(taskSpec{
		node: n.name, typ: "vzdump", id: strconv.Itoa(vmid), user: c.user, weight: weightOf("vzdump"),
		prepare: func() error {
			if d == nil {
				return errNoStorage(storage)
			}
			if !d.holds("backup") {
				return fmt.Errorf("can't use storage '%s' for backups - wrong content type", storage)
			}
			if g == nil || checkLock(g, false) != nil {
				return nil // reported per guest when the worker ends
			}
			g.conf["lock"] = "backup"
			wasRunning = g.state == StatusRunning
			switch {
			case mode == "stop" && wasRunning:
				s.setState(g, StatusStopped)
			case mode == "suspend" && wasRunning:
				s.setState(g, StatusPaused)
			}
			return nil
		},
		commit: func(t *task) error {
			t.log = append(t.log, header...)
			if g == nil || s.guests[vmid] != g {
				return fail(t, fmt.Sprintf("unable to find VM '%d'", vmid))
			}
			if g.lock() != "backup" {
				if err := checkLock(g, false); err != nil {
					return fail(t, err.Error())
				}
			}
			delete(g.conf, "lock")
			if msg := s.errNoSpace(g, d); msg != "" {
				t.log = append(t.log, fmt.Sprintf("INFO: Starting Backup of VM %d (%s)", vmid, g.kind),
					fmt.Sprintf("INFO: creating vzdump archive '%s/dump/vzdump-%s-%d-%s.%s'", d.path, g.kind, vmid,
						started.UTC().Format("2006_01_02-15_04_05"), map[guestKind]string{kindQemu: "vma", kindLXC: "tar"}[g.kind]))
				if wasRunning && g.state == StatusPaused {
					s.setState(g, StatusRunning)
				} else if wasRunning && g.state != StatusRunning {
					if err := s.powerOn(g, t); err != nil {
						return fail(t, err.Error())
					}
				}
				return fail(t, msg)
			}
			b := s.newBackup(g, d, compress, expandNotes(c.p["notes-template"], g, s.opts.ClusterName), protect)
			t.log = append(t.log,
				fmt.Sprintf("INFO: Starting Backup of VM %d (%s)", vmid, g.kind),
				"INFO: Backup started at "+started.UTC().Format(time.DateTime),
				"INFO: status = "+apiStatus(g.state),
				"INFO: backup mode: "+mode,
				fmt.Sprintf("INFO: creating vzdump archive '%s'", b.path()))
			if wasRunning && g.state != StatusRunning {
				t.log = append(t.log, "INFO: resuming VM again")
				if g.state == StatusPaused {
					s.setState(g, StatusRunning)
				} else if err := s.powerOn(g, t); err != nil {
					return fail(t, err.Error())
				}
			}
			t.log = append(t.log,
				fmt.Sprintf("INFO: Finished Backup of VM %d (%s)", vmid, formatElapsed(s.now().Sub(started))),
				"INFO: Backup finished at "+s.now().UTC().Format(time.DateTime),
				"INFO: Backup job finished successfully")
			return nil
		},
		rollback: func() {
			if g != nil && g.lock() == "backup" {
				delete(g.conf, "lock")
				if wasRunning && g.state != StatusRunning {
					s.setState(g, StatusRunning)
				}
			}
		},
	})
	return t.upid, nil
}

// expandNotes fills vzdump's notes-template variables.
func expandNotes(tmpl string, g *guest, cluster string) string {
	return strings.NewReplacer("{{guestname}}", g.name(), "{{vmid}}", strconv.Itoa(g.vmid),
		"{{node}}", g.node, "{{cluster}}", cluster, `\n`, "\n", `\\`, `\`).Replace(tmpl)
}

func formatElapsed(d time.Duration) string {
	sec := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec%3600/60, sec%60)
}
