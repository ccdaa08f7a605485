package domain

import "github.com/google/uuid"

// Session and authentication events: the audit trail of sign-ins. A session
// stream is "session-<session id>" in the user's tenant. Attempts that fail
// before a user is known are recorded in the platform tenant.
type (
	SessionStarted struct {
		UserID uuid.UUID `json:"user_id"`
	}
	SessionRefreshed struct {
		UserID uuid.UUID `json:"user_id"`
	}
	SessionEnded struct {
		UserID uuid.UUID `json:"user_id"`
		// Reason: logout, revoked (by the user or an admin), refresh_reuse
		// (a rotated refresh token came back: the session is compromised),
		// user_disabled, tenant_suspended.
		Reason string `json:"reason"`
	}
	// LoginFailed records a failed sign-in. EmailHash is a SHA-256 of the
	// normalized address the client sent: enough to correlate attempts, and
	// no leak of what someone typed (people type passwords into email fields).
	LoginFailed struct {
		UserID    uuid.UUID `json:"user_id,omitempty"`
		EmailHash string    `json:"email_hash"`
		Reason    string    `json:"reason"` // bad_credentials, throttled, user_disabled, tenant_suspended
	}
	// PasswordCheckFailed records a password change refused because the
	// current password given was wrong, or because the account's sign-in
	// throttle (which such failures count towards, like failed logins) is
	// locked. Recorded in the user's tenant; actor and user are the same.
	PasswordCheckFailed struct {
		UserID uuid.UUID `json:"user_id"`
		Reason string    `json:"reason"` // bad_current_password, throttled
	}
	// RefreshFailed records a refresh token that was refused.
	RefreshFailed struct {
		SessionID uuid.UUID `json:"session_id"`
		Reason    string    `json:"reason"`
	}
	// AccessDenied records a request refused for lack of permission.
	AccessDenied struct {
		Method     string `json:"method"`
		Route      string `json:"route"`
		Permission string `json:"permission"`
	}
)

func (SessionStarted) EventType() string   { return "session_started" }
func (SessionRefreshed) EventType() string { return "session_refreshed" }
func (SessionEnded) EventType() string     { return "session_ended" }
func (LoginFailed) EventType() string      { return "login_failed" }
func (RefreshFailed) EventType() string    { return "refresh_failed" }
func (PasswordCheckFailed) EventType() string {
	return "password_check_failed"
}
func (AccessDenied) EventType() string { return "access_denied" }

var sessionEvents = []func() Event{
	func() Event { return &SessionStarted{} },
	func() Event { return &SessionRefreshed{} },
	func() Event { return &SessionEnded{} },
	func() Event { return &LoginFailed{} },
	func() Event { return &RefreshFailed{} },
	func() Event { return &PasswordCheckFailed{} },
	func() Event { return &AccessDenied{} },
}
