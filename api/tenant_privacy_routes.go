package api

import (
	"net/http"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// A tenant's retention of request metadata (docs/PRIVACY.md) and whether
// the assistant may send it to the model (docs/ASSISTANT.md; omitted in a
// PUT: unchanged).

type privacyPolicyRequest struct {
	RequestMetadataRetentionDays int   `json:"request_metadata_retention_days"`
	AssistantShareIPs            *bool `json:"assistant_share_ips"`
}

type privacyPolicyResponse struct {
	RequestMetadataRetentionDays int  `json:"request_metadata_retention_days"`
	Default                      bool `json:"default"`
	AssistantShareIPs            bool `json:"assistant_share_ips"`
}

// getTenantPrivacy: GET /v1/tenants/{id}/privacy, from the tenant's events.
func (srv *server) getTenantPrivacy(w http.ResponseWriter, r *http.Request) {
	tid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	t, err := srv.commands.LoadTenant(r.Context(), tid)
	if err == nil && !t.Exists() {
		err = domain.ErrNotFound
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, privacyPolicyResponse{RequestMetadataRetentionDays: t.RequestMetadataRetention(),
		Default: t.RequestMetadataDays == 0, AssistantShareIPs: t.AssistantShareIPs})
}

// setTenantPrivacy: PUT /v1/tenants/{id}/privacy.
func (srv *server) setTenantPrivacy(w http.ResponseWriter, r *http.Request) {
	runIDBodyCommand(w, r, func(o commands.Options, tid uuid.UUID, req privacyPolicyRequest) (commands.Result, error) {
		return srv.commands.SetTenantPrivacy(r.Context(), actorOf(r), o, tid, req.RequestMetadataRetentionDays, req.AssistantShareIPs)
	})
}
