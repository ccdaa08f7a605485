package domain

// Retention of request metadata (docs/PRIVACY.md): how long the client IP
// and user agent of a tenant's requests stay readable. Past it, the keys of
// those days are destroyed (the log's ciphertext of them reads Erased) and
// the side tables forget them.

// DefaultRequestMetadataDays is the retention of a tenant that set none (and
// of the platform tenant): 90 days, long enough to investigate an incident,
// short enough not to keep where everyone was for ever.
const DefaultRequestMetadataDays = 90

// Bounds of a tenant's retention, in days.
const (
	MinRequestMetadataDays = 1
	MaxRequestMetadataDays = 3650
)

// TenantPrivacyPolicySet records a tenant's retention of request metadata
// and, when set, whether the assistant may send the model the client IPs
// and user agents of its events (docs/ASSISTANT.md; absent in events
// recorded before it existed: unchanged, and off by default).
type TenantPrivacyPolicySet struct {
	RequestMetadataDays int   `json:"request_metadata_retention_days"`
	AssistantShareIPs   *bool `json:"assistant_share_ips,omitempty"`
}

func (TenantPrivacyPolicySet) EventType() string { return "tenant_privacy_policy_set" }

// RequestMetadataRetention is the tenant's retention in days.
func (t *Tenant) RequestMetadataRetention() int {
	if t.RequestMetadataDays == 0 {
		return DefaultRequestMetadataDays
	}
	return t.RequestMetadataDays
}

// SetPrivacyPolicy sets the tenant's retention of request metadata.
func (t *Tenant) SetPrivacyPolicy(days int) ([]Event, error) { return t.SetPrivacy(days, nil) }

// SetPrivacy sets the tenant's retention of request metadata and, unless
// shareIPs is nil, whether the assistant may send request metadata.
func (t *Tenant) SetPrivacy(days int, shareIPs *bool) ([]Event, error) {
	if !t.Exists() {
		return nil, ErrNotFound
	}
	if days < MinRequestMetadataDays || days > MaxRequestMetadataDays {
		return nil, &ValidationError{Fields: map[string]string{"request_metadata_retention_days": "must be between 1 and 3650"}}
	}
	sharing := shareIPs != nil && *shareIPs != t.AssistantShareIPs
	if days == t.RequestMetadataRetention() && t.RequestMetadataDays != 0 && !sharing {
		return nil, nil
	}
	e := &TenantPrivacyPolicySet{RequestMetadataDays: days}
	if sharing {
		e.AssistantShareIPs = shareIPs
	}
	return []Event{e}, nil
}
