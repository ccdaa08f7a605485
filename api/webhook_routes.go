package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// Webhook endpoints (docs/EVENTS.md, "Webhooks"): webhook:manage in the
// caller's tenant; platform administrators add ?scope=platform for
// endpoints that receive every tenant's events.

type webhookRequest struct {
	URL         *string   `json:"url"`
	EventTypes  *[]string `json:"event_types"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

func (req webhookRequest) toChange() commands.WebhookChange {
	return commands.WebhookChange{URL: req.URL, EventTypes: req.EventTypes, Description: req.Description, Enabled: req.Enabled}
}

type webhookResponse struct {
	ID             string    `json:"id"`
	URL            string    `json:"url"`
	EventTypes     []string  `json:"event_types"`
	Description    string    `json:"description"`
	Enabled        bool      `json:"enabled"`
	DisabledReason *string   `json:"disabled_reason"`
	Scope          string    `json:"scope"`
	CreatedAt      time.Time `json:"created_at"`
}

// createdWebhookResponse is webhookResponse with the secret and the
// command's position (flat: the OpenAPI check compares members one by one).
type createdWebhookResponse struct {
	ID             string    `json:"id"`
	URL            string    `json:"url"`
	EventTypes     []string  `json:"event_types"`
	Description    string    `json:"description"`
	Enabled        bool      `json:"enabled"`
	DisabledReason *string   `json:"disabled_reason"`
	Scope          string    `json:"scope"`
	CreatedAt      time.Time `json:"created_at"`
	Secret         string    `json:"secret"`
	StreamVersion  int64     `json:"stream_version"`
	Position       int64     `json:"position"`
}

type rotateSecretRequest struct {
	OverlapSeconds *int64 `json:"overlap_seconds"`
}

type rotatedSecretResponse struct {
	Secret             string    `json:"secret"`
	PreviousValidUntil time.Time `json:"previous_valid_until"`
}

type replayRequest struct {
	FromPosition int64 `json:"from_position"`
}

type deliveryResponse struct {
	ID              string    `json:"id"`
	WebhookID       string    `json:"webhook_id"`
	MessageID       string    `json:"message_id"`
	EventPosition   int64     `json:"event_position"`
	EventType       string    `json:"event_type"`
	Attempt         int       `json:"attempt"`
	Status          string    `json:"status"`
	ResponseCode    *int      `json:"response_code"`
	LatencyMS       int64     `json:"latency_ms"`
	ResponseExcerpt string    `json:"response_excerpt"`
	Error           string    `json:"error"`
	Redelivery      bool      `json:"redelivery"`
	At              time.Time `json:"at"`
}

func webhookOf(v projections.WebhookView) webhookResponse {
	out := webhookResponse{ID: v.ID.String(), URL: v.URL, EventTypes: v.EventTypes, Description: v.Description,
		Enabled: v.Enabled, Scope: "tenant", CreatedAt: v.CreatedAt.UTC()}
	if v.DisabledReason != "" {
		out.DisabledReason = &v.DisabledReason
	}
	if v.Platform {
		out.Scope = "platform"
	}
	return out
}

// webhookScope reads ?scope=: "platform" (platform administrators only)
// or "tenant" (the default).
func webhookScope(w http.ResponseWriter, r *http.Request) (platform, ok bool) {
	switch r.URL.Query().Get("scope") {
	case "", "tenant":
		return false, true
	case "platform":
		if !slices.Contains(PrincipalFrom(r.Context()).Roles, auth.RolePlatformAdmin) {
			WriteProblem(w, r, Forbidden("platform-wide webhooks are for platform administrators"))
			return false, false
		}
		return true, true
	}
	WriteProblem(w, r, BadRequest("invalid query", map[string]string{"scope": "must be tenant or platform"}))
	return false, false
}

// createWebhook answers 201 with the secret, once (API.md).
func (srv *server) createWebhook(w http.ResponseWriter, r *http.Request) {
	platform, ok := webhookScope(w, r)
	if !ok {
		return
	}
	var req webhookRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	o, err := commandOptions(r, req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	tenant := actorOf(r).TenantID
	if platform {
		tenant = domain.PlatformTenant
	}
	// The read model's count: a cap against abuse, which a burst of
	// creates may pass by as many as the projector is behind.
	if n, err := projections.CountWebhooks(r.Context(), srv.pool, tenant); err != nil || n >= domain.MaxWebhooksPerTenant {
		if err == nil {
			err = fmt.Errorf("%w: a tenant may have at most %d webhook endpoints", domain.ErrQuotaExceeded, domain.MaxWebhooksPerTenant)
		}
		WriteError(w, r, err)
		return
	}
	c, err := srv.commands.CreateWebhook(r.Context(), actorOf(r), o, req.toChange(), platform)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if c.Replayed {
		WriteProblem(w, r, Conflict("this endpoint was created by an earlier request with the same Idempotency-Key; its secret is shown only once", nil))
		return
	}
	v, found, err := srv.waitWebhook(r, tenant, c.ID, c.Position)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if !found { // the read model is behind: answer what was asked for
		v = projections.WebhookView{ID: c.ID, Platform: platform, URL: deref(req.URL), Description: deref(req.Description),
			Enabled: req.Enabled == nil || *req.Enabled, CreatedAt: time.Now()}
		if req.EventTypes != nil {
			v.EventTypes = *req.EventTypes
		}
	}
	w.Header().Set("Location", "/v1/webhooks/"+c.ID.String())
	w.Header().Set("X-Consistency-Token", strconv.FormatInt(c.Position, 10))
	w.Header().Set("Cache-Control", "no-store")
	wr := webhookOf(v)
	writeJSON(w, http.StatusCreated, createdWebhookResponse{ID: wr.ID, URL: wr.URL, EventTypes: wr.EventTypes, Description: wr.Description,
		Enabled: wr.Enabled, DisabledReason: wr.DisabledReason, Scope: wr.Scope, CreatedAt: wr.CreatedAt, Secret: c.Secret,
		StreamVersion: c.StreamVersion, Position: c.Position})
}

// waitWebhook reads the endpoint once the read model has position (for
// the creation's answer).
func (srv *server) waitWebhook(r *http.Request, tenant, id uuid.UUID, position int64) (projections.WebhookView, bool, error) {
	ctx := r.Context()
	if pos, err := srv.store.PositionOf(ctx, position); err == nil {
		wctx, cancel := context.WithTimeout(ctx, ConsistencyWait)
		defer cancel()
		_ = srv.checkpoints.WaitFor(wctx, srv.pool, projections.Webhooks{}.Name(), pos)
	}
	return projections.GetWebhook(ctx, srv.pool, tenant, id)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (srv *server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	platform, ok := webhookScope(w, r)
	if !ok {
		return
	}
	page, ok := srv.listPage(w, r, projections.Webhooks{}.Name())
	if !ok {
		return
	}
	vs, next, err := projections.ListWebhooks(r.Context(), srv.pool, PrincipalFrom(r.Context()).TenantID, platform, page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]webhookResponse, len(vs))
	for i, v := range vs {
		out[i] = webhookOf(v)
	}
	writeListWithCursor(w, r, out, next)
}

// existingWebhook is the path's endpoint of the caller's tenant; a 404
// otherwise (another tenant's reads like a missing one).
func (srv *server) existingWebhook(w http.ResponseWriter, r *http.Request) (projections.WebhookView, bool) {
	id, ok := pathUUID(w, r, "id")
	if !ok {
		return projections.WebhookView{}, false
	}
	if err := srv.awaitConsistency(w, r, projections.Webhooks{}.Name()); err != nil {
		WriteError(w, r, err)
		return projections.WebhookView{}, false
	}
	v, found, err := projections.GetWebhook(r.Context(), srv.pool, PrincipalFrom(r.Context()).TenantID, id)
	if err != nil {
		WriteError(w, r, err)
		return projections.WebhookView{}, false
	}
	if !found {
		WriteProblem(w, r, NotFound())
		return projections.WebhookView{}, false
	}
	return v, true
}

func (srv *server) getWebhook(w http.ResponseWriter, r *http.Request) {
	if v, ok := srv.existingWebhook(w, r); ok {
		writeJSON(w, http.StatusOK, webhookOf(v))
	}
}

func (srv *server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	runIDBodyCommand(w, r, func(o commands.Options, id uuid.UUID, req webhookRequest) (commands.Result, error) {
		return srv.commands.UpdateWebhook(r.Context(), actorOf(r), o, id, req.toChange())
	})
}

func (srv *server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	runIDCommand(w, r, func(o commands.Options, id uuid.UUID) (commands.Result, error) {
		return srv.commands.DeleteWebhook(r.Context(), actorOf(r), o, id)
	})
}

// rotateWebhookSecret answers 200 with the new secret, once.
func (srv *server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	id, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	var req rotateSecretRequest
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		if err := DecodeJSON(w, r, &req); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	overlap := commands.DefaultWebhookOverlap
	if req.OverlapSeconds != nil {
		if *req.OverlapSeconds < 0 || *req.OverlapSeconds > int64(commands.MaxWebhookOverlap/time.Second) {
			WriteError(w, r, commands.ErrInvalidOverlap)
			return
		}
		overlap = time.Duration(*req.OverlapSeconds) * time.Second
	}
	o, err := commandOptions(r, req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	c, err := srv.commands.RotateWebhookSecret(r.Context(), actorOf(r), o, id, overlap)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if c.Replayed {
		WriteProblem(w, r, Conflict("this secret was rotated by an earlier request with the same Idempotency-Key; the secret is shown only once", nil))
		return
	}
	w.Header().Set("X-Consistency-Token", strconv.FormatInt(c.Position, 10))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, rotatedSecretResponse{Secret: c.Secret, PreviousValidUntil: c.PreviousValidUntil})
}

func (srv *server) replayWebhook(w http.ResponseWriter, r *http.Request) {
	runIDBodyCommand(w, r, func(o commands.Options, id uuid.UUID, req replayRequest) (commands.Result, error) {
		return srv.commands.ReplayWebhook(r.Context(), actorOf(r), o, id, req.FromPosition)
	})
}

// mountWebhooks mounts the webhook routes (in their own file, beside their
// handlers).
func (srv *server) mountWebhooks(r chi.Router) {
	r.With(srv.require(auth.PermWebhookManage)).Post("/v1/webhooks", srv.createWebhook)
	r.With(srv.require(auth.PermWebhookManage)).Get("/v1/webhooks", srv.listWebhooks)
	r.With(srv.require(auth.PermWebhookManage)).Get("/v1/webhooks/{id}", srv.getWebhook)
	r.With(srv.require(auth.PermWebhookManage)).Patch("/v1/webhooks/{id}", srv.updateWebhook)
	r.With(srv.require(auth.PermWebhookManage)).Delete("/v1/webhooks/{id}", srv.deleteWebhook)
	r.With(srv.require(auth.PermWebhookManage)).Post("/v1/webhooks/{id}/rotate-secret", srv.rotateWebhookSecret)
	r.With(srv.require(auth.PermWebhookManage)).Post("/v1/webhooks/{id}/replay", srv.replayWebhook)
	r.With(srv.require(auth.PermWebhookManage)).Get("/v1/webhooks/{id}/deliveries", srv.listDeliveries)
	r.With(srv.require(auth.PermWebhookManage)).Post("/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", srv.redeliver)
}
