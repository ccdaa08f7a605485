package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
)

// IPPools keeps the ip_pools and ip_pool_addresses read models from the
// pools' streams (platform tenant): each pool with its size and how many
// addresses it has given out, and each address held with its VM.
type IPPools struct{}

var _ Projector = IPPools{}

// Name implements Projector.
func (IPPools) Name() string { return "ip_pools" }

// Tables implements Projector.
func (IPPools) Tables() []string { return []string{"ip_pools", "ip_pool_addresses"} }

// EventTypes implements Projector.
func (IPPools) EventTypes() []string {
	return typesOf(&domain.IPPoolCreated{}, &domain.IPAddressAllocated{}, &domain.IPAddressReleased{})
}

// Apply implements Projector.
func (IPPools) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamIPPool {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("ip_pools: %w", err)
	}
	pool := e.Stream.ID
	switch ev := de.(type) {
	case *domain.IPPoolCreated:
		c := ev.IPPoolConfig
		size := (&domain.IPPool{Config: c}).Size()
		_, err = tx.Exec(ctx, `INSERT INTO ip_pools (tenant_id, pool_id, name, cluster_id, bridge, vlan, cidr, gateway, range_start, range_end,
				nameservers, ipv6_prefix, is_default, size, version, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			e.TenantID, pool, c.Name, c.ClusterID, c.Bridge, c.VLAN, c.CIDR, c.Gateway, c.RangeStart, c.RangeEnd,
			nonNil(c.Nameservers), c.IPv6Prefix, c.Default, size, e.StreamVersion, e.RecordedAt)
		return err
	case *domain.IPAddressAllocated:
		for _, a := range []string{ev.IPv4, ev.IPv6} {
			if a == "" {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO ip_pool_addresses (tenant_id, pool_id, address, vm_id, vm_tenant_id, allocated_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, e.TenantID, pool, a, ev.VMID, ev.TenantID, e.RecordedAt); err != nil {
				return err
			}
		}
	case *domain.IPAddressReleased:
		if _, err := tx.Exec(ctx, `DELETE FROM ip_pool_addresses WHERE tenant_id = $1 AND pool_id = $2 AND vm_id = $3`,
			e.TenantID, pool, ev.VMID); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE ip_pools SET version = $3,
			allocated = (SELECT count(*) FROM ip_pool_addresses a WHERE a.tenant_id = $1 AND a.pool_id = $2 AND family(a.address) = 4)
		WHERE tenant_id = $1 AND pool_id = $2`, e.TenantID, pool, e.StreamVersion)
	return err
}
