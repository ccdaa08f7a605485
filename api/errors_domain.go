package api

import (
	"errors"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
)

// domainErrors maps the domain's and the command layer's errors; NewRouter
// consults them before ErrorTable's generic ones.
func domainErrors() []ErrorMapping {
	return []ErrorMapping{
		{Match: MatchAs[*domain.ValidationError](), Problem: func(err error) Problem {
			var ve *domain.ValidationError
			errors.As(err, &ve)
			return BadRequest("the request is invalid", ve.Fields)
		}},
		{Target: domain.ErrNotFound, Problem: Static(NotFound())},
		{Target: domain.ErrConflict, Problem: Static(Conflict("it conflicts with an existing resource (e.g. the email is in use)", nil))},
		{Target: domain.ErrForbidden, Problem: Static(Forbidden("you cannot grant a permission you do not hold"))},
		{Target: domain.ErrQuotaExceeded, Problem: Static(QuotaExceeded("the tenant's quota does not allow this"))},
		{Target: domain.ErrTenantSuspended, Problem: Static(InvalidState("the tenant is suspended"))},
		{Target: domain.ErrLastAdmin, Problem: Static(InvalidState("a tenant must keep at least one active tenant_admin"))},
		{Target: domain.ErrInvalidTransition, Problem: Static(InvalidState("not allowed in the resource's current state"))},
		{Target: commands.ErrPreconditionFailed, Problem: Static(PreconditionFailed("If-Match does not match the current version"))},
		{Target: eventstore.ErrIdempotencyMismatch, Problem: Static(IdempotencyMismatch())},
		{Target: commands.ErrNoVault, Problem: Static(Unavailable())},
		{Target: commands.ErrThrottleUnavailable, Problem: Static(Unavailable())},
		{Target: commands.ErrUnauthenticated, Problem: Static(Unauthenticated("invalid credentials"))},
	}
}
