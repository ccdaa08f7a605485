package api

import (
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

// Time travel: GET /v1/vms/{id}, /v1/users/{id} and /v1/tenants/{id} take
// ?as_of=<RFC 3339>. The aggregate is rebuilt from its own events recorded at
// or before that instant, straight from the event store (no read model, so no
// X-Consistency-Token), and answered in the read model's shape.

// rfc3339 is RFC 3339's date-time syntax. time.Parse alone is laxer: it
// takes a one-digit hour and offsets up to +24:60 (found by FuzzParseInstant).
var rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

var errNotRFC3339 = errors.New("not an RFC 3339 date-time")

// parseInstant reads an RFC 3339 instant given as a bound (as_of, since,
// until). The event store and the commands take the zero time.Time as "no
// bound", and 0001-01-01T00:00:00Z parses to exactly that, so it is moved
// 1 ns later: still before every event, and a bound like any other.
func parseInstant(v string) (time.Time, error) {
	if !rfc3339.MatchString(v) {
		return time.Time{}, errNotRFC3339
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err == nil && t.IsZero() {
		t = t.Add(time.Nanosecond)
	}
	return t, err
}

// asOf serves the request with at when it has ?as_of=, reporting whether it
// did; an invalid instant is a 400 naming as_of.
func asOf(w http.ResponseWriter, r *http.Request, serve func(w http.ResponseWriter, r *http.Request, at time.Time)) bool {
	q := r.URL.Query()
	if !q.Has("as_of") {
		return false
	}
	at, err := parseInstant(q.Get("as_of"))
	if err != nil || len(q["as_of"]) > 1 {
		WriteProblem(w, r, BadRequest("as_of is invalid", map[string]string{"as_of": "must be one RFC 3339 date-time, e.g. 2024-05-01T12:00:00Z"}))
		return true
	}
	serve(w, r, at)
	return true
}

func (srv *server) getVMAsOf(w http.ResponseWriter, r *http.Request, at time.Time) {
	p := PrincipalFrom(r.Context())
	vid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	v, err := srv.commands.LoadVMAsOf(r.Context(), p.TenantID, vid, at)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toVMResponse(vmViewOf(v)))
}

func (srv *server) getUserAsOf(w http.ResponseWriter, r *http.Request, at time.Time) {
	tenant, uid, ok := targetUser(w, r)
	if !ok {
		return
	}
	u, err := srv.commands.LoadUserAsOf(r.Context(), tenant, uid, at)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUserResponse(userViewOf(u)))
}

func (srv *server) getTenantAsOf(w http.ResponseWriter, r *http.Request, at time.Time) {
	p := PrincipalFrom(r.Context())
	tid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	// The read model's row-level security shows a tenant to its own members
	// and to platform administrators; the event store is read as the system
	// here, so the same rule is checked first.
	if tid != p.TenantID && !p.IsPlatformAdmin() {
		WriteProblem(w, r, NotFound())
		return
	}
	t, err := srv.commands.LoadTenantAsOf(r.Context(), tid, at)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	u, err := srv.commands.TenantUsageAsOf(r.Context(), tid, at)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTenantResponse(tenantViewOf(t),
		projections.Usage{VMs: u.VMs, Cores: u.Cores, MemoryMB: int64(u.MemoryMB), DiskGB: int64(u.DiskGB)}))
}

// vmViewOf is the read-model row the VM projector would hold for v.
func vmViewOf(v *domain.VM) projections.VMView {
	var cluster *uuid.UUID
	if v.ClusterID != uuid.Nil {
		c := v.ClusterID
		cluster = &c
	}
	return projections.VMView{ID: v.ID, TenantID: v.TenantID, Name: v.Name, Kind: string(v.Kind), Cores: v.Spec.Cores,
		MemoryMB: v.Spec.MemoryMB, DiskGB: v.Spec.DiskGB, Template: v.Template, ClusterID: cluster, Node: v.Node, VMID: v.VMID,
		Status: string(v.Status), Pending: v.Pending, LastError: v.LastError, Snapshots: v.Snapshots, Version: v.Version,
		CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, PendingChanges: v.PendingChanges, CloudInit: vmCloudInitViewOf(v.CloudInit),
		IPAddresses: v.IPAddresses()}
}

func vmCloudInitViewOf(c *domain.CloudInit) *projections.VMCloudInitView {
	if c == nil {
		return nil
	}
	return &projections.VMCloudInitView{User: c.User, Hostname: c.Hostname, SSHKeyFingerprints: c.SSHKeyFingerprints}
}

// userViewOf is the read-model row the users projector would hold for u.
func userViewOf(u *domain.User) projections.UserView {
	return projections.UserView{ID: u.ID, TenantID: u.TenantID, Email: u.Email, DisplayName: u.DisplayName, Roles: u.Roles,
		Status: string(u.Status), Version: u.Version, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// tenantViewOf is the read-model row the tenants projector would hold for t.
func tenantViewOf(t *domain.Tenant) projections.TenantView {
	return projections.TenantView{ID: t.ID, Name: t.Name, Status: string(t.Status), Quota: t.Quota, Version: t.Version,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}
