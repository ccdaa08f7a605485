package projections

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// VMView is a row of the vms read model.
type VMView struct {
	ID        uuid.UUID
	TenantID  uuid.UUID
	Name      string
	Kind      string
	Cores     int
	MemoryMB  int
	DiskGB    int
	Template  string
	ClusterID *uuid.UUID
	Node      string
	VMID      int
	Status    string
	Pending   string
	LastError string
	Snapshots []string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// CloudInit is nil for a VM without cloud-init settings.
	CloudInit      *VMCloudInitView
	PendingChanges bool
	// IPAddresses: the pool's and the guest's (domain.VM.IPAddresses).
	IPAddresses []domain.IPAddress
}

// vmColumns reads the two jsonb columns by field, the fields VMView
// shows: PostgreSQL already holds them parsed, and encoding/json decoding
// the documents again (a uuid.UUID, the nameservers, reflection on every
// key) was most of a page's row decoding (issue 16, figure 12).
const vmColumns = `vm_id, tenant_id, name, kind, cores, memory_mb, disk_gb, template, cluster_id, node, vmid, status, pending,
	last_error, snapshots, version, created_at, updated_at,
	cloud_init IS NOT NULL, coalesce(cloud_init->>'user', ''), coalesce(cloud_init->>'hostname', ''), cloud_init->'ssh_key_fingerprints',
	pending_changes, coalesce(network->>'ipv4', ''), coalesce(network->>'ipv6', ''), guest_addresses`

// vmScan decodes rows of vmColumns. GET /v1/vms decodes 51 per page, so
// it keeps allocations down (issue 16, figure 12): one vmScan holds the
// scan targets for every row of a query, instead of each row's targets
// escaping to the heap on their own; the UUIDs are scanned as pgtype.UUID,
// 16 bytes copied from the binary answer (google's uuid.UUID is scanned
// through its sql.Scanner, by way of a string it then parses); and the
// domain.VM that works out the addresses is built after the scan, on the
// stack.
type vmScan struct {
	v                  VMView
	id, tenant, clustr pgtype.UUID
	hasCloudInit       bool
	ci                 VMCloudInitView
	fingerprints       []byte
	ipv4, ipv6         string
	guest              []string
}

func (s *vmScan) row(row pgx.CollectableRow) (VMView, error) {
	s.v, s.ci, s.fingerprints, s.guest = VMView{}, VMCloudInitView{}, s.fingerprints[:0], nil
	v := &s.v
	err := row.Scan(&s.id, &s.tenant, &v.Name, &v.Kind, &v.Cores, &v.MemoryMB, &v.DiskGB, &v.Template, &s.clustr, &v.Node,
		&v.VMID, &v.Status, &v.Pending, &v.LastError, &v.Snapshots, &v.Version, &v.CreatedAt, &v.UpdatedAt,
		&s.hasCloudInit, &s.ci.User, &s.ci.Hostname, &s.fingerprints, &v.PendingChanges, &s.ipv4, &s.ipv6, &s.guest)
	if err != nil {
		return VMView{}, err
	}
	if s.hasCloudInit {
		if err := s.ci.scanFingerprints(s.fingerprints); err != nil {
			return VMView{}, err
		}
		ci := s.ci
		v.CloudInit = &ci
	}
	v.ID, v.TenantID = s.id.Bytes, s.tenant.Bytes
	if s.clustr.Valid {
		c := uuid.UUID(s.clustr.Bytes)
		v.ClusterID = &c
	}
	// IPAddresses reads the network's two addresses alone (an empty one is
	// no address).
	vm := domain.VM{Status: domain.VMStatus(v.Status), GuestAddresses: s.guest,
		Network: &domain.VMNetwork{IPv4: s.ipv4, IPv6: s.ipv6}}
	v.IPAddresses = vm.IPAddresses()
	return s.v, nil
}

// scanFingerprints decodes the ssh_key_fingerprints array as decoding
// the whole document did: absent or null is nil, [] (what the projector
// writes for none) is empty.
func (c *VMCloudInitView) scanFingerprints(raw []byte) error {
	switch string(raw) {
	case "", "null":
		return nil
	case "[]":
		c.SSHKeyFingerprints = []string{}
		return nil
	}
	return json.Unmarshal(raw, &c.SSHKeyFingerprints)
}

// ListVMsSQL is ListVMs' query: a page of a tenant's VMs after a keyset
// (created_at, vm_id), walked on the vms_tenant_created index
// (tenant_id, created_at, vm_id); $5 and $6 filter by status and name
// when not empty. GetVMSQL reads one VM by its primary key. Both name the
// tenant explicitly besides row-level security, so the index can serve
// them; the benchmark (figure 12) runs the same text with and without RLS.
const (
	ListVMsSQL = `SELECT ` + vmColumns + ` FROM vms
			WHERE tenant_id = $1 AND (created_at, vm_id) > ($2, $3)
			  AND ($5 = '' OR status = $5) AND ($6 = '' OR name = $6)
			ORDER BY created_at, vm_id LIMIT $4`
	GetVMSQL = `SELECT ` + vmColumns + ` FROM vms WHERE tenant_id = $1 AND vm_id = $2`
)

// VMFilter narrows ListVMs; empty fields match everything.
type VMFilter struct {
	Status string
	Name   string
}

// ListVMs lists a tenant's VMs, oldest first.
func ListVMs(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, f VMFilter, page Page) ([]VMView, *PageKey, error) {
	var out []VMView
	after, id, limit := page.args()
	// One round trip: the scope and the query in one pipeline.
	err := tenantdb.Read(ctx, pool, tenantdb.Tenant(tenant), func(b *pgx.Batch) {
		b.Queue(ListVMsSQL, tenant, after, id, limit, f.Status, f.Name).Query(func(rows pgx.Rows) (err error) {
			out, err = pgx.AppendRows(make([]VMView, 0, min(limit, 512)), rows, (&vmScan{}).row) // no regrowth per page
			return err
		})
	})
	if err != nil {
		return nil, nil, err
	}
	items, next := nextKey(out, page.Limit, func(v VMView) PageKey { return PageKey{v.CreatedAt, v.ID} })
	return items, next, nil
}

// GetVM reads one VM of a tenant; domain.ErrNotFound otherwise.
func GetVM(ctx context.Context, pool *pgxpool.Pool, tenant, id uuid.UUID) (VMView, error) {
	var v VMView
	err := tenantdb.Read(ctx, pool, tenantdb.Tenant(tenant), func(b *pgx.Batch) {
		b.Queue(GetVMSQL, tenant, id).Query(func(rows pgx.Rows) (err error) {
			v, err = pgx.CollectExactlyOneRow(rows, (&vmScan{}).row)
			return err
		})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return VMView{}, domain.ErrNotFound
	}
	return v, err
}

// Usage is what a tenant has allocated.
type Usage struct {
	VMs, Cores       int
	MemoryMB, DiskGB int64
	IPv4             int
}

// TenantUsages reads the allocation of each of tenants in one query (zero
// for a tenant with no VMs yet), so a page of tenants costs one read, not
// one per tenant.
func TenantUsages(ctx context.Context, pool *pgxpool.Pool, scope tenantdb.Scope, tenants ...uuid.UUID) (map[uuid.UUID]Usage, error) {
	out := make(map[uuid.UUID]Usage, len(tenants))
	err := tenantdb.ReadTx(ctx, pool, scope, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT tenant_id, vms, cores, memory_mb, disk_gb, ipv4 FROM tenant_usage WHERE tenant_id = ANY($1)`, tenants)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			var u Usage
			if err := rows.Scan(&id, &u.VMs, &u.Cores, &u.MemoryMB, &u.DiskGB, &u.IPv4); err != nil {
				return err
			}
			out[id] = u
		}
		return rows.Err()
	})
	return out, err
}

// ClusterView is a registered cluster with its latest inventory.
type ClusterView struct {
	ID          uuid.UUID
	Name        string
	APIURL      string
	TokenID     string
	InsecureTLS bool
	// TLSFingerprint is the pinned certificate's SHA-256 ("" for a CA-signed one).
	TLSFingerprint string
	// BackupStorage is where its VMs' backups go ("": local).
	BackupStorage string
	CreatedAt     time.Time
	Nodes         []protocol.Node
	Templates     []protocol.Template
	ObservedAt    *time.Time
}

// ListClusters lists registered clusters (platform administrators).
func ListClusters(ctx context.Context, pool *pgxpool.Pool, scope tenantdb.Scope) ([]ClusterView, error) {
	var out []ClusterView
	err := tenantdb.ReadTx(ctx, pool, scope, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT c.cluster_id, c.name, c.api_url, c.token_id, c.insecure_tls, c.tls_fingerprint, c.backup_storage, c.created_at,
				coalesce(i.nodes, '[]'), coalesce(i.templates, '[]'), i.observed_at
			FROM clusters c LEFT JOIN cluster_inventory i ON i.cluster_id = c.cluster_id
			ORDER BY c.created_at, c.cluster_id LIMIT 1000`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ClusterView, error) {
			var (
				c          ClusterView
				nodes, tpl []byte
			)
			if err := row.Scan(&c.ID, &c.Name, &c.APIURL, &c.TokenID, &c.InsecureTLS, &c.TLSFingerprint, &c.BackupStorage, &c.CreatedAt, &nodes, &tpl, &c.ObservedAt); err != nil {
				return c, err
			}
			if err := json.Unmarshal(nodes, &c.Nodes); err != nil {
				return c, err
			}
			return c, json.Unmarshal(tpl, &c.Templates)
		})
		return err
	})
	return out, err
}

// TemplateView is a template offered on a cluster.
type TemplateView struct {
	protocol.Template
	ClusterID uuid.UUID
}

// ListTemplates lists the templates of every cluster; any tenant may see them.
func ListTemplates(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID) ([]TemplateView, error) {
	var out []TemplateView
	err := tenantdb.ReadTx(ctx, pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT cluster_id, t FROM cluster_inventory, jsonb_array_elements(templates) t
			ORDER BY t->>'name', cluster_id LIMIT 1000`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (TemplateView, error) {
			var (
				v   TemplateView
				raw []byte
			)
			if err := row.Scan(&v.ClusterID, &raw); err != nil {
				return v, err
			}
			return v, json.Unmarshal(raw, &v.Template)
		})
		return err
	})
	return out, err
}
