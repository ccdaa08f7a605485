package domain

import (
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// StreamIdentityProvider is the stream type of an OpenID Connect provider,
// "identity_provider-<id>" in the platform tenant.
const StreamIdentityProvider = "identity_provider"

// GroupMapping maps a group of the provider's groups claim to a tenant and
// the roles its members get there.
type GroupMapping struct {
	Group    string    `json:"group"`
	TenantID uuid.UUID `json:"tenant_id"`
	Roles    []string  `json:"roles"`
}

// IdentityProviderConfig is a provider's configuration, without its client
// secret (sealed in identity_providers, never in an event).
type IdentityProviderConfig struct {
	Name        string         `json:"name"`
	Issuer      string         `json:"issuer"`
	ClientID    string         `json:"client_id"`
	Scopes      []string       `json:"scopes"`
	GroupsClaim string         `json:"groups_claim"`
	Mappings    []GroupMapping `json:"mappings"`
	CreateUsers bool           `json:"create_users"`
}

// Identity provider events, and the sign-in ones.
type (
	// IdentityProviderConfigured records a provider's whole configuration,
	// at creation and at each change. SecretChanged says the client secret
	// was set or replaced (its value is never recorded).
	IdentityProviderConfigured struct {
		IdentityProviderConfig
		SecretChanged bool `json:"secret_changed"`
	}
	IdentityProviderDeleted struct{}
	// OIDCSignedIn records, on the session's stream beside session_started,
	// which provider and subject a single sign-on session is for, and the
	// tenant and roles its groups mapped to.
	OIDCSignedIn struct {
		ProviderID uuid.UUID `json:"provider_id"`
		Provider   string    `json:"provider"`
		Subject    string    `json:"subject"`
		UserID     uuid.UUID `json:"user_id"`
		Roles      []string  `json:"roles"`
	}
	// UserIdentityLinked records, on a user's stream, that a provider's
	// subject signs in as this user.
	UserIdentityLinked struct {
		ProviderID uuid.UUID `json:"provider_id"`
		Subject    string    `json:"subject"`
	}
)

func (IdentityProviderConfigured) EventType() string { return "identity_provider_configured" }
func (IdentityProviderDeleted) EventType() string    { return "identity_provider_deleted" }
func (OIDCSignedIn) EventType() string               { return "oidc_signed_in" }
func (UserIdentityLinked) EventType() string         { return "user_identity_linked" }

var idpEvents = []func() Event{
	func() Event { return &IdentityProviderConfigured{} },
	func() Event { return &IdentityProviderDeleted{} },
	func() Event { return &OIDCSignedIn{} },
	func() Event { return &UserIdentityLinked{} },
}

// IdentityProvider is a provider's state.
type IdentityProvider struct {
	ID      uuid.UUID
	Config  IdentityProviderConfig
	Deleted bool
	Version int64
}

// Exists reports whether the provider was configured and not deleted.
func (p *IdentityProvider) Exists() bool { return p.Version > 0 && !p.Deleted }

// Apply mutates the provider by one recorded event.
func (p *IdentityProvider) Apply(e Event, _ time.Time) {
	switch e := e.(type) {
	case *IdentityProviderConfigured:
		p.Config = e.IdentityProviderConfig
	case *IdentityProviderDeleted:
		p.Deleted = true
	}
	p.Version++
}

// ValidateIdentityProvider checks and normalises a configuration: a name;
// an https issuer (http only to loopback when allowLoopbackHTTP, for
// development); a client id; scopes with openid; a groups claim (default
// "groups"); mappings naming a group, a tenant and known roles (never
// platform_admin: single sign-on grants tenant roles only). secretGiven
// says whether a client secret comes with it (required when creating).
func ValidateIdentityProvider(c IdentityProviderConfig, creating, secretGiven, allowLoopbackHTTP bool, validRole func(string) bool) (IdentityProviderConfig, error) {
	f := fieldErrors{}
	c.Name = strings.TrimSpace(c.Name)
	if n := utf8.RuneCountInString(c.Name); n == 0 || n > 100 || strings.ContainsFunc(c.Name, isControl) {
		f.add("name", "is required: 1 to 100 characters without control characters")
	}
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "" || err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		f.add("issuer", "must be the provider's issuer URL (https://…, no credentials, query or fragment)")
	case u.Scheme != "https" && !(allowLoopbackHTTP && u.Scheme == "http" && isLoopback(u.Hostname())):
		f.add("issuer", "must use https")
	}
	c.ClientID = strings.TrimSpace(c.ClientID)
	if c.ClientID == "" || len(c.ClientID) > 255 || strings.ContainsFunc(c.ClientID, isControl) {
		f.add("client_id", "is required (at most 255 characters)")
	}
	if creating && !secretGiven {
		f.add("client_secret", "is required")
	}
	scopes := []string{"openid"}
	for _, s := range c.Scopes {
		if s == "" || len(s) > 100 || strings.ContainsAny(s, " \t\r\n\"") {
			f.add("scopes", "each scope is one token of at most 100 characters")
			continue
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	c.Scopes = scopes
	if c.GroupsClaim = strings.TrimSpace(c.GroupsClaim); c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	} else if len(c.GroupsClaim) > 100 || strings.ContainsFunc(c.GroupsClaim, isControl) {
		f.add("groups_claim", "at most 100 characters")
	}
	if c.Mappings == nil {
		c.Mappings = []GroupMapping{}
	}
	for i, m := range c.Mappings {
		m.Group = strings.TrimSpace(m.Group)
		switch {
		case m.Group == "" || len(m.Group) > 255:
			f.add("mappings", "each mapping needs a group")
		case m.TenantID == uuid.Nil || m.TenantID == PlatformTenant:
			f.add("mappings", "each mapping needs a customer tenant_id")
		}
		roles := normalizeRoles(fieldErrors{}, m.Roles, validRole)
		if len(roles) == 0 || slices.Contains(roles, "platform_admin") || slices.ContainsFunc(roles, func(r string) bool { return !validRole(r) }) {
			f.add("mappings", "each mapping needs known tenant roles (not platform_admin)")
		}
		m.Roles = roles
		c.Mappings[i] = m
	}
	return c, f.err()
}

// MapGroups is where a member of groups signs in: the tenant of the first
// mapping (in configured order) whose group they are in, and the roles of
// every mapping of that tenant whose group they are in; false when none.
func (c IdentityProviderConfig) MapGroups(groups []string) (uuid.UUID, []string, bool) {
	var tenant uuid.UUID
	var roles []string
	for _, m := range c.Mappings {
		if !slices.Contains(groups, m.Group) || (tenant != uuid.Nil && m.TenantID != tenant) {
			continue
		}
		tenant = m.TenantID
		roles = append(roles, m.Roles...)
	}
	if tenant == uuid.Nil {
		return uuid.Nil, nil, false
	}
	slices.Sort(roles)
	return tenant, slices.Compact(roles), true
}
