package feed

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
)

// maxEventTypes bounds ?type=, and with it the consumer's filter subjects.
const maxEventTypes = 20

var eventTypeParam = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// TypeFilterError is a ?type= that is not a list of event types; Reason is
// written for the API's users.
type TypeFilterError struct{ Reason string }

func (e *TypeFilterError) Error() string { return "feed: ?type=: " + e.Reason }

// ErrBadLastEventID is a Last-Event-ID that is neither "0" nor the global
// position of an event of the subscriber's tenant.
var ErrBadLastEventID = errors.New("feed: Last-Event-ID names no event of the tenant")

// parseTypes reads ?type=, sorted and without repeats; none means every type.
func parseTypes(r *http.Request) ([]string, error) {
	types := r.URL.Query()["type"]
	if len(types) > maxEventTypes {
		return nil, &TypeFilterError{Reason: "at most " + strconv.Itoa(maxEventTypes) + " types"}
	}
	for _, t := range types {
		if !eventTypeParam.MatchString(t) {
			return nil, &TypeFilterError{Reason: "an event type is a lower snake case identifier (^[a-z][a-z0-9_]{0,39}$)"}
		}
	}
	slices.Sort(types)
	return slices.Compact(types), nil
}

// matcher is what a subscriber asked for and may see, by the stream and
// event type of a message of its tenant: its VM streams only without
// audit:read, and only the ?type= event types when any are given.
func matcher(s Subscriber, types []string) func(streamType, eventType string) bool {
	vmOnly := !s.AuditRead
	return func(streamType, eventType string) bool {
		if vmOnly && streamType != "vm" {
			return false
		}
		return len(types) == 0 || slices.Contains(types, eventType)
	}
}
