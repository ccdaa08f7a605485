package api

import (
	"net/http"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

// vmNetworkRequest is POST /v1/vms's network: which pool the VM's address
// comes from (left out: the cluster's default pool, if it has one).
type vmNetworkRequest struct {
	IPPoolID string `json:"ip_pool_id,omitempty"`
}

// poolID reads the pool named, answering the problem itself when it is not
// a UUID; uuid.Nil when none is named.
func (n *vmNetworkRequest) poolID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	if n == nil || n.IPPoolID == "" {
		return uuid.Nil, true
	}
	id, err := uuid.Parse(n.IPPoolID)
	if err != nil || id == uuid.Nil {
		WriteProblem(w, r, BadRequest("network.ip_pool_id must be a UUID", map[string]string{"network.ip_pool_id": "must be the id of an address pool"}))
		return uuid.Nil, false
	}
	return id, true
}

func ipAddressesOf(v projections.VMView) []domain.IPAddress {
	if v.IPAddresses == nil {
		return []domain.IPAddress{}
	}
	return v.IPAddresses
}
