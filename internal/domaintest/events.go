// Package domaintest makes random-ish event sequences of the domain's
// aggregates, for tests that check replays against each other (snapshots,
// JSON round trips). The events are what Apply accepts, not what commands
// would decide: a replay must rebuild whatever was recorded. Corpus, by
// contrast, is a whole platform's history as commands could have recorded
// it, for read models (the projector conformance suite).
package domaintest

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
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

// vmActions are the names of domain.VMActions.
var vmActions = func() []string {
	names := make([]string, len(domain.VMActions))
	for i, a := range domain.VMActions {
		names[i] = a.Name
	}
	return names
}()

// VMEvent is one random VM event; its first call for a stream should be a
// create (VMEvents does that).
func VMEvent(r *rand.Rand) domain.Event {
	switch r.IntN(15) {
	case 14:
		return &domain.VMCloudInitApplied{BootedAt: time.Date(2026, 1, 2, 3, r.IntN(60), 0, 0, time.UTC)}
	case 0:
		return &domain.VMCreateRequested{Name: name(r, "vm"), Kind: pick(r, domain.KindQEMU, domain.KindLXC), Spec: spec(r),
			Template: pick(r, "debian-12", "ubuntu-24.04"), ClusterID: pick(r, uuid.Nil, id(r)), Node: pick(r, "", "pve1"), CloudInit: CloudInit(r),
			Network: Network(r)}
	case 8:
		return &domain.VMGuestAddressesReported{Addresses: pick(r, []string{}, []string{"10.200.1.7"}, []string{"10.200.1.7", "fd00:5e::1"})}
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
	case 9:
		ci := CloudInit(r)
		if ci == nil {
			ci = &domain.CloudInit{Hostname: name(r, "vm")}
		}
		return &domain.VMCloudInitUpdateRequested{Kind: domain.KindQEMU, CloudInit: *ci}
	case 10:
		return &domain.VMRebuildRequested{Template: pick(r, "debian-12", "ubuntu-24.04"), Kind: domain.KindQEMU, Name: name(r, "vm"),
			Spec: spec(r), ClusterID: id(r), Node: "pve1", VMID: 100 + r.IntN(900), CloudInit: CloudInit(r)}
	case 11:
		return &domain.VMRebuildProgressed{Step: pick(r, domain.RebuildSteps...), Node: pick(r, "", "pve2"), VMID: pick(r, 0, 100+r.IntN(900))}
	case 12:
		return &domain.VMRebuilt{Template: "debian-12", Node: "pve1", VMID: 100 + r.IntN(900), TaskID: "UPID:pve1:start"}
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
	switch r.IntN(8) {
	case 0:
		return &domain.UserCreated{Email: name(r, "a") + "@example.com", DisplayName: name(r, "Ada"), Roles: roles(r)}
	case 6:
		return SSHKeyAdded(r)
	case 7:
		return &domain.UserSSHKeyRemoved{KeyID: id(r), Fingerprint: "SHA256:" + name(r, "fp")}
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

// SSHKeyAdded is a real ed25519 key, derived from r, as a user's new key.
func SSHKeyAdded(r *rand.Rand) *domain.UserSSHKeyAdded {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(r.IntN(256))
	}
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(seed).Public())
	if err != nil {
		panic(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + name(r, "ada") + "@laptop"
	return &domain.UserSSHKeyAdded{KeyID: id(r), Name: name(r, "laptop"), Type: pub.Type(), Fingerprint: ssh.FingerprintSHA256(pub), PublicKey: line}
}

// CloudInit is nil or cloud-init settings as NewCloudInit builds them (a
// fixed SHA-512 crypt hash stands for the password's).
func CloudInit(r *rand.Rand) *domain.CloudInit {
	if r.IntN(2) == 0 {
		return nil
	}
	k := SSHKeyAdded(r)
	return &domain.CloudInit{User: pick(r, "", "ada"), Hostname: name(r, "vm"), SSHKeys: []string{k.PublicKey},
		SSHKeyFingerprints: []string{k.Fingerprint}, PasswordHash: pick(r, "", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
		Nameservers: pick(r, []string(nil), []string{"192.0.2.53"}), SearchDomain: pick(r, "", "example.net")}
}

// Network is nil or a pool network, with or without IPv6 and a VLAN.
func Network(r *rand.Rand) *domain.VMNetwork {
	if r.IntN(3) == 0 {
		return nil
	}
	n := &domain.VMNetwork{PoolID: id(r), Bridge: pick(r, "vmbr0", "vmbr1"), IPv4: fmt.Sprintf("10.0.0.%d/24", 2+r.IntN(200)),
		Gateway4: "10.0.0.1", Nameservers: pick(r, nil, []string{"10.0.0.53"})}
	if r.IntN(2) == 0 {
		n.VLAN = 1 + r.IntN(4094)
	}
	if r.IntN(2) == 0 {
		n.IPv6, n.Gateway6 = "2001:db8::"+fmt.Sprint(2+r.IntN(200))+"/128", "2001:db8::1"
	}
	return n
}
