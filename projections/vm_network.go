package projections

import (
	"context"
	"encoding/json"

	"github.com/accountdb/accountdb/domain"
	"github.com/jackc/pgx/v5"
)

// A VM's pool network and guest-reported addresses, kept in the vms row's
// network and guest_addresses columns beside what saveVMRow writes.

func loadVMNetwork(ctx context.Context, tx pgx.Tx, v *domain.VM) error {
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT network, guest_addresses FROM vms WHERE tenant_id = $1 AND vm_id = $2`, v.TenantID, v.ID).
		Scan(&raw, &v.GuestAddresses); err != nil {
		return err
	}
	var err error
	v.Network, err = decodeNetwork(raw)
	return err
}

func saveVMNetwork(ctx context.Context, tx pgx.Tx, v *domain.VM) error {
	var raw []byte
	if v.Network != nil {
		var err error
		if raw, err = json.Marshal(v.Network); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `UPDATE vms SET network = $3, guest_addresses = $4 WHERE tenant_id = $1 AND vm_id = $2`,
		v.TenantID, v.ID, raw, nonNil(v.GuestAddresses))
	return err
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
