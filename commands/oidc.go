package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"golang.org/x/oauth2"
)

// OpenID Connect sign-in: the authorization code flow with PKCE (S256),
// state and nonce. The ID token is verified by go-oidc against the
// provider's JWKS (fetched on first use, cached, fetched again when a token
// names an unknown kid), with the algorithms pinned to oidcAlgorithms, the
// issuer, the audience (our client id) and expiry checked; then its nonce
// against the one this sign-in sent.

// Errors of single sign-on.
var (
	// ErrOIDCState: a callback whose state names no sign-in in flight
	// (foreign, used already, expired, or another provider's). HTTP 400;
	// nothing is created.
	ErrOIDCState = &domain.ValidationError{Fields: map[string]string{"state": "names no sign-in in flight (unknown, used or expired)"}}
	// ErrOIDCNoAccess: the provider vouched for the person, but its groups
	// map to no tenant, or there is no such user and the provider creates
	// none. HTTP 403.
	ErrOIDCNoAccess = fmt.Errorf("%w: your identity provider's groups give you no access here", domain.ErrForbidden)
	// ErrOIDCUnavailable: the provider could not be reached. HTTP 503.
	ErrOIDCUnavailable = errors.New("the identity provider cannot be reached")
)

// oidcAlgorithms are the only ID token signature algorithms accepted,
// whatever the provider's discovery document or a token's header says.
var oidcAlgorithms = []string{oidc.RS256, oidc.ES256, oidc.EdDSA}

// OIDCLoginTTL bounds the time between /start and /callback.
const OIDCLoginTTL = 10 * time.Minute

// unusablePassword is the password hash of users created by single sign-on:
// no password matches it (auth.PasswordHasher.Verify refuses it).
const unusablePassword = "!sso"

// oidcClients caches each provider's discovery document and key set, so
// JWKS are fetched once and then only for an unknown kid.
type oidcClients struct {
	mu   sync.Mutex
	byID map[uuid.UUID]*oidcClient
	http *http.Client
}

type oidcClient struct {
	issuer, clientID string
	provider         *oidc.Provider
	verifier         *oidc.IDTokenVerifier
}

func (c *oidcClients) get(ctx context.Context, id uuid.UUID, cfg domain.IdentityProviderConfig) (*oidcClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.byID[id]; ok && cl.issuer == cfg.Issuer && cl.clientID == cfg.ClientID {
		return cl, nil
	}
	// The key set lives as long as the cache: it keeps this context's HTTP
	// client, never its cancellation (go-oidc drops that).
	pctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), c.http), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(pctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOIDCUnavailable, err)
	}
	cl := &oidcClient{issuer: cfg.Issuer, clientID: cfg.ClientID, provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID, SupportedSigningAlgs: oidcAlgorithms})}
	if c.byID == nil {
		c.byID = map[uuid.UUID]*oidcClient{}
	}
	c.byID[id] = cl
	return cl, nil
}

func (h *Handler) oauthConfig(cl *oidcClient, cfg domain.IdentityProviderConfig, secret, redirectURL string) *oauth2.Config {
	return &oauth2.Config{ClientID: cfg.ClientID, ClientSecret: secret, Endpoint: cl.provider.Endpoint(),
		RedirectURL: redirectURL, Scopes: cfg.Scopes}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashState(state string) []byte {
	sum := sha256.Sum256([]byte(state))
	return sum[:]
}

// PublicProviders are the providers a sign-in page offers: id and name.
func (h *Handler) PublicProviders(ctx context.Context) ([]IdentityProviderRow, error) {
	return h.IdentityProviders(ctx)
}

// StartOIDC begins a sign-in with provider and answers the URL to send the
// browser to. redirectURL is this server's callback for that provider.
func (h *Handler) StartOIDC(ctx context.Context, provider uuid.UUID, redirectURL string) (string, error) {
	if h.vault == nil {
		return "", ErrNoVault
	}
	p, found, err := h.IdentityProvider(ctx, provider)
	if err != nil {
		return "", err
	}
	if !found {
		return "", domain.ErrNotFound
	}
	cl, err := h.oidc.get(ctx, provider, p.Config)
	if err != nil {
		return "", err
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	sealed, err := h.vault.Seal(verifier, "oidc-verifier:"+provider.String())
	if err != nil {
		return "", err
	}
	if err := h.tables.Identities().StartLogin(ctx, OIDCLogin{StateHash: hashState(state), Provider: provider, Nonce: nonce,
		SealedVerifier: sealed, ExpiresAt: h.now().Add(OIDCLoginTTL)}); err != nil {
		return "", err
	}
	return h.oauthConfig(cl, p.Config, "", redirectURL).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// oidcIdentity is what a verified ID token says of its person.
type oidcIdentity struct {
	subject, email, name string
	emailVerified        bool
	groups               []string
}

// FinishOIDC is the callback: the state must name a sign-in in flight for
// this provider (else ErrOIDCState, with nothing created); the code is
// exchanged with the PKCE verifier; the ID token verified; its groups
// mapped to a tenant and roles; the user found by provider and subject (or
// created, when the provider creates users), their roles set to the
// mapping's; and a session opened as for a password.
func (h *Handler) FinishOIDC(ctx context.Context, meta eventlog.Metadata, provider uuid.UUID, state, code, redirectURL string) (Tokens, error) {
	if h.tables == nil {
		return Tokens{}, ErrNoTables
	}
	if h.vault == nil {
		return Tokens{}, ErrNoVault
	}
	if state == "" {
		return Tokens{}, ErrOIDCState
	}
	login, found, err := h.tables.Identities().TakeLogin(ctx, hashState(state))
	if err != nil {
		return Tokens{}, err
	}
	if !found || login.Provider != provider {
		return Tokens{}, ErrOIDCState
	}
	p, found, err := h.IdentityProvider(ctx, provider)
	if err != nil {
		return Tokens{}, err
	}
	if !found {
		return Tokens{}, ErrOIDCState
	}
	a := Actor{CorrelationID: uuid.Must(uuid.NewV7()), Metadata: meta}
	refuse := func(reason string, err error) (Tokens, error) {
		_ = h.record(ctx, a, domain.PlatformTenant, &domain.LoginFailed{EmailHash: "", Reason: reason})
		return Tokens{}, err
	}
	if code == "" {
		return refuse("oidc_no_code", ErrUnauthenticated)
	}
	id, err := h.verifyOIDC(ctx, provider, p, login, code, redirectURL)
	if errors.Is(err, ErrOIDCUnavailable) {
		return Tokens{}, err
	}
	if err != nil {
		h.log.Info("oidc sign-in refused", "provider", provider, "error", err)
		return refuse("oidc_invalid_token", ErrUnauthenticated)
	}
	tenant, roles, ok := p.Config.MapGroups(id.groups)
	if !ok {
		return refuse("oidc_no_mapping", ErrOIDCNoAccess)
	}
	if err := h.tenantAcceptsCommands(ctx, tenant); err != nil {
		return refuse("tenant_suspended", ErrUnauthenticated)
	}
	cred, err := h.oidcUser(ctx, a, provider, p.Config, tenant, roles, id)
	if errors.Is(err, ErrOIDCNoAccess) || errors.Is(err, ErrUnauthenticated) {
		return refuse("oidc_no_user", err)
	}
	if err != nil {
		return Tokens{}, err
	}
	return h.openSession(ctx, a, cred, sessionOptions{events: []domain.Event{&domain.OIDCSignedIn{ProviderID: provider,
		Provider: p.Config.Name, Subject: id.subject, UserID: cred.User, Roles: cred.Roles}}})
}

// verifyOIDC exchanges the code and verifies the ID token and its nonce.
func (h *Handler) verifyOIDC(ctx context.Context, provider uuid.UUID, p IdentityProviderRow, login OIDCLogin, code, redirectURL string) (oidcIdentity, error) {
	cl, err := h.oidc.get(ctx, provider, p.Config)
	if err != nil {
		return oidcIdentity{}, err
	}
	secret, err := h.vault.Open(p.SealedSecret, providerSecretBinding(provider))
	if err != nil {
		return oidcIdentity{}, err
	}
	verifier, err := h.vault.Open(login.SealedVerifier, "oidc-verifier:"+provider.String())
	if err != nil {
		return oidcIdentity{}, err
	}
	xctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, h.oidc.http), 10*time.Second)
	defer cancel()
	xctx = context.WithValue(xctx, oauth2.HTTPClient, h.oidc.http)
	tok, err := h.oauthConfig(cl, p.Config, secret, redirectURL).Exchange(xctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return oidcIdentity{}, fmt.Errorf("code exchange: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return oidcIdentity{}, errors.New("no id_token in the token response")
	}
	idt, err := cl.verifier.Verify(xctx, raw)
	if err != nil {
		return oidcIdentity{}, fmt.Errorf("id token: %w", err)
	}
	if idt.Nonce == "" || idt.Nonce != login.Nonce {
		return oidcIdentity{}, errors.New("id token: nonce does not match the sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return oidcIdentity{}, err
	}
	id := oidcIdentity{subject: idt.Subject, groups: stringsClaim(claims[p.Config.GroupsClaim])}
	id.email, _ = claims["email"].(string)
	id.emailVerified = true
	if v, ok := claims["email_verified"].(bool); ok {
		id.emailVerified = v
	}
	for _, k := range []string{"name", "preferred_username", "email"} {
		if s, _ := claims[k].(string); s != "" && id.name == "" {
			id.name = s
		}
	}
	if id.subject == "" || len(id.subject) > 255 || !domain.ValidText(id.subject) {
		return oidcIdentity{}, errors.New("id token: unusable subject")
	}
	return id, nil
}

// stringsClaim reads a groups claim: a list of strings, or one string.
func stringsClaim(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// oidcUser is the credential of the provider's subject in tenant: found by
// its link (its roles then set to the mapping's, so a group change takes
// effect at the next sign-in), or created with a link when the provider
// creates users and its email is verified and free.
func (h *Handler) oidcUser(ctx context.Context, a Actor, provider uuid.UUID, cfg domain.IdentityProviderConfig, tenant uuid.UUID,
	roles []string, id oidcIdentity) (Credential, error) {
	user, linked, err := h.tables.Identities().Identity(ctx, tenant, provider, id.subject)
	if err != nil {
		return Credential{}, err
	}
	if linked {
		cred, found, err := h.tables.Credentials().Of(ctx, tenant, user)
		if err != nil {
			return Credential{}, err
		}
		if !found || cred.Status != domain.UserActive {
			return Credential{}, ErrUnauthenticated
		}
		if !slices.Equal(cred.Roles, roles) {
			sys := Actor{UserID: user, TenantID: tenant, Roles: []string{auth.RolePlatformAdmin}, CorrelationID: a.CorrelationID, Metadata: a.Metadata}
			_, err := h.ChangeUserRoles(ctx, sys, Options{}, tenant, user, roles)
			switch {
			case errors.Is(err, domain.ErrLastAdmin):
				h.log.Warn("oidc: the mapped roles would leave the tenant without an admin; roles kept", "user", user)
			case err != nil:
				return Credential{}, err
			default:
				cred.Roles = roles
			}
		}
		return cred, nil
	}
	if !cfg.CreateUsers || id.email == "" || !id.emailVerified {
		return Credential{}, ErrOIDCNoAccess
	}
	name := id.name
	if len([]rune(name)) > 100 {
		name = string([]rune(name)[:100])
	}
	events, err := domain.CreateUser(id.email, strings.TrimSpace(name), roles, auth.ValidRole)
	if err != nil {
		return Credential{}, err
	}
	created := events[0].(*domain.UserCreated)
	events = append(events, &domain.UserIdentityLinked{ProviderID: provider, Subject: id.subject})
	uid := uuid.Must(uuid.NewV7())
	cred := Credential{Tenant: tenant, User: uid, Email: created.Email, PasswordHash: unusablePassword, Roles: created.Roles, Status: domain.UserActive}
	a.UserID, a.TenantID = uid, tenant
	_, err = h.commit(ctx, a, Options{}, change{tenant: tenant, stream: userStream(uid), events: events,
		side: func(ctx context.Context, tx TxTables) error {
			if err := tx.Credentials().Create(ctx, cred); err != nil {
				return err
			}
			return tx.Identities().Link(ctx, tenant, provider, id.subject, uid)
		}})
	if err != nil {
		return Credential{}, err
	}
	return cred, nil
}
