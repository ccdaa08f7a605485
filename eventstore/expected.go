package eventstore

import (
	"fmt"
	"strconv"

	"github.com/accountdb/accountdb/eventlog"
)

// ExpectedVersion is what an append expects of its stream. The zero value is
// invalid on purpose: every append states its concurrency intent.
type ExpectedVersion struct {
	kind    expectedKind
	version int64
}

type expectedKind uint8

const (
	kindUnset expectedKind = iota
	kindAny
	kindNoStream
	kindExists
	kindExact
)

// Any appends whatever the stream's version, creating the stream if needed.
func Any() ExpectedVersion { return ExpectedVersion{kind: kindAny} }

// NoStream appends only if the stream does not exist yet.
func NoStream() ExpectedVersion { return ExpectedVersion{kind: kindNoStream} }

// StreamExists appends only to an existing stream, at any version.
func StreamExists() ExpectedVersion { return ExpectedVersion{kind: kindExists} }

// Exactly appends only if the stream is at version v; Exactly(0) is NoStream.
func Exactly(v int64) ExpectedVersion {
	if v == 0 {
		return NoStream()
	}
	return ExpectedVersion{kind: kindExact, version: v}
}

// ParseExpectedVersion reads "any", "no_stream", "exists" or a version number.
func ParseExpectedVersion(s string) (ExpectedVersion, error) {
	switch s {
	case "any":
		return Any(), nil
	case "no_stream":
		return NoStream(), nil
	case "exists":
		return StreamExists(), nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return ExpectedVersion{}, fmt.Errorf("%w: %q", ErrInvalidExpectedVersion, eventlog.Excerpt(s))
	}
	return Exactly(v), nil
}

func (e ExpectedVersion) validate() error {
	switch e.kind {
	case kindAny, kindNoStream, kindExists:
		return nil
	case kindExact:
		if e.version > 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrInvalidExpectedVersion, e)
}

// Version is the exact version expected, and whether one is.
func (e ExpectedVersion) Version() (int64, bool) { return e.version, e.kind == kindExact }

func (e ExpectedVersion) String() string {
	switch e.kind {
	case kindAny:
		return "any"
	case kindNoStream:
		return "no_stream"
	case kindExists:
		return "exists"
	case kindExact:
		return strconv.FormatInt(e.version, 10)
	}
	return "unset"
}

// Admits reports whether a stream now at version current (0: it does not
// exist) meets the expectation: the rule every store's stream guard applies.
func (e ExpectedVersion) Admits(current int64) bool {
	switch e.kind {
	case kindAny:
		return true
	case kindNoStream:
		return current == 0
	case kindExists:
		return current > 0
	case kindExact:
		return current == e.version
	}
	return false
}
