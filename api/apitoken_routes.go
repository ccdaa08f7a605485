package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/google/uuid"
)

// API tokens (docs/SECURITY.md, "API tokens"). A user manages their own
// with a session (never with a token: sessionOnly); an administrator with
// user:manage lists and revokes those of their tenant's users.

type createTokenRequest struct {
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

type createdTokenResponse struct {
	ID          string    `json:"id"`
	Token       string    `json:"token"`
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	ExpiresAt   time.Time `json:"expires_at"`
}

type tokenItem struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Prefix      string     `json:"prefix"`
	Permissions []string   `json:"permissions"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	LastUsedIP  *string    `json:"last_used_ip"`
}

// createToken answers the secret once, with 201 (API.md): unlike other
// commands the answer is the created resource, since it can never be read
// again.
func (srv *server) createToken(w http.ResponseWriter, r *http.Request) {
	var req createTokenRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	o, err := commandOptions(r, req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	t, err := srv.commands.CreateAPIToken(r.Context(), actorOf(r), o, req.Name, req.Permissions, req.ExpiresAt)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/users/me/tokens")
	w.Header().Set("X-Consistency-Token", strconv.FormatInt(t.Position, 10))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createdTokenResponse{ID: t.ID.String(), Token: t.Token, Name: t.Name,
		Permissions: t.Permissions, ExpiresAt: t.ExpiresAt.UTC()})
}

func (srv *server) listOwnTokens(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	srv.writeTokens(w, r, p.TenantID, p.UserID)
}

func (srv *server) revokeOwnToken(w http.ResponseWriter, r *http.Request) {
	runIDCommand(w, r, func(o commands.Options, id uuid.UUID) (commands.Result, error) {
		return srv.commands.RevokeAPIToken(r.Context(), actorOf(r), o, id)
	})
}

func (srv *server) listUserTokens(w http.ResponseWriter, r *http.Request) {
	tenant, user, ok := srv.existingUser(w, r)
	if !ok {
		return
	}
	srv.writeTokens(w, r, tenant, user)
}

func (srv *server) revokeUserToken(w http.ResponseWriter, r *http.Request) {
	tenant, user, ok := srv.existingUser(w, r)
	if !ok {
		return
	}
	tid, ok := pathUUID(w, r, "token_id")
	if !ok {
		return
	}
	if err := decodeEmptyBody(w, r); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, nil, nil, func(o commands.Options) (commands.Result, error) {
		return srv.commands.RevokeUserAPIToken(r.Context(), actorOf(r), o, tenant, user, tid)
	})
}

// existingUser is targetUser, and a 404 unless that user exists in that
// tenant (another tenant's user reads like a missing one).
func (srv *server) existingUser(w http.ResponseWriter, r *http.Request) (tenant, user uuid.UUID, ok bool) {
	if tenant, user, ok = targetUser(w, r); !ok {
		return
	}
	u, err := srv.commands.LoadUser(r.Context(), tenant, user)
	if err != nil {
		WriteError(w, r, err)
		return uuid.Nil, uuid.Nil, false
	}
	if !u.Exists() {
		WriteProblem(w, r, NotFound())
		return uuid.Nil, uuid.Nil, false
	}
	return tenant, user, true
}

func (srv *server) writeTokens(w http.ResponseWriter, r *http.Request, tenant, user uuid.UUID) {
	rows, err := srv.commands.ListAPITokens(r.Context(), tenant, user)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]tokenItem, len(rows))
	for i, t := range rows {
		out[i] = tokenItem{ID: t.ID.String(), Name: t.Name, Prefix: t.Prefix, Permissions: t.Permissions,
			CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()}
		if t.LastUsedAt != nil {
			at, ip := t.LastUsedAt.UTC(), t.LastUsedIP
			out[i].LastUsedAt, out[i].LastUsedIP = &at, &ip
		}
	}
	WriteList(w, out, "")
}
