package api

import (
	"net/http"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

// A signed-in user manages their own SSH keys: no permission is needed, and
// another user's keys are never reachable (the routes only know "me").

type sshKeyRequest struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
}

type sshKeyResponse struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"created_at"`
}

func (srv *server) addSSHKey(w http.ResponseWriter, r *http.Request) {
	var req sshKeyRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, req, func(commands.Result) string { return "/v1/users/me/ssh-keys" },
		func(o commands.Options) (commands.Result, error) {
			return srv.commands.AddSSHKey(r.Context(), actorOf(r), o, req.Name, req.PublicKey)
		})
}

func (srv *server) listSSHKeys(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	page, ok := srv.listPage(w, r, projections.UserSSHKeys{}.Name())
	if !ok {
		return
	}
	keys, next, err := projections.ListUserSSHKeys(r.Context(), srv.pool, p.TenantID, p.UserID, page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]sshKeyResponse, len(keys))
	for i, k := range keys {
		out[i] = sshKeyResponse{ID: k.ID.String(), Name: k.Name, Type: k.Type, Fingerprint: k.Fingerprint, CreatedAt: k.CreatedAt.UTC()}
	}
	writeListWithCursor(w, r, out, next)
}

func (srv *server) removeSSHKey(w http.ResponseWriter, r *http.Request) {
	runIDCommand(w, r, func(o commands.Options, id uuid.UUID) (commands.Result, error) {
		return srv.commands.RemoveSSHKey(r.Context(), actorOf(r), o, id)
	})
}
