package eventstore

import (
	"errors"
	"fmt"

	"github.com/accountdb/accountdb/eventlog"
)

// Errors the store returns; wrapped errors carry detail, test with errors.Is.
var (
	ErrVersionConflict        = errors.New("eventstore: stream version conflict")
	ErrDuplicateEvent         = errors.New("eventstore: duplicate event id")
	ErrInvalidExpectedVersion = errors.New("eventstore: invalid expected version")
	ErrNoEvents               = errors.New("eventstore: no events to append")
	ErrInvalidEvent           = errors.New("eventstore: invalid event")
	ErrEventTooLarge          = errors.New("eventstore: event data too large")
	ErrTenantMismatch         = errors.New("eventstore: stream belongs to another tenant")
	ErrStreamNotFound         = errors.New("eventstore: stream not found")
	ErrIdempotencyMismatch    = errors.New("eventstore: command id reused for a different request")
	ErrAppendNotFirstWrite    = errors.New("eventstore: AppendTx must be the first write of its transaction")
	ErrInvalidSnapshot        = errors.New("eventstore: invalid snapshot")
)

// MaxEventDataBytes bounds one event's data: events are facts, not blobs.
const MaxEventDataBytes = 256 << 10

// MaxEventsPerAppend bounds one append so that it stays a short transaction.
const MaxEventsPerAppend = 1000

// ConflictError is an expected-version mismatch. Actual is 0 when the stream
// does not exist.
type ConflictError struct {
	Stream   eventlog.StreamID
	Expected ExpectedVersion
	Actual   int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: stream %s: expected version %s, actual %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrVersionConflict) true for a *ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrVersionConflict }
