package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/accountdb/accountdb/api/feed"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
)

// ErrorTable is the one place where errors from the rest of the system
// (domain/, commands/, eventstore/, api/feed/) become HTTP problems (see
// README.md): each entry is an error and the problem it is answered with,
// whose constructor (problem_constructors.go) fixes the status and code.
// The first match wins, so an error that wraps another comes before it, and
// the domain's and the commands' come before the store's and transport's,
// which they may wrap. Deps.Errors are consulted before this table. Anything
// unmatched is a 500 "internal" whose cause is only logged.
func ErrorTable() []ErrorMapping {
	return append(assistantErrors(), []ErrorMapping{
		// The domain's rules and the command handlers' refusals.
		{Match: MatchAs[*domain.ValidationError](), Problem: func(err error) Problem {
			var ve *domain.ValidationError
			errors.As(err, &ve)
			return BadRequest("the request is invalid", ve.Fields)
		}},
		{Target: domain.ErrNotFound, Problem: Static(NotFound())},
		{Target: domain.ErrConflict, Problem: Static(Conflict("it conflicts with an existing resource (e.g. the email is in use)", nil))},
		{Target: commands.ErrOIDCNoAccess, Problem: Static(Forbidden("your identity provider's groups give you no access here"))},
		{Target: domain.ErrOutranked, Problem: Static(Forbidden("you cannot change the password, roles or status of a user who holds a permission you do not hold"))},
		{Target: domain.ErrForbidden, Problem: Static(Forbidden("you cannot grant a permission you do not hold"))},
		{Target: domain.ErrQuotaExceeded, Problem: Static(QuotaExceeded("the tenant's quota does not allow this"))},
		{Target: domain.ErrPoolExhausted, Problem: Static(PoolExhausted("the address pool has no free address left"))},
		{Target: domain.ErrConfirmationRequired, Problem: Static(Problem{Status: http.StatusUnprocessableEntity, Code: CodeConfirmationRequired,
			Detail: "a restore in place overwrites the VM's disks: confirm it with the VM's name",
			Errors: map[string]string{"confirm_name": "must be the VM's name"}})},
		{Target: domain.ErrErasureConfirmation, Problem: Static(Problem{Status: http.StatusUnprocessableEntity, Code: CodeConfirmationRequired,
			Detail: "erasure destroys the user's personal data for good: confirm it with the user's email",
			Errors: map[string]string{"confirm_email": "must be the user's email"}})},
		{Target: domain.ErrTenantSuspended, Problem: Static(InvalidState("the tenant is suspended"))},
		{Target: domain.ErrLastAdmin, Problem: Static(InvalidState("a tenant must keep at least one active tenant_admin"))},
		{Target: domain.ErrInvalidTransition, Problem: Static(InvalidState("not allowed in the resource's current state"))},
		// Consoles (console_routes.go).
		{Target: errConsoleNotRunning, Problem: Static(InvalidState("the VM is not running"))},
		{Target: errConsoleSession, Problem: Static(Unauthenticated("the session that asked for the console has ended"))},
		{Target: errConsolePermission, Problem: Static(Forbidden("the vm:console permission is required"))},
		{Target: commands.ErrPreconditionFailed, Problem: Static(PreconditionFailed("If-Match does not match the current version"))},
		{Target: eventstore.ErrIdempotencyMismatch, Problem: Static(IdempotencyMismatch())},
		{Target: commands.ErrNoVault, Problem: Static(Unavailable())},
		{Target: commands.ErrOIDCUnavailable, Problem: Static(Unavailable())},
		{Target: commands.ErrThrottleUnavailable, Problem: Static(Unavailable())},
		// A throttled password check (the caller sets Retry-After).
		{Target: commands.ErrThrottled, Problem: Static(RateLimited())},
		{Target: commands.ErrUnauthenticated, Problem: Static(Unauthenticated("invalid credentials"))},
		// GET /v1/events refusing a request.
		{Match: MatchAs[*feed.TypeFilterError](), Problem: func(err error) Problem {
			var te *feed.TypeFilterError
			errors.As(err, &te)
			return BadRequest("the request has invalid fields", map[string]string{"type": te.Reason})
		}},
		{Target: feed.ErrBadLastEventID, Problem: Static(BadRequest(
			"Last-Event-ID must be the id of an event of your tenant received from this feed, or 0 for the beginning of the log", nil))},
		{Target: feed.ErrNoBus, Problem: Static(Unavailable())},
		// The event store and the transport.
		{Match: MatchAs[*eventstore.ConflictError](), Problem: func(err error) Problem {
			var ce *eventstore.ConflictError
			errors.As(err, &ce)
			return VersionConflict(fmt.Sprintf("the resource changed concurrently (current version %d); reload and retry", ce.Actual))
		}},
		{Target: eventstore.ErrVersionConflict, Problem: Static(VersionConflict("the resource changed concurrently; reload and retry"))},
		// Another tenant's stream is indistinguishable from a missing one.
		{Target: eventstore.ErrTenantMismatch, Problem: Static(NotFound())},
		{Target: eventstore.ErrStreamNotFound, Problem: Static(NotFound())},
		{Target: eventstore.ErrEventTooLarge, Problem: Static(Problem{Status: http.StatusRequestEntityTooLarge,
			Code: CodePayloadTooLarge, Detail: "the change is too large to record"})},
		{Match: MatchAs[*http.MaxBytesError](), Problem: Static(PayloadTooLarge())},
		{Target: context.DeadlineExceeded, Problem: Static(Unavailable())},
		{Target: context.Canceled, Problem: Static(Unavailable())},
	}...)
}
