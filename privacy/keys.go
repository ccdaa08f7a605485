package privacy

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Keys is where subjects' data keys are kept: the port Sealer and Revealer
// use. PGKeys keeps them in PostgreSQL; keystoretest.Run is the suite every
// implementation passes.
type Keys interface {
	// Key returns the key ref names in tenant, making it first when create is
	// set and it does not exist. Without create a missing key (destroyed,
	// or never made) is ErrNoKey. A subject that was erased gets no new key:
	// ErrErased.
	Key(ctx context.Context, tenant uuid.UUID, ref KeyRef, create bool) ([]byte, error)
}

var (
	// ErrNoKey: the key does not exist (destroyed by erasure or retention).
	ErrNoKey = errors.New("privacy: no such key")
	// ErrErased: the subject was erased; nothing is sealed for them again.
	ErrErased = errors.New("privacy: the subject was erased")
)

// MetadataKey is the name of a subject's request-metadata key for the UTC day
// of t.
func MetadataKey(t time.Time) string {
	return metadataKeyPrefix + t.UTC().Format("20060102")
}

// metadataPeriod is the day a request-metadata key name stands for.
func metadataPeriod(name string) (time.Time, bool) {
	rest, ok := cutPrefix(name, metadataKeyPrefix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", rest)
	return t, err == nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return s, false
	}
	return s[len(p):], true
}
