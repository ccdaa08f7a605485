package domain

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// TenantStatus is active or suspended.
type TenantStatus string

const (
	TenantActive    TenantStatus = "active"
	TenantSuspended TenantStatus = "suspended"
)

// PlatformTenant is the tenant of platform-level streams and of platform
// administrators' accounts: never a customer tenant. It is not uuid.Nil,
// which means "no tenant" everywhere (an unscoped transaction sees nothing).
var PlatformTenant = uuid.Max

// Quota bounds what a tenant may allocate. Every field must be positive;
// MaxIPv4 (pool addresses) defaults to MaxVMs when not given.
type Quota struct {
	MaxVMs      int `json:"max_vms"`
	MaxCores    int `json:"max_cores"`
	MaxMemoryMB int `json:"max_memory_mb"`
	MaxDiskGB   int `json:"max_disk_gb"`
	MaxIPv4     int `json:"max_ipv4,omitempty"`
	// MaxSnapshotsPerVM and MaxBackupsGB: 0 means the default
	// (SnapshotLimit, BackupsGBLimit in vm_snapshots.go, vm_backups.go).
	MaxSnapshotsPerVM int `json:"max_snapshots_per_vm,omitempty"`
	MaxBackupsGB      int `json:"max_backups_gb,omitempty"`
}

// IPv4Limit is how many pool IPv4 addresses the tenant may hold: MaxIPv4,
// or MaxVMs for a quota recorded before addresses were counted.
func (q Quota) IPv4Limit() int {
	if q.MaxIPv4 > 0 {
		return q.MaxIPv4
	}
	return q.MaxVMs
}

// withDefaults fills MaxIPv4 when the request left it out.
func (q Quota) withDefaults() Quota {
	if q.MaxIPv4 == 0 {
		q.MaxIPv4 = q.MaxVMs
	}
	return q
}

func (q Quota) validate(f fieldErrors, prefix string) {
	check := func(name string, v int) {
		if v <= 0 {
			f.add(prefix+name, "must be a positive integer")
		} else if v > 1_000_000_000 {
			f.add(prefix+name, "is too large")
		}
	}
	check("max_vms", q.MaxVMs)
	check("max_cores", q.MaxCores)
	check("max_memory_mb", q.MaxMemoryMB)
	check("max_disk_gb", q.MaxDiskGB)
	check("max_ipv4", q.withDefaults().MaxIPv4)
	optional := func(name string, v int) {
		if v < 0 {
			f.add(prefix+name, "must be a positive integer, or 0 for the default")
		} else if v > 1_000_000_000 {
			f.add(prefix+name, "is too large")
		}
	}
	optional("max_snapshots_per_vm", q.MaxSnapshotsPerVM)
	optional("max_backups_gb", q.MaxBackupsGB)
}

// Tenant events.
type (
	TenantCreated struct {
		Name  string `json:"name"`
		Quota Quota  `json:"quota"`
	}
	TenantRenamed struct {
		Name string `json:"name"`
	}
	TenantQuotaChanged struct {
		Quota Quota `json:"quota"`
	}
	TenantSuspendedEvent struct{}
	TenantResumed        struct{}
)

func (TenantCreated) EventType() string        { return "tenant_created" }
func (TenantRenamed) EventType() string        { return "tenant_renamed" }
func (TenantQuotaChanged) EventType() string   { return "tenant_quota_changed" }
func (TenantSuspendedEvent) EventType() string { return "tenant_suspended" }
func (TenantResumed) EventType() string        { return "tenant_resumed" }

var tenantEvents = []func() Event{
	func() Event { return &TenantCreated{} },
	func() Event { return &TenantRenamed{} },
	func() Event { return &TenantQuotaChanged{} },
	func() Event { return &TenantSuspendedEvent{} },
	func() Event { return &TenantResumed{} },
	func() Event { return &TenantPrivacyPolicySet{} },
}

// Tenant is an account: a set of users and their VMs under one quota.
type Tenant struct {
	ID     uuid.UUID
	Name   string
	Status TenantStatus
	Quota  Quota
	// RequestMetadataDays is the retention of request metadata the tenant
	// set (0: DefaultRequestMetadataDays), tenant_privacy.go.
	RequestMetadataDays int
	// AssistantShareIPs: the assistant may send the model its events'
	// client IPs and user agents (tenant_privacy.go; default off).
	AssistantShareIPs bool
	CreatedAt         time.Time
	UpdatedAt         time.Time
	Version           int64
}

// Exists reports whether the tenant has been created.
func (t *Tenant) Exists() bool { return t.Version > 0 }

// Apply mutates the tenant by one recorded event.
func (t *Tenant) Apply(e Event, at time.Time) {
	switch e := e.(type) {
	case *TenantCreated:
		t.Name, t.Quota, t.Status, t.CreatedAt = e.Name, e.Quota, TenantActive, at
	case *TenantRenamed:
		t.Name = e.Name
	case *TenantQuotaChanged:
		t.Quota = e.Quota
	case *TenantPrivacyPolicySet:
		t.RequestMetadataDays = e.RequestMetadataDays
		if e.AssistantShareIPs != nil {
			t.AssistantShareIPs = *e.AssistantShareIPs
		}
	case *TenantSuspendedEvent:
		t.Status = TenantSuspended
	case *TenantResumed:
		t.Status = TenantActive
	}
	t.UpdatedAt = at
	t.Version++
}

func validateTenantName(f fieldErrors, name string) string {
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name) || n == 0:
		f.add("name", "is required")
	case n > 100:
		f.add("name", "must be at most 100 characters")
	case strings.ContainsFunc(name, isControl):
		f.add("name", "must not contain control characters")
	}
	return name
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// CreateTenant decides the creation of a tenant.
func CreateTenant(name string, quota Quota) ([]Event, error) {
	f := fieldErrors{}
	name = validateTenantName(f, name)
	quota.validate(f, "quota.")
	if err := f.err(); err != nil {
		return nil, err
	}
	return []Event{&TenantCreated{Name: name, Quota: quota.withDefaults()}}, nil
}

// Update renames the tenant and/or changes its quota; nil means unchanged.
func (t *Tenant) Update(name *string, quota *Quota) ([]Event, error) {
	if !t.Exists() {
		return nil, ErrNotFound
	}
	f := fieldErrors{}
	var events []Event
	if name != nil {
		n := validateTenantName(f, *name)
		if n != t.Name {
			events = append(events, &TenantRenamed{Name: n})
		}
	}
	if quota != nil {
		quota.validate(f, "quota.")
		if q := quota.withDefaults(); q != t.Quota {
			events = append(events, &TenantQuotaChanged{Quota: q})
		}
	}
	if name == nil && quota == nil {
		f.add("body", "name or quota is required")
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	return events, nil
}

// Suspend stops the tenant from issuing commands.
func (t *Tenant) Suspend() ([]Event, error) {
	if !t.Exists() {
		return nil, ErrNotFound
	}
	if t.Status == TenantSuspended {
		return nil, ErrInvalidTransition
	}
	return []Event{&TenantSuspendedEvent{}}, nil
}

// Resume lets a suspended tenant issue commands again.
func (t *Tenant) Resume() ([]Event, error) {
	if !t.Exists() {
		return nil, ErrNotFound
	}
	if t.Status != TenantSuspended {
		return nil, ErrInvalidTransition
	}
	return []Event{&TenantResumed{}}, nil
}

// AcceptsCommands is the invariant every tenant-scoped command checks first.
func (t *Tenant) AcceptsCommands() error {
	if !t.Exists() {
		return ErrNotFound
	}
	if t.Status == TenantSuspended {
		return ErrTenantSuspended
	}
	return nil
}
