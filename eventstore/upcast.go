package eventstore

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/accountdb/accountdb/eventlog"
)

// Upcaster turns the data of one version of an event type into the next
// version's. It must be pure: the same input always gives the same output.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// ErrMissingUpcaster is returned when an event is older than its type's
// latest version and a step of the chain up to it is not registered.
var ErrMissingUpcaster = errors.New("eventstore: no upcaster for event version")

type upcastStep struct {
	eventType string
	from      int
}

// Upcasters is a registry of upcasters by event type and version: events are
// stored as they were recorded, forever (the log is insert-only and hashed),
// and read back at the latest version their type has. The latest version of
// a type is one above the highest step registered for it; a type without
// steps is read as stored. A nil *Upcasters upcasts nothing.
//
// Register everything before the registry is shared: reads do not lock.
type Upcasters struct {
	steps  map[upcastStep]Upcaster
	latest map[string]int
}

// NewUpcasters returns an empty registry.
func NewUpcasters() *Upcasters {
	return &Upcasters{steps: map[upcastStep]Upcaster{}, latest: map[string]int{}}
}

// Register adds the step of eventType from version from to from+1.
func (u *Upcasters) Register(eventType string, from int, fn Upcaster) error {
	switch {
	case !eventTypePattern.MatchString(eventType):
		return fmt.Errorf("register upcaster: event type %q must match %s", eventlog.Excerpt(eventType), eventTypePattern)
	case from < 1:
		return fmt.Errorf("register upcaster %s: from version %d, versions start at 1", eventType, from)
	case fn == nil:
		return fmt.Errorf("register upcaster %s v%d: nil function", eventType, from)
	}
	k := upcastStep{eventType, from}
	if _, dup := u.steps[k]; dup {
		return fmt.Errorf("register upcaster %s v%d: already registered", eventType, from)
	}
	u.steps[k] = fn
	u.latest[eventType] = max(u.latest[eventType], from+1)
	return nil
}

// Latest is the version events of eventType are read at: 0 when the type has
// no upcasters, so its events are read as stored.
func (u *Upcasters) Latest(eventType string) int {
	if u == nil {
		return 0
	}
	return u.latest[eventType]
}

// Fingerprint names the set of registered steps (event type and from
// version), independently of the order they were registered in: 12 hex digits
// of a SHA-256. A nil registry upcasts nothing, like an empty one, and has
// the same fingerprint. Snapshots record it (see SnapshotStateVersion): state
// built from events read through other steps is not reused. It cannot see
// inside the functions: changing what an already registered step does calls
// for a new snapshot version in the domain instead (upcasters must be pure
// and, once released, are not meant to change).
func (u *Upcasters) Fingerprint() string {
	var steps []upcastStep
	if u != nil {
		steps = slices.SortedFunc(maps.Keys(u.steps), func(a, b upcastStep) int {
			return cmp.Or(cmp.Compare(a.eventType, b.eventType), cmp.Compare(a.from, b.from))
		})
	}
	h := sha256.New()
	for _, s := range steps {
		fmt.Fprintf(h, "%s %d\n", s.eventType, s.from)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Upcast brings e to its type's latest version, one registered step at a
// time, updating Data and SchemaVersion. An event already at (or, written by
// a newer release, above) the latest version is left alone.
func (u *Upcasters) Upcast(e *eventlog.Event) error {
	latest := u.Latest(e.Type)
	for e.SchemaVersion < latest {
		fn, ok := u.steps[upcastStep{e.Type, e.SchemaVersion}]
		if !ok {
			return fmt.Errorf("%w: %s v%d to v%d (event %s, stream %s version %d)", ErrMissingUpcaster,
				e.Type, e.SchemaVersion, e.SchemaVersion+1, e.EventID, e.Stream, e.StreamVersion)
		}
		data, err := fn(e.Data)
		if err != nil {
			return fmt.Errorf("upcast %s v%d (event %s): %w", e.Type, e.SchemaVersion, e.EventID, err)
		}
		if !json.Valid(data) {
			return fmt.Errorf("upcast %s v%d (event %s): result is not valid JSON", e.Type, e.SchemaVersion, e.EventID)
		}
		e.Data, e.SchemaVersion = data, e.SchemaVersion+1
	}
	return nil
}

// upcastAll upcasts evs in place.
func (u *Upcasters) upcastAll(evs []eventlog.Event) ([]eventlog.Event, error) {
	if u == nil {
		return evs, nil
	}
	for i := range evs {
		if err := u.Upcast(&evs[i]); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// WithUpcasters returns a store that shares s's pool and metrics and reads
// events through u: ReadStream, ReadStreamUntil and ReadAll (and so command
// loads, history, as-of replays and projection rebuilds) return every event
// at its type's latest version. nil reads events as stored. Appends,
// AuditPage/AuditEach (the audit log shows what was recorded, which is what
// the hash chain covers) and the relay (the bus carries stored events, see
// docs/EVENTS.md) are unaffected.
func (s *Store) WithUpcasters(u *Upcasters) *Store {
	c := *s
	c.upcasters = u
	return &c
}
