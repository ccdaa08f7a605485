package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"
)

// Figure 8: issue 11's bar. N creates at once over 4 tenants, every VM with
// cloud-init (user, password, an inline key, nameservers) and an address
// from one pool, against the same run without either: every
// VM must get its own address, each tenant's quota (max_vms and max_ipv4 of
// N/4) must hold, and create → running p99 must stay within 1.5× of the
// run without addresses.

const barIPAMRatio = 1.5

type ipamConfig struct {
	Skip      bool
	Creates   int
	Tenants   int
	WithFirst bool
	// NoCloudInit, NoPool leave one part out of the run "with" (to see
	// which costs what).
	NoCloudInit, NoPool bool
}

func ipamFlags(fs *flag.FlagSet, c *ipamConfig) {
	fs.BoolVar(&c.Skip, "skip-ipam", false, "skip the IP pool benchmark (figure 8)")
	fs.IntVar(&c.Creates, "ipam-creates", 200, "VMs created at once, over -ipam-tenants tenants, with and without addresses")
	fs.IntVar(&c.Tenants, "ipam-tenants", 4, "tenants sharing the pool")
	fs.BoolVar(&c.NoCloudInit, "ipam-no-cloud-init", false, "the run with: addresses only")
	fs.BoolVar(&c.NoPool, "ipam-no-pool", false, "the run with: cloud-init only")
	fs.BoolVar(&c.WithFirst, "ipam-with-first", false, "run the creates with cloud-init and addresses before those without (the first run warms the system up)")
}

func (c ipamConfig) validate() error {
	if c.Tenants < 1 || c.Creates < c.Tenants || c.Creates%c.Tenants != 0 {
		return errors.New("-ipam-creates must be a positive multiple of -ipam-tenants")
	}
	if c.NoCloudInit && c.NoPool {
		return errors.New("-ipam-no-cloud-init and -ipam-no-pool leave nothing to compare")
	}
	return nil
}

type ipamRun struct {
	Label              string
	VMs                int
	Elapsed            time.Duration
	P50, P99, Max      time.Duration
	PostP50, PostP99   time.Duration
	Distinct, Refused  int // distinct addresses; creates past the quota refused
	RefusedAsExpected  bool
	DistinctAsExpected bool
}

type ipamResult struct {
	Tenants   int
	WithFirst bool
	Runs      []ipamRun // without, then with cloud-init and addresses, whichever ran first
}

// ipamPhase runs the creates twice, each time on a whole system of its own:
// a second run on the first one's system would find 200 more guests in
// every listing the agent makes, and warmed-up caches, which skewed the
// ratio either way by up to 2× depending on the order.
func (b *bench) ipamPhase(ctx context.Context) error {
	cfg := b.cfg.IPAM
	res := &ipamResult{Tenants: cfg.Tenants, WithFirst: cfg.WithFirst, Runs: make([]ipamRun, 2)}
	order := []bool{false, true}
	if cfg.WithFirst {
		order = []bool{true, false}
	}
	for _, withPool := range order {
		run, err := b.ipamOnFreshStack(ctx, cfg, withPool)
		if err != nil {
			return err
		}
		if withPool {
			res.Runs[1] = run
		} else {
			res.Runs[0] = run
		}
	}
	b.rep.IPAM = res
	return nil
}

// ipamOnFreshStack boots core, agent and pvesim with one pool, runs the
// creates and stops them.
func (b *bench) ipamOnFreshStack(ctx context.Context, cfg ipamConfig, withPool bool) (_ ipamRun, err error) {
	b.db.store.Pool().Reset()
	stopBoot := startProgress("starting core, agent and pvesim", 0, func() string { return "" })
	st, err := b.bootVMStack(ctx)
	stopBoot()
	if err != nil {
		return ipamRun{}, err
	}
	defer func() {
		if serr := st.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	pool, err := st.sys.Commands.CreateIPPool(ctx, platformActor(), commands.Options{}, domain.IPPoolInput{Name: "bench",
		ClusterID: st.cluster, Bridge: "vmbr0", CIDR: "10.64.0.0/16", Gateway: "10.64.0.1", RangeStart: "10.64.0.2",
		RangeEnd: "10.64.255.254", Nameservers: []string{"10.64.0.1"}, IPv6Prefix: "fd00:64::/64"})
	if err != nil {
		return ipamRun{}, fmt.Errorf("pool: %w", err)
	}
	return st.ipamRun(ctx, cfg, withPool, pool.ID)
}

// ipamRun creates cfg.Creates VMs at once, cfg.Creates/cfg.Tenants per
// tenant of fresh tenants whose quota is exactly that, then one more per
// tenant, which the quota must refuse.
func (st *vmStack) ipamRun(ctx context.Context, cfg ipamConfig, withPool bool, pool uuid.UUID) (ipamRun, error) {
	run := ipamRun{Label: "without cloud-init or addresses", VMs: cfg.Creates}
	var extra map[string]any
	if withPool {
		key, err := benchSSHKey()
		if err != nil {
			return run, err
		}
		run.Label, extra = "with cloud-init and an address from one pool", map[string]any{}
		if !cfg.NoPool {
			extra["network"] = map[string]any{"ip_pool_id": pool.String()}
		} else {
			run.Label = "with cloud-init (no pool)"
		}
		if !cfg.NoCloudInit {
			extra["cloud_init"] = map[string]any{"user": "bench", "password": "a bench password, long enough", "ssh_keys": []string{key},
				"nameservers": []string{"10.64.0.53"}, "search_domain": "bench.example"}
		} else {
			run.Label = "with an address from one pool (no cloud-init)"
		}
	}
	per := cfg.Creates / cfg.Tenants
	clients := make([]*vmClient, cfg.Tenants)
	for i := range clients {
		c, err := st.tenant(ctx, fmt.Sprintf("ipam-%t-%d", withPool, i))
		if err != nil {
			return run, err
		}
		if err := c.limitQuota(ctx, st, per); err != nil {
			return run, err
		}
		clients[i] = c
	}
	watchers := make([]*runningWatcher, len(clients))
	for i, c := range clients {
		watchers[i] = c.watchRunning(ctx, 5*time.Millisecond)
		defer watchers[i].stop()
	}
	var (
		mu        sync.Mutex
		lat, post []time.Duration
		ids       []string
	)
	stop := startProgress(fmt.Sprintf("%d creates at once over %d tenants, %s", cfg.Creates, cfg.Tenants, run.Label), 0,
		func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprintf("%d running", len(lat)) })
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for i := range cfg.Creates {
		c, w := clients[i%len(clients)], watchers[i%len(clients)]
		g.Go(func() error {
			t0 := time.Now()
			id, code, err := c.createWith(gctx, fmt.Sprintf("ipam-%d", i), extra)
			if err != nil {
				return err
			}
			if code != http.StatusAccepted {
				return fmt.Errorf("create %d: %d", i, code)
			}
			accepted := time.Since(t0)
			at, err := w.wait(gctx, id)
			if err != nil {
				return err
			}
			mu.Lock()
			lat, post, ids = append(lat, at.Sub(t0)), append(post, accepted), append(ids, id)
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	stop()
	if err != nil {
		return run, err
	}
	run.Elapsed = time.Since(start)
	run.P50, run.P99, run.Max = percentiles(lat)
	run.PostP50, run.PostP99, _ = percentiles(post)
	for _, c := range clients {
		_, code, err := c.createWith(ctx, "over-quota", extra)
		if err != nil {
			return run, err
		}
		if code == http.StatusUnprocessableEntity {
			run.Refused++
		}
	}
	run.RefusedAsExpected = run.Refused == len(clients)
	if withPool && !cfg.NoPool {
		if err := st.db.admin.QueryRow(ctx, `SELECT count(DISTINCT data->>'ipv4') FROM events
			WHERE event_type = 'ip_address_allocated' AND stream_id = $1`, "ip_pool-"+pool.String()).Scan(&run.Distinct); err != nil {
			return run, err
		}
		run.DistinctAsExpected = run.Distinct == len(ids)
	} else {
		run.DistinctAsExpected = true
	}
	return run, nil
}

// limitQuota sets the tenant's quota to n VMs and n addresses.
func (c *vmClient) limitQuota(ctx context.Context, st *vmStack, n int) error {
	var me struct {
		TenantID uuid.UUID `json:"tenant_id"`
	}
	if code, err := c.do(ctx, http.MethodGet, "/v1/users/me", nil, &me); err != nil || code != http.StatusOK {
		return fmt.Errorf("users/me: %d %v", code, err)
	}
	big := 100_000_000
	q := domain.Quota{MaxVMs: n, MaxCores: big, MaxMemoryMB: big, MaxDiskGB: big, MaxIPv4: n}
	_, err := st.sys.Commands.UpdateTenant(ctx, platformActor(), commands.Options{}, me.TenantID, nil, &q)
	return err
}

// createWith posts one small qemu VM with the extra fields of its body
// (network, cloud_init; nil: none).
func (c *vmClient) createWith(ctx context.Context, name string, extra map[string]any) (string, int, error) {
	body := map[string]any{"name": name, "kind": "qemu", "cores": 1, "memory_mb": 256, "disk_gb": 5, "template": "debian-12"}
	for k, v := range extra {
		body[k] = v
	}
	var a acceptedAnswer
	code, err := c.do(ctx, http.MethodPost, "/v1/vms", body, &a)
	return a.ID, code, err
}

// benchSSHKey is a fresh ed25519 public key in authorized_keys form.
func benchSSHKey() (string, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " bench@accountdb", nil
}

func (r *ipamResult) ratio() float64 {
	if len(r.Runs) != 2 || r.Runs[0].P99 == 0 {
		return 0
	}
	return float64(r.Runs[1].P99) / float64(r.Runs[0].P99)
}

func (r *ipamResult) print(out io.Writer) {
	first := "without"
	if r.WithFirst {
		first = "with"
	}
	fmt.Fprintf(out, "8. IP pools and cloud-init: creates at once over %d tenants (quota = their share), core, agent and pvesim in-process; the run %s ran first\n", r.Tenants, first)
	for _, l := range r.Runs {
		fmt.Fprintf(out, "   %s: %d VMs in %s; create → running p50 %s  p99 %s  max %s; POST p50 %s  p99 %s; one more per tenant refused: %d\n",
			l.Label, l.VMs, l.Elapsed.Round(time.Millisecond), ms(l.P50), ms(l.P99), ms(l.Max), ms(l.PostP50), ms(l.PostP99), l.Refused)
		if l.Distinct > 0 {
			fmt.Fprintf(out, "   distinct addresses allocated: %d for %d VMs\n", l.Distinct, l.VMs)
		}
	}
	fmt.Fprintln(out)
}

func (r *ipamResult) printBars(out *os.File) {
	if len(r.Runs) != 2 {
		return
	}
	with := r.Runs[1]
	verdict(out, fmt.Sprintf("IP pool and cloud-init: distinct addresses, quotas hold, create → running p99 ≤ %.1f× without either", barIPAMRatio),
		with.DistinctAsExpected && with.RefusedAsExpected && r.Runs[0].RefusedAsExpected && r.ratio() <= barIPAMRatio,
		fmt.Sprintf("%.2f× (%s vs %s), %d distinct of %d, %d of %d over-quota creates refused", r.ratio(), ms(with.P99),
			ms(r.Runs[0].P99), with.Distinct, with.VMs, with.Refused, r.Tenants))
}
