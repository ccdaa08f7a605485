package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// Principal is the authenticated caller of a request, from a verified
// access token whose session is still open.
type Principal struct {
	UserID      uuid.UUID
	TenantID    uuid.UUID
	SessionID   uuid.UUID
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
// else is a 401 that says nothing about which check failed.
func (id *identity) authenticate(next http.Handler) http.Handler {
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
		claims, err := id.verifier.Verify(strings.TrimPrefix(h[0], "Bearer "))
		if err != nil {
			unauth()
			return
		}
		p := &Principal{UserID: claims.UserID(), TenantID: claims.Tenant(), SessionID: claims.Session()}
		// Ending a session (logout, revocation, a disabled user) cuts its
		// access tokens off at once, not only when they expire; and the
		// user's roles are read now, not from the token, so a demotion
		// applies at once (else a demoted admin could grant the role back).
		roles, active, err := id.commands.SessionRoles(r.Context(), p.TenantID, p.UserID, p.SessionID)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if !active {
			unauth()
			return
		}
		p.Roles, p.Permissions = roles, auth.PermissionsOf(roles)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// require lets the request through only if the principal holds perm; a
// refusal is a 403 and an access_denied event in the caller's tenant.
func (id *identity) require(perm auth.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := PrincipalFrom(r.Context())
			if p == nil {
				WriteProblem(w, r, Unauthenticated("a valid bearer access token is required"))
				return
			}
			if !p.Can(perm) {
				id.recordDenied(r, perm)
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
func (id *identity) recordDenied(r *http.Request, perm auth.Permission) {
	if err := id.commands.RecordDenied(r.Context(), actorOf(r), r.Method, routeTemplate(r), string(perm)); err != nil {
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
func requestMetadata(r *http.Request) eventstore.Metadata {
	md := eventstore.Metadata{RequestID: RequestID(r.Context()), UserAgent: truncate(r.UserAgent(), 512)}
	if ip := ClientIP(r); ip.IsValid() {
		md.ClientIP = ip.String()
	}
	if p := PrincipalFrom(r.Context()); p != nil {
		md.SessionID = p.SessionID.String()
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

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
