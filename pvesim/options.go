package pvesim

import (
	"log/slog"
	"time"
)

// Documented defaults. Tests and `accountdb pvesim` rely on these values, so
// changing one is a breaking change for anything that connects without
// explicit credentials.
const (
	DefaultTokenID     = "root@pam!accountdb"
	DefaultTokenSecret = "5e1f3c2a-acc0-4db0-9e57-000000000001"
	DefaultToken       = DefaultTokenID + "=" + DefaultTokenSecret
	DefaultUser        = "root@pam"
	DefaultPassword    = "pvesim"
	DefaultNodes       = 3
	DefaultNodeCores   = 16
	DefaultNodeMemory  = 64 << 30 // bytes
	DefaultNodeStorage = 1 << 40  // bytes, the node's local-lvm pool
	DefaultVersion     = "8.2.4"
	DefaultClusterName = "accountdb-sim"
	// DefaultGuestBoot is how long, in multiples of TimeScale, a started
	// qemu guest takes until its guest agent answers.
	DefaultGuestBoot = 4.0
)

// Template describes a guest seeded as a template at start-up.
type Template struct {
	VMID     int
	Kind     string // "qemu" or "lxc"
	Name     string
	Node     string // empty: first node
	Cores    int
	MemoryMB int
	DiskGB   int
	OSType   string
}

// DefaultTemplates are seeded when Options.Templates is nil.
func DefaultTemplates() []Template {
	return []Template{
		{VMID: 9000, Kind: "qemu", Name: "debian-12", Cores: 2, MemoryMB: 2048, DiskGB: 8, OSType: "l26"},
		{VMID: 9001, Kind: "qemu", Name: "ubuntu-24.04", Cores: 2, MemoryMB: 2048, DiskGB: 10, OSType: "l26"},
		{VMID: 9100, Kind: "lxc", Name: "debian-12-ct", Cores: 1, MemoryMB: 512, DiskGB: 4, OSType: "debian"},
	}
}

// DefaultOSTemplates are the vztmpl volumes LXC creation accepts by default.
func DefaultOSTemplates() []string {
	return []string{
		"local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
		"local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
	}
}

// Options configure a Simulator. The zero value is usable: every field
// falls back to the documented default.
type Options struct {
	Nodes       int    // number of nodes, named pve1..pveN
	NodeCores   int    // CPU cores per node
	NodeMemory  uint64 // bytes of RAM per node
	NodeStorage uint64 // bytes of guest storage per node
	// Token is "user@realm!tokenid=secret"; empty means DefaultToken.
	Token string
	// User and Password are accepted by POST /access/ticket.
	User     string
	Password string
	// TimeScale is the base duration of a task; each task type runs for a
	// multiple of it. Zero finishes every task before its UPID is returned.
	TimeScale time.Duration
	// GuestBoot is how long a started guest boots before its QEMU guest
	// agent answers (until then: "QEMU guest agent is not running"), in
	// multiples of TimeScale. Zero means DefaultGuestBoot; negative means
	// the agent answers at once.
	GuestBoot float64
	// ConsoleWait is how long a vncproxy/termproxy worker waits for its
	// connection before failing "connection timed out"; zero means
	// Proxmox's 10 s.
	ConsoleWait time.Duration
	// Templates seeded at start; nil means DefaultTemplates, an empty
	// non-nil slice seeds none.
	Templates []Template
	// Guests is how many guests the cluster already runs at start (not
	// AccountDB's: untagged), spread round-robin over the nodes under the
	// lowest free vmids from 100 (seed.go).
	Guests      int
	OSTemplates []string
	ClusterName string
	Version     string
	// Seed drives the error-rate fault so runs are reproducible.
	Seed   int64
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Nodes <= 0 {
		o.Nodes = DefaultNodes
	}
	if o.NodeCores <= 0 {
		o.NodeCores = DefaultNodeCores
	}
	if o.NodeMemory == 0 {
		o.NodeMemory = DefaultNodeMemory
	}
	if o.NodeStorage == 0 {
		o.NodeStorage = DefaultNodeStorage
	}
	if o.Token == "" {
		o.Token = DefaultToken
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.ConsoleWait <= 0 {
		o.ConsoleWait = consoleAcceptWait
	}
	if o.Templates == nil {
		o.Templates = DefaultTemplates()
	}
	if o.OSTemplates == nil {
		o.OSTemplates = DefaultOSTemplates()
	}
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.GuestBoot == 0 {
		o.GuestBoot = DefaultGuestBoot
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
