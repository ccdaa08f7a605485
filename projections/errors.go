package projections

import "errors"

// Errors of the projector runtime; wrapped errors carry detail, test with errors.Is.
var (
	// ErrInvalidProjector: a projector's name or tables are not usable identifiers.
	ErrInvalidProjector = errors.New("projections: invalid projector")
	// ErrRebuildInProgress: another rebuild of the same projector holds its lock.
	ErrRebuildInProgress = errors.New("projections: a rebuild of this projector is already running")
	// ErrUnsupportedTable: rebuild cannot copy a table's triggers or foreign keys.
	ErrUnsupportedTable = errors.New("projections: table cannot be rebuilt")
	// ErrNotOwner: rebuild must run as the role that owns the read-model tables.
	ErrNotOwner = errors.New("projections: rebuild must run as the tables' owner")
	// ErrCheckpointAhead: the live checkpoint is past everything rebuild could
	// read from the store, so swapping would lose events.
	ErrCheckpointAhead = errors.New("projections: live checkpoint is ahead of the rebuilt model")
)
