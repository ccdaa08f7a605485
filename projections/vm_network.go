package projections

import (
	"encoding/json"
	"slices"

	"github.com/accountdb/accountdb/domain"
)

// A VM's pool network and guest-reported addresses, kept in the vms row's
// network and guest_addresses columns beside what vmRow.save writes.

func (r *vmRow) saveNetwork(v *domain.VM) error {
	raw, err := marshalNetwork(v.Network)
	if err != nil {
		return err
	}
	r.Network, r.GuestAddresses = raw, slices.Clone(nonNil(v.GuestAddresses))
	return nil
}

func decodeNetwork(raw []byte) (*domain.VMNetwork, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var n domain.VMNetwork
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	return &n, nil
}
