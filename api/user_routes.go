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

func (srv *server) createUser(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	var req createUserRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	// The fingerprint includes the password: it is a keyed hash, never
	// stored in clear (commandOptions).
	runCommand(w, r, req, func(res commands.Result) string { return "/v1/users/" + res.ID.String() },
		func(o commands.Options) (commands.Result, error) {
			res, err := srv.commands.CreateUser(r.Context(), actorOf(r), o, commands.NewUser{TenantID: tenant, Email: req.Email,
				DisplayName: req.DisplayName, Password: req.Password, Roles: req.Roles})
			srv.recordGrantDenied(r, err)
			return res, err
		})
}

// recordGrantDenied records the refusal of a command that would grant more
// than the caller holds, or change a user who holds more (a 403), as an
// access_denied event, like require's.
func (srv *server) recordGrantDenied(r *http.Request, err error) {
	srv.recordForbidden(r, err, auth.PermRoleAssign)
}

// recordForbidden records a command's 403 as an access_denied event naming
// perm, the permission of the route.
func (srv *server) recordForbidden(r *http.Request, err error, perm auth.Permission) {
	if errors.Is(err, domain.ErrForbidden) {
		srv.recordDenied(r, perm)
	}
}

var userStatuses = map[string]bool{"": true, string(domain.UserActive): true, string(domain.UserDisabled): true}

func (srv *server) listUsers(w http.ResponseWriter, r *http.Request) {
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
	page, ok := srv.listPage(w, r, projections.Users{}.Name())
	if !ok {
		return
	}
	users, next, err := projections.ListUsers(r.Context(), srv.pool, tenant, f, page)
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

func (srv *server) getUser(w http.ResponseWriter, r *http.Request) {
	if asOf(w, r, srv.getUserAsOf) {
		return
	}
	tenant, uid, ok := targetUser(w, r)
	if !ok {
		return
	}
	if err := srv.awaitConsistency(w, r, projections.Users{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	u, err := projections.GetUser(r.Context(), srv.pool, tenant, uid)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUserResponse(u))
}

func (srv *server) changeRoles(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	runIDBodyCommand(w, r, func(o commands.Options, uid uuid.UUID, req rolesRequest) (commands.Result, error) {
		res, err := srv.commands.ChangeUserRoles(r.Context(), actorOf(r), o, tenant, uid, req.Roles)
		srv.recordGrantDenied(r, err)
		return res, err
	})
}

func (srv *server) disableUser(w http.ResponseWriter, r *http.Request) {
	srv.userTransition(w, r, srv.commands.DisableUser)
}

func (srv *server) enableUser(w http.ResponseWriter, r *http.Request) {
	srv.userTransition(w, r, srv.commands.EnableUser)
}

func (srv *server) userTransition(w http.ResponseWriter, r *http.Request,
	do func(ctx context.Context, a commands.Actor, o commands.Options, tenant, id uuid.UUID) (commands.Result, error)) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	runIDCommand(w, r, func(o commands.Options, uid uuid.UUID) (commands.Result, error) {
		res, err := do(r.Context(), actorOf(r), o, tenant, uid)
		srv.recordForbidden(r, err, auth.PermUserManage)
		return res, err
	})
}

func (srv *server) changePassword(w http.ResponseWriter, r *http.Request) {
	tenant, uid, ok := targetUser(w, r)
	if !ok {
		return
	}
	p := PrincipalFrom(r.Context())
	if uid != p.UserID && !p.Can(auth.PermUserManage) {
		srv.recordDenied(r, auth.PermUserManage)
		WriteProblem(w, r, Forbidden("the "+string(auth.PermUserManage)+" permission is required"))
		return
	}
	var req passwordRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	// Both passwords are in the fingerprint: the same key with another
	// password is another request. It is a keyed hash (commandOptions).
	runCommand(w, r, req, nil, func(o commands.Options) (commands.Result, error) {
		res, err := srv.commands.ChangePassword(r.Context(), actorOf(r), o, tenant, uid, req.CurrentPassword, req.Password)
		srv.recordForbidden(r, err, auth.PermUserManage)
		var throttled *commands.ThrottledError
		if errors.As(err, &throttled) {
			setRetryAfter(w, throttled)
		}
		return res, err
	})
}
