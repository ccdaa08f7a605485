package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/auth/pgthrottle"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// readsTenant is one seeded tenant: a viewer signed in, and its VMs' ids.
type readsTenant struct {
	id    uuid.UUID
	token string
	vms   []uuid.UUID
}

// seedReadTenants creates n tenants through the command handler, each
// with one viewer (roles: viewer, so vm:read and nothing that writes),
// and signs each in: their sessions and credentials are the rows every
// request's authentication reads. The passwords are hashed with the
// cheapest argon2id parameters: a thousand sign-ins at the production
// cost would take a minute of CPU and measure nothing this figure is
// about (the server verifies tokens, never passwords).
func (b *bench) seedReadTenants(ctx context.Context, keys *auth.KeySet, n int) ([]readsTenant, error) {
	store := b.db.store
	h := commands.New(store, pgstore.New(store), auth.PasswordHasher{Memory: 8, Time: 1}, commands.SessionConfig{
		Issuer:          &auth.Issuer{Keys: keys, TTL: time.Hour},
		AccountThrottle: pgthrottle.New(store.Pool(), auth.ThrottleConfig{}),
		AddressThrottle: pgthrottle.New(store.Pool(), auth.ThrottleConfig{MaxFailures: 50})})
	out := make([]readsTenant, n)
	var done atomic.Int64
	stop := startProgress(fmt.Sprintf("figure 12: %d tenants, a signed-in viewer each", n), 0,
		func() string { return fmt.Sprintf("%d", done.Load()) })
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range out {
		g.Go(func() error {
			t, err := h.CreateTenant(gctx, platformActor(), commands.Options{}, fmt.Sprintf("reads-%04d", i),
				domain.Quota{MaxVMs: 1000, MaxCores: 1000, MaxMemoryMB: 1 << 20, MaxDiskGB: 100_000})
			if err != nil {
				return fmt.Errorf("tenant %d: %w", i, err)
			}
			email, password := fmt.Sprintf("viewer-%04d-%s@reads.example", i, randomHex(3)), "reads bench "+randomHex(8)
			if _, err := h.CreateUser(gctx, platformActor(), commands.Options{}, commands.NewUser{TenantID: t.ID, Email: email,
				DisplayName: "Reads viewer", Password: password, Roles: []string{auth.RoleViewer}}); err != nil {
				return fmt.Errorf("user %d: %w", i, err)
			}
			tok, err := h.Login(gctx, eventlog.Metadata{ClientIP: "127.0.0.1"}, email, password)
			if err != nil {
				return fmt.Errorf("login %d: %w", i, err)
			}
			out[i] = readsTenant{id: t.ID, token: tok.AccessToken}
			done.Add(1)
			return nil
		})
	}
	return out, g.Wait()
}

// seedReadVMs fills the vms read model with perTenant VMs per tenant, all
// running. The first VM of each tenant is written by the vms projector
// itself (projections.VMs.Apply of a VMCreateRequested and a
// VMProvisioned, as the runner applies them: one transaction, the event's
// tenant as scope); the others are copies of that row with their own id,
// name (and cloud-init hostname), Proxmox vmid and timestamps, the only
// columns in which two such VMs' rows differ. Going through the event store and a rebuild would
// take minutes at today's rebuild rate and measure the rebuild, not reads.
func (b *bench) seedReadVMs(ctx context.Context, tenants []readsTenant, perTenant int) error {
	stop := startProgress(fmt.Sprintf("figure 12: %d VMs over %d tenants", perTenant*len(tenants), len(tenants)), 0, func() string { return "" })
	defer stop()
	start := time.Now().Add(-time.Duration(perTenant) * time.Hour)
	cluster := uuid.New()
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	const perTx = 100
	for lo := 0; lo < len(tenants); lo += perTx {
		g.Go(func() error {
			return pgx.BeginFunc(gctx, b.db.store.Pool(), func(tx pgx.Tx) error {
				for i := lo; i < min(lo+perTx, len(tenants)); i++ {
					id, err := uuid.NewV7()
					if err != nil {
						return err
					}
					if err := projectSeedVM(gctx, tx, tenants[i].id, id, cluster, start); err != nil {
						return err
					}
					mu.Lock()
					tenants[i].vms = append(tenants[i].vms, id)
					mu.Unlock()
				}
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// The copies, as the administrator (no RLS), one INSERT … SELECT: the
	// template's row with vm_id, name, vmid and times of copy k.
	if _, err := b.db.admin.Exec(ctx, `INSERT INTO vms (tenant_id, vm_id, name, kind, cores, memory_mb, disk_gb, template, cluster_id,
			node, vmid, status, pending, settled, last_error, snapshots, version, created_at, updated_at, cloud_init, pending_changes,
			network, guest_addresses)
		SELECT v.tenant_id, gen_random_uuid(), 'vm-' || k, v.kind, v.cores, v.memory_mb, v.disk_gb, v.template, v.cluster_id,
			v.node, 100 + k, v.status, v.pending, v.settled, v.last_error, v.snapshots, v.version,
			v.created_at + make_interval(hours => k), v.updated_at + make_interval(hours => k),
			jsonb_set(v.cloud_init, '{hostname}', to_jsonb('vm-' || k)), v.pending_changes,
			v.network, v.guest_addresses
		FROM vms v CROSS JOIN generate_series(1, $1::integer - 1) k`, perTenant); err != nil {
		return fmt.Errorf("copy VMs: %w", err)
	}
	if _, err := b.db.admin.Exec(ctx, `VACUUM ANALYZE vms`); err != nil {
		return err
	}
	rows, err := b.db.admin.Query(ctx, `SELECT tenant_id, vm_id FROM vms WHERE name <> 'vm-0'`)
	if err != nil {
		return err
	}
	index := make(map[uuid.UUID]int, len(tenants))
	for i, t := range tenants {
		index[t.id] = i
	}
	var t, v uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&t, &v}, func() error {
		i := index[t]
		tenants[i].vms = append(tenants[i].vms, v)
		return nil
	})
	return err
}

// projectSeedVM applies a VM's create request and its provisioning to the
// vms read model through the projector, in tx.
func projectSeedVM(ctx context.Context, tx pgx.Tx, tenant, id, cluster uuid.UUID, at time.Time) error {
	if err := tenantdb.SetScope(ctx, tx, tenantdb.Tenant(tenant)); err != nil {
		return err
	}
	stream := eventlog.StreamID{Type: domain.StreamVM, ID: id}
	evs := []domain.Event{
		&domain.VMCreateRequested{Name: "vm-0", Kind: domain.VMKind("qemu"), Spec: domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 10},
			Template: "debian-12", ClusterID: cluster,
			CloudInit: &domain.CloudInit{User: "debian", Hostname: "vm-0"}},
		&domain.VMProvisioned{ClusterID: cluster, Node: "pve1", VMID: 100, TaskID: "UPID:pve1:0001:clone"},
	}
	for i, de := range evs {
		data, err := json.Marshal(de)
		if err != nil {
			return err
		}
		e := eventlog.Event{Stream: stream, StreamVersion: int64(i + 1), Type: de.EventType(), TenantID: tenant, Data: data,
			RecordedAt: at.Add(time.Duration(i) * time.Second)}
		if err := (projections.VMs{}).Apply(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}
