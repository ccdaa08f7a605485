package api

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

// IP address pools (platform administrators, cluster:manage): created per
// cluster and bridge; VMs take their addresses from them (vm_network.go in
// commands).

type createIPPoolRequest struct {
	Name        string   `json:"name"`
	ClusterID   string   `json:"cluster_id"`
	Bridge      string   `json:"bridge"`
	VLAN        *int     `json:"vlan,omitempty"`
	CIDR        string   `json:"cidr"`
	Gateway     string   `json:"gateway"`
	RangeStart  string   `json:"range_start"`
	RangeEnd    string   `json:"range_end"`
	Nameservers []string `json:"nameservers"`
	IPv6Prefix  string   `json:"ipv6_prefix,omitempty"`
	Default     bool     `json:"default,omitempty"`
}

type ipPoolResponse struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	ClusterID   string    `json:"cluster_id"`
	Bridge      string    `json:"bridge"`
	VLAN        *int      `json:"vlan"`
	CIDR        string    `json:"cidr"`
	Gateway     string    `json:"gateway"`
	RangeStart  string    `json:"range_start"`
	RangeEnd    string    `json:"range_end"`
	Nameservers []string  `json:"nameservers"`
	IPv6Prefix  *string   `json:"ipv6_prefix"`
	Default     bool      `json:"default"`
	Size        int       `json:"size"`
	Allocated   int       `json:"allocated"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
}

type poolAddressResponse struct {
	Address  string `json:"address"`
	VMID     string `json:"vm_id"`
	TenantID string `json:"tenant_id"`
}

func toIPPoolResponse(p projections.IPPoolView) ipPoolResponse {
	r := ipPoolResponse{ID: p.ID.String(), Name: p.Name, ClusterID: p.ClusterID.String(), Bridge: p.Bridge, CIDR: p.CIDR,
		Gateway: p.Gateway, RangeStart: p.RangeStart, RangeEnd: p.RangeEnd, Nameservers: p.Nameservers, Default: p.Default,
		Size: p.Size, Allocated: p.Allocated, Version: p.Version, CreatedAt: p.CreatedAt.UTC()}
	if p.VLAN > 0 {
		v := p.VLAN
		r.VLAN = &v
	}
	if p.IPv6Prefix != "" {
		s := p.IPv6Prefix
		r.IPv6Prefix = &s
	}
	if r.Nameservers == nil {
		r.Nameservers = []string{}
	}
	return r
}

func ipPoolLocation(res commands.Result) string { return "/v1/ip-pools/" + res.ID.String() }

func (srv *server) createIPPool(w http.ResponseWriter, r *http.Request) {
	var req createIPPoolRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	cluster, err := uuid.Parse(req.ClusterID)
	if err != nil || cluster == uuid.Nil {
		WriteProblem(w, r, BadRequest("cluster_id must be a UUID", map[string]string{"cluster_id": "must be the id of a registered cluster"}))
		return
	}
	runCommand(w, r, req, ipPoolLocation, func(o commands.Options) (commands.Result, error) {
		return srv.commands.CreateIPPool(r.Context(), actorOf(r), o, domain.IPPoolInput{Name: req.Name, ClusterID: cluster,
			Bridge: req.Bridge, VLAN: req.VLAN, CIDR: req.CIDR, Gateway: req.Gateway, RangeStart: req.RangeStart, RangeEnd: req.RangeEnd,
			Nameservers: req.Nameservers, IPv6Prefix: req.IPv6Prefix, Default: req.Default})
	})
}

func (srv *server) listIPPools(w http.ResponseWriter, r *http.Request) {
	page, ok := srv.listPage(w, r, projections.IPPools{}.Name())
	if !ok {
		return
	}
	pools, next, err := projections.ListIPPools(r.Context(), srv.pool, platformScope(r), page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]ipPoolResponse, len(pools))
	for i, p := range pools {
		out[i] = toIPPoolResponse(p)
	}
	writeListWithCursor(w, r, out, next)
}

func (srv *server) getIPPool(w http.ResponseWriter, r *http.Request) {
	id, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	if err := srv.awaitConsistency(w, r, projections.IPPools{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	p, err := projections.GetIPPool(r.Context(), srv.pool, platformScope(r), id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toIPPoolResponse(p))
}

// addressCursor is where the next page of a pool's addresses starts.
type addressCursor struct {
	After netip.Addr `json:"a"`
}

func (srv *server) listPoolAddresses(w http.ResponseWriter, r *http.Request) {
	id, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	limit, err := ParseLimit(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var cur addressCursor
	if _, err := CursorParam(r, &cur); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := srv.awaitConsistency(w, r, projections.IPPools{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	sc := platformScope(r)
	if _, err := projections.GetIPPool(r.Context(), srv.pool, sc, id); err != nil {
		WriteError(w, r, err)
		return
	}
	list, next, err := projections.ListPoolAddresses(r.Context(), srv.pool, sc, id, cur.After, limit)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]poolAddressResponse, len(list))
	for i, a := range list {
		out[i] = poolAddressResponse{Address: a.Address.String(), VMID: a.VMID.String(), TenantID: a.TenantID.String()}
	}
	cursor := ""
	if next != nil {
		if cursor, err = EncodeCursor(r, addressCursor{After: *next}); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	WriteList(w, out, cursor)
}
