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
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
}

// credential is a user_credentials row.
type credential struct {
	tenant, user uuid.UUID
	hash         string
	roles        []string
	status       string
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
func (h *Handler) Login(ctx context.Context, meta eventstore.Metadata, email, password string) (Tokens, error) {
	if h.sessions.AccountThrottle == nil || h.sessions.AddressThrottle == nil {
		return Tokens{}, fmt.Errorf("%w: no throttle configured", ErrThrottleUnavailable)
	}
	email = domain.NormalizeEmail(email)
	a := Actor{CorrelationID: uuid.Must(uuid.NewV7()), Metadata: meta}
	acctKey, addrKey := "acct:"+email, "ip:"+meta.ClientIP
	for _, th := range []struct {
		t   auth.Throttle
		key string
	}{{h.sessions.AccountThrottle, acctKey}, {h.sessions.AddressThrottle, addrKey}} {
		ok, wait, err := th.t.Allow(ctx, th.key)
		if err != nil {
			return Tokens{}, fmt.Errorf("%w: %w", ErrThrottleUnavailable, err)
		}
		if !ok {
			_ = h.record(ctx, a, domain.PlatformTenant, &domain.LoginFailed{EmailHash: hashEmail(email), Reason: "throttled"})
			return Tokens{}, &ThrottledError{RetryAfter: wait}
		}
	}
	cred, found, err := h.lookupCredential(ctx, email)
	if err != nil {
		return Tokens{}, err
	}
	fail := func(tenant uuid.UUID, reason string) (Tokens, error) {
		throttleErr := errors.Join(h.sessions.AccountThrottle.Failure(ctx, acctKey), h.sessions.AddressThrottle.Failure(ctx, addrKey))
		a.UserID = cred.user
		if err := h.record(ctx, a, tenant, &domain.LoginFailed{UserID: cred.user, EmailHash: hashEmail(email), Reason: reason}); err != nil {
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
	ok, err := h.passwords.Verify(password, cred.hash)
	if err != nil || !ok {
		return fail(cred.tenant, "bad_credentials")
	}
	if cred.status != string(domain.UserActive) {
		return fail(cred.tenant, "user_disabled")
	}
	if err := h.tenantAcceptsCommands(ctx, cred.tenant); err != nil {
		return fail(cred.tenant, "tenant_suspended")
	}
	if err := h.sessions.AccountThrottle.Success(ctx, acctKey); err != nil {
		return Tokens{}, fmt.Errorf("%w: %w", ErrThrottleUnavailable, err)
	}
	return h.openSession(ctx, a, cred)
}

func (h *Handler) openSession(ctx context.Context, a Actor, cred credential) (Tokens, error) {
	sid := uuid.Must(uuid.NewV7())
	refresh, refreshHash := auth.NewRefreshToken(sid)
	a.UserID, a.TenantID, a.SessionID = cred.user, cred.tenant, sid
	a.Metadata.SessionID = sid.String()
	_, err := h.commit(ctx, a, Options{}, change{tenant: cred.tenant, stream: sessionStream(sid),
		events: []domain.Event{&domain.SessionStarted{UserID: cred.user}},
		side: func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO sessions (tenant_id, session_id, user_id, expires_at, ip, user_agent)
				VALUES ($1, $2, $3, $4, $5, $6)`, cred.tenant, sid, cred.user, h.now().Add(h.sessions.SessionTTL),
				a.Metadata.ClientIP, truncateUA(a.Metadata.UserAgent)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (tenant_id, token_hash, session_id) VALUES ($1, $2, $3)`,
				cred.tenant, refreshHash, sid)
			return err
		}})
	if err != nil {
		return Tokens{}, fmt.Errorf("open session: %w", err)
	}
	return h.issue(cred, sid, refresh)
}

func (h *Handler) issue(cred credential, sid uuid.UUID, refresh string) (Tokens, error) {
	access, ttl, err := h.sessions.Issuer.Issue(cred.user, cred.tenant, sid, cred.roles)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: ttl, SessionID: sid, UserID: cred.user, TenantID: cred.tenant}, nil
}

// Refresh rotates a refresh token. A token that was already rotated coming
// back means it was copied: the whole session is revoked.
func (h *Handler) Refresh(ctx context.Context, meta eventstore.Metadata, token string) (Tokens, error) {
	sid, hash, err := auth.ParseRefreshToken(token)
	if err != nil {
		return Tokens{}, ErrUnauthenticated
	}
	var (
		tenant, user, tokenSession uuid.UUID
		used, ended                bool
		expires                    time.Time
	)
	err = tenantdb.ReadTx(ctx, h.pool, tenantdb.Scope{CredentialLookup: true}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT r.tenant_id, r.session_id, r.used_at IS NOT NULL, s.user_id, s.ended_at IS NOT NULL, s.expires_at
			FROM refresh_tokens r JOIN sessions s ON s.session_id = r.session_id WHERE r.token_hash = $1`, hash).
			Scan(&tenant, &tokenSession, &used, &user, &ended, &expires)
	})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && tokenSession != sid) {
		return Tokens{}, ErrUnauthenticated
	}
	if err != nil {
		return Tokens{}, err
	}
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
	cred, found, err := h.credentialOf(ctx, tenant, user)
	if err != nil {
		return Tokens{}, err
	}
	if !found || cred.status != string(domain.UserActive) || h.tenantAcceptsCommands(ctx, tenant) != nil {
		_ = h.record(ctx, a, tenant, &domain.RefreshFailed{SessionID: sid, Reason: "user_or_tenant_inactive"})
		return Tokens{}, ErrUnauthenticated
	}

	next, nextHash := auth.NewRefreshToken(sid)
	errReused := errors.New("refresh token used concurrently")
	_, err = h.commit(ctx, a, Options{}, change{tenant: tenant, stream: sessionStream(sid), anyVersion: true,
		events: []domain.Event{&domain.SessionRefreshed{UserID: user}},
		side: func(ctx context.Context, tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL`, hash)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return errReused
			}
			if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (tenant_id, token_hash, session_id) VALUES ($1, $2, $3)`,
				tenant, nextHash, sid); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE sessions SET last_seen_at = now(), ip = $2, user_agent = $3 WHERE session_id = $1`,
				sid, meta.ClientIP, truncateUA(meta.UserAgent))
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
	var owner uuid.UUID
	var ended bool
	err := h.inTenant(ctx, a.TenantID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT user_id, ended_at IS NOT NULL FROM sessions WHERE session_id = $1`, sid).Scan(&owner, &ended)
	})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != a.UserID) {
		return domain.ErrNotFound
	}
	if err != nil {
		return err
	}
	if ended {
		return nil
	}
	return h.endSession(ctx, a, sid, a.UserID, "revoked")
}

func (h *Handler) endSession(ctx context.Context, a Actor, sid, user uuid.UUID, reason string) error {
	_, err := h.commit(ctx, a, Options{}, change{tenant: a.TenantID, stream: sessionStream(sid), anyVersion: true,
		events: []domain.Event{&domain.SessionEnded{UserID: user, Reason: reason}},
		side: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE sessions SET ended_at = now(), end_reason = $2 WHERE session_id = $1 AND ended_at IS NULL`, sid, reason)
			return err
		}})
	return err
}

// SessionRoles reports whether a session of user is still open and, if so,
// the user's roles now: the API checks it on each request so that ending a
// session cuts its access token off at once, and a role taken away is gone
// at once too, not when the token carrying it expires.
func (h *Handler) SessionRoles(ctx context.Context, tenant, user, sid uuid.UUID) ([]string, bool, error) {
	var roles []string
	err := h.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT c.roles FROM sessions s
			JOIN user_credentials c ON c.tenant_id = s.tenant_id AND c.user_id = s.user_id
			WHERE s.session_id = $1 AND s.user_id = $2 AND s.ended_at IS NULL AND s.expires_at > now() AND c.status = $3`,
			sid, user, string(domain.UserActive)).Scan(&roles)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return roles, err == nil, err
}

// RecordDenied records a request refused for lack of permission.
func (h *Handler) RecordDenied(ctx context.Context, a Actor, method, route, permission string) error {
	return h.record(ctx, a, a.TenantID, &domain.AccessDenied{Method: method, Route: route, Permission: permission})
}

func (h *Handler) lookupCredential(ctx context.Context, email string) (credential, bool, error) {
	var c credential
	err := tenantdb.ReadTx(ctx, h.pool, tenantdb.Scope{CredentialLookup: true}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT tenant_id, user_id, password_hash, roles, status FROM user_credentials WHERE email = $1`, email).
			Scan(&c.tenant, &c.user, &c.hash, &c.roles, &c.status)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return credential{}, false, nil
	}
	return c, err == nil, err
}

func (h *Handler) credentialOf(ctx context.Context, tenant, user uuid.UUID) (credential, bool, error) {
	c := credential{tenant: tenant, user: user}
	err := h.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT password_hash, roles, status FROM user_credentials WHERE user_id = $1`, user).
			Scan(&c.hash, &c.roles, &c.status)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return credential{}, false, nil
	}
	return c, err == nil, err
}

func (h *Handler) inTenant(ctx context.Context, tenant uuid.UUID, fn func(pgx.Tx) error) error {
	return tenantdb.ReadTx(ctx, h.pool, tenantdb.Tenant(tenant), fn)
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
