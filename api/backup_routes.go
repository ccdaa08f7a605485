package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
)

// Snapshots and backups of VMs (API.md "Snapshots and backups"). Mounted by
// mountBackupRoutes, so v1.go only calls it.

func (srv *server) mountBackupRoutes(r chi.Router) {
	r.With(srv.require(auth.PermVMRead)).Get("/v1/vms/{id}/snapshots", srv.listSnapshots)
	r.With(srv.require(auth.PermVMSnapshot)).Post("/v1/vms/{id}/snapshots/{name}/rollback", srv.rollbackSnapshot)
	r.With(srv.require(auth.PermVMSnapshot)).Delete("/v1/vms/{id}/snapshots/{name}", srv.deleteSnapshot)
	r.With(srv.require(auth.PermVMSnapshot)).Post("/v1/vms/{id}/backups", srv.backupVM)
	r.With(srv.require(auth.PermVMRead)).Get("/v1/vms/{id}/backups", srv.listVMBackups)
	r.With(srv.require(auth.PermVMRead)).Get("/v1/backups", srv.listBackups)
	r.With(srv.require(auth.PermVMRead)).Get("/v1/backups/{id}", srv.getBackup)
	r.With(srv.require(auth.PermVMDelete)).Delete("/v1/backups/{id}", srv.deleteBackup)
	// In place overwrites the guest (as a rebuild: vm:delete); into a new
	// VM it also needs vm:create, checked in the handler.
	r.With(srv.require(auth.PermVMDelete)).Post("/v1/backups/{id}/restore", srv.restoreBackup)
	r.With(srv.require(auth.PermClusterManage)).Put("/v1/clusters/{id}/backup-storage", srv.setBackupStorage)
	srv.mountScheduleRoutes(r) // backup_schedule_routes.go
}

type snapshotRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// VMState saves a running QEMU guest's RAM with the snapshot.
	VMState bool `json:"vmstate,omitempty"`
}

func (srv *server) snapshotVM(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	runIDBodyCommand(w, r, func(o commands.Options, vid uuid.UUID, req snapshotRequest) (commands.Result, error) {
		return srv.commands.SnapshotVM(r.Context(), actorOf(r), o, p.TenantID, vid, req.Name,
			domain.SnapshotOptions{Description: req.Description, VMState: req.VMState})
	})
}

type snapshotResponse struct {
	Name        string    `json:"name"`
	Parent      *string   `json:"parent"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	VMState     bool      `json:"vmstate"`
	Status      string    `json:"status"`
}

// listSnapshots answers a VM's snapshots, oldest first; another tenant's
// VM is a 404 like a missing one.
func (srv *server) listSnapshots(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	vid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	if err := srv.awaitConsistency(w, r, projections.VMSnapshots{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	if !srv.vmVisible(w, r, p.TenantID, vid) {
		return
	}
	list, err := projections.ListSnapshots(r.Context(), srv.pool, p.TenantID, vid)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]snapshotResponse, len(list))
	for i, s := range list {
		out[i] = snapshotResponse{Name: s.Name, Description: s.Description, CreatedAt: s.CreatedAt.UTC(), VMState: s.VMState, Status: s.Status}
		if s.Parent != "" {
			parent := s.Parent
			out[i].Parent = &parent
		}
	}
	WriteList(w, out, "")
}

func (srv *server) rollbackSnapshot(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	name := chi.URLParam(r, "name")
	runIDCommand(w, r, func(o commands.Options, vid uuid.UUID) (commands.Result, error) {
		return srv.commands.RollbackSnapshot(r.Context(), actorOf(r), o, p.TenantID, vid, name)
	})
}

func (srv *server) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	name := chi.URLParam(r, "name")
	runIDCommand(w, r, func(o commands.Options, vid uuid.UUID) (commands.Result, error) {
		return srv.commands.DeleteSnapshot(r.Context(), actorOf(r), o, p.TenantID, vid, name)
	})
}

type backupRequest struct {
	Mode    string `json:"mode"`
	Storage string `json:"storage,omitempty"`
	Note    string `json:"note,omitempty"`
}

// backupVM requests a backup; the answer's id is the VM's (the aggregate
// the request is recorded on), its Location the backup's.
func (srv *server) backupVM(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	vid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	var req backupRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	var backupID uuid.UUID
	location := func(commands.Result) string { return "/v1/backups/" + backupID.String() }
	runCommand(w, r, req, location, func(o commands.Options) (commands.Result, error) {
		res, id, err := srv.commands.BackupVM(r.Context(), actorOf(r), o, p.TenantID, vid,
			commands.NewBackup{Mode: req.Mode, Storage: req.Storage, Note: req.Note})
		backupID = id
		return res, err
	})
}

type backupResponse struct {
	ID         string    `json:"id"`
	VMID       string    `json:"vm_id"`
	VolumeID   string    `json:"volume_id"`
	SizeBytes  int64     `json:"size_bytes"`
	Verified   bool      `json:"verified"`
	Mode       string    `json:"mode"`
	Storage    string    `json:"storage"`
	Node       string    `json:"node"`
	CreatedAt  time.Time `json:"created_at"`
	Note       string    `json:"note"`
	Status     string    `json:"status"`
	Error      string    `json:"error"`
	ScheduleID *string   `json:"schedule_id"`
}

func toBackupResponse(b projections.BackupView) backupResponse {
	out := backupResponse{ID: b.ID.String(), VMID: b.VMID.String(), VolumeID: b.VolumeID, SizeBytes: b.SizeBytes, Verified: b.Verified, Mode: b.Mode,
		Storage: b.Storage, Node: b.Node, CreatedAt: b.CreatedAt.UTC(), Note: b.Note, Status: b.Status, Error: b.Error}
	if b.ScheduleID != nil {
		s := b.ScheduleID.String()
		out.ScheduleID = &s
	}
	return out
}

// listVMBackups answers one VM's backups, newest first.
func (srv *server) listVMBackups(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	vid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	page, ok := srv.listPage(w, r, projections.Backups{}.Name())
	if !ok {
		return
	}
	if !srv.vmVisible(w, r, p.TenantID, vid) {
		return
	}
	srv.writeBackups(w, r, p.TenantID, &vid, page)
}

// vmVisible answers 404 (and false) unless the tenant's VM is in the VMs read
// model. A list of a VM's snapshots or backups reads two read models: the
// X-Consistency-Token waits for the VMs projector too, or a VM just created
// would be a 404 while its (empty) list was already current.
func (srv *server) vmVisible(w http.ResponseWriter, r *http.Request, tenant, vid uuid.UUID) bool {
	if err := srv.awaitConsistency(w, r, projections.VMs{}.Name()); err != nil {
		WriteError(w, r, err)
		return false
	}
	if _, err := projections.GetVM(r.Context(), srv.pool, tenant, vid); err != nil {
		WriteError(w, r, err)
		return false
	}
	return true
}

// listBackups answers the tenant's backups, newest first; ?vm_id= keeps
// one VM's.
func (srv *server) listBackups(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	var vm *uuid.UUID
	if s := r.URL.Query().Get("vm_id"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			WriteProblem(w, r, BadRequest("vm_id is invalid", map[string]string{"vm_id": "must be a UUID"}))
			return
		}
		vm = &id
	}
	page, ok := srv.listPage(w, r, projections.Backups{}.Name())
	if !ok {
		return
	}
	srv.writeBackups(w, r, p.TenantID, vm, page)
}

func (srv *server) writeBackups(w http.ResponseWriter, r *http.Request, tenant uuid.UUID, vm *uuid.UUID, page projections.Page) {
	list, next, err := projections.ListBackups(r.Context(), srv.pool, tenant, vm, page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]backupResponse, len(list))
	for i, b := range list {
		out[i] = toBackupResponse(b)
	}
	writeListWithCursor(w, r, out, next)
}

// backupOf reads the backup the path's {id} names (after waiting for a
// consistency token), or writes the problem and answers false.
func (srv *server) backupOf(w http.ResponseWriter, r *http.Request) (projections.BackupView, bool) {
	p := PrincipalFrom(r.Context())
	id, ok := pathUUID(w, r, "id")
	if !ok {
		return projections.BackupView{}, false
	}
	if err := srv.awaitConsistency(w, r, projections.Backups{}.Name()); err != nil {
		WriteError(w, r, err)
		return projections.BackupView{}, false
	}
	b, err := projections.GetBackup(r.Context(), srv.pool, p.TenantID, id)
	if err != nil {
		WriteError(w, r, err)
		return projections.BackupView{}, false
	}
	return b, true
}

func (srv *server) getBackup(w http.ResponseWriter, r *http.Request) {
	if b, ok := srv.backupOf(w, r); ok {
		writeJSON(w, http.StatusOK, toBackupResponse(b))
	}
}

func (srv *server) deleteBackup(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	b, ok := srv.backupOf(w, r)
	if !ok {
		return
	}
	if err := decodeEmptyBody(w, r); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, nil, nil, func(o commands.Options) (commands.Result, error) {
		return srv.commands.DeleteBackup(r.Context(), actorOf(r), o, p.TenantID, b.VMID, b.ID, "")
	})
}

type restoreRequest struct {
	Target      string `json:"target"`
	Name        string `json:"name,omitempty"`
	ConfirmName string `json:"confirm_name,omitempty"`
}

// restoreBackup restores in place (confirm_name must be the VM's name, or
// 422) or into a new VM (name required; vm:create needed too). The
// answer's id is the VM restored into.
func (srv *server) restoreBackup(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	b, ok := srv.backupOf(w, r)
	if !ok {
		return
	}
	var req restoreRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	switch req.Target {
	case "in_place":
	case "new":
		if !p.Can(auth.PermVMCreate) {
			WriteProblem(w, r, Forbidden("restoring into a new VM needs "+string(auth.PermVMCreate)))
			return
		}
	default:
		WriteProblem(w, r, BadRequest("target is invalid", map[string]string{"target": `must be "in_place" or "new"`}))
		return
	}
	runCommand(w, r, req, vmLocation, func(o commands.Options) (commands.Result, error) {
		return srv.commands.RestoreBackup(r.Context(), actorOf(r), o, p.TenantID, b.VMID, b.ID, req.Target == "in_place", req.Name, req.ConfirmName)
	})
}

type backupStorageRequest struct {
	Storage string `json:"storage"`
}

// setBackupStorage chooses where a cluster's backups go (platform admins).
func (srv *server) setBackupStorage(w http.ResponseWriter, r *http.Request) {
	runIDBodyCommand(w, r, func(o commands.Options, cid uuid.UUID, req backupStorageRequest) (commands.Result, error) {
		return srv.commands.SetClusterBackupStorage(r.Context(), actorOf(r), o, cid, req.Storage)
	})
}
