package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/accountdb/accountdb/eventstore"
)

// ErrorTable is the one place where errors from the rest of the system
// become HTTP problems (see README.md). Add the domain's and the command
// handlers' sentinels here, most specific first; the first match wins.
// Anything unmatched is a 500 "internal" whose cause is only logged.
func ErrorTable() []ErrorMapping {
	return []ErrorMapping{
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
	}
}
