package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// SessionConfig is what sign-in needs.
type SessionConfig struct {
	Issuer *auth.Issuer
	// AccountThrottle and AddressThrottle limit failed sign-ins per account
	// and per client address; Login needs both (app.NewCommandHandler gives
	// the PostgreSQL ones every replica shares).
	AccountThrottle auth.Throttle
	AddressThrottle auth.Throttle
	// SessionTTL bounds a session's life however often it is refreshed.
	SessionTTL time.Duration
}

func (c SessionConfig) withDefaults() SessionConfig {
	if c.SessionTTL <= 0 {
		c.SessionTTL = 30 * 24 * time.Hour
	}
	return c
}

// Tokens are what a successful sign-in or refresh answers.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	SessionID    uuid.UUID
	UserID       uuid.UUID
	TenantID     uuid.UUID
	// MFAToken, when set, is all a right password gets a user with
	// two-factor on: CompleteMFA takes it with a code. No session is
	// open and the other fields are empty.
	MFAToken string
	// EnrolmentOnly: the tenant requires two-factor and the user has none;
	// the session reaches only enrolment until ConfirmTOTP.
	EnrolmentOnly bool
}

// Login checks an email and password and opens a session. Every failure is
// the same ErrUnauthenticated (or ErrThrottled) with similar timing: an
// unknown email still pays for a password hash. Every attempt is recorded.
//
// When the throttle cannot answer or record (its store is down), the attempt
// gets no verdict: ErrThrottleUnavailable, before the password is checked or
// after, whether it was right or wrong. So an outage of the throttle is
// neither a free guess nor a way to tell a right password from a wrong one,
// and it locks nobody out once the store is back.
func (h *Handler) Login(ctx context.Context, meta eventlog.Metadata, email, password string) (Tokens, error) {
	if h.tables == nil {
		return Tokens{}, ErrNoTables
	}
	email = domain.NormalizeEmail(email)
	a := Actor{CorrelationID: uuid.Must(uuid.NewV7()), Metadata: meta}
	acctKey, addrKey := "acct:"+email, "ip:"+meta.ClientIP
	throttled, err := h.allowAttempt(ctx, acctKey, addrKey)
	if err != nil {
		return Tokens{}, err
	}
	if throttled != nil {
		_ = h.record(ctx, a, domain.PlatformTenant, &domain.LoginFailed{EmailHash: hashEmail(email), Reason: "throttled"})
		return Tokens{}, throttled
	}
	var cred Credential
	found := false
	// An email PostgreSQL could not compare names nobody: it is a failed
	// attempt like an unknown one, counted without querying.
	if domain.ValidText(email) {
		var err error
		if cred, found, err = h.tables.Credentials().ByEmail(ctx, email); err != nil {
			return Tokens{}, err
		}
	}
	fail := func(tenant uuid.UUID, reason string) (Tokens, error) {
		throttleErr := errors.Join(h.sessions.AccountThrottle.Failure(ctx, acctKey), h.sessions.AddressThrottle.Failure(ctx, addrKey))
		a.UserID = cred.User
		if err := h.record(ctx, a, tenant, &domain.LoginFailed{UserID: cred.User, EmailHash: hashEmail(email), Reason: reason}); err != nil {
			return Tokens{}, err
		}
		if throttleErr != nil {
			return Tokens{}, fmt.Errorf("%w: %w", ErrThrottleUnavailable, throttleErr)
		}
		return Tokens{}, ErrUnauthenticated
	}
	if !found {
		h.passwords.VerifyDummy(password)
		return fail(domain.PlatformTenant, "bad_credentials")
	}
	ok, err := h.passwords.Verify(password, cred.PasswordHash)
	if err != nil || !ok {
		return fail(cred.Tenant, "bad_credentials")
	}
	if cred.Status != domain.UserActive {
		return fail(cred.Tenant, "user_disabled")
	}
	if err := h.tenantAcceptsCommands(ctx, cred.Tenant); err != nil {
		return fail(cred.Tenant, "tenant_suspended")
	}
	// Two-factor: a right password of a user with TOTP on opens nothing
	// yet (the throttle's count is cleared by the second step); one of a
	// user who must enrol opens an enrolment-only session.
	st, hasTOTP, err := h.tables.MFA().TOTP(ctx, cred.Tenant, cred.User)
	if err != nil {
		return Tokens{}, err
	}
	if hasTOTP && st.Enabled {
		tok, err := h.mfaToken(cred)
		return Tokens{MFAToken: tok, UserID: cred.User, TenantID: cred.Tenant}, err
	}
	required, err := h.tables.MFA().RequireMFA(ctx, cred.Tenant)
	if err != nil {
		return Tokens{}, err
	}
	if err := h.sessions.AccountThrottle.Success(ctx, acctKey); err != nil {
		return Tokens{}, fmt.Errorf("%w: %w", ErrThrottleUnavailable, err)
	}
	return h.openSession(ctx, a, cred, sessionOptions{enrolmentOnly: required})
}

// sessionOptions: enrolmentOnly opens a session that reaches only
// two-factor enrolment; side, when set, writes in the session's
// transaction (a TOTP step consumed), and its error is openSession's.
type sessionOptions struct {
	enrolmentOnly bool
	side          func(context.Context, TxTables) error
	// events are recorded after session_started (oidc_signed_in).
	events []domain.Event
}

func (h *Handler) openSession(ctx context.Context, a Actor, cred Credential, so sessionOptions) (Tokens, error) {
	sid := uuid.Must(uuid.NewV7())
	refresh, refreshHash := auth.NewRefreshToken(sid)
	a.UserID, a.TenantID, a.SessionID = cred.User, cred.Tenant, sid
	a.Metadata.SessionID = sid.String()
	_, err := h.commit(ctx, a, Options{}, change{tenant: cred.Tenant, stream: sessionStream(sid),
		events: append([]domain.Event{&domain.SessionStarted{UserID: cred.User}}, so.events...),
		side: func(ctx context.Context, tx TxTables) error {
			if so.side != nil {
				if err := so.side(ctx, tx); err != nil {
					return err
				}
			}
			return tx.Sessions().Open(ctx, NewSession{Tenant: cred.Tenant, ID: sid, User: cred.User,
				ExpiresAt: h.now().Add(h.sessions.SessionTTL), ClientIP: a.Metadata.ClientIP,
				UserAgent: truncateUA(a.Metadata.UserAgent), RefreshHash: refreshHash, EnrolmentOnly: so.enrolmentOnly})
		}})
	if err != nil {
		return Tokens{}, fmt.Errorf("open session: %w", err)
	}
	t, err := h.issue(cred, sid, refresh)
	t.EnrolmentOnly = so.enrolmentOnly
	return t, err
}

func (h *Handler) issue(cred Credential, sid uuid.UUID, refresh string) (Tokens, error) {
	access, ttl, err := h.sessions.Issuer.Issue(cred.User, cred.Tenant, sid, cred.Roles)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: ttl, SessionID: sid, UserID: cred.User, TenantID: cred.Tenant}, nil
}

// Refresh rotates a refresh token. A token that was already rotated coming
// back means it was copied: the whole session is revoked.
func (h *Handler) Refresh(ctx context.Context, meta eventlog.Metadata, token string) (Tokens, error) {
	sid, hash, err := auth.ParseRefreshToken(token)
	if err != nil {
		return Tokens{}, ErrUnauthenticated
	}
	if h.tables == nil {
		return Tokens{}, ErrNoTables
	}
	rt, found, err := h.tables.Sessions().RefreshToken(ctx, hash)
	if err != nil {
		return Tokens{}, err
	}
	if !found || rt.Session != sid {
		return Tokens{}, ErrUnauthenticated
	}
	tenant, user, used, ended, expires := rt.Tenant, rt.User, rt.Used, rt.Ended, rt.ExpiresAt
	a := Actor{UserID: user, TenantID: tenant, SessionID: sid, CorrelationID: uuid.Must(uuid.NewV7()), Metadata: meta}
	a.Metadata.SessionID = sid.String()
	switch {
	case used:
		if !ended {
			if err := h.endSession(ctx, a, sid, user, "refresh_reuse"); err != nil {
				return Tokens{}, err
			}
		} else {
			_ = h.record(ctx, a, tenant, &domain.RefreshFailed{SessionID: sid, Reason: "refresh_reuse"})
		}
		return Tokens{}, ErrUnauthenticated
	case ended || h.now().After(expires):
		_ = h.record(ctx, a, tenant, &domain.RefreshFailed{SessionID: sid, Reason: "session_ended"})
		return Tokens{}, ErrUnauthenticated
	}
	cred, found, err := h.tables.Credentials().Of(ctx, tenant, user)
	if err != nil {
		return Tokens{}, err
	}
	if !found || cred.Status != domain.UserActive || h.tenantAcceptsCommands(ctx, tenant) != nil {
		_ = h.record(ctx, a, tenant, &domain.RefreshFailed{SessionID: sid, Reason: "user_or_tenant_inactive"})
		return Tokens{}, ErrUnauthenticated
	}

	next, nextHash := auth.NewRefreshToken(sid)
	errReused := errors.New("refresh token used concurrently")
	_, err = h.commit(ctx, a, Options{}, change{tenant: tenant, stream: sessionStream(sid), anyVersion: true,
		events: []domain.Event{&domain.SessionRefreshed{UserID: user}},
		side: func(ctx context.Context, tx TxTables) error {
			rotated, err := tx.Sessions().Rotate(ctx, tenant, sid, hash, nextHash, meta.ClientIP, truncateUA(meta.UserAgent))
			if err == nil && !rotated {
				return errReused
			}
			return err
		}})
	if errors.Is(err, errReused) {
		// Another request rotated the same token first: that is reuse too.
		if err := h.endSession(ctx, a, sid, user, "refresh_reuse"); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, ErrUnauthenticated
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	return h.issue(cred, sid, next)
}

// Logout ends the actor's current session.
func (h *Handler) Logout(ctx context.Context, a Actor) error {
	return h.endSession(ctx, a, a.SessionID, a.UserID, "logout")
}

// RevokeSession ends one of the actor's own sessions; another user's session
// is ErrNotFound, like one that does not exist.
func (h *Handler) RevokeSession(ctx context.Context, a Actor, sid uuid.UUID) error {
	if h.tables == nil {
		return ErrNoTables
	}
	owner, ended, found, err := h.tables.Sessions().Session(ctx, a.TenantID, sid)
	if err != nil {
		return err
	}
	if !found || owner != a.UserID {
		return domain.ErrNotFound
	}
	if ended {
		return nil
	}
	return h.endSession(ctx, a, sid, a.UserID, "revoked")
}

func (h *Handler) endSession(ctx context.Context, a Actor, sid, user uuid.UUID, reason string) error {
	_, err := h.commit(ctx, a, Options{}, change{tenant: a.TenantID, stream: sessionStream(sid), anyVersion: true,
		events: []domain.Event{&domain.SessionEnded{UserID: user, Reason: reason}},
		side: func(ctx context.Context, tx TxTables) error {
			return tx.Sessions().End(ctx, sid, reason)
		}})
	return err
}

// SessionRoles reports whether a session of user is still open and, if so,
// the user's roles now: the API checks it on each request so that ending a
// session cuts its access token off at once, and a role taken away is gone
// at once too, not when the token carrying it expires.
func (h *Handler) SessionRoles(ctx context.Context, tenant, user, sid uuid.UUID) ([]string, bool, error) {
	if h.tables == nil {
		return nil, false, ErrNoTables
	}
	return h.tables.Sessions().OpenSessionRoles(ctx, tenant, user, sid)
}

// SessionAccess is what a request's session allows now.
type SessionAccess struct {
	// Open: the session has neither ended nor expired and its user is
	// active; Roles are then the user's roles now.
	Open  bool
	Roles []string
	// TenantSuspended: the session is not open and its tenant is suspended
	// (a suspension ends every session of the tenant), which the API tells
	// the token's holder apart from a plain 401.
	TenantSuspended bool
	// EnrolmentOnly: the session is open for two-factor enrolment only.
	EnrolmentOnly bool
}

// Access is SessionRoles, and for a session that is not open whether its
// tenant is suspended. The tenant is loaded only then: a request with an
// open session pays for one query, as before.
func (h *Handler) Access(ctx context.Context, tenant, user, sid uuid.UUID) (SessionAccess, error) {
	if h.tables == nil {
		return SessionAccess{}, ErrNoTables
	}
	roles, enrolmentOnly, open, err := h.tables.Sessions().SessionState(ctx, tenant, user, sid)
	if err != nil || open {
		return SessionAccess{Open: open, Roles: roles, EnrolmentOnly: enrolmentOnly}, err
	}
	if tenant == domain.PlatformTenant {
		return SessionAccess{}, nil
	}
	t, err := h.LoadTenant(ctx, tenant)
	if err != nil {
		return SessionAccess{}, err
	}
	return SessionAccess{TenantSuspended: t.Exists() && t.Status == domain.TenantSuspended}, nil
}

// RecordDenied records a request refused for lack of permission.
func (h *Handler) RecordDenied(ctx context.Context, a Actor, method, route, permission string) error {
	return h.record(ctx, a, a.TenantID, &domain.AccessDenied{Method: method, Route: route, Permission: permission})
}

func hashEmail(email string) string {
	sum := sha256.Sum256([]byte(email))
	return hex.EncodeToString(sum[:])
}

func truncateUA(ua string) string {
	if len(ua) > 512 {
		return ua[:512]
	}
	return ua
}
