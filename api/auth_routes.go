package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/projections"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	// MFAEnrollmentRequired: the tenant requires two-factor and the user
	// has none; the session reaches only enrolment until it is confirmed.
	MFAEnrollmentRequired bool `json:"mfa_enrollment_required"`
}

// mfaChallengeResponse is a right password's answer for a user with
// two-factor on: POST /v1/auth/mfa completes the sign-in.
type mfaChallengeResponse struct {
	MFARequired bool   `json:"mfa_required"`
	MFAToken    string `json:"mfa_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func writeTokens(w http.ResponseWriter, t commands.Tokens) {
	w.Header().Set("Cache-Control", "no-store")
	if t.MFAToken != "" {
		writeJSON(w, http.StatusOK, mfaChallengeResponse{MFARequired: true, MFAToken: t.MFAToken,
			ExpiresIn: int64(commands.MFATokenTTL / time.Second)})
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
		TokenType: "Bearer", ExpiresIn: int64(t.ExpiresIn / time.Second), MFAEnrollmentRequired: t.EnrolmentOnly})
}

// authError answers sign-in failures: one 401 for every reason, a 429 with
// Retry-After when throttled.
func authError(w http.ResponseWriter, r *http.Request, err error) {
	var throttled *commands.ThrottledError
	switch {
	case errors.As(err, &throttled):
		setRetryAfter(w, throttled)
		WriteProblem(w, r, RateLimited())
	case errors.Is(err, commands.ErrUnauthenticated):
		WriteProblem(w, r, Unauthenticated("invalid credentials"))
	default:
		WriteError(w, r, err)
	}
}

// setRetryAfter tells a throttled client when to try again.
func setRetryAfter(w http.ResponseWriter, t *commands.ThrottledError) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(t.RetryAfter.Seconds()))))
}

func (srv *server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		srv.refuseLogin(w, r, req, err)
		return
	}
	if req.Email == "" || req.Password == "" {
		WriteProblem(w, r, BadRequest("email and password are required", map[string]string{"email": "required", "password": "required"}))
		return
	}
	t, err := srv.commands.Login(r.Context(), requestMetadata(r), req.Email, req.Password)
	if err != nil {
		authError(w, r, err)
		return
	}
	writeTokens(w, t)
}

// refuseLogin answers a login body DecodeJSON refused. An email that is not
// valid text is still a sign-in attempt: the command counts it against the
// throttle and records it (without reaching SQL) before the 400 — or answers
// 429 when the throttle already refuses the caller.
func (srv *server) refuseLogin(w http.ResponseWriter, r *http.Request, req loginRequest, err error) {
	var text *InvalidTextError
	if errors.As(err, &text) && text.Fields["email"] != "" {
		_, loginErr := srv.commands.Login(r.Context(), requestMetadata(r), req.Email, req.Password)
		var throttled *commands.ThrottledError
		if errors.As(loginErr, &throttled) {
			authError(w, r, loginErr)
			return
		}
	}
	WriteError(w, r, err)
}

func (srv *server) refresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	t, err := srv.commands.Refresh(r.Context(), requestMetadata(r), req.RefreshToken)
	if err != nil {
		authError(w, r, err)
		return
	}
	writeTokens(w, t)
}

func (srv *server) logout(w http.ResponseWriter, r *http.Request) {
	if err := srv.commands.Logout(r.Context(), actorOf(r)); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type meResponse struct {
	ID          string            `json:"id"`
	Email       string            `json:"email"`
	DisplayName string            `json:"display_name"`
	TenantID    string            `json:"tenant_id"`
	Roles       []string          `json:"roles"`
	Permissions []auth.Permission `json:"permissions"`
}

// me answers from the user's own stream rather than the users read model:
// a user who has just signed in must find themselves at once, whatever the
// projector's lag, and a user's stream is a handful of events.
func (srv *server) me(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	u, err := srv.commands.LoadUser(r.Context(), p.TenantID, p.UserID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if !u.Exists() {
		WriteProblem(w, r, NotFound())
		return
	}
	// Roles and permissions are the principal's: what this request may do.
	writeJSON(w, http.StatusOK, meResponse{ID: u.ID.String(), Email: u.Email, DisplayName: u.DisplayName,
		TenantID: p.TenantID.String(), Roles: p.Roles, Permissions: p.Permissions})
}

type sessionResponse struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

func (srv *server) listSessions(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	sessions, err := projections.ListSessions(r.Context(), srv.pool, p.TenantID, p.UserID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]sessionResponse, len(sessions))
	for i, s := range sessions {
		out[i] = sessionResponse{ID: s.ID.String(), CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(),
			IP: s.IP, UserAgent: s.UserAgent, Current: s.ID == p.SessionID}
	}
	WriteList(w, out, "")
}

func (srv *server) revokeSession(w http.ResponseWriter, r *http.Request) {
	sid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	if err := srv.commands.RevokeSession(r.Context(), actorOf(r), sid); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pathUUID reads a UUID path parameter; a malformed one is a 404, like any
// id that names nothing the caller can see.
func pathUUID(w http.ResponseWriter, r *http.Request, name string) (uuid.UUID, bool) {
	v, err := uuid.Parse(chi.URLParam(r, name))
	if err != nil || v == uuid.Nil {
		WriteProblem(w, r, NotFound())
		return uuid.Nil, false
	}
	return v, true
}
