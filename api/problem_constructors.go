package api

import "net/http"

// Constructors for the problems handlers answer most. Details are written
// for the API's users; pass "" to leave the detail out.

// BadRequest is a 400 validation_failed; fieldErrors (may be nil) names the
// offending fields.
func BadRequest(detail string, fieldErrors map[string]string) Problem {
	if len(fieldErrors) == 0 {
		fieldErrors = nil
	}
	return Problem{Status: http.StatusBadRequest, Code: CodeValidationFailed, Detail: detail, Errors: fieldErrors}
}

// Unauthenticated is a 401: no token, or one that is invalid or expired.
func Unauthenticated(detail string) Problem {
	return Problem{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Detail: detail}
}

// Forbidden is a 403: authenticated but lacking the permission. Never use it
// for another tenant's resources; those are NotFound.
func Forbidden(detail string) Problem {
	return Problem{Status: http.StatusForbidden, Code: CodeForbidden, Detail: detail}
}

// TenantSuspended is a 403 for a token of a suspended tenant's user: its
// session ended with the suspension.
func TenantSuspended() Problem {
	return Problem{Status: http.StatusForbidden, Code: CodeTenantSuspended, Detail: "your tenant is suspended"}
}

// NotFound is a 404 for an unknown id or another tenant's id.
func NotFound() Problem {
	return Problem{Status: http.StatusNotFound, Code: CodeNotFound, Detail: "the resource does not exist"}
}

// VersionConflict is a 409: the stream moved between load and append.
func VersionConflict(detail string) Problem {
	return Problem{Status: http.StatusConflict, Code: CodeVersionConflict, Detail: detail}
}

// Conflict is a 409 for a uniqueness violation (a name or email in use).
func Conflict(detail string, fieldErrors map[string]string) Problem {
	if len(fieldErrors) == 0 {
		fieldErrors = nil
	}
	return Problem{Status: http.StatusConflict, Code: CodeConflict, Detail: detail, Errors: fieldErrors}
}

// PreconditionFailed is a 412: If-Match did not match the stream version.
func PreconditionFailed(detail string) Problem {
	return Problem{Status: http.StatusPreconditionFailed, Code: CodePreconditionFailed, Detail: detail}
}

// PayloadTooLarge is a 413.
func PayloadTooLarge() Problem {
	return Problem{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
		Detail: "the request body is larger than 1 MiB"}
}

// UnsupportedMediaType is a 415.
func UnsupportedMediaType() Problem {
	return Problem{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
		Detail: "the request body must be application/json"}
}

// PoolExhausted is a 422: the IP address pool has no free address.
func PoolExhausted(detail string) Problem {
	return Problem{Status: http.StatusUnprocessableEntity, Code: CodePoolExhausted, Detail: detail}
}

// QuotaExceeded is a 422: the command would take the tenant over its quota.
func QuotaExceeded(detail string) Problem {
	return Problem{Status: http.StatusUnprocessableEntity, Code: CodeQuotaExceeded, Detail: detail}
}

// InvalidState is a 422 for any other domain rule: an impossible state
// transition, a command against a suspended tenant.
func InvalidState(detail string) Problem {
	return Problem{Status: http.StatusUnprocessableEntity, Code: CodeInvalidState, Detail: detail}
}

// IdempotencyMismatch is a 422: an Idempotency-Key reused with another body.
func IdempotencyMismatch() Problem {
	return Problem{Status: http.StatusUnprocessableEntity, Code: CodeIdempotencyMismatch,
		Detail: "the Idempotency-Key was already used with a different request"}
}

// RateLimited is a 429; the caller sets Retry-After.
func RateLimited() Problem {
	return Problem{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Detail: "too many requests; retry later"}
}

// Internal is a 500 that says nothing about the cause.
func Internal() Problem {
	return Problem{Status: http.StatusInternalServerError, Code: CodeInternal}
}

// Unavailable is a 503: a deadline passed or a dependency is down.
func Unavailable() Problem {
	return Problem{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Detail: "the service is temporarily unavailable; retry later"}
}

// FieldErrors collects validation messages by field name (JSON path, e.g.
// "quota.max_vms"). The zero value is ready to use.
type FieldErrors map[string]string

// Add records msg for field; the first message for a field wins.
func (fe *FieldErrors) Add(field, msg string) {
	if *fe == nil {
		*fe = FieldErrors{}
	}
	if _, ok := (*fe)[field]; !ok {
		(*fe)[field] = msg
	}
}

// Err is nil when nothing was added, else a 400 validation_failed Problem.
func (fe FieldErrors) Err() error {
	if len(fe) == 0 {
		return nil
	}
	return BadRequest("the request has invalid fields", fe)
}
