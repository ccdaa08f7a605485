// Package protocol is the contract between the core and the Proxmox agent.
// The agent holds no database credentials: it reads VM requests and cluster
// registrations from the ACCOUNTDB_EVENTS stream, and answers on the
// ACCOUNTDB_AGENT stream with the messages below, which the core turns into
// events (results, drift) or caches (inventory).
package protocol

import (
	"time"

	"github.com/google/uuid"
)

// Stream and subjects of the agent's messages.
const (
	StreamName = "ACCOUNTDB_AGENT"
	// Results: accountdb.agent.results.<tenant_id>.
	ResultSubjectPrefix = "accountdb.agent.results."
	// Observations of a cluster's guests: accountdb.agent.observations.<cluster_id>.
	ObservationSubjectPrefix = "accountdb.agent.observations."
	// Inventory of a cluster's nodes and templates: accountdb.agent.inventory.<cluster_id>.
	InventorySubjectPrefix = "accountdb.agent.inventory."
	// HeaderKind names the message type on every agent message.
	HeaderKind = "Accountdb-Agent-Message"
)

// Message kinds, the value of HeaderKind.
const (
	KindResult      = "result"
	KindObservation = "observation"
	KindInventory   = "inventory"
)

// Tags the agent puts on every guest it creates, so a guest can be found again
// after a crash (before creating, the agent looks for its VM's tag) and so
// reconciliation knows which guests are AccountDB's. PVE tags allow
// [a-z0-9_+.-].
const (
	VMTagPrefix     = "accountdb-vm-"
	TenantTagPrefix = "accountdb-tenant-"
)

// VMTag is the tag of the AccountDB VM with id.
func VMTag(id uuid.UUID) string { return VMTagPrefix + id.String() }

// TenantTag is the tag of a tenant's guests.
func TenantTag(id uuid.UUID) string { return TenantTagPrefix + id.String() }

// Result is the agent's outcome of one requested event. Its Nats-Msg-Id is
// "result-<request event id>", so a retried publish is dropped by JetStream;
// the core is idempotent on RequestEventID as well.
type Result struct {
	RequestEventID uuid.UUID `json:"request_event_id"`
	CorrelationID  uuid.UUID `json:"correlation_id"`
	TenantID       uuid.UUID `json:"tenant_id"`
	VMID           uuid.UUID `json:"vm_id"` // the AccountDB VM (aggregate) id
	Action         string    `json:"action"`
	Succeeded      bool      `json:"succeeded"`
	// Error is Proxmox's own message for a permanent failure.
	Error  string `json:"error,omitempty"`
	TaskID string `json:"task_id,omitempty"` // the PVE UPID
	// Placement of a created VM.
	ClusterID uuid.UUID `json:"cluster_id,omitempty"`
	Node      string    `json:"node,omitempty"`
	PVEVMID   int       `json:"pve_vmid,omitempty"`
	// Resize: the size now configured. Snapshot: its name.
	Cores    int    `json:"cores,omitempty"`
	MemoryMB int    `json:"memory_mb,omitempty"`
	DiskGB   int    `json:"disk_gb,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	// Backup: the archive made. Rollback: the guest's power state after.
	VolumeID    string `json:"volume_id,omitempty"`
	SizeBytes   int64  `json:"size_bytes,omitempty"`
	GuestStatus string `json:"guest_status,omitempty"`
	// Verified: the archive was read back (vzdump's extractconfig) and
	// holds this VM's guest.
	Verified bool `json:"verified,omitempty"`
	// Step names a finished step of a longer action (a rebuild's
	// domain.RebuildSteps); the action's own outcome has none.
	Step string `json:"step,omitempty"`
	// FinishedAt is when the agent saw the task end.
	FinishedAt time.Time `json:"finished_at"`
}

// Observation is reconciliation's view of every AccountDB guest on one
// cluster: the core compares it with what it believes and records drift.
type Observation struct {
	ClusterID  uuid.UUID       `json:"cluster_id"`
	Guests     []ObservedGuest `json:"guests"`
	ObservedAt time.Time       `json:"observed_at"`
}

// ObservedGuest is one tagged guest: its AccountDB id and PVE status.
type ObservedGuest struct {
	VMID     uuid.UUID `json:"vm_id"`
	TenantID uuid.UUID `json:"tenant_id"`
	Node     string    `json:"node"`
	PVEVMID  int       `json:"pve_vmid"`
	// Status is PVE's: running, stopped, paused, or unknown when the
	// guest's node is offline (which is no drift: the core leaves the VM
	// as it was).
	Status string `json:"status"`
	// UptimeSeconds is PVE's uptime of a running guest (0: stopped, or
	// not known): the core tells a reboot by hand from it.
	UptimeSeconds int64 `json:"uptime_s,omitempty"`
	// Changing says the agent had an operation on the guest in progress at
	// some time since the listing began: its status is a moment of that
	// operation, which the operation's result reports, so it is no drift
	// (the core leaves the VM as it was, as for unknown).
	Changing bool `json:"changing,omitempty"`
}

// Inventory is a cluster's nodes with free capacity and its templates.
type Inventory struct {
	ClusterID  uuid.UUID  `json:"cluster_id"`
	Nodes      []Node     `json:"nodes"`
	Templates  []Template `json:"templates"`
	ObservedAt time.Time  `json:"observed_at"`
}

// Node is one cluster node and its capacity.
type Node struct {
	Name         string `json:"name"`
	Online       bool   `json:"online"`
	Cores        int    `json:"cores"`
	MemoryMB     int64  `json:"memory_mb"`
	FreeMemoryMB int64  `json:"free_memory_mb"`
	DiskGB       int64  `json:"disk_gb"`
	FreeDiskGB   int64  `json:"free_disk_gb"`
}

// Template is a guest marked as a template on the cluster.
type Template struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // qemu or lxc
	OS      string `json:"os"`
	Node    string `json:"node"`
	PVEVMID int    `json:"pve_vmid"`
	// OSTemplate is the volume of a container OS template (vztmpl): such a
	// container is created from it, not cloned, and can be given root's
	// SSH keys and password at creation. "" for a template guest.
	OSTemplate string `json:"ostemplate,omitempty"`
}
