package domain

import (
	"testing"
	"time"
)

// TestTenantAssistantSharing: assistant_share_ips is off by default, set
// only when a policy names it and it changes, and kept across a policy that
// does not name it.
func TestTenantAssistantSharing(t *testing.T) {
	tn := &Tenant{}
	tn.Apply(&TenantCreated{Name: "t"}, time.Now())
	tn.Version = 1
	if tn.AssistantShareIPs {
		t.Fatal("on by default")
	}
	on, off := true, false
	evs, err := tn.SetPrivacy(DefaultRequestMetadataDays, &on)
	if err != nil || len(evs) != 1 || evs[0].(*TenantPrivacyPolicySet).AssistantShareIPs == nil {
		t.Fatalf("turning it on: %v %v", evs, err)
	}
	tn.Apply(evs[0], time.Now())
	if !tn.AssistantShareIPs || tn.RequestMetadataRetention() != DefaultRequestMetadataDays {
		t.Fatalf("after: %+v", tn)
	}
	if evs, _ := tn.SetPrivacy(DefaultRequestMetadataDays, &on); len(evs) != 0 {
		t.Fatalf("no change, yet %v", evs)
	}
	evs, _ = tn.SetPrivacyPolicy(30) // names no sharing: kept
	tn.Apply(evs[0], time.Now())
	if !tn.AssistantShareIPs || evs[0].(*TenantPrivacyPolicySet).AssistantShareIPs != nil {
		t.Fatalf("a retention change touched the sharing: %+v", tn)
	}
	evs, _ = tn.SetPrivacy(30, &off)
	tn.Apply(evs[0], time.Now())
	if tn.AssistantShareIPs {
		t.Fatal("not turned off")
	}
}
