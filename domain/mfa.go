package domain

// Two-factor events. The TOTP secret and the recovery codes never reach an
// event: the secret is sealed in user_totp, the codes hashed in
// user_recovery_codes (migrations/00017). The user aggregate's state does
// not change with them (its snapshot shape stays): whether a user has TOTP
// is read from user_totp, written in the same transaction as these events.
type (
	// UserTOTPEnabled: the user confirmed an enrolment with a first code
	// and was given RecoveryCodes fresh recovery codes.
	UserTOTPEnabled struct {
		RecoveryCodes int `json:"recovery_codes"`
	}
	// UserTOTPDisabled: Reason is disabled (by the user, with a current code).
	UserTOTPDisabled struct {
		Reason string `json:"reason"`
	}
	// UserRecoveryCodeUsed: a recovery code completed a sign-in; Remaining
	// are still unused.
	UserRecoveryCodeUsed struct {
		Remaining int `json:"remaining"`
	}
	// TenantMFARequirementChanged: with Required, the tenant's users must
	// have two-factor: one without it signs in only to enrol. Recorded on
	// the tenant's stream; the setting is read from tenant_settings.
	TenantMFARequirementChanged struct {
		Required bool `json:"required"`
	}
)

func (UserTOTPEnabled) EventType() string             { return "user_totp_enabled" }
func (UserTOTPDisabled) EventType() string            { return "user_totp_disabled" }
func (UserRecoveryCodeUsed) EventType() string        { return "user_recovery_code_used" }
func (TenantMFARequirementChanged) EventType() string { return "tenant_mfa_requirement_changed" }

var mfaEvents = []func() Event{
	func() Event { return &UserTOTPEnabled{} },
	func() Event { return &UserTOTPDisabled{} },
	func() Event { return &UserRecoveryCodeUsed{} },
	func() Event { return &TenantMFARequirementChanged{} },
}
