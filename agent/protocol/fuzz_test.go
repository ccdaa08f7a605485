package protocol

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzDecodeAgentMessages: the core reads results, observations,
// inventories and guest addresses from agents; each decoder answers a message with the ids it
// requires and only valid text, or ErrInvalidMessage, and never panics.
func FuzzDecodeAgentMessages(f *testing.F) {
	for _, m := range []any{
		Result{RequestEventID: uuid.New(), VMID: uuid.New(), TenantID: uuid.New(), Action: "create", FinishedAt: time.Unix(1, 0)},
		Observation{ClusterID: uuid.New(), ObservedAt: time.Unix(1, 0), Guests: []ObservedGuest{{}}},
		Inventory{ClusterID: uuid.New(), Nodes: []Node{{Name: "pve1"}}, Templates: []Template{{Name: "debian-12"}}},
		GuestAddresses{TenantID: uuid.New(), VMID: uuid.New(), Addresses: []string{"10.0.0.2"}, ObservedAt: time.Unix(1, 0)},
	} {
		var data []byte
		switch m := m.(type) {
		case Result:
			msg, _ := NewResultMsg(m)
			data = msg.Data
		case Observation:
			msg, _ := NewObservationMsg(m)
			data = msg.Data
		case Inventory:
			msg, _ := NewInventoryMsg(m)
			data = msg.Data
		case GuestAddresses:
			msg, _ := NewGuestAddressesMsg(m)
			data = msg.Data
		}
		f.Add(data)
	}
	f.Add([]byte(`{"cluster_id":"00000000-0000-0000-0000-000000000000"}`))
	f.Add([]byte(`{"vm_id":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(what string, err error, ok bool) {
			t.Helper()
			if err != nil && !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("%s %q: %v, want ErrInvalidMessage", what, data, err)
			}
			if err == nil && !ok {
				t.Fatalf("%s %q accepted without its ids", what, data)
			}
			if err == nil && checkText(data) != nil {
				t.Fatalf("%s %q accepted with a string that is not valid text", what, data)
			}
		}
		r, err := DecodeResult(data)
		check("result", err, r.RequestEventID != uuid.Nil && r.VMID != uuid.Nil && r.TenantID != uuid.Nil && r.Action != "")
		o, err := DecodeObservation(data)
		check("observation", err, o.ClusterID != uuid.Nil)
		inv, err := DecodeInventory(data)
		check("inventory", err, inv.ClusterID != uuid.Nil)
		g, err := DecodeGuestAddresses(data)
		check("guest addresses", err, g.TenantID != uuid.Nil && g.VMID != uuid.Nil && len(g.Addresses) <= MaxGuestAddresses)
	})
}
