package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// Principal is the authenticated caller of a request, from a verified
// access token whose session is still open.
type Principal struct {
	UserID    uuid.UUID
	TenantID  uuid.UUID
	SessionID uuid.UUID
	// TokenID is the API token the request came with (uuid.Nil for an
	// access token); SessionID is then uuid.Nil.
	TokenID     uuid.UUID
	Roles       []string
	Permissions []auth.Permission
}

// Can reports whether the principal holds p.
func (p *Principal) Can(perm auth.Permission) bool { return slices.Contains(p.Permissions, perm) }

// IsPlatformAdmin reports whether the principal administers the platform.
func (p *Principal) IsPlatformAdmin() bool { return slices.Contains(p.Roles, auth.RolePlatformAdmin) }

type principalKey struct{}

// PrincipalFrom returns the request's principal, nil on public routes.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// authenticate requires a valid bearer token of a live session. Anything
// else is a 401 that says nothing about which check failed. countEarly,
// when set, is given the request as soon as an access token verifies,
// with the principal (user and tenant, no roles yet) in its context, and
// may start work that only needs those while the session is read
// (RateChain.Start); the request it returns goes on.
func (srv *server) authenticate(countEarly func(*http.Request) *http.Request) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return srv.authenticated(next, countEarly) }
}

func (srv *server) authenticated(next http.Handler, countEarly func(*http.Request) *http.Request) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unauth := func() {
			w.Header().Set("WWW-Authenticate", `Bearer realm="accountdb"`)
			WriteProblem(w, r, Unauthenticated("a valid bearer access token is required"))
		}
		h := r.Header.Values("Authorization")
		if len(h) != 1 || !strings.HasPrefix(h[0], "Bearer ") {
			unauth()
			return
		}
		bearer := strings.TrimPrefix(h[0], "Bearer ")
		if auth.LooksLikeAPIToken(bearer) {
			srv.authenticateToken(w, r, next, bearer, unauth)
			return
		}
		claims, err := srv.tokens.Verify(bearer)
		if err != nil {
			unauth()
			return
		}
		p := &Principal{UserID: claims.UserID(), TenantID: claims.Tenant(), SessionID: claims.Session()}
		if countEarly != nil {
			r = countEarly(r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		}
		// Ending a session (logout, revocation, a disabled user) cuts its
		// access tokens off at once, not only when they expire; and the
		// user's roles are read now, not from the token, so a demotion
		// applies at once (else a demoted admin could grant the role back).
		// A suspended tenant's users are told so: its suspension ended
		// their sessions.
		access, err := srv.commands.Access(r.Context(), p.TenantID, p.UserID, p.SessionID)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if access.TenantSuspended {
			WriteProblem(w, r, TenantSuspended())
			return
		}
		if !access.Open {
			unauth()
			return
		}
		if access.EnrolmentOnly && !enrolmentRoutes[r.Method+" "+r.URL.Path] {
			WriteProblem(w, r, Problem{Status: http.StatusForbidden, Code: CodeMFAEnrollmentRequired,
				Detail: "your tenant requires two-factor authentication: enrol (POST /v1/users/me/totp) before anything else"})
			return
		}
		p.Roles, p.Permissions = access.Roles, auth.PermissionsOf(access.Roles)
		if access.EnrolmentOnly {
			p.Roles, p.Permissions = []string{}, []auth.Permission{}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// authenticateToken is authenticate for an API token: its permissions are
// the token's that its user still holds, read now (commands.APITokenAccess).
func (srv *server) authenticateToken(w http.ResponseWriter, r *http.Request, next http.Handler, token string, unauth func()) {
	access, err := srv.commands.APITokenAccess(r.Context(), requestMetadata(r), token)
	switch {
	case errors.Is(err, commands.ErrUnauthenticated):
		unauth()
		return
	case errors.Is(err, commands.ErrTokenTenantSuspended):
		WriteProblem(w, r, TenantSuspended())
		return
	case err != nil:
		WriteError(w, r, err)
		return
	}
	p := &Principal{UserID: access.User, TenantID: access.Tenant, TokenID: access.TokenID, Roles: access.Roles, Permissions: access.Permissions}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
}

// sessionOnly refuses API tokens: they cannot manage tokens, passwords,
// two-factor or sessions, so a leaked token cannot entrench itself or lock
// its owner out. A refusal is a 403 and an access_denied event.
func (srv *server) sessionOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := PrincipalFrom(r.Context()); p != nil && p.TokenID != uuid.Nil {
			srv.recordDenied(r, "session")
			WriteProblem(w, r, Forbidden("an API token cannot manage API tokens, passwords, two-factor or sessions: sign in"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// require lets the request through only if the principal holds perm; a
// refusal is a 403 and an access_denied event in the caller's tenant.
func (srv *server) require(perm auth.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := PrincipalFrom(r.Context())
			if p == nil {
				WriteProblem(w, r, Unauthenticated("a valid bearer access token is required"))
				return
			}
			if !p.Can(perm) {
				srv.recordDenied(r, perm)
				WriteProblem(w, r, Forbidden("the "+string(perm)+" permission is required"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// recordDenied records a request refused with a 403 as an access_denied
// event in the caller's tenant. A failure to record is logged: the refusal
// stands either way.
func (srv *server) recordDenied(r *http.Request, perm auth.Permission) {
	// (perm "session": a route API tokens may not use.)
	if err := srv.commands.RecordDenied(r.Context(), actorOf(r), r.Method, routeTemplate(r), string(perm)); err != nil {
		loggerFrom(r).Error("recording a denied request", "request_id", RequestID(r.Context()), "error", err)
	}
}

// routeTemplate is the matched route pattern, never the raw path, so ids and
// query strings do not end up in audit events as free text.
func routeTemplate(r *http.Request) string {
	if p := routePattern(r); p != "" {
		return p
	}
	return r.URL.Path
}

// requestMetadata is where a request came from, for its events.
func requestMetadata(r *http.Request) eventlog.Metadata {
	md := eventlog.Metadata{RequestID: RequestID(r.Context()), UserAgent: truncate(r.UserAgent(), 512)}
	if ip := ClientIP(r); ip.IsValid() {
		md.ClientIP = ip.String()
	}
	if p := PrincipalFrom(r.Context()); p != nil {
		if p.TokenID != uuid.Nil {
			md.APITokenID = p.TokenID.String()
		} else {
			md.SessionID = p.SessionID.String()
		}
	}
	return md
}

// actorOf is the command-layer view of the request's principal.
func actorOf(r *http.Request) commands.Actor {
	a := commands.Actor{Metadata: requestMetadata(r), CorrelationID: correlationID(r)}
	if p := PrincipalFrom(r.Context()); p != nil {
		a.UserID, a.TenantID, a.SessionID, a.Roles = p.UserID, p.TenantID, p.SessionID, p.Roles
	}
	return a
}

// correlationID ties a request's events together: the client's
// X-Correlation-Id when it is a UUID, else a fresh one.
func correlationID(r *http.Request) uuid.UUID {
	if id, err := uuid.Parse(r.Header.Get("X-Correlation-Id")); err == nil && id != uuid.Nil {
		return id
	}
	return uuid.Must(uuid.NewV7())
}

// truncate cuts s to at most n bytes on a rune boundary: a cut through a
// multi-byte character would leave invalid UTF-8, which PostgreSQL refuses.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
