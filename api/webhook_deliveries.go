package api

import (
	"net/http"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/webhooks"
	"github.com/google/uuid"
)

// deliveryCursor is where the next page of deliveries starts.
type deliveryCursor struct {
	Before uuid.UUID `json:"b"`
}

// listDeliveries lists an endpoint's delivery attempts, newest first.
func (srv *server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	v, ok := srv.existingWebhook(w, r)
	if !ok {
		return
	}
	limit, err := ParseLimit(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var cur deliveryCursor
	if _, err := CursorParam(r, &cur); err != nil {
		WriteError(w, r, err)
		return
	}
	tenant := PrincipalFrom(r.Context()).TenantID
	ds, err := webhooks.NewStore(srv.pool).ListDeliveries(r.Context(), tenant, v.ID, cur.Before, limit+1)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		if next, err = EncodeCursor(r, deliveryCursor{Before: ds[limit-1].ID}); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	out := make([]deliveryResponse, len(ds))
	for i, d := range ds {
		out[i] = deliveryResponse{ID: d.ID.String(), WebhookID: d.Webhook.String(), MessageID: d.MessageID, EventPosition: d.EventPosition,
			EventType: d.EventType, Attempt: d.Attempt, Status: d.Status(), LatencyMS: d.Latency.Milliseconds(),
			ResponseExcerpt: d.ResponseExcerpt, Error: d.Error, Redelivery: d.RequestID != uuid.Nil, At: d.At.UTC()}
		if d.ResponseCode != 0 {
			code := d.ResponseCode
			out[i].ResponseCode = &code
		}
	}
	WriteList(w, out, next)
}

// redeliver asks for one earlier delivery's event to be sent again.
func (srv *server) redeliver(w http.ResponseWriter, r *http.Request) {
	v, ok := srv.existingWebhook(w, r)
	if !ok {
		return
	}
	did, ok := pathUUID(w, r, "delivery_id")
	if !ok {
		return
	}
	if err := decodeEmptyBody(w, r); err != nil {
		WriteError(w, r, err)
		return
	}
	tenant := PrincipalFrom(r.Context()).TenantID
	d, found, err := webhooks.NewStore(srv.pool).GetDelivery(r.Context(), tenant, v.ID, did)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if !found {
		WriteProblem(w, r, NotFound())
		return
	}
	runCommand(w, r, nil, nil, func(o commands.Options) (commands.Result, error) {
		return srv.commands.RedeliverWebhook(r.Context(), actorOf(r), o, v.ID, d.ID, d.EventTenant, d.EventPosition)
	})
}
