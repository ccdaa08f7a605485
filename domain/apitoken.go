package domain

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// StreamAPIToken is the stream type of an API token: "api_token-<id>" in its
// user's tenant. Each token has its own stream, so its first use (recorded
// once, whenever it happens) never moves the user's version under an
// If-Match.
const StreamAPIToken = "api_token"

// API token events. None carries the token or its hash: the hash lives in
// the api_tokens table only; Prefix is the part a list shows.
type (
	APITokenCreated struct {
		UserID      uuid.UUID  `json:"user_id"`
		Name        string     `json:"name"`
		Prefix      string     `json:"prefix"`
		Permissions []string   `json:"permissions"`
		ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	}
	// APITokenFirstUsed is recorded once, at the token's first accepted
	// request; later uses only move last_used_at (batched, no event).
	APITokenFirstUsed struct {
		UserID   uuid.UUID `json:"user_id"`
		ClientIP string    `json:"client_ip,omitempty"`
	}
	APITokenRevoked struct {
		UserID uuid.UUID `json:"user_id"`
		// Reason: revoked (by its user), revoked_by_admin.
		Reason string `json:"reason"`
	}
)

func (APITokenCreated) EventType() string   { return "api_token_created" }
func (APITokenFirstUsed) EventType() string { return "api_token_first_used" }
func (APITokenRevoked) EventType() string   { return "api_token_revoked" }

var apiTokenEvents = []func() Event{
	func() Event { return &APITokenCreated{} },
	func() Event { return &APITokenFirstUsed{} },
	func() Event { return &APITokenRevoked{} },
}

// MaxAPITokenLifetime bounds expires_at; DefaultAPITokenLifetime is taken
// when none is given (a token never lives for ever).
const (
	MaxAPITokenLifetime     = 366 * 24 * time.Hour
	DefaultAPITokenLifetime = 90 * 24 * time.Hour
	MaxAPITokensPerUser     = 50 // not revoked, expired ones included
)

// APIToken is one token's state.
type APIToken struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	Revoked   bool
	FirstUsed bool
	Version   int64
}

// Exists reports whether the token has been created.
func (t *APIToken) Exists() bool { return t.Version > 0 }

// Apply mutates the token by one recorded event.
func (t *APIToken) Apply(e Event, _ time.Time) {
	switch e := e.(type) {
	case *APITokenCreated:
		t.UserID = e.UserID
	case *APITokenFirstUsed:
		t.FirstUsed = true
	case *APITokenRevoked:
		t.Revoked = true
	}
	t.Version++
}

// NewAPIToken is a decided token request: the event and the normalised
// values the side table stores.
type NewAPIToken struct {
	Name        string
	Permissions []string
	ExpiresAt   time.Time
}

// CreateAPIToken decides a token for user: a name, at least one known
// permission, every one held by the user (else ErrForbidden), and an expiry
// in the future and at most MaxAPITokenLifetime away (DefaultAPITokenLifetime
// when nil).
func CreateAPIToken(user uuid.UUID, name, prefix string, perms []string, expiresAt *time.Time, now time.Time,
	valid func(string) bool, held []string) (NewAPIToken, []Event, error) {
	f := fieldErrors{}
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		f.add("name", "is required")
	case n > 100:
		f.add("name", "must be at most 100 characters")
	case strings.ContainsFunc(name, isControl):
		f.add("name", "must not contain control characters")
	}
	perms = slices.Clone(perms)
	slices.Sort(perms)
	perms = slices.Compact(perms)
	if len(perms) == 0 {
		f.add("permissions", "at least one permission is required")
	}
	for _, p := range perms {
		if !valid(p) {
			f.add("permissions", "unknown permission "+quoteShort(p))
		}
	}
	exp := now.Add(DefaultAPITokenLifetime)
	if expiresAt != nil {
		exp = expiresAt.UTC()
		switch {
		case !exp.After(now):
			f.add("expires_at", "must be in the future")
		case exp.Sub(now) > MaxAPITokenLifetime:
			f.add("expires_at", "must be at most a year from now")
		}
	}
	if err := f.err(); err != nil {
		return NewAPIToken{}, nil, err
	}
	for _, p := range perms {
		if !slices.Contains(held, p) {
			return NewAPIToken{}, nil, ErrForbidden
		}
	}
	exp = exp.Truncate(time.Second)
	return NewAPIToken{Name: name, Permissions: perms, ExpiresAt: exp},
		[]Event{&APITokenCreated{UserID: user, Name: name, Prefix: prefix, Permissions: perms, ExpiresAt: &exp}}, nil
}

// Revoke decides revoking the token; revoking it twice changes nothing.
func (t *APIToken) Revoke(reason string) ([]Event, error) {
	if !t.Exists() {
		return nil, ErrNotFound
	}
	if t.Revoked {
		return nil, nil
	}
	return []Event{&APITokenRevoked{UserID: t.UserID, Reason: reason}}, nil
}
