package domain

// SnapshotVersion is the version of the aggregates' state as snapshots store
// it: the aggregate structs (VM, User, Tenant) encoded with encoding/json,
// as built by their Apply. A snapshot only stands for its events if the code
// reading it would have built the same state from them, so snapshots of
// another version are ignored (and rebuilt by the next replay).
//
// Bump it whenever an aggregate's fields or Apply change: a field added,
// removed, renamed or retyped, or an event applied differently. The fields
// are guarded by a test (TestAggregateShapeIsPinned); a change to Apply is
// not, and is on whoever makes it.
const SnapshotVersion = 8
