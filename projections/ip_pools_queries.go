package projections

import (
	"context"
	"net/netip"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// IPPoolView is a row of the ip_pools read model.
type IPPoolView struct {
	ID          uuid.UUID
	Name        string
	ClusterID   uuid.UUID
	Bridge      string
	VLAN        int
	CIDR        string
	Gateway     string
	RangeStart  string
	RangeEnd    string
	Nameservers []string
	IPv6Prefix  string
	Default     bool
	Size        int
	Allocated   int
	Version     int64
	CreatedAt   time.Time
}

const ipPoolColumns = `pool_id, name, cluster_id, bridge, vlan, cidr, gateway, range_start, range_end, nameservers, ipv6_prefix,
	is_default, size, allocated, version, created_at`

func scanIPPool(row pgx.CollectableRow) (IPPoolView, error) {
	var p IPPoolView
	err := row.Scan(&p.ID, &p.Name, &p.ClusterID, &p.Bridge, &p.VLAN, &p.CIDR, &p.Gateway, &p.RangeStart, &p.RangeEnd,
		&p.Nameservers, &p.IPv6Prefix, &p.Default, &p.Size, &p.Allocated, &p.Version, &p.CreatedAt)
	return p, err
}

// ListIPPools lists the platform's pools, oldest first.
func ListIPPools(ctx context.Context, pool *pgxpool.Pool, sc tenantdb.Scope, page Page) ([]IPPoolView, *PageKey, error) {
	after, id, limit := page.args()
	return queryPage(ctx, pool, sc, page, scanIPPool, func(p IPPoolView) PageKey { return PageKey{p.CreatedAt, p.ID} },
		`SELECT `+ipPoolColumns+` FROM ip_pools
		WHERE tenant_id = $1 AND (created_at, pool_id) > ($2, $3) ORDER BY created_at, pool_id LIMIT $4`,
		domain.PlatformTenant, after, id, limit)
}

// GetIPPool reads one pool; domain.ErrNotFound otherwise.
func GetIPPool(ctx context.Context, pool *pgxpool.Pool, sc tenantdb.Scope, id uuid.UUID) (IPPoolView, error) {
	return queryOne(ctx, pool, sc, scanIPPool,
		`SELECT `+ipPoolColumns+` FROM ip_pools WHERE tenant_id = $1 AND pool_id = $2`, domain.PlatformTenant, id)
}

// PoolAddressView is one address a pool has given out.
type PoolAddressView struct {
	Address  netip.Addr
	VMID     uuid.UUID
	TenantID uuid.UUID
}

// ListPoolAddresses lists the addresses pool id holds, in address order
// (IPv4 first), starting after after (invalid: from the first); the next
// page starts after the last address returned, when there is one.
func ListPoolAddresses(ctx context.Context, pool *pgxpool.Pool, sc tenantdb.Scope, id uuid.UUID, after netip.Addr, limit int) ([]PoolAddressView, *netip.Addr, error) {
	var from *netip.Addr
	if after.IsValid() {
		from = &after
	}
	out, err := queryRows(ctx, pool, sc, func(row pgx.CollectableRow) (PoolAddressView, error) {
		var a PoolAddressView
		var p netip.Prefix
		err := row.Scan(&p, &a.VMID, &a.TenantID)
		a.Address = p.Addr()
		return a, err
	}, `SELECT address, vm_id, vm_tenant_id FROM ip_pool_addresses
		WHERE tenant_id = $1 AND pool_id = $2 AND ($3::inet IS NULL OR address > $3::inet) ORDER BY address LIMIT $4`,
		domain.PlatformTenant, id, from, limit+1)
	if err != nil || len(out) <= limit {
		return out, nil, err
	}
	out = out[:limit]
	next := out[limit-1].Address
	return out, &next, nil
}
