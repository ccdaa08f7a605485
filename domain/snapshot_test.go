package domain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/domaintest"
	"github.com/google/uuid"
)

// shape describes a type for TestAggregateShapeIsPinned: its name, and for
// structs every field's name, type and tag, recursively. time.Time and
// uuid.UUID are leaves: their JSON forms are their own.
func shape(t reflect.Type, b *strings.Builder) {
	if t == reflect.TypeFor[time.Time]() || t == reflect.TypeFor[uuid.UUID]() {
		b.WriteString(t.String())
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		b.WriteString("*")
		shape(t.Elem(), b)
	case reflect.Slice:
		b.WriteString("[]")
		shape(t.Elem(), b)
	case reflect.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		shape(t.Elem(), b)
	case reflect.Map:
		b.WriteString("map[")
		shape(t.Key(), b)
		b.WriteString("]")
		shape(t.Elem(), b)
	case reflect.Struct:
		fmt.Fprintf(b, "%s struct{", t.String())
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(b, "%s ", f.Name)
			shape(f.Type, b)
			fmt.Fprintf(b, " %q; ", f.Tag)
		}
		b.WriteString("}")
	default:
		fmt.Fprintf(b, "%s(%s)", t.String(), t.Kind())
	}
}

// pinnedShapes holds, at index SnapshotVersion, the fingerprint of the
// aggregates' shape that version stands for. A new shape gets a new entry
// (and domain.SnapshotVersion its index); entries are never replaced.
var pinnedShapes = []string{
	1: "c5d38351947b",
	2: "a31ef429f1b0", // User.SSHKeys, VM.CloudInit
	3: "5a52010492d1", // UserSSHKey.PublicKey, VM.PendingCloudInit, PendingChanges, RebuildDone
	4: "0d420ba861ac", // VM.Network, VM.GuestAddresses, Quota.MaxIPv4, IPPool
	5: "5e835121bf08", // VM.PendingSince
	6: "36b055e30710", // VM.SnapshotParent(s), Backups, Restoring, Quota.MaxSnapshotsPerVM, MaxBackupsGB
	7: "326192c1eafe", // Tenant.RequestMetadataDays; User's Apply of user_erased
	8: "49491b0985dd", // Tenant.AssistantShareIPs
}

// TestAggregateShapeIsPinned: snapshots store VM, User, Tenant (and IPPool) as
// encoding/json writes them, tagged with domain.SnapshotVersion. A change to
// their fields must change that version, or old snapshots would be read
// into the new shape (a new field zero, a renamed one lost).
func TestAggregateShapeIsPinned(t *testing.T) {
	var b strings.Builder
	aggs := []any{domain.VM{}, domain.User{}, domain.Tenant{}}
	if domain.SnapshotVersion >= 4 {
		aggs = append(aggs, domain.IPPool{}) // pinned from version 4, which introduced it
	}
	for _, agg := range aggs {
		shape(reflect.TypeOf(agg), &b)
		b.WriteString("\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	got := hex.EncodeToString(sum[:])[:12]
	if domain.SnapshotVersion >= len(pinnedShapes) || pinnedShapes[domain.SnapshotVersion] != got {
		t.Fatalf("the aggregate changed: bump domain.SnapshotVersion and update this fingerprint "+
			"(pinnedShapes[%d] = %q, the new version's entry)\nshape:\n%s", domain.SnapshotVersion+1, got, b.String())
	}
	if len(pinnedShapes) != domain.SnapshotVersion+1 {
		t.Fatalf("pinnedShapes has entries past domain.SnapshotVersion %d", domain.SnapshotVersion)
	}
}

// roundTrip is what restoring a snapshot does: agg encoded, then decoded
// into a fresh aggregate that already has its ids.
func roundTrip[T any](t *testing.T, agg *T, fresh *T) *T {
	t.Helper()
	data, err := json.Marshal(agg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, fresh); err != nil {
		t.Fatal(err)
	}
	return fresh
}

// TestAggregatesRoundTripThroughJSON: after every event of random sequences,
// each aggregate decodes from its JSON exactly as it was (nil and empty
// slices, nil and set pointers, UTC instants), so a replay from a snapshot
// builds the same state as a replay of every event.
func TestAggregatesRoundTripThroughJSON(t *testing.T) {
	const n = 400
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		at := domaintest.Instants(r, n, time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC))
		id, tenant := uuid.New(), uuid.New()

		vm := &domain.VM{ID: id, TenantID: tenant}
		for i, e := range domaintest.VMEvents(r, n) {
			vm.Apply(e, at[i])
			if got := roundTrip(t, vm, &domain.VM{ID: id, TenantID: tenant}); !reflect.DeepEqual(got, vm) {
				t.Fatalf("seed %d, VM after event %d (%T):\n got %#v\nwant %#v", seed, i+1, e, got, vm)
			}
		}
		u := &domain.User{ID: id, TenantID: tenant}
		for i, e := range domaintest.UserEvents(r, n) {
			u.Apply(e, at[i])
			if got := roundTrip(t, u, &domain.User{ID: id, TenantID: tenant}); !reflect.DeepEqual(got, u) {
				t.Fatalf("seed %d, user after event %d (%T):\n got %#v\nwant %#v", seed, i+1, e, got, u)
			}
		}
		ten := &domain.Tenant{ID: id}
		for i, e := range domaintest.TenantEvents(r, n) {
			ten.Apply(e, at[i])
			if got := roundTrip(t, ten, &domain.Tenant{ID: id}); !reflect.DeepEqual(got, ten) {
				t.Fatalf("seed %d, tenant after event %d (%T):\n got %#v\nwant %#v", seed, i+1, e, got, ten)
			}
		}
	}
	// The fresh aggregates' zero instants and nil fields survive too.
	for _, agg := range []any{&domain.VM{}, &domain.User{}, &domain.Tenant{}} {
		data, _ := json.Marshal(agg)
		fresh := reflect.New(reflect.TypeOf(agg).Elem()).Interface()
		if err := json.Unmarshal(data, fresh); err != nil || !reflect.DeepEqual(fresh, agg) {
			t.Fatalf("%T: %v, %#v", agg, err, fresh)
		}
	}
}
