package eventlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// StreamID names one aggregate's stream: its type and its id, written
// "<type>-<uuid>" (for example "vm-0190f3c2-…"). Types are lower-case
// identifiers because they become NATS subject tokens.
type StreamID struct {
	Type string
	ID   uuid.UUID
}

// TypePattern is what stream types and event types match: lower-case
// identifiers, because both become NATS subject tokens.
var TypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// NewStreamID builds a stream id, checking the type.
func NewStreamID(streamType string, id uuid.UUID) (StreamID, error) {
	s := StreamID{Type: streamType, ID: id}
	return s, s.Validate()
}

// Validate reports ErrInvalidStreamID for a malformed type or a nil id.
func (s StreamID) Validate() error {
	if !TypePattern.MatchString(s.Type) {
		return fmt.Errorf("%w: stream type %q must match %s", ErrInvalidStreamID, s.Type, TypePattern)
	}
	if s.ID == uuid.Nil {
		return fmt.Errorf("%w: nil id", ErrInvalidStreamID)
	}
	return nil
}

func (s StreamID) String() string { return s.Type + "-" + s.ID.String() }

// ParseStreamID reads the "<type>-<uuid>" form.
func ParseStreamID(v string) (StreamID, error) {
	if len(v) < 38 || v[len(v)-37] != '-' {
		return StreamID{}, fmt.Errorf("%w: %q is not <type>-<uuid>", ErrInvalidStreamID, Excerpt(v))
	}
	id, err := uuid.Parse(v[len(v)-36:])
	if err != nil {
		return StreamID{}, fmt.Errorf("%w: %q is not <type>-<uuid>", ErrInvalidStreamID, Excerpt(v))
	}
	s := StreamID{Type: v[:len(v)-37], ID: id}
	return s, s.Validate()
}

// MarshalText and UnmarshalText make StreamID a plain JSON string.
func (s StreamID) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *StreamID) UnmarshalText(b []byte) error {
	v, err := ParseStreamID(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

var _ json.Marshaler = Event{}

// ErrInvalidStreamID is returned for a malformed stream id.
var ErrInvalidStreamID = errors.New("eventlog: invalid stream id")

// Excerpt is v cut to 80 characters and made valid UTF-8, for quoting
// untrusted input in an error message.
func Excerpt(v string) string {
	if len(v) > 80 {
		return strings.ToValidUTF8(v[:80], "?") + "…"
	}
	return strings.ToValidUTF8(v, "?")
}
