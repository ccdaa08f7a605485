package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
)

func validRole(r string) bool { return r == "viewer" || r == "tenant_admin" }

func TestTenantInvariants(t *testing.T) {
	if _, err := domain.CreateTenant("  ", domain.Quota{}); err == nil {
		t.Fatal("empty name and zero quota accepted")
	}
	evs, err := domain.CreateTenant(" Acme ", domain.Quota{MaxVMs: 1, MaxCores: 1, MaxMemoryMB: 1, MaxDiskGB: 1})
	if err != nil {
		t.Fatal(err)
	}
	tn := &domain.Tenant{}
	for _, e := range evs {
		tn.Apply(e, time.Now())
	}
	if tn.Name != "Acme" || tn.AcceptsCommands() != nil {
		t.Fatalf("created tenant: %+v", tn)
	}
	evs, _ = tn.Suspend()
	tn.Apply(evs[0], time.Now())
	if !errors.Is(tn.AcceptsCommands(), domain.ErrTenantSuspended) {
		t.Fatal("a suspended tenant accepts commands")
	}
	if _, err := tn.Suspend(); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("suspend twice: %v", err)
	}
	neg := domain.Quota{MaxVMs: -1, MaxCores: 1, MaxMemoryMB: 1, MaxDiskGB: 1}
	if _, err := tn.Update(nil, &neg); err == nil {
		t.Fatal("negative quota accepted")
	}
}

func TestUserInvariants(t *testing.T) {
	_, err := domain.CreateUser("not-an-email", "", []string{"god"}, validRole)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Fields["email"] == "" || ve.Fields["display_name"] == "" || ve.Fields["roles"] == "" {
		t.Fatalf("invalid user accepted or unexplained: %v", err)
	}
	evs, err := domain.CreateUser(" Ann@Example.COM ", "Ann", []string{"viewer", "viewer"}, validRole)
	if err != nil {
		t.Fatal(err)
	}
	u := &domain.User{}
	u.Apply(evs[0], time.Now())
	if u.Email != "ann@example.com" || len(u.Roles) != 1 {
		t.Fatalf("normalization: %+v", u)
	}
	if evs, err := u.ChangeRoles([]string{"viewer"}, validRole); err != nil || len(evs) != 0 {
		t.Fatalf("same roles recorded a change: %v %v", evs, err)
	}
	evs, _ = u.Disable()
	u.Apply(evs[0], time.Now())
	if _, err := u.Disable(); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("disable twice: %v", err)
	}
}

func TestEventsRoundTripThroughDecode(t *testing.T) {
	for _, e := range []domain.Event{&domain.TenantCreated{Name: "x"}, &domain.UserCreated{Email: "a@b.c"}, &domain.VMCreateRequested{Name: "v"},
		&domain.VMActionFailed{Action: "start", Error: "boom"}, &domain.ClusterRegistered{Name: "c"}, &domain.SessionEnded{Reason: "logout"}} {
		if !domain.KnownEventType(e.EventType()) {
			t.Errorf("%s not registered", e.EventType())
		}
	}
	if _, err := domain.DecodeEvent("no_such_event", []byte(`{}`)); err == nil {
		t.Fatal("unknown type decoded")
	}
}
