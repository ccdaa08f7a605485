package domain

import (
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// UserStatus is active or disabled.
type UserStatus string

const (
	UserActive   UserStatus = "active"
	UserDisabled UserStatus = "disabled"
)

// User events. No event ever carries a password or its hash: credentials
// live in their own table, written in the same transaction as these events.
type (
	UserCreated struct {
		Email       string   `json:"email"`
		DisplayName string   `json:"display_name"`
		Roles       []string `json:"roles"`
	}
	UserRolesChanged struct {
		Roles    []string `json:"roles"`
		Previous []string `json:"previous"`
	}
	UserDisabledEvent   struct{}
	UserEnabled         struct{}
	UserPasswordChanged struct{}
	// UserSessionsEnded records that the user's sessions were ended at once
	// (their refresh and access tokens stop working): after a password
	// change, every session but the one that changed it (KeptSessionID,
	// absent when an administrator reset it).
	UserSessionsEnded struct {
		Reason        string     `json:"reason"` // password_changed
		KeptSessionID *uuid.UUID `json:"kept_session_id,omitempty"`
	}
)

func (UserCreated) EventType() string         { return "user_created" }
func (UserRolesChanged) EventType() string    { return "user_roles_changed" }
func (UserDisabledEvent) EventType() string   { return "user_disabled" }
func (UserEnabled) EventType() string         { return "user_enabled" }
func (UserPasswordChanged) EventType() string { return "user_password_changed" }
func (UserSessionsEnded) EventType() string   { return "user_sessions_ended" }

var userEvents = []func() Event{
	func() Event { return &UserCreated{} },
	func() Event { return &UserRolesChanged{} },
	func() Event { return &UserDisabledEvent{} },
	func() Event { return &UserEnabled{} },
	func() Event { return &UserPasswordChanged{} },
	func() Event { return &UserSessionsEnded{} },
	func() Event { return &UserSSHKeyAdded{} },
	func() Event { return &UserSSHKeyRemoved{} },
	func() Event { return &UserErased{} },
}

// User is a person who signs in to one tenant.
type User struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	Email       string
	DisplayName string
	Roles       []string
	Status      UserStatus
	SSHKeys     []UserSSHKey
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// Exists reports whether the user has been created and not erased.
func (u *User) Exists() bool { return u.Version > 0 && u.Status != UserErasedStatus }

// Apply mutates the user by one recorded event.
func (u *User) Apply(e Event, at time.Time) {
	switch e := e.(type) {
	case *UserCreated:
		u.Email, u.DisplayName, u.Roles, u.Status, u.CreatedAt = e.Email, e.DisplayName, e.Roles, UserActive, at
	case *UserRolesChanged:
		u.Roles = e.Roles
	case *UserDisabledEvent:
		u.Status = UserDisabled
	case *UserEnabled:
		u.Status = UserActive
	case *UserSSHKeyAdded, *UserSSHKeyRemoved:
		u.applySSHKey(e)
	case *UserErased:
		u.Email, u.DisplayName, u.SSHKeys, u.Status = "", "", nil, UserErasedStatus
	}
	u.UpdatedAt = at
	u.Version++
}

// NormalizeEmail lower-cases and trims an address; emails are unique
// across the platform in this form.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func validateEmail(f fieldErrors, email string) string {
	email = NormalizeEmail(email)
	addr, err := mail.ParseAddress(email)
	switch {
	case email == "":
		f.add("email", "is required")
	case len(email) > 254 || err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], "."):
		f.add("email", "must be a valid email address")
	}
	return email
}

func validateDisplayName(f fieldErrors, name string) string {
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name) || n == 0:
		f.add("display_name", "is required")
	case n > 100:
		f.add("display_name", "must be at most 100 characters")
	case strings.ContainsFunc(name, isControl):
		f.add("display_name", "must not contain control characters")
	}
	return name
}

// NormalizeRoles sorts and de-duplicates roles, checking each with valid.
func normalizeRoles(f fieldErrors, roles []string, valid func(string) bool) []string {
	out := slices.Clone(roles)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		f.add("roles", "at least one role is required")
	}
	for _, r := range out {
		if !valid(r) {
			f.add("roles", "unknown role "+quoteShort(r))
		}
	}
	return out
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// CreateUser decides a new user. validRole is the RBAC vocabulary's check.
func CreateUser(email, displayName string, roles []string, validRole func(string) bool) ([]Event, error) {
	f := fieldErrors{}
	email = validateEmail(f, email)
	displayName = validateDisplayName(f, displayName)
	roles = normalizeRoles(f, roles, validRole)
	if err := f.err(); err != nil {
		return nil, err
	}
	return []Event{&UserCreated{Email: email, DisplayName: displayName, Roles: roles}}, nil
}

// ChangeRoles replaces the user's roles.
func (u *User) ChangeRoles(roles []string, validRole func(string) bool) ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	f := fieldErrors{}
	roles = normalizeRoles(f, roles, validRole)
	if err := f.err(); err != nil {
		return nil, err
	}
	if slices.Equal(roles, u.Roles) {
		return nil, nil
	}
	return []Event{&UserRolesChanged{Roles: roles, Previous: u.Roles}}, nil
}

// Disable stops the user from signing in.
func (u *User) Disable() ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	if u.Status == UserDisabled {
		return nil, ErrInvalidTransition
	}
	return []Event{&UserDisabledEvent{}}, nil
}

// Enable lets a disabled user sign in again.
func (u *User) Enable() ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	if u.Status != UserDisabled {
		return nil, ErrInvalidTransition
	}
	return []Event{&UserEnabled{}}, nil
}

// ChangePassword records that the password changed (never what it is) and
// that the user's other sessions end: whoever knew the old password, or
// held a token, is out. kept is the session that changed its own password
// (uuid.Nil for an administrator's reset: then every session ends).
func (u *User) ChangePassword(kept uuid.UUID) ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	ended := &UserSessionsEnded{Reason: "password_changed"}
	if kept != uuid.Nil {
		ended.KeptSessionID = &kept
	}
	return []Event{&UserPasswordChanged{}, ended}, nil
}

// HasRole reports whether the user holds role.
func (u *User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }
