package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// backupMark is written into a backup's notes (first line) so the archive
// of one request can be found again: a backup resumed after the agent
// crashed finds the archive its first attempt made instead of taking a
// second one.
func backupMark(id uuid.UUID) string { return "accountdb-backup-" + id.String() }

// backupEntry is one archive of GET /nodes/{node}/storage/{storage}/content.
type backupEntry struct {
	Volid string `json:"volid"`
	Size  int64  `json:"size"`
	VMID  int    `json:"vmid"`
	Notes string `json:"notes"`
}

// findBackup is the archive of guest vmid on storage whose notes carry
// mark, seen from node; nil when there is none.
func (p *pve) findBackup(ctx context.Context, node, storage string, vmid int, mark string) (*backupEntry, error) {
	var list []backupEntry
	path := fmt.Sprintf("/nodes/%s/storage/%s/content?content=backup&vmid=%d", url.PathEscape(node), url.PathEscape(storage), vmid)
	if err := p.c.Get(ctx, path, &list); err != nil {
		return nil, err
	}
	for _, b := range list {
		if strings.Contains(b.Notes, mark) {
			return &b, nil
		}
	}
	return nil, nil
}

// jobError turns vzdump's "job errors" into the guest's own error from
// the task log ("Backup of VM 100 failed - vma_queue_write: write error -
// No space left on device"), which is what a user needs to read.
func (p *pve) jobError(ctx context.Context, node string, err error) error {
	var te *taskError
	if !errors.As(err, &te) {
		return err
	}
	var lines []struct {
		T string `json:"t"`
	}
	path := fmt.Sprintf("/nodes/%s/tasks/%s/log?limit=500", url.PathEscape(node), url.PathEscape(te.UPID))
	if lerr := p.c.Get(ctx, path, &lines); lerr != nil {
		return err
	}
	for _, l := range lines {
		if msg, ok := strings.CutPrefix(l.T, "ERROR: "); ok {
			return &taskError{UPID: te.UPID, Exit: msg}
		}
	}
	return err
}

// backup runs vzdump of the guest to the requested storage, unless an
// earlier attempt already made the archive, and reports it.
func (a *Agent) backup(ctx context.Context, req request, e *domain.VMBackupRequested, r *protocol.Result) error {
	mark := backupMark(e.BackupID)
	return a.retry(ctx, domain.ActionBackup, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			return err
		}
		found, err := p.findBackup(ctx, g.Node, e.Storage, g.VMID, mark)
		if err != nil {
			return err
		}
		if found == nil {
			upid, err := p.upidCall(ctx, "POST", "/nodes/"+url.PathEscape(g.Node)+"/vzdump", map[string]any{
				"vmid": g.VMID, "mode": e.Mode, "storage": e.Storage, "compress": "zstd",
				"notes-template": mark + `\n{{guestname}}`,
			})
			if upid != "" {
				r.TaskID = upid
			}
			if err != nil {
				return p.jobError(ctx, g.Node, err)
			}
			if found, err = p.findBackup(ctx, g.Node, e.Storage, g.VMID, mark); err != nil {
				return err
			}
			if found == nil {
				return fmt.Errorf("vzdump of VM %d finished, but no archive on %s carries %s", g.VMID, e.Storage, mark)
			}
		}
		r.VolumeID, r.SizeBytes = found.Volid, found.Size
		r.Verified = p.verifyBackup(ctx, g.Node, found.Volid, protocol.VMTag(req.VMID))
		return nil
	})
}

// backupDelete removes an archive, unless it is gone already. The guest
// may be gone: the request names the cluster and the node.
func (a *Agent) backupDelete(ctx context.Context, req request, e *domain.VMBackupDeleteRequested, r *protocol.Result) error {
	p, err := a.registry.get(ctx, e.ClusterID, a.cfg.ClusterWait)
	if err != nil {
		return err
	}
	r.ClusterID, r.Node, r.VolumeID = e.ClusterID, e.Node, e.VolumeID
	storage, _, _ := strings.Cut(e.VolumeID, ":")
	return a.retry(ctx, domain.ActionBackupDelete, req.VMID, func(ctx context.Context) error {
		path := fmt.Sprintf("/nodes/%s/storage/%s/content/%s", url.PathEscape(e.Node), url.PathEscape(storage), url.PathEscape(e.VolumeID))
		upid, err := p.upidCall(ctx, "DELETE", path, nil)
		if upid != "" {
			r.TaskID = upid
		}
		if notFound(err) {
			return nil
		}
		return err
	})
}

// verifyBackup reads the archive's guest configuration back (GET
// /nodes/{node}/vzdump/extractconfig) and reports whether it is this VM's
// (it carries the VM's tag). A failed read is "not verified", never the
// backup's failure: the archive exists.
func (p *pve) verifyBackup(ctx context.Context, node, volid, tag string) bool {
	var conf string
	path := fmt.Sprintf("/nodes/%s/vzdump/extractconfig?volume=%s", url.PathEscape(node), url.QueryEscape(volid))
	if err := p.c.Get(ctx, path, &conf); err != nil {
		return false
	}
	for _, line := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(line, "tags: "); ok {
			return slices.Contains(protocol.SplitTags(v), tag)
		}
	}
	return false
}
