package api_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/api/feed"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
)

// TestErrorTable answers each error the rest of the system returns through
// WriteError and holds the whole problem (status, code, type, title, detail,
// field errors) to the REST contract. Wrapped errors check the table's
// order: the first match wins.
func TestErrorTable(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
		detail string
		errors map[string]string
	}{
		{&domain.ValidationError{Fields: map[string]string{"name": "is required"}}, 400, "validation_failed", "the request is invalid", map[string]string{"name": "is required"}},
		{&feed.TypeFilterError{Reason: "at most 20 types"}, 400, "validation_failed", "the request has invalid fields", map[string]string{"type": "at most 20 types"}},
		{feed.ErrBadLastEventID, 400, "validation_failed", "Last-Event-ID must be the id of an event of your tenant received from this feed, or 0 for the beginning of the log", nil},
		{commands.ErrUnauthenticated, 401, "unauthenticated", "invalid credentials", nil},
		{domain.ErrForbidden, 403, "forbidden", "you cannot grant a permission you do not hold", nil},
		{domain.ErrNotFound, 404, "not_found", "the resource does not exist", nil},
		{eventstore.ErrTenantMismatch, 404, "not_found", "the resource does not exist", nil},
		{eventstore.ErrStreamNotFound, 404, "not_found", "the resource does not exist", nil},
		{domain.ErrConflict, 409, "conflict", "it conflicts with an existing resource (e.g. the email is in use)", nil},
		{&eventstore.ConflictError{Actual: 7}, 409, "version_conflict", "the resource changed concurrently (current version 7); reload and retry", nil},
		{eventstore.ErrVersionConflict, 409, "version_conflict", "the resource changed concurrently; reload and retry", nil},
		{commands.ErrPreconditionFailed, 412, "precondition_failed", "If-Match does not match the current version", nil},
		{eventstore.ErrEventTooLarge, 413, "payload_too_large", "the change is too large to record", nil},
		{&http.MaxBytesError{Limit: 1 << 20}, 413, "payload_too_large", "the request body is larger than 1 MiB", nil},
		{domain.ErrQuotaExceeded, 422, "quota_exceeded", "the tenant's quota does not allow this", nil},
		{domain.ErrTenantSuspended, 422, "invalid_state", "the tenant is suspended", nil},
		{domain.ErrLastAdmin, 422, "invalid_state", "a tenant must keep at least one active tenant_admin", nil},
		{domain.ErrInvalidTransition, 422, "invalid_state", "not allowed in the resource's current state", nil},
		{eventstore.ErrIdempotencyMismatch, 422, "idempotency_mismatch", "the Idempotency-Key was already used with a different request", nil},
		{commands.ErrNoVault, 503, "unavailable", "the service is temporarily unavailable; retry later", nil},
		{commands.ErrThrottleUnavailable, 503, "unavailable", "the service is temporarily unavailable; retry later", nil},
		{feed.ErrNoBus, 503, "unavailable", "the service is temporarily unavailable; retry later", nil},
		{context.DeadlineExceeded, 503, "unavailable", "the service is temporarily unavailable; retry later", nil},
		{context.Canceled, 503, "unavailable", "the service is temporarily unavailable; retry later", nil},
		{errors.New("boom: a connection string"), 500, "internal", "", nil},
		// The domain's answer wins over the store error it wraps.
		{fmt.Errorf("%w: %w", domain.ErrConflict, eventstore.ErrStreamNotFound), 409, "conflict", "it conflicts with an existing resource (e.g. the email is in use)", nil},
		{fmt.Errorf("append: %w", &eventstore.ConflictError{Actual: 2}), 409, "version_conflict", "the resource changed concurrently (current version 2); reload and retry", nil},
	}
	srv, _ := newServer(t, api.Deps{}, func(r chi.Router) {
		r.Get("/test/error/{i}", func(w http.ResponseWriter, r *http.Request) {
			i, _ := strconv.Atoi(chi.URLParam(r, "i"))
			api.WriteError(w, r, cases[i].err)
		})
	})
	for i, c := range cases {
		res, body := do(t, newRequest(t, http.MethodGet, srv.URL+"/test/error/"+strconv.Itoa(i), "", nil))
		p := readProblem(t, res, body, c.status, c.code)
		if p.Type != "about:blank" || p.Title != http.StatusText(c.status) || p.Detail != c.detail || !maps.Equal(p.Errors, c.errors) {
			t.Errorf("%v: %s", c.err, body)
		}
	}
}
