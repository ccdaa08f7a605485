package agent

import (
	"encoding/json"
	"testing"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// FuzzDecodeRequest: what the agent reads off the bus is a VM request with
// a tenant, a VM and an action, or an error; nothing panics.
func FuzzDecodeRequest(f *testing.F) {
	data, err := json.Marshal(domain.VMCreateRequested{Name: "web-1", Kind: domain.KindQEMU,
		Spec: domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}, Template: "debian-12", ClusterID: uuid.New()})
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range []eventlog.Event{
		{Type: "vm_create_requested", Data: data},
		{Type: "vm_start_requested", Data: json.RawMessage(`{}`)},
		{Type: "vm_created", Data: json.RawMessage(`{}`)},
		{Type: "vm_create_requested", Data: json.RawMessage(`{"spec":{"cores":"x"}}`)},
	} {
		e.Position = eventlog.Position{TransactionID: 1, GlobalPosition: 5}
		e.EventID, e.TenantID = uuid.New(), uuid.New()
		e.Stream = eventlog.StreamID{Type: domain.StreamVM, ID: uuid.New()}
		m, err := bus.NewMessage(e, eventlog.Position{}, 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.Data)
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRequest(data)
		if err != nil {
			return
		}
		if req.TenantID == uuid.Nil || req.VMID == uuid.Nil || req.Action == "" || req.Body == nil {
			t.Fatalf("%q accepted as %+v", data, req)
		}
		if action, ok := domain.RequestedAction(req.Body); !ok || action != req.Action {
			t.Fatalf("%q: action %q for a %T", data, req.Action, req.Body)
		}
	})
}
