package protocol

import (
	"errors"
	"testing"

	"github.com/google/uuid"
)

// TestDecodeRefusesInvalidText: a message with a string PostgreSQL cannot
// store is invalid (terminated by the ingester), not a failure to retry.
func TestDecodeRefusesInvalidText(t *testing.T) {
	r := Result{RequestEventID: uuid.New(), VMID: uuid.New(), TenantID: uuid.New(), Action: "create"}
	msg, err := NewResultMsg(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeResult(msg.Data); err != nil {
		t.Fatalf("a valid result refused: %v", err)
	}
	r.Error = "disk \x00 full"
	msg, err = NewResultMsg(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeResult(msg.Data); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("a result with NUL in its error: %v, want ErrInvalidMessage", err)
	}
	cluster := uuid.New().String()
	for _, data := range []string{
		`{"cluster_id":"` + cluster + `","guests":[{"name":"a\u0000"}]}`,
		"{\"cluster_id\":\"" + cluster + "\",\"nodes\":[{\"name\":\"\xff\"}]}",
	} {
		if _, err := DecodeObservation([]byte(data)); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("observation %q: %v, want ErrInvalidMessage", data, err)
		}
		if _, err := DecodeInventory([]byte(data)); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("inventory %q: %v, want ErrInvalidMessage", data, err)
		}
	}
}
