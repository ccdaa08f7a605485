package api

import (
	"context"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/tenantdb"
)

type quotaBody struct {
	MaxVMs      int `json:"max_vms"`
	MaxCores    int `json:"max_cores"`
	MaxMemoryMB int `json:"max_memory_mb"`
	MaxDiskGB   int `json:"max_disk_gb"`
	// MaxIPv4 bounds pool addresses; left out, it is max_vms.
	MaxIPv4 int `json:"max_ipv4,omitempty"`
	// Left out (0), the defaults (domain.Quota.SnapshotLimit, BackupsGBLimit).
	MaxSnapshotsPerVM int `json:"max_snapshots_per_vm,omitempty"`
	MaxBackupsGB      int `json:"max_backups_gb,omitempty"`
}

func (q quotaBody) toDomain() domain.Quota {
	return domain.Quota{MaxVMs: q.MaxVMs, MaxCores: q.MaxCores, MaxMemoryMB: q.MaxMemoryMB, MaxDiskGB: q.MaxDiskGB, MaxIPv4: q.MaxIPv4,
		MaxSnapshotsPerVM: q.MaxSnapshotsPerVM, MaxBackupsGB: q.MaxBackupsGB}
}

type createTenantRequest struct {
	Name  string    `json:"name"`
	Quota quotaBody `json:"quota"`
}

type updateTenantRequest struct {
	Name  *string    `json:"name"`
	Quota *quotaBody `json:"quota"`
}

type usageBody struct {
	VMs      int `json:"vms"`
	Cores    int `json:"cores"`
	MemoryMB int `json:"memory_mb"`
	DiskGB   int `json:"disk_gb"`
	IPv4     int `json:"ipv4"`
}

type tenantResponse struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Quota     quotaBody `json:"quota"`
	Usage     usageBody `json:"usage"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// toTenantResponse answers a tenant with what it has allocated (VMs still
// provisioning included, as the quota counts them).
func toTenantResponse(t projections.TenantView, u projections.Usage) tenantResponse {
	q := t.Quota
	return tenantResponse{ID: t.ID.String(), Name: t.Name, Status: t.Status,
		Quota: quotaBody{MaxVMs: q.MaxVMs, MaxCores: q.MaxCores, MaxMemoryMB: q.MaxMemoryMB, MaxDiskGB: q.MaxDiskGB,
			MaxIPv4: q.IPv4Limit(), MaxSnapshotsPerVM: q.SnapshotLimit(), MaxBackupsGB: q.BackupsGBLimit()},
		Usage:   usageBody{VMs: u.VMs, Cores: u.Cores, MemoryMB: int(u.MemoryMB), DiskGB: int(u.DiskGB), IPv4: u.IPv4},
		Version: t.Version, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

func platformScope(r *http.Request) tenantdb.Scope {
	p := PrincipalFrom(r.Context())
	return tenantdb.Scope{TenantID: p.TenantID, ActorID: p.UserID, PlatformAdmin: p.IsPlatformAdmin()}
}

func (srv *server) createTenant(w http.ResponseWriter, r *http.Request) {
	var req createTenantRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, req, func(res commands.Result) string { return "/v1/tenants/" + res.ID.String() }, func(o commands.Options) (commands.Result, error) {
		return srv.commands.CreateTenant(r.Context(), actorOf(r), o, req.Name, req.Quota.toDomain())
	})
}

func (srv *server) listTenants(w http.ResponseWriter, r *http.Request) {
	page, ok := srv.listPage(w, r, projections.Tenants{}.Name())
	if !ok {
		return
	}
	sc := platformScope(r)
	tenants, next, err := projections.ListTenants(r.Context(), srv.pool, sc, page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	ids := make([]uuid.UUID, len(tenants))
	for i, t := range tenants {
		ids[i] = t.ID
	}
	usage, err := projections.TenantUsages(r.Context(), srv.pool, sc, ids...)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]tenantResponse, len(tenants))
	for i, t := range tenants {
		out[i] = toTenantResponse(t, usage[t.ID])
	}
	writeListWithCursor(w, r, out, next)
}

// listPage reads a keyset-paginated list's ?limit= and ?cursor=, then waits
// for the projector behind it to reach the request's X-Consistency-Token.
// It answers the problem itself and reports false when the request is bad.
func (srv *server) listPage(w http.ResponseWriter, r *http.Request, projector string) (projections.Page, bool) {
	limit, err := ParseLimit(r)
	if err != nil {
		WriteError(w, r, err)
		return projections.Page{}, false
	}
	page := projections.Page{Limit: limit}
	var after projections.PageKey
	hasCursor, err := CursorParam(r, &after)
	if err != nil {
		WriteError(w, r, err)
		return projections.Page{}, false
	}
	if hasCursor {
		page.After = &after
	}
	if err := srv.awaitConsistency(w, r, projector); err != nil {
		WriteError(w, r, err)
		return projections.Page{}, false
	}
	return page, true
}

// writeListWithCursor answers a list page, signing where the next one starts.
func writeListWithCursor[T any](w http.ResponseWriter, r *http.Request, items []T, next *projections.PageKey) {
	cursor := ""
	if next != nil {
		var err error
		if cursor, err = EncodeCursor(r, next); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	WriteList(w, items, cursor)
}

func (srv *server) getTenant(w http.ResponseWriter, r *http.Request) {
	if asOf(w, r, srv.getTenantAsOf) {
		return
	}
	tid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	if err := srv.awaitConsistency(w, r, projections.Tenants{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	sc := platformScope(r)
	t, err := projections.GetTenant(r.Context(), srv.pool, sc, tid)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	usage, err := projections.TenantUsages(r.Context(), srv.pool, sc, t.ID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTenantResponse(t, usage[t.ID]))
}

func (srv *server) updateTenant(w http.ResponseWriter, r *http.Request) {
	runIDBodyCommand(w, r, func(o commands.Options, tid uuid.UUID, req updateTenantRequest) (commands.Result, error) {
		var quota *domain.Quota
		if req.Quota != nil {
			q := req.Quota.toDomain()
			quota = &q
		}
		return srv.commands.UpdateTenant(r.Context(), actorOf(r), o, tid, req.Name, quota)
	})
}

func (srv *server) suspendTenant(w http.ResponseWriter, r *http.Request) {
	srv.tenantTransition(w, r, srv.commands.SuspendTenant)
}

func (srv *server) resumeTenant(w http.ResponseWriter, r *http.Request) {
	srv.tenantTransition(w, r, srv.commands.ResumeTenant)
}

func (srv *server) tenantTransition(w http.ResponseWriter, r *http.Request,
	do func(ctx context.Context, a commands.Actor, o commands.Options, id uuid.UUID) (commands.Result, error)) {
	runIDCommand(w, r, func(o commands.Options, tid uuid.UUID) (commands.Result, error) {
		return do(r.Context(), actorOf(r), o, tid)
	})
}
