package domaintest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// Stream is one aggregate's history: the events, in order, that commands
// record for it in its tenant.
type Stream struct {
	Tenant uuid.UUID
	ID     eventlog.StreamID
	Events []domain.Event
}

// Corpus is a realistic history of a platform: clusters, tenants, users and
// their roles, sessions and failed sign-ins, and VMs through creation,
// provisioning, actions, resizes, snapshots, deletion, failures, time-outs
// and drift. Unlike the random sequences above, every stream is one that
// commands and the agent could have recorded (a stream is created once, a
// result follows its request), so read models can be built from it. Every
// event type of the domain occurs in it; the projector conformance suite
// holds it to that. tenants is how many customer tenants it has (at least 1).
func Corpus(r *rand.Rand, tenants int) []Stream {
	c := &corpus{r: r}
	clusters := []uuid.UUID{c.cluster("pve-east"), c.cluster("pve-west")}
	admin := c.user(domain.PlatformTenant, []string{"platform_admin"}, true)
	provider := c.add(domain.PlatformTenant, domain.StreamIdentityProvider,
		&domain.IdentityProviderConfigured{IdentityProviderConfig: domain.IdentityProviderConfig{Name: name(r, "sso"),
			Issuer: "https://idp.example", ClientID: "accountdb", Scopes: []string{"openid", "email"}, GroupsClaim: "groups",
			Mappings: []domain.GroupMapping{}, CreateUsers: true}, SecretChanged: true},
		&domain.IdentityProviderDeleted{})
	c.sessions(domain.PlatformTenant, admin)
	c.webhooks(domain.PlatformTenant, true)
	c.add(domain.PlatformTenant, domain.StreamAuth,
		&domain.LoginFailed{EmailHash: c.hash(), Reason: "bad_credentials"},
		&domain.LoginFailed{EmailHash: c.hash(), Reason: "throttled"})
	for i := range max(tenants, 1) {
		tenant := c.tenant(i)
		var users []uuid.UUID
		for range 2 + r.IntN(2) {
			users = append(users, c.user(tenant, someRoles(r), false))
		}
		for _, u := range users {
			c.sessions(tenant, u)
		}
		// One more user, erased: read models drop them.
		c.erase(tenant, c.user(tenant, someRoles(r), false))
		c.mfa(tenant, users[0])
		c.sso(tenant, users[len(users)-1], provider)
		c.add(tenant, domain.StreamAuth, &domain.AccessDenied{Method: "DELETE", Route: "/v1/vms/{id}", Permission: "vm:delete"},
			&domain.RefreshFailed{SessionID: id(r), Reason: "expired"})
		c.webhooks(tenant, false)
		for _, life := range vmLives {
			c.vm(tenant, pick(r, clusters...), life)
		}
		c.backupSchedules(tenant) // corpus_backups.go
		vm := id(r)
		c.add(tenant, domain.StreamConsole, &domain.ConsoleOpened{VMID: vm, Protocol: domain.ConsoleVNC},
			&domain.ConsoleClosed{VMID: vm, Protocol: domain.ConsoleVNC, DurationMS: int64(r.IntN(600000)),
				BytesIn: int64(r.IntN(1 << 20)), BytesOut: int64(r.IntN(1 << 30)), Reason: "client_closed"})
		c.add(tenant, domain.StreamAssistant, &domain.AssistantQuestionAnswered{UserID: users[0], Mode: domain.AssistantExplain,
			VMID: &vm, Question: "Why did it stop?", Answer: "It was stopped by hand [#1].", Sent: []int64{1, 2}, Cited: []int64{1},
			Model: "m", PromptTokens: 120, CompletionTokens: 12, Outcome: "answered"})
	}
	for _, p := range c.pools {
		c.streams = append(c.streams, Stream{Tenant: domain.PlatformTenant, ID: eventlog.StreamID{Type: domain.StreamIPPool, ID: p.ID}, Events: p.events})
	}
	return c.streams
}

type corpus struct {
	r       *rand.Rand
	streams []Stream
	// pools are each cluster's address pool, by cluster; their streams,
	// with the allocations and releases of the VMs, close the corpus.
	pools map[uuid.UUID]*corpusPool
}

type corpusPool struct {
	domain.IPPool
	events []domain.Event
}

func (c *corpus) add(tenant uuid.UUID, streamType string, evs ...domain.Event) uuid.UUID {
	sid := id(c.r)
	c.streams = append(c.streams, Stream{Tenant: tenant, ID: eventlog.StreamID{Type: streamType, ID: sid}, Events: evs})
	return sid
}

func (c *corpus) hash() string { return fmt.Sprintf("%064x", c.r.Uint64()) }

// cluster is registered with one address pool, its default.
func (c *corpus) cluster(name string) uuid.UUID {
	cfg := domain.IPPoolConfig{Name: name + "-pool", Bridge: "vmbr0", VLAN: c.r.IntN(2) * 100, CIDR: "10.0.0.0/24",
		Gateway: "10.0.0.1", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.250", Nameservers: []string{"10.0.0.53"},
		IPv6Prefix: pick(c.r, "", "2001:db8:1::/64"), Default: true}
	pool := id(c.r)
	cluster := c.add(domain.PlatformTenant, domain.StreamCluster, &domain.ClusterRegistered{Name: name,
		APIURL: "https://" + name + ".example:8006/api2/json", TokenID: "accountdb@pve!" + name,
		SealedSecret: "sealed:" + c.hash(), InsecureTLS: c.r.IntN(2) == 0},
		&domain.ClusterIPPoolAdded{PoolID: pool, Bridge: cfg.Bridge, CIDR: cfg.CIDR, IPv6Prefix: cfg.IPv6Prefix, Default: true},
		&domain.ClusterBackupStorageSet{Storage: "backup-nfs"})
	cfg.ClusterID = cluster
	created := &domain.IPPoolCreated{IPPoolConfig: cfg}
	p := &corpusPool{IPPool: domain.IPPool{ID: pool}, events: []domain.Event{created}}
	p.Apply(created, time.Time{})
	if c.pools == nil {
		c.pools = map[uuid.UUID]*corpusPool{}
	}
	c.pools[cluster] = p
	return cluster
}

// record records evs on p's stream, as commands would have.
func (p *corpusPool) record(evs []domain.Event) {
	for _, e := range evs {
		p.Apply(e, time.Time{})
		p.events = append(p.events, e)
	}
}

// tenant is a tenant's stream, which lives in the tenant itself: the first
// tenant goes through every change, the others through a random few.
func (c *corpus) tenant(i int) uuid.UUID {
	evs := []domain.Event{&domain.TenantCreated{Name: fmt.Sprintf("tenant-%d", i), Quota: quota(c.r)}}
	changes := []domain.Event{&domain.TenantRenamed{Name: name(c.r, "acme")}, &domain.TenantQuotaChanged{Quota: quota(c.r)},
		&domain.TenantSuspendedEvent{}, &domain.TenantResumed{}, &domain.TenantPrivacyPolicySet{RequestMetadataDays: 30}}
	for _, e := range changes {
		if i == 0 || c.r.IntN(2) == 0 {
			evs = append(evs, e)
		}
	}
	tenant := id(c.r)
	c.streams = append(c.streams, Stream{Tenant: tenant, ID: eventlog.StreamID{Type: domain.StreamTenant, ID: tenant}, Events: evs})
	return tenant
}

// user is created with initial roles, has them changed (sometimes to none,
// which removes every binding), its password changed and SSH keys added (and
// one removed), and is disabled and enabled again; all of it when everything
// is set, else a random part.
func (c *corpus) user(tenant uuid.UUID, initial []string, everything bool) uuid.UUID {
	evs := []domain.Event{&domain.UserCreated{Email: fmt.Sprintf("%x@example.com", c.r.Uint32()), DisplayName: name(c.r, "Ada"), Roles: initial}}
	current := initial
	changes := c.r.IntN(3)
	if everything {
		changes = 2
	}
	for range changes {
		next := someRoles(c.r)
		evs = append(evs, &domain.UserRolesChanged{Roles: next, Previous: current})
		current = next
	}
	kept := id(c.r)
	evs = append(evs, &domain.UserPasswordChanged{}, &domain.UserSessionsEnded{Reason: "password_changed", KeptSessionID: &kept},
		&domain.UserPasswordChanged{}, &domain.UserSessionsEnded{Reason: "password_changed"})
	var keys []*domain.UserSSHKeyAdded
	for range 1 + c.r.IntN(2) {
		keys = append(keys, SSHKeyAdded(c.r))
		evs = append(evs, keys[len(keys)-1])
	}
	if everything || c.r.IntN(2) == 0 {
		evs = append(evs, &domain.UserSSHKeyRemoved{KeyID: keys[0].KeyID, Fingerprint: keys[0].Fingerprint})
	}
	if everything || c.r.IntN(2) == 0 {
		evs = append(evs, &domain.UserDisabledEvent{}, &domain.UserEnabled{})
	}
	return c.add(tenant, domain.StreamUser, evs...)
}

// erase appends user's erasure to their stream.
func (c *corpus) erase(tenant, user uuid.UUID) {
	for i := range c.streams {
		if s := &c.streams[i]; s.ID == (eventlog.StreamID{Type: domain.StreamUser, ID: user}) {
			s.Events = append(s.Events, &domain.UserErased{Reason: "request"})
			return
		}
	}
}

// someRoles are none or a few roles, never nil: commands always record a
// list, and the users table's roles column is not null.
func someRoles(r *rand.Rand) []string {
	if rs := roles(r); rs != nil {
		return rs
	}
	return []string{}
}

// sessions are a session signed in, refreshed and ended, and a failed
// sign-in of the same user.
func (c *corpus) sessions(tenant, user uuid.UUID) {
	c.add(tenant, domain.StreamSession, &domain.SessionStarted{UserID: user}, &domain.SessionRefreshed{UserID: user},
		&domain.SessionEnded{UserID: user, Reason: pick(c.r, "logout", "revoked", "refresh_reuse")})
	c.add(tenant, domain.StreamAuth, &domain.LoginFailed{UserID: user, EmailHash: c.hash(), Reason: "bad_credentials"},
		&domain.PasswordCheckFailed{UserID: user, Reason: pick(c.r, "bad_current_password", "throttled")})
	c.identity(tenant, user)
}

// identity is a user's API token, from creation through its first use to
// its revocation (see domain/apitoken.go).
func (c *corpus) identity(tenant, user uuid.UUID) {
	exp := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	c.add(tenant, domain.StreamAPIToken,
		&domain.APITokenCreated{UserID: user, Name: name(c.r, "ci"), Prefix: "adb_" + c.hash()[:8], Permissions: []string{"vm:read"}, ExpiresAt: &exp},
		&domain.APITokenFirstUsed{UserID: user, ClientIP: "192.0.2.10"},
		&domain.APITokenRevoked{UserID: user, Reason: pick(c.r, "revoked", "revoked_by_admin")})
}

// sso is a user's link to a provider and a single sign-on session.
func (c *corpus) sso(tenant, user, provider uuid.UUID) {
	for i := range c.streams {
		if c.streams[i].ID.ID == user {
			c.streams[i].Events = append(c.streams[i].Events, &domain.UserIdentityLinked{ProviderID: provider, Subject: "sub-" + c.hash()[:8]})
		}
	}
	c.add(tenant, domain.StreamSession, &domain.SessionStarted{UserID: user},
		&domain.OIDCSignedIn{ProviderID: provider, Provider: "sso", Subject: "sub", UserID: user, Roles: []string{"viewer"}})
}

// mfa is a user's two-factor life on their stream (after the user's own
// events, as commands append them with any version) and the tenant's
// requirement.
func (c *corpus) mfa(tenant, user uuid.UUID) {
	for i := range c.streams {
		if c.streams[i].ID.ID == user {
			c.streams[i].Events = append(c.streams[i].Events, &domain.UserTOTPEnabled{RecoveryCodes: 10},
				&domain.UserRecoveryCodeUsed{Remaining: 9}, &domain.UserTOTPDisabled{Reason: "disabled"})
		}
		if c.streams[i].ID.ID == tenant && c.streams[i].ID.Type == domain.StreamTenant {
			evs := c.streams[i].Events
			c.streams[i].Events = append([]domain.Event{evs[0], &domain.TenantMFARequirementChanged{Required: true}}, evs[1:]...)
		}
	}
}

// A vmLife is what happens to a VM after its create request; the cluster it
// was placed on is given.
type vmLife func(r *rand.Rand, cluster uuid.UUID) []domain.Event

func provisioned(r *rand.Rand, cluster uuid.UUID) domain.Event {
	return &domain.VMProvisioned{ClusterID: cluster, Node: pick(r, "pve1", "pve2"), VMID: 100 + r.IntN(900), TaskID: "UPID:pve1:create"}
}

func succeeded(action string) domain.Event {
	return &domain.VMActionSucceeded{Action: action, TaskID: "UPID:pve1:" + action}
}

func requestAndSucceed(action string) []domain.Event {
	return []domain.Event{&domain.VMActionRequested{Action: action}, succeeded(action)}
}

var vmLives = []vmLife{
	// Every action succeeds, up to deletion.
	func(r *rand.Rand, cluster uuid.UUID) []domain.Event {
		s := spec(r)
		evs := []domain.Event{provisioned(r, cluster)}
		evs = append(evs, requestAndSucceed(domain.ActionStop)...)
		evs = append(evs, requestAndSucceed(domain.ActionStart)...)
		evs = append(evs, &domain.VMResizeRequested{Spec: s},
			&domain.VMActionSucceeded{Action: domain.ActionResize, TaskID: "UPID:pve1:resize", Spec: &s},
			&domain.VMSnapshotRequested{Name: "before-upgrade"},
			&domain.VMActionSucceeded{Action: domain.ActionSnapshot, TaskID: "UPID:pve1:snapshot", Snapshot: "before-upgrade"})
		evs = append(evs, requestAndSucceed(domain.ActionReboot)...)
		evs = append(evs, requestAndSucceed(domain.ActionShutdown)...)
		return append(evs, requestAndSucceed(domain.ActionDelete)...)
	},
	// Creation fails on Proxmox.
	func(r *rand.Rand, _ uuid.UUID) []domain.Event {
		return []domain.Event{&domain.VMActionFailed{Action: domain.ActionCreate, Error: name(r, "storage full")}}
	},
	// Creation's result never comes.
	func(*rand.Rand, uuid.UUID) []domain.Event {
		return []domain.Event{&domain.VMOperationTimedOut{Action: domain.ActionCreate, Deadline: 10 * time.Minute}}
	},
	// Actions fail and time out; the VM returns to where it was.
	func(r *rand.Rand, cluster uuid.UUID) []domain.Event {
		return []domain.Event{provisioned(r, cluster),
			&domain.VMResizeRequested{Spec: spec(r)},
			&domain.VMActionFailed{Action: domain.ActionResize, TaskID: "UPID:pve1:resize", Error: "not enough memory"},
			&domain.VMActionRequested{Action: domain.ActionReboot},
			&domain.VMActionFailed{Action: domain.ActionReboot, Error: "locked"},
			&domain.VMSnapshotRequested{Name: name(r, "snap")},
			&domain.VMOperationTimedOut{Action: domain.ActionSnapshot, Deadline: 10 * time.Minute}}
	},
	// Someone changes the VM on Proxmox by hand: stopped, then removed.
	func(r *rand.Rand, cluster uuid.UUID) []domain.Event {
		return []domain.Event{provisioned(r, cluster),
			&domain.VMDriftDetected{Expected: domain.VMRunning, Observed: domain.VMStopped},
			&domain.VMDriftDetected{Expected: domain.VMStopped, Observed: domain.VMDeleted}}
	},
	// Cloud-init changed and booted with; then rebuilt step by step, and a
	// second rebuild fails half-way.
	func(r *rand.Rand, cluster uuid.UUID) []domain.Event {
		ci := CloudInit(r)
		if ci == nil {
			ci = &domain.CloudInit{Hostname: name(r, "vm"), Nameservers: []string{"192.0.2.53"}}
		}
		p := provisioned(r, cluster).(*domain.VMProvisioned)
		evs := []domain.Event{p, &domain.VMCloudInitUpdateRequested{Kind: domain.KindQEMU, CloudInit: *ci},
			&domain.VMActionSucceeded{Action: domain.ActionConfigure, TaskID: "UPID:pve1:configure", CloudInit: ci}}
		evs = append(evs, requestAndSucceed(domain.ActionReboot)...)
		// changed again, then rebooted by hand; changed again, then
		// stopped and started by hand
		evs = append(evs, &domain.VMCloudInitUpdateRequested{Kind: domain.KindQEMU, CloudInit: *ci},
			&domain.VMActionSucceeded{Action: domain.ActionConfigure, CloudInit: ci},
			&domain.VMCloudInitApplied{BootedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			&domain.VMCloudInitUpdateRequested{Kind: domain.KindQEMU, CloudInit: *ci},
			&domain.VMActionSucceeded{Action: domain.ActionConfigure, CloudInit: ci},
			&domain.VMDriftDetected{Expected: domain.VMRunning, Observed: domain.VMStopped},
			&domain.VMDriftDetected{Expected: domain.VMStopped, Observed: domain.VMRunning})
		rebuild := &domain.VMRebuildRequested{Template: "debian-12", Kind: domain.KindQEMU, Name: name(r, "vm"), Spec: spec(r),
			ClusterID: cluster, Node: p.Node, VMID: p.VMID, CloudInit: ci}
		evs = append(evs, rebuild,
			&domain.VMRebuildProgressed{Step: domain.RebuildDestroyed, TaskID: "UPID:pve1:destroy"},
			&domain.VMRebuildProgressed{Step: domain.RebuildCloned, Node: p.Node, VMID: p.VMID, TaskID: "UPID:pve1:clone"},
			&domain.VMRebuildProgressed{Step: domain.RebuildConfigured},
			&domain.VMRebuilt{Template: "debian-12", Node: p.Node, VMID: p.VMID, TaskID: "UPID:pve1:start"},
			rebuild, &domain.VMRebuildProgressed{Step: domain.RebuildDestroyed},
			&domain.VMActionFailed{Action: domain.ActionRebuild, Error: name(r, "clone failed")})
		return evs
	},
	// Still provisioning: the request is all there is.
	func(*rand.Rand, uuid.UUID) []domain.Event { return nil },
	// Snapshots rolled back and deleted, backups taken, failed, deleted
	// and restored (corpus_backups.go).
	snapshotsAndBackups,
}

func (c *corpus) vm(tenant, cluster uuid.UUID, life vmLife) {
	create := &domain.VMCreateRequested{Name: fmt.Sprintf("vm-%d", c.r.IntN(1000)), Kind: pick(c.r, domain.KindQEMU, domain.KindLXC),
		Spec: spec(c.r), Template: pick(c.r, "debian-12", "ubuntu-24.04"), ClusterID: pick(c.r, uuid.Nil, cluster), Node: pick(c.r, "", "pve1"),
		CloudInit: CloudInit(c.r)}
	life2 := life(c.r, cluster)
	vm := c.add(tenant, domain.StreamVM, append([]domain.Event{create}, life2...)...)
	// VMs take an address from their cluster's pool in the same
	// transaction (some still provisioning have none); one deleted on
	// Proxmox gives it back, one placed hears from its guest.
	p := c.pools[cluster]
	if p == nil || (len(life2) == 0 && c.r.IntN(2) == 0) {
		return
	}
	allocated, a, err := p.Allocate(vm, tenant)
	if err != nil {
		panic(err)
	}
	p.record(allocated)
	n := p.Network(a)
	create.Network = &n
	v := &domain.VM{ID: vm, TenantID: tenant}
	for _, e := range append([]domain.Event{create}, life2...) {
		v.Apply(e, time.Time{})
	}
	if v.Status == domain.VMDeleted {
		p.record(p.Release(vm))
		return
	}
	if v.VMID != 0 {
		s := &c.streams[len(c.streams)-1]
		s.Events = append(s.Events, &domain.VMGuestAddressesReported{Addresses: domain.GlobalAddresses([]string{a.IPv4, "fe80::1", "10.200.0.9"})})
	}
}
