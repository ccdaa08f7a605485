package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
)

// vmActionRoute is how a client asks for one of domain.VMActions.
type vmActionRoute struct {
	Method     string
	Path       string // with {id} for the VM
	Permission auth.Permission
	Body       bool // a JSON body carries the action's parameters
}

// vmActionRoutes are the routes of the actions that are not power actions;
// TestVMActionRoutes fails when an action of the table has none.
var vmActionRoutes = map[string]vmActionRoute{
	domain.ActionCreate:   {http.MethodPost, "/v1/vms", auth.PermVMCreate, true},
	domain.ActionResize:   {http.MethodPatch, "/v1/vms/{id}", auth.PermVMConfig, true},
	domain.ActionSnapshot: {http.MethodPost, "/v1/vms/{id}/snapshots", auth.PermVMSnapshot, true},
	domain.ActionDelete:   {http.MethodDelete, "/v1/vms/{id}", auth.PermVMDelete, false},
	// PATCH with cloud_init; a rebuild destroys the guest's disks, so it
	// takes what deleting takes.
	domain.ActionConfigure: {http.MethodPatch, "/v1/vms/{id}", auth.PermVMConfig, true},
	domain.ActionRebuild:   {http.MethodPost, "/v1/vms/{id}/actions/rebuild", auth.PermVMDelete, true},
	// backup_routes.go; a backup's own routes take the backup's {id}.
	domain.ActionSnapshotRollback: {http.MethodPost, "/v1/vms/{id}/snapshots/{name}/rollback", auth.PermVMSnapshot, false},
	domain.ActionSnapshotDelete:   {http.MethodDelete, "/v1/vms/{id}/snapshots/{name}", auth.PermVMSnapshot, false},
	domain.ActionBackup:           {http.MethodPost, "/v1/vms/{id}/backups", auth.PermVMSnapshot, true},
	domain.ActionBackupDelete:     {http.MethodDelete, "/v1/backups/{id}", auth.PermVMDelete, false},
	domain.ActionRestore:          {http.MethodPost, "/v1/backups/{id}/restore", auth.PermVMDelete, true},
}

// routeOf is the route that requests a.
func routeOf(a domain.VMAction) (vmActionRoute, bool) {
	if a.Power {
		return vmActionRoute{http.MethodPost, "/v1/vms/{id}/actions/" + a.Name, auth.PermVMPower, false}, true
	}
	r, ok := vmActionRoutes[a.Name]
	return r, ok
}

// vmActionResponse is one action of GET /v1/vm-actions: the domain's table
// with the route of each, which the console builds its buttons from.
type vmActionResponse struct {
	Name        string   `json:"name"`
	Method      string   `json:"method"`
	Path        string   `json:"path"`
	Permission  string   `json:"permission"`
	Body        bool     `json:"body"`
	AllowedFrom []string `json:"allowed_from"`
	Transient   *string  `json:"transient"`
	Settles     *string  `json:"settles"`
	Disruptive  bool     `json:"disruptive"`
}

// statusOrNull is s, or null for "" (the status stays).
func statusOrNull(s domain.VMStatus) *string {
	if s == "" {
		return nil
	}
	v := string(s)
	return &v
}

func toVMActionResponse(a domain.VMAction) vmActionResponse {
	route, _ := routeOf(a)
	from := make([]string, len(a.AllowedFrom))
	for i, s := range a.AllowedFrom {
		from[i] = string(s)
	}
	return vmActionResponse{Name: a.Name, Method: route.Method, Path: route.Path, Permission: string(route.Permission),
		Body: route.Body, AllowedFrom: from, Transient: statusOrNull(a.Transient), Settles: statusOrNull(a.Settles),
		Disruptive: a.Disruptive}
}

// listVMActions answers GET /v1/vm-actions: every action, in the table's
// order, all in one page.
func (srv *server) listVMActions(w http.ResponseWriter, _ *http.Request) {
	out := make([]vmActionResponse, len(domain.VMActions))
	for i, a := range domain.VMActions {
		out[i] = toVMActionResponse(a)
	}
	WriteList(w, out, "")
}

// vmAction answers POST /v1/vms/{id}/actions/{action}: the power actions of
// the table; any other name is a 404.
func (srv *server) vmAction(w http.ResponseWriter, r *http.Request) {
	a, ok := domain.LookupVMAction(chi.URLParam(r, "action"))
	if !ok || !a.Power {
		WriteProblem(w, r, NotFound())
		return
	}
	srv.actOnVM(w, r, a.Name)
}
