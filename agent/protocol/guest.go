package protocol

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// Guest addresses: once a VM runs, the agent asks its guest which addresses
// it has (the QEMU guest agent's network-get-interfaces, a container's
// interfaces) and reports them on accountdb.agent.guests.<tenant_id>. The
// core records them on the VM (vm_guest_addresses_reported) when they
// differ from what it shows, so a report repeated is harmless.
const (
	GuestSubjectPrefix = "accountdb.agent.guests."
	KindGuestAddresses = "guest_addresses"
	// MaxGuestAddresses bounds a report: a guest is not trusted to be brief.
	MaxGuestAddresses = 64
)

// GuestAddresses is what one VM's guest reported, loopback and link-local
// addresses left out.
type GuestAddresses struct {
	TenantID   uuid.UUID `json:"tenant_id"`
	VMID       uuid.UUID `json:"vm_id"`
	Addresses  []string  `json:"addresses"`
	ObservedAt time.Time `json:"observed_at"`
}

// GuestSubject is where a tenant's guest reports are published.
func GuestSubject(tenant uuid.UUID) string { return GuestSubjectPrefix + tenant.String() }

// NewGuestAddressesMsg is the message carrying g.
func NewGuestAddressesMsg(g GuestAddresses) (*nats.Msg, error) {
	if g.TenantID == uuid.Nil || g.VMID == uuid.Nil {
		return nil, fmt.Errorf("%w: a guest report needs tenant and VM", ErrInvalidMessage)
	}
	if len(g.Addresses) > MaxGuestAddresses {
		g.Addresses = g.Addresses[:MaxGuestAddresses]
	}
	if g.Addresses == nil {
		g.Addresses = []string{}
	}
	return newMsg(GuestSubject(g.TenantID), KindGuestAddresses, g)
}

// DecodeGuestAddresses reads a guest report's payload.
func DecodeGuestAddresses(data []byte) (GuestAddresses, error) {
	var g GuestAddresses
	if err := json.Unmarshal(data, &g); err != nil {
		return GuestAddresses{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if err := checkText(data); err != nil {
		return GuestAddresses{}, err
	}
	if g.TenantID == uuid.Nil || g.VMID == uuid.Nil || len(g.Addresses) > MaxGuestAddresses {
		return GuestAddresses{}, fmt.Errorf("%w: guest report without tenant or VM, or with more than %d addresses", ErrInvalidMessage, MaxGuestAddresses)
	}
	return g, nil
}
