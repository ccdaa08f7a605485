package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

type createUserRequest struct {
	Email       string   `json:"email"`
	DisplayName string   `json:"display_name"`
	Password    string   `json:"password"`
	Roles       []string `json:"roles"`
}

// hashable is the request minus the password, for the idempotency
// fingerprint: the fingerprint is stored, a password never is.
func (c createUserRequest) hashable() any {
	return struct {
		Email, DisplayName string
		Roles              []string
	}{c.Email, c.DisplayName, c.Roles}
}

type rolesRequest struct {
	Roles []string `json:"roles"`
}

type passwordRequest struct {
	Password        string `json:"password"`
	CurrentPassword string `json:"current_password"`
}

type userResponse struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenant_id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	Roles       []string  `json:"roles"`
	Status      string    `json:"status"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toUserResponse(u projections.UserView) userResponse {
	return userResponse{ID: u.ID.String(), TenantID: u.TenantID.String(), Email: u.Email, DisplayName: u.DisplayName,
		Roles: u.Roles, Status: u.Status, Version: u.Version, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

// targetTenant is the tenant a users route acts on: the caller's own, or for a
// platform administrator the one named by ?tenant_id= (an explicit route
// parameter, never a body field). Anyone else naming a tenant gets a 404 for
// a tenant other than their own.
func targetTenant(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	p := PrincipalFrom(r.Context())
	v := r.URL.Query().Get("tenant_id")
	if v == "" {
		return p.TenantID, true
	}
	t, err := uuid.Parse(v)
	if err != nil {
		WriteProblem(w, r, BadRequest("tenant_id must be a UUID", map[string]string{"tenant_id": "must be a UUID"}))
		return uuid.Nil, false
	}
	if t != p.TenantID && !p.IsPlatformAdmin() {
		WriteProblem(w, r, NotFound())
		return uuid.Nil, false
	}
	return t, true
}

// targetUser is the user a users route acts on: in targetTenant, the one the
// path's {id} names.
func targetUser(w http.ResponseWriter, r *http.Request) (tenant, user uuid.UUID, ok bool) {
	if tenant, ok = targetTenant(w, r); !ok {
		return uuid.Nil, uuid.Nil, false
	}
	if user, ok = pathUUID(w, r, "id"); !ok {
		return uuid.Nil, uuid.Nil, false
	}
	return tenant, user, true
}

func (id *identity) createUser(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	var req createUserRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, req.hashable(), func(res commands.Result) string { return "/v1/users/" + res.ID.String() },
		func(o commands.Options) (commands.Result, error) {
			res, err := id.commands.CreateUser(r.Context(), actorOf(r), o, commands.NewUser{TenantID: tenant, Email: req.Email,
				DisplayName: req.DisplayName, Password: req.Password, Roles: req.Roles})
			id.recordGrantDenied(r, err)
			return res, err
		})
}

// recordGrantDenied records the refusal of a command that would grant more
// than the caller holds (a 403) as an access_denied event, like require's.
func (id *identity) recordGrantDenied(r *http.Request, err error) {
	if errors.Is(err, domain.ErrForbidden) {
		id.recordDenied(r, auth.PermRoleAssign)
	}
}

var userStatuses = map[string]bool{"": true, string(domain.UserActive): true, string(domain.UserDisabled): true}

func (id *identity) listUsers(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := projections.UserFilter{Status: q.Get("status"), Email: domain.NormalizeEmail(q.Get("email"))}
	if !userStatuses[f.Status] {
		WriteProblem(w, r, BadRequest("status is invalid", map[string]string{"status": "one of active, disabled"}))
		return
	}
	page, ok := id.listPage(w, r, projections.Users{}.Name())
	if !ok {
		return
	}
	users, next, err := projections.ListUsers(r.Context(), id.pool, tenant, f, page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]userResponse, len(users))
	for i, u := range users {
		out[i] = toUserResponse(u)
	}
	writeListWithCursor(w, r, out, next)
}

func (id *identity) getUser(w http.ResponseWriter, r *http.Request) {
	if asOf(w, r, id.getUserAsOf) {
		return
	}
	tenant, uid, ok := targetUser(w, r)
	if !ok {
		return
	}
	if err := id.awaitConsistency(w, r, projections.Users{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	u, err := projections.GetUser(r.Context(), id.pool, tenant, uid)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUserResponse(u))
}

func (id *identity) changeRoles(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	runIDBodyCommand(w, r, func(o commands.Options, uid uuid.UUID, req rolesRequest) (commands.Result, error) {
		res, err := id.commands.ChangeUserRoles(r.Context(), actorOf(r), o, tenant, uid, req.Roles)
		id.recordGrantDenied(r, err)
		return res, err
	})
}

func (id *identity) disableUser(w http.ResponseWriter, r *http.Request) {
	id.userTransition(w, r, id.commands.DisableUser)
}

func (id *identity) enableUser(w http.ResponseWriter, r *http.Request) {
	id.userTransition(w, r, id.commands.EnableUser)
}

func (id *identity) userTransition(w http.ResponseWriter, r *http.Request,
	do func(ctx context.Context, a commands.Actor, o commands.Options, tenant, id uuid.UUID) (commands.Result, error)) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	runIDCommand(w, r, func(o commands.Options, uid uuid.UUID) (commands.Result, error) {
		return do(r.Context(), actorOf(r), o, tenant, uid)
	})
}

func (id *identity) changePassword(w http.ResponseWriter, r *http.Request) {
	tenant, uid, ok := targetUser(w, r)
	if !ok {
		return
	}
	p := PrincipalFrom(r.Context())
	if uid != p.UserID && !p.Can(auth.PermUserManage) {
		id.recordDenied(r, auth.PermUserManage)
		WriteProblem(w, r, Forbidden("the "+string(auth.PermUserManage)+" permission is required"))
		return
	}
	var req passwordRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, struct{}{}, nil, func(o commands.Options) (commands.Result, error) {
		return id.commands.ChangePassword(r.Context(), actorOf(r), o, tenant, uid, req.CurrentPassword, req.Password)
	})
}
