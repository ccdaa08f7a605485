package api

import (
	"encoding/json"
	"net/http"
)

// Stable problem codes (API.md). Clients switch on these, never on titles or
// details, so a code, once shipped, is never renamed.
const (
	CodeValidationFailed      = "validation_failed"       // 400
	CodeUnauthenticated       = "unauthenticated"         // 401
	CodeForbidden             = "forbidden"               // 403
	CodeTenantSuspended       = "tenant_suspended"        // 403, the caller's tenant is suspended
	CodeMFAEnrollmentRequired = "mfa_enrollment_required" // 403, the session may only enrol in two-factor
	CodeNotFound              = "not_found"               // 404
	CodeMethodNotAllowed      = "method_not_allowed"      // 405
	CodeVersionConflict       = "version_conflict"        // 409, stream version moved
	CodeConflict              = "conflict"                // 409, uniqueness (name, email taken)
	CodePreconditionFailed    = "precondition_failed"     // 412, If-Match
	CodePayloadTooLarge       = "payload_too_large"       // 413
	CodeUnsupportedMediaType  = "unsupported_media_type"  // 415
	CodeQuotaExceeded         = "quota_exceeded"          // 422
	CodePoolExhausted         = "pool_exhausted"          // 422, no free address in the IP pool
	CodeConfirmationRequired  = "confirmation_required"   // 422, a destructive request without its confirmation
	CodeInvalidState          = "invalid_state"           // 422, impossible transition, suspended tenant
	CodeIdempotencyMismatch   = "idempotency_mismatch"    // 422, same key, different body
	CodeRateLimited           = "rate_limited"            // 429
	CodeInternal              = "internal"                // 500
	CodeUnavailable           = "unavailable"             // 503, deadline or dependency down
)

// Problem is an RFC 9457 problem detail. It is also an error, so that
// helpers such as DecodeJSON can return one and WriteError can answer it
// unchanged.
type Problem struct {
	Type     string            // URI; "about:blank" when empty
	Title    string            // the status text when empty
	Status   int               // HTTP status
	Detail   string            // human explanation of this occurrence; never internal error text
	Code     string            // stable machine code, see the Code constants
	Errors   map[string]string // field → message, for validation problems
	Instance string            // optional URI of this occurrence
}

func (p Problem) Error() string {
	if p.Detail != "" {
		return p.Code + ": " + p.Detail
	}
	return p.Code
}

// problemBody is the wire form; request_id is an extension member.
type problemBody struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Code      string            `json:"code"`
	Errors    map[string]string `json:"errors,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

// WriteProblem answers with p as application/problem+json. Missing Type,
// Title, Status and Code are filled in so that every problem has all four.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Code == "" {
		p.Code = defaultCode(p.Status)
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	body := problemBody{
		Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail,
		Code: p.Code, Errors: p.Errors, Instance: p.Instance,
	}
	if r != nil {
		body.RequestID = RequestID(r.Context())
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(body)
}

func defaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeValidationFailed
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusPreconditionFailed:
		return CodePreconditionFailed
	case http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedMediaType
	case http.StatusUnprocessableEntity:
		return CodeInvalidState
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return CodeUnavailable
	}
	return CodeInternal
}
