// Package domaintest makes random-ish event sequences of the domain's
// aggregates, for tests that check replays against each other (snapshots,
// JSON round trips). The events are what Apply accepts, not what commands
// would decide: a replay must rebuild whatever was recorded.
package domaintest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func id(r *rand.Rand) uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(r.UintN(256))
	}
	return u
}

func spec(r *rand.Rand) domain.VMSpec {
	return domain.VMSpec{Cores: 1 + r.IntN(16), MemoryMB: 256 << r.IntN(6), DiskGB: 5 + r.IntN(200)}
}

// names include characters JSON escapes and non-ASCII text.
func name(r *rand.Rand, prefix string) string {
	return pick(r, "", prefix, fmt.Sprintf("%s-%d", prefix, r.IntN(1000)), prefix+" <&> \"quoted\"", prefix+" é ü 漢字", prefix+"\ttab")
}

var vmActions = []string{domain.ActionCreate, domain.ActionStart, domain.ActionStop, domain.ActionShutdown,
	domain.ActionReboot, domain.ActionResize, domain.ActionSnapshot, domain.ActionDelete}

// VMEvent is one random VM event; its first call for a stream should be a
// create (VMEvents does that).
func VMEvent(r *rand.Rand) domain.Event {
	switch r.IntN(9) {
	case 0:
		return &domain.VMCreateRequested{Name: name(r, "vm"), Kind: pick(r, domain.KindQEMU, domain.KindLXC), Spec: spec(r),
			Template: pick(r, "debian-12", "ubuntu-24.04"), ClusterID: pick(r, uuid.Nil, id(r)), Node: pick(r, "", "pve1")}
	case 1:
		return &domain.VMProvisioned{ClusterID: id(r), Node: pick(r, "pve1", "pve2"), VMID: 100 + r.IntN(900), TaskID: "UPID:pve1:create"}
	case 2:
		return &domain.VMActionRequested{Action: pick(r, vmActions...)}
	case 3:
		return &domain.VMResizeRequested{Spec: spec(r)}
	case 4:
		return &domain.VMSnapshotRequested{Name: name(r, "snap")}
	case 5:
		e := &domain.VMActionSucceeded{Action: pick(r, vmActions...), TaskID: "UPID:pve1:task"}
		if r.IntN(2) == 0 {
			s := spec(r)
			e.Spec = &s
		}
		if r.IntN(2) == 0 {
			e.Snapshot = name(r, "snap")
		}
		return e
	case 6:
		return &domain.VMActionFailed{Action: pick(r, vmActions...), TaskID: pick(r, "", "UPID:x"), Error: name(r, "boom")}
	case 7:
		return &domain.VMDriftDetected{Expected: domain.VMRunning, Observed: pick(r, domain.VMRunning, domain.VMStopped, domain.VMDeleted)}
	default:
		return &domain.VMOperationTimedOut{Action: pick(r, vmActions...), Deadline: time.Duration(r.IntN(600)) * time.Second}
	}
}

// roles is nil, empty or a few roles: the three encode differently.
func roles(r *rand.Rand) []string {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := []string{}
	for range 1 + r.IntN(3) {
		out = append(out, pick(r, "viewer", "operator", "vm_admin", "tenant_admin", "auditor"))
	}
	return out
}

// UserEvent is one random user event.
func UserEvent(r *rand.Rand) domain.Event {
	switch r.IntN(6) {
	case 0:
		return &domain.UserCreated{Email: name(r, "a") + "@example.com", DisplayName: name(r, "Ada"), Roles: roles(r)}
	case 1, 2:
		return &domain.UserRolesChanged{Roles: roles(r), Previous: roles(r)}
	case 3:
		return &domain.UserDisabledEvent{}
	case 4:
		return &domain.UserEnabled{}
	default:
		return &domain.UserPasswordChanged{}
	}
}

func quota(r *rand.Rand) domain.Quota {
	return domain.Quota{MaxVMs: r.IntN(100), MaxCores: r.IntN(1000), MaxMemoryMB: r.IntN(1 << 20), MaxDiskGB: r.IntN(1 << 16)}
}

// TenantEvent is one random tenant event.
func TenantEvent(r *rand.Rand) domain.Event {
	switch r.IntN(5) {
	case 0:
		return &domain.TenantCreated{Name: name(r, "acme"), Quota: quota(r)}
	case 1:
		return &domain.TenantRenamed{Name: name(r, "acme")}
	case 2:
		return &domain.TenantQuotaChanged{Quota: quota(r)}
	case 3:
		return &domain.TenantSuspendedEvent{}
	default:
		return &domain.TenantResumed{}
	}
}

// Sequence is n events from next after first, the creation.
func Sequence(r *rand.Rand, n int, first domain.Event, next func(*rand.Rand) domain.Event) []domain.Event {
	out := []domain.Event{first}
	for len(out) < n {
		out = append(out, next(r))
	}
	return out[:n]
}

// VMEvents is a create, then n-1 random VM events.
func VMEvents(r *rand.Rand, n int) []domain.Event {
	return Sequence(r, n, &domain.VMCreateRequested{Name: "vm-1", Kind: domain.KindQEMU, Spec: spec(r), Template: "debian-12"}, VMEvent)
}

// UserEvents is a creation, then n-1 random user events.
func UserEvents(r *rand.Rand, n int) []domain.Event {
	return Sequence(r, n, &domain.UserCreated{Email: "ada@example.com", DisplayName: "Ada", Roles: []string{"viewer"}}, UserEvent)
}

// TenantEvents is a creation, then n-1 random tenant events.
func TenantEvents(r *rand.Rand, n int) []domain.Event {
	return Sequence(r, n, &domain.TenantCreated{Name: "acme", Quota: quota(r)}, TenantEvent)
}

// Instants are n recording instants from start as PostgreSQL keeps them
// (UTC, whole microseconds), mostly increasing, sometimes repeated, and
// sometimes earlier than the one before (recorded_at is a transaction's
// start, so a later version may have been recorded earlier).
func Instants(r *rand.Rand, n int, start time.Time) []time.Time {
	out := make([]time.Time, n)
	at := start.UTC().Truncate(time.Microsecond)
	for i := range out {
		switch r.IntN(10) {
		case 0: // same transaction
		case 1:
			at = at.Add(-time.Duration(r.IntN(5000)) * time.Microsecond)
		default:
			at = at.Add(time.Duration(1+r.IntN(5000)) * time.Microsecond)
		}
		out[i] = at
	}
	return out
}
