package domain

import (
	"slices"
	"time"
)

// VMCloudInitUpdateRequested asks the agent to write a VM's new cloud-init
// settings to Proxmox. The guest reads them at its next boot: until then
// the VM shows pending changes (VM.PendingChanges).
type VMCloudInitUpdateRequested struct {
	Kind      VMKind    `json:"kind"`
	CloudInit CloudInit `json:"cloud_init"` // the whole new settings
}

func (VMCloudInitUpdateRequested) EventType() string { return "vm_cloud_init_update_requested" }

// VMCloudInitApplied: reconciliation saw the guest of a VM with pending
// changes booted since they were written (rebooted by hand on Proxmox, or
// from inside the guest by a reset Proxmox counts as a boot), so it has read
// them. A start seen as drift clears them as well (VM.Apply).
type VMCloudInitApplied struct {
	BootedAt time.Time `json:"booted_at"` // at the latest, by the agent's clock
}

func (VMCloudInitApplied) EventType() string { return "vm_cloud_init_applied" }

// vmAccessEvents are the events of cloud-init changes and rebuilds.
var vmAccessEvents = []func() Event{
	func() Event { return &VMCloudInitUpdateRequested{} },
	func() Event { return &VMCloudInitApplied{} },
	func() Event { return &VMRebuildRequested{} },
	func() Event { return &VMRebuildProgressed{} },
	func() Event { return &VMRebuilt{} },
}

// CloudInitChange is the cloud-init part of a VM update: a nil field keeps
// the current value. SSHKeys, when set, replaces the whole list (inline
// keys first, as the request numbers them, then the resolved key ids).
type CloudInitChange struct {
	User         *string
	SSHKeys      *[]string
	Password     *string
	Nameservers  *[]string
	SearchDomain *string
}

// Empty reports whether the change changes nothing.
func (c CloudInitChange) Empty() bool {
	return c.User == nil && c.SSHKeys == nil && c.Password == nil && c.Nameservers == nil && c.SearchDomain == nil
}

// UpdateCloudInit decides new cloud-init settings for the VM, validated as
// at creation (hashPassword as for NewCloudInit). The hostname stays.
func (v *VM) UpdateCloudInit(ch CloudInitChange, hashPassword func(string) string) ([]Event, error) {
	if err := v.allows(ActionConfigure); err != nil {
		return nil, err
	}
	cur := CloudInit{Hostname: v.Name}
	if v.CloudInit != nil {
		cur = *v.CloudInit
	}
	in := CloudInitInput{User: cur.User, SSHKeys: cur.SSHKeys, Hostname: cur.Hostname, Nameservers: cur.Nameservers, SearchDomain: cur.SearchDomain}
	if ch.User != nil {
		in.User = *ch.User
	}
	if ch.SSHKeys != nil {
		in.SSHKeys = *ch.SSHKeys
	}
	if ch.Password != nil {
		in.Password = *ch.Password
	}
	if ch.Nameservers != nil {
		in.Nameservers = *ch.Nameservers
	}
	if ch.SearchDomain != nil {
		in.SearchDomain = *ch.SearchDomain
	}
	if err := CheckCloudInitKind(v.Kind, in); err != nil {
		return nil, err
	}
	next, err := NewCloudInit(in, v.Name, hashPassword)
	if err != nil {
		return nil, err
	}
	if ch.Password == nil {
		next.PasswordHash = cur.PasswordHash
	}
	if sameCloudInit(next, cur) {
		return nil, nil
	}
	return []Event{&VMCloudInitUpdateRequested{Kind: v.Kind, CloudInit: next}}, nil
}

func sameCloudInit(a, b CloudInit) bool {
	return a.User == b.User && a.Hostname == b.Hostname && a.PasswordHash == b.PasswordHash && a.SearchDomain == b.SearchDomain &&
		slices.Equal(a.SSHKeys, b.SSHKeys) && slices.Equal(a.Nameservers, b.Nameservers)
}

// CheckCloudInitKind refuses what a kind of guest cannot be given: a
// container is cloned from a CT template, and Proxmox takes a user's keys
// and password for a container only when it is created from an OS
// template (ssh-public-keys and password exist on POST /nodes/{node}/lxc,
// not on its clone or config), so for lxc only the hostname and DNS apply.
func CheckCloudInitKind(kind VMKind, in CloudInitInput) error {
	if kind != KindLXC {
		return nil
	}
	f := fieldErrors{}
	const why = "containers take only hostname, nameservers and search_domain (Proxmox sets keys and passwords only on containers created from an OS template)"
	if in.User != "" {
		f.add("cloud_init.user", why)
	}
	if len(in.SSHKeys) > 0 {
		f.add("cloud_init.ssh_keys", why)
	}
	if in.Password != "" {
		f.add("cloud_init.password", why)
	}
	return f.err()
}

// CheckCloudInitCreate refuses, at creation, what a container cannot be
// given whatever its template: a user (a container's keys and password are
// root's). Keys and a password need a container created from an OS
// template, which the caller checks against the template it finds
// (CloudInitNeedsOSTemplate).
func CheckCloudInitCreate(kind VMKind, in CloudInitInput) error {
	if kind != KindLXC || in.User == "" {
		return nil
	}
	return &ValidationError{Fields: map[string]string{"cloud_init.user": "containers take no user: their SSH keys and password are root's"}}
}

// CloudInitNeedsOSTemplate is the error for a container given keys or a
// password from a template it would be cloned from (nil when it has
// neither).
func CloudInitNeedsOSTemplate(ci *CloudInit) error {
	if ci == nil {
		return nil
	}
	f := fieldErrors{}
	const why = "a container cloned from a CT template takes no keys or password (Proxmox sets them only on containers created from an OS template: pick one in GET /v1/templates)"
	if len(ci.SSHKeys) > 0 {
		f.add("cloud_init.ssh_keys", why)
	}
	if ci.PasswordHash != "" {
		f.add("cloud_init.password", why)
	}
	return f.err()
}

// applyCloudInitUpdate is VM.Apply's part for a cloud-init update: the
// settings are the VM's once Proxmox has them (the configure action's
// success), and the guest sees them at its next boot.
func (v *VM) applyCloudInitUpdate(e Event, at time.Time) {
	switch e := e.(type) {
	case *VMCloudInitUpdateRequested:
		ci := e.CloudInit
		v.Settled, v.Pending, v.PendingCloudInit = v.Status, ActionConfigure, &ci
	case *VMActionSucceeded:
		switch e.Action {
		case ActionConfigure:
			if e.CloudInit != nil {
				v.CloudInit = e.CloudInit
			}
			v.PendingCloudInit, v.PendingChanges, v.PendingSince = nil, true, at
		case ActionStart, ActionReboot:
			v.PendingChanges = false // the guest booted and read them
		}
	case *VMActionFailed:
		if e.Action == ActionConfigure {
			v.PendingCloudInit = nil
		}
	case *VMCloudInitApplied:
		v.PendingChanges = false
	case *VMDriftDetected:
		if e.Observed == VMRunning {
			v.PendingChanges = false // started by hand: the guest booted
		}
	}
}

// observeBoot is VM.Observe's part for pending changes: a running guest
// that booted after they were written has read them. bootedAt is the
// latest the boot can have been (zero: not known).
func (v *VM) observeBoot(observed VMStatus, bootedAt time.Time) []Event {
	if !v.PendingChanges || observed != VMRunning || v.Status != VMRunning || bootedAt.IsZero() || !bootedAt.After(v.PendingSince) {
		return nil
	}
	return []Event{&VMCloudInitApplied{BootedAt: bootedAt.UTC()}}
}
