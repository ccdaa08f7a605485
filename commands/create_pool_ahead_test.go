package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
)

// A create's address comes from the default pool of the cluster the
// offering answers, whichever cluster its pool's read was started on
// (vmPoolAhead starts it on the cluster last offered): two clusters offer
// the template, each with a default pool; the offering answers the one
// whose inventory is newest. Creates follow it as it moves from one
// cluster to the other and back.
func TestCreatesTakeTheDefaultPoolOfTheClusterOffered(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, false)
	ten := e.tenant("two-clusters", domain.Quota{MaxVMs: 10, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000})
	clusters := map[string]uuid.UUID{}
	observed := time.Now()
	offer := func(name string) {
		t.Helper()
		observed = observed.Add(time.Second)
		if err := e.h.RecordInventory(ctx, protocol.Inventory{ClusterID: clusters[name], ObservedAt: observed,
			Templates: []protocol.Template{{Name: "debian-12", Kind: "qemu", Node: "pve1", PVEVMID: 9000}}}); err != nil {
			t.Fatal(err)
		}
	}
	for name, cidr := range map[string]string{"a": "10.1.0.0/29", "b": "10.2.0.0/29"} {
		c, err := e.h.RegisterCluster(ctx, e.admin, commands.Options{}, commands.NewCluster{Name: "pve-" + name,
			APIURL: "https://pve-" + name + ".example:8006/api2/json", TokenID: pvesim.DefaultTokenID, TokenSecret: pvesim.DefaultTokenSecret})
		if err != nil {
			t.Fatal(err)
		}
		clusters[name] = c.ID
		prefix := strings.TrimSuffix(cidr, "0/29")
		if _, err := e.h.CreateIPPool(ctx, e.admin, commands.Options{}, domain.IPPoolInput{Name: "lan-" + name, ClusterID: c.ID,
			Bridge: "vmbr0", CIDR: cidr, Gateway: prefix + "1", RangeStart: prefix + "2", RangeEnd: prefix + "6", Default: true}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name string) string {
		t.Helper()
		res, err := e.h.CreateVM(ctx, commands.Actor{TenantID: ten, UserID: uuid.New()}, commands.Options{}, commands.NewVM{TenantID: ten,
			Name: name, Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 5}, Template: "debian-12"})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		vm, err := e.h.LoadVM(ctx, ten, res.ID)
		if err != nil || vm.Network == nil {
			t.Fatalf("VM %s: %+v %v", name, vm, err)
		}
		return vm.Network.IPv4
	}
	for i, step := range []struct{ offered, want string }{
		{"a", "10.1.0.2/29"}, {"a", "10.1.0.3/29"}, // the first without a guess, then guessed right
		{"b", "10.2.0.2/29"}, // guessed a, offered b
		{"b", "10.2.0.3/29"},
		{"a", "10.1.0.4/29"}, // guessed b, offered a
	} {
		offer(step.offered)
		got := create("vm-" + step.offered)
		if got != step.want {
			t.Fatalf("create %d, offered on %s: address %s, want %s", i, step.offered, got, step.want)
		}
	}
}
