package api

import (
	"cmp"
	"encoding/json"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

type createVMRequest struct {
	Name      string         `json:"name"`
	Kind      string         `json:"kind"`
	Cores     int            `json:"cores"`
	MemoryMB  int            `json:"memory_mb"`
	DiskGB    int            `json:"disk_gb"`
	Template  string         `json:"template"`
	ClusterID string         `json:"cluster_id,omitempty"`
	CloudInit *cloudInitBody `json:"cloud_init,omitempty"`
	// Network picks the pool of the VM's address (vm_network.go).
	Network *vmNetworkRequest `json:"network,omitempty"`
}

type resizeVMRequest struct {
	Cores     *int            `json:"cores"`
	MemoryMB  *int            `json:"memory_mb"`
	DiskGB    *int            `json:"disk_gb"`
	CloudInit *cloudInitPatch `json:"cloud_init"`
}

type vmResponse struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Cores     int       `json:"cores"`
	MemoryMB  int       `json:"memory_mb"`
	DiskGB    int       `json:"disk_gb"`
	Status    string    `json:"status"`
	Node      string    `json:"node"`
	VMID      int       `json:"vmid"`
	Template  string    `json:"template"`
	ClusterID *string   `json:"cluster_id"`
	Pending   string    `json:"pending_action"`
	Snapshots []string  `json:"snapshots"`
	LastError string    `json:"last_error"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// CloudInit and PendingChanges: vm_access_routes.go.
	CloudInit      *projections.VMCloudInitView `json:"cloud_init"`
	PendingChanges bool                         `json:"pending_changes"`
	// IPAddresses: from the pool and as the guest reports them.
	IPAddresses []domain.IPAddress `json:"ip_addresses"`
}

func toVMResponse(v projections.VMView) vmResponse {
	r := vmResponse{ID: v.ID.String(), Name: v.Name, Kind: v.Kind, Cores: v.Cores, MemoryMB: v.MemoryMB, DiskGB: v.DiskGB,
		Status: v.Status, Node: v.Node, VMID: v.VMID, Template: v.Template, Pending: v.Pending, Snapshots: v.Snapshots,
		LastError: v.LastError, Version: v.Version, CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(),
		CloudInit: cloudInitOf(v), PendingChanges: v.PendingChanges}
	if v.ClusterID != nil {
		s := v.ClusterID.String()
		r.ClusterID = &s
	}
	if r.Snapshots == nil {
		r.Snapshots = []string{}
	}
	r.IPAddresses = ipAddressesOf(v)
	return r
}

func (srv *server) createVM(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	var req createVMRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	var cluster uuid.UUID
	if req.ClusterID != "" {
		c, err := uuid.Parse(req.ClusterID)
		if err != nil {
			WriteProblem(w, r, BadRequest("cluster_id must be a UUID", map[string]string{"cluster_id": "must be a UUID"}))
			return
		}
		cluster = c
	}
	ci, err := req.CloudInit.toCloudInitRequest()
	if err != nil {
		WriteError(w, r, err)
		return
	}
	pool, ok := req.Network.poolID(w, r)
	if !ok {
		return
	}
	runCommand(w, r, req, vmLocation, func(o commands.Options) (commands.Result, error) {
		return srv.commands.CreateVM(r.Context(), actorOf(r), o, commands.NewVM{TenantID: p.TenantID, Name: req.Name,
			Kind: domain.VMKind(req.Kind), Spec: domain.VMSpec{Cores: req.Cores, MemoryMB: req.MemoryMB, DiskGB: req.DiskGB},
			Template: req.Template, ClusterID: cluster, CloudInit: ci, IPPoolID: pool})
	})
}

func vmLocation(res commands.Result) string { return "/v1/vms/" + res.ID.String() }

var vmStatuses = map[string]bool{"": true, "provisioning": true, "stopped": true, "starting": true, "running": true,
	"stopping": true, "deleting": true, "deleted": true, "failed": true}

func (srv *server) listVMs(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	q := r.URL.Query()
	f := projections.VMFilter{Status: q.Get("status"), Name: q.Get("name")}
	if !vmStatuses[f.Status] {
		WriteProblem(w, r, BadRequest("status is invalid", map[string]string{"status": "one of provisioning, stopped, starting, running, stopping, deleting, deleted, failed"}))
		return
	}
	if len(f.Name) > 63 {
		WriteProblem(w, r, BadRequest("name is invalid", map[string]string{"name": "at most 63 characters"}))
		return
	}
	page, ok := srv.listPage(w, r, projections.VMs{}.Name())
	if !ok {
		return
	}
	vms, next, err := projections.ListVMs(r.Context(), srv.pool, p.TenantID, f, page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]vmResponse, len(vms))
	for i, v := range vms {
		out[i] = toVMResponse(v)
	}
	writeListWithCursor(w, r, out, next)
}

func (srv *server) getVM(w http.ResponseWriter, r *http.Request) {
	if asOf(w, r, srv.getVMAsOf) {
		return
	}
	p := PrincipalFrom(r.Context())
	vid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	if err := srv.awaitConsistency(w, r, projections.VMs{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	v, err := projections.GetVM(r.Context(), srv.pool, p.TenantID, vid)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toVMResponse(v))
}

func (srv *server) resizeVM(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	runIDBodyCommand(w, r, func(o commands.Options, vid uuid.UUID, req resizeVMRequest) (commands.Result, error) {
		if req.CloudInit != nil {
			if req.Cores != nil || req.MemoryMB != nil || req.DiskGB != nil {
				return commands.Result{}, BadRequest("size and cloud_init change apart", map[string]string{"cloud_init": "change the size and cloud_init in separate requests"})
			}
			return srv.updateVMCloudInit(r, o, vid, req.CloudInit)
		}
		return srv.commands.ResizeVM(r.Context(), actorOf(r), o, p.TenantID, vid, req.Cores, req.MemoryMB, req.DiskGB)
	})
}

func (srv *server) deleteVM(w http.ResponseWriter, r *http.Request) {
	srv.actOnVM(w, r, domain.ActionDelete)
}

// actOnVM asks for action (a power action or the deletion) on the VM the
// path names.
func (srv *server) actOnVM(w http.ResponseWriter, r *http.Request, action string) {
	p := PrincipalFrom(r.Context())
	runIDCommand(w, r, func(o commands.Options, vid uuid.UUID) (commands.Result, error) {
		return srv.commands.ActOnVM(r.Context(), actorOf(r), o, p.TenantID, vid, action)
	})
}

// eventResponse is one event of a history, audit or live feed answer
// (API.md), its data with what no reader is given redacted
// (domain.RedactServed).
type eventResponse struct {
	Position      int64             `json:"position"`
	EventID       string            `json:"event_id"`
	StreamID      string            `json:"stream_id"`
	StreamVersion int64             `json:"stream_version"`
	Type          string            `json:"type"`
	TenantID      string            `json:"tenant_id"`
	ActorID       *string           `json:"actor_id"`
	CorrelationID string            `json:"correlation_id"`
	CausationID   *string           `json:"causation_id"`
	RecordedAt    time.Time         `json:"recorded_at"`
	Data          json.RawMessage   `json:"data"`
	Metadata      eventlog.Metadata `json:"metadata"`
}

func optionalID(id uuid.UUID) *string {
	if id == uuid.Nil {
		return nil
	}
	s := id.String()
	return &s
}

func toEventResponse(e eventlog.Event) eventResponse {
	return eventResponse{Position: e.Position.GlobalPosition, EventID: e.EventID.String(), StreamID: e.Stream.String(),
		StreamVersion: e.StreamVersion, Type: e.Type, TenantID: e.TenantID.String(), ActorID: optionalID(e.ActorID),
		CorrelationID: e.CorrelationID.String(), CausationID: optionalID(e.CausationID), RecordedAt: e.RecordedAt.UTC(),
		Data: domain.RedactServed(e.Data), Metadata: e.Metadata}
}

// eventFor is e as p may see it: the request metadata of other users'
// events (client IP, user agent, session) only with audit:read.
func eventFor(p *Principal, e eventlog.Event) eventResponse {
	if p == nil || !auth.SeesEventMetadata(p.Can(auth.PermAuditRead), p.UserID, e.ActorID) {
		e.Metadata = eventlog.Metadata{}
	}
	return toEventResponse(e)
}

// historyCursor is where the next page of a VM's history starts.
type historyCursor struct {
	Version int64 `json:"v"`
}

// vmHistory answers a VM's events, oldest first, paginated by version.
func (srv *server) vmHistory(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	vid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	limit, err := ParseLimit(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var from int64 = 1
	var cursor historyCursor
	if has, err := CursorParam(r, &cursor); err != nil {
		WriteError(w, r, err)
		return
	} else if has {
		from = cursor.Version
	}
	stream := eventlog.StreamID{Type: domain.StreamVM, ID: vid}
	events, err := srv.store.ReadStream(r.Context(), p.TenantID, stream, from, limit+1)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if from == 1 && len(events) == 0 {
		WriteProblem(w, r, NotFound())
		return
	}
	writeEventPage(w, r, events, limit, func(last eventlog.Event) any {
		return historyCursor{Version: last.StreamVersion + 1}
	})
}

// writeEventPage answers events, read with room for one more than limit, as
// a list page: when that one came, the page stops at limit and next(last
// event of the page), where the following page starts, is signed as its
// cursor.
func writeEventPage(w http.ResponseWriter, r *http.Request, events []eventlog.Event, limit int,
	next func(last eventlog.Event) any) {
	cursor := ""
	if len(events) > limit {
		events = events[:limit]
		var err error
		if cursor, err = EncodeCursor(r, next(events[limit-1])); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	p := PrincipalFrom(r.Context())
	out := make([]eventResponse, len(events))
	for i, e := range events {
		out[i] = eventFor(p, e)
	}
	WriteList(w, out, cursor)
}

type createClusterRequest struct {
	Name           string `json:"name"`
	APIURL         string `json:"api_url"`
	TokenID        string `json:"token_id"`
	TokenSecret    string `json:"token_secret"`
	InsecureTLS    bool   `json:"insecure_tls"`
	TLSFingerprint string `json:"tls_fingerprint"`
}

type clusterResponse struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	APIURL      string `json:"api_url"`
	TokenID     string `json:"token_id"`
	InsecureTLS bool   `json:"insecure_tls"`
	// TLSFingerprint is the pinned certificate's SHA-256, to compare with
	// `pvenode cert info`; empty when the certificate is CA-signed.
	TLSFingerprint string `json:"tls_fingerprint"`
	// BackupStorage is where the cluster's backups go (backup_routes.go).
	BackupStorage string    `json:"backup_storage"`
	Nodes         []nodeDTO `json:"nodes"`
	CreatedAt     time.Time `json:"created_at"`
}

type nodeDTO struct {
	Name         string `json:"name"`
	Online       bool   `json:"online"`
	Cores        int    `json:"cores"`
	MemoryMB     int64  `json:"memory_mb"`
	FreeMemoryMB int64  `json:"free_memory_mb"`
	DiskGB       int64  `json:"disk_gb"`
	FreeDiskGB   int64  `json:"free_disk_gb"`
}

func (srv *server) createCluster(w http.ResponseWriter, r *http.Request) {
	var req createClusterRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	// The fingerprint leaves the secret out: it is stored, the secret never is.
	fingerprint := createClusterRequest{Name: req.Name, APIURL: req.APIURL, TokenID: req.TokenID, InsecureTLS: req.InsecureTLS, TLSFingerprint: req.TLSFingerprint}
	runCommand(w, r, fingerprint, func(res commands.Result) string { return "/v1/clusters/" + res.ID.String() },
		func(o commands.Options) (commands.Result, error) {
			return srv.commands.RegisterCluster(r.Context(), actorOf(r), o, commands.NewCluster{Name: req.Name, APIURL: req.APIURL,
				TokenID: req.TokenID, TokenSecret: req.TokenSecret, InsecureTLS: req.InsecureTLS, TLSFingerprint: req.TLSFingerprint})
		})
}

func toNodes(c projections.ClusterView) []nodeDTO {
	out := make([]nodeDTO, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = nodeDTO{Name: n.Name, Online: n.Online, Cores: n.Cores, MemoryMB: n.MemoryMB, FreeMemoryMB: n.FreeMemoryMB,
			DiskGB: n.DiskGB, FreeDiskGB: n.FreeDiskGB}
	}
	return out
}

func (srv *server) listClusters(w http.ResponseWriter, r *http.Request) {
	if err := srv.awaitConsistency(w, r, projections.Clusters{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	clusters, err := projections.ListClusters(r.Context(), srv.pool, platformScope(r))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]clusterResponse, len(clusters))
	for i, c := range clusters {
		out[i] = clusterResponse{ID: c.ID.String(), Name: c.Name, APIURL: c.APIURL, TokenID: c.TokenID, InsecureTLS: c.InsecureTLS,
			TLSFingerprint: c.TLSFingerprint, BackupStorage: cmp.Or(c.BackupStorage, domain.DefaultBackupStorage), Nodes: toNodes(c),
			CreatedAt: c.CreatedAt.UTC()}
	}
	WriteList(w, out, "")
}

func (srv *server) clusterNodes(w http.ResponseWriter, r *http.Request) {
	cid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	clusters, err := projections.ListClusters(r.Context(), srv.pool, platformScope(r))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	for _, c := range clusters {
		if c.ID == cid {
			WriteList(w, toNodes(c), "")
			return
		}
	}
	WriteProblem(w, r, NotFound())
}

type templateResponse struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	OS        string `json:"os"`
	ClusterID string `json:"cluster_id"`
}

func (srv *server) listTemplates(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	tpls, err := projections.ListTemplates(r.Context(), srv.pool, p.TenantID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]templateResponse, len(tpls))
	for i, t := range tpls {
		out[i] = templateResponse{Name: t.Name, Kind: t.Kind, OS: t.OS, ClusterID: t.ClusterID.String()}
	}
	WriteList(w, out, "")
}
