package commands

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// OpenID Connect providers are platform configuration (the routes require
// tenant:manage): their streams and rows are in the platform tenant, and
// their client secrets are sealed with the vault, bound to the provider.

// ErrProviderNameTaken: another provider has the name. HTTP 409.
var ErrProviderNameTaken = fmt.Errorf("%w: another identity provider has this name", domain.ErrConflict)

func providerStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamIdentityProvider, ID: id}
}

func providerSecretBinding(id uuid.UUID) string { return "oidc-client:" + id.String() }

// ProviderChange is a provider's configuration as a request gives it: on an
// update, nil fields are kept.
type ProviderChange struct {
	Name, Issuer, ClientID, GroupsClaim *string
	ClientSecret                        *string
	Scopes                              *[]string
	Mappings                            *[]domain.GroupMapping
	CreateUsers                         *bool
}

func (c ProviderChange) apply(cfg domain.IdentityProviderConfig) domain.IdentityProviderConfig {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&cfg.Name, c.Name)
	set(&cfg.Issuer, c.Issuer)
	set(&cfg.ClientID, c.ClientID)
	set(&cfg.GroupsClaim, c.GroupsClaim)
	if c.Scopes != nil {
		cfg.Scopes = *c.Scopes
	}
	if c.Mappings != nil {
		cfg.Mappings = *c.Mappings
	}
	if c.CreateUsers != nil {
		cfg.CreateUsers = *c.CreateUsers
	}
	return cfg
}

// CreateIdentityProvider configures a provider.
func (h *Handler) CreateIdentityProvider(ctx context.Context, a Actor, o Options, c ProviderChange) (Result, error) {
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "idp:"+o.IdempotencyKey)
	}
	return h.saveProvider(ctx, a, o, id, c, true)
}

// UpdateIdentityProvider changes the fields c sets.
func (h *Handler) UpdateIdentityProvider(ctx context.Context, a Actor, o Options, id uuid.UUID, c ProviderChange) (Result, error) {
	return h.saveProvider(ctx, a, o, id, c, false)
}

func (h *Handler) saveProvider(ctx context.Context, a Actor, o Options, id uuid.UUID, c ProviderChange, creating bool) (Result, error) {
	if h.vault == nil {
		return Result{}, ErrNoVault
	}
	secretGiven := c.ClientSecret != nil && *c.ClientSecret != ""
	if c.ClientSecret != nil && !secretGiven {
		return Result{}, &domain.ValidationError{Fields: map[string]string{"client_secret": "must not be empty"}}
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		p := &domain.IdentityProvider{ID: id}
		if _, err := h.loadInto(ctx, domain.PlatformTenant, providerStream(id), p); err != nil {
			return change{}, err
		}
		if !creating && !p.Exists() {
			return change{}, domain.ErrNotFound
		}
		cfg, err := domain.ValidateIdentityProvider(c.apply(p.Config), creating, secretGiven, h.devHTTP, auth.ValidRole)
		if err != nil {
			return change{}, err
		}
		for _, m := range cfg.Mappings {
			t, err := h.LoadTenant(ctx, m.TenantID)
			if err != nil {
				return change{}, err
			}
			if !t.Exists() {
				return change{}, &domain.ValidationError{Fields: map[string]string{"mappings": "unknown tenant " + m.TenantID.String()}}
			}
		}
		sealed := ""
		if secretGiven {
			if sealed, err = h.vault.Seal(*c.ClientSecret, providerSecretBinding(id)); err != nil {
				return change{}, err
			}
		}
		return change{tenant: domain.PlatformTenant, stream: providerStream(id), version: p.Version,
			events: []domain.Event{&domain.IdentityProviderConfigured{IdentityProviderConfig: cfg, SecretChanged: secretGiven}},
			side: func(ctx context.Context, tx TxTables) error {
				return tx.Identities().SaveProvider(ctx, IdentityProviderRow{ID: id, Config: cfg, SealedSecret: sealed})
			}}, nil
	})
}

// DeleteIdentityProvider removes a provider: its sign-in button goes, and
// its users keep their accounts (and sessions) but cannot sign in with it.
func (h *Handler) DeleteIdentityProvider(ctx context.Context, a Actor, o Options, id uuid.UUID) (Result, error) {
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		p := &domain.IdentityProvider{ID: id}
		if _, err := h.loadInto(ctx, domain.PlatformTenant, providerStream(id), p); err != nil {
			return change{}, err
		}
		if !p.Exists() {
			return change{}, domain.ErrNotFound
		}
		return change{tenant: domain.PlatformTenant, stream: providerStream(id), version: p.Version,
			events: []domain.Event{&domain.IdentityProviderDeleted{}},
			side:   func(ctx context.Context, tx TxTables) error { return tx.Identities().DeleteProvider(ctx, id) }}, nil
	})
}

// IdentityProviders lists the configured providers (secrets sealed).
func (h *Handler) IdentityProviders(ctx context.Context) ([]IdentityProviderRow, error) {
	if h.tables == nil {
		return nil, ErrNoTables
	}
	return h.tables.Identities().Providers(ctx)
}

// IdentityProvider is one provider; false when there is none.
func (h *Handler) IdentityProvider(ctx context.Context, id uuid.UUID) (IdentityProviderRow, bool, error) {
	if h.tables == nil {
		return IdentityProviderRow{}, false, ErrNoTables
	}
	return h.tables.Identities().Provider(ctx, id)
}
