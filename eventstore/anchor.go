package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Anchors: the hash chains show an event edited in place, but someone with
// the database owner's rights can rewrite an event and recompute every hash
// after it, and the chain is then consistent again (docs/AUDIT.md, "What the
// chain cannot show"). An anchor is a copy of every stream's head (its last
// version and that event's hash) taken at one moment and kept out of the
// database administrators' reach. Checking it later finds any rewrite of an
// event at or before an anchored head: the event at the anchored version no
// longer has the anchored hash, or is gone. Only 32 bytes per stream leave
// the database, never an event.

// AnchorFormat names the anchor document's format.
const AnchorFormat = "accountdb.anchor.v1"

// Head is one stream's chain head as anchored.
type Head struct {
	Stream   string    `json:"stream_id"`
	TenantID uuid.UUID `json:"tenant_id"`
	Version  int64     `json:"version"`
	Hash     string    `json:"hash"` // hex of the event's hash column
}

// Anchor is the heads of the chains at one moment: the document `accountdb
// audit anchor` writes, to be kept on write-once storage.
type Anchor struct {
	Format  string    `json:"format"`
	TakenAt time.Time `json:"taken_at"`
	// TenantID is set when the anchor covers one tenant's streams only.
	TenantID *uuid.UUID `json:"tenant_id,omitempty"`
	Streams  int        `json:"streams"`
	Events   int64      `json:"events"` // the heads' versions summed: events covered
	// Digest is the hex SHA-256 of the heads (see headsDigest): a copy of
	// the document with a head edited, added or removed no longer matches.
	Digest string `json:"digest"`
	Heads  []Head `json:"heads"` // by stream id
}

// headsDigest is SHA-256 over one line per head, "stream tenant version
// hash\n", in the heads' order (by stream id).
func headsDigest(heads []Head) string {
	h := sha256.New()
	var line []byte
	for _, hd := range heads {
		line = append(line[:0], hd.Stream...)
		line = append(line, ' ')
		line = append(line, hd.TenantID.String()...)
		line = append(line, ' ')
		line = strconv.AppendInt(line, hd.Version, 10)
		line = append(line, ' ')
		line = append(line, hd.Hash...)
		line = append(line, '\n')
		h.Write(line)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ErrAnchorInvalid: the anchor document is not one AnchorLog wrote, or was
// altered since: its digest or counts do not match its heads.
var ErrAnchorInvalid = errors.New("eventstore: invalid anchor")

// Validate checks that the document is self-consistent: its format, its
// counts and its digest agree with its heads.
func (a Anchor) Validate() error {
	switch {
	case a.Format != AnchorFormat:
		return fmt.Errorf("%w: format %q, want %q", ErrAnchorInvalid, a.Format, AnchorFormat)
	case a.Streams != len(a.Heads):
		return fmt.Errorf("%w: %d streams declared, %d heads", ErrAnchorInvalid, a.Streams, len(a.Heads))
	case a.Digest != headsDigest(a.Heads):
		return fmt.Errorf("%w: the digest does not match the heads (the document was altered)", ErrAnchorInvalid)
	}
	var events int64
	for i, h := range a.Heads {
		if b, err := hex.DecodeString(h.Hash); err != nil || len(b) != sha256.Size || h.Version < 1 {
			return fmt.Errorf("%w: head %d (%s) has version %d, hash %q", ErrAnchorInvalid, i, h.Stream, h.Version, h.Hash)
		}
		events += h.Version
	}
	if events != a.Events {
		return fmt.Errorf("%w: %d events declared, the heads cover %d", ErrAnchorInvalid, a.Events, events)
	}
	return nil
}

// AnchorLog reads every stream's head (one tenant's with a non-nil tenant,
// else all) in one snapshot. It does not verify the chains: anchor a log
// that VerifyChains found intact.
func (s *Store) AnchorLog(ctx context.Context, tenant uuid.UUID) (Anchor, error) {
	var only *uuid.UUID
	if tenant != uuid.Nil {
		only = &tenant
	}
	a := Anchor{Format: AnchorFormat, TenantID: only, Heads: []Head{}}
	err := s.auditRead(ctx, tenant, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&a.TakenAt); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT s.stream_id, s.tenant_id, s.version, e.hash
			FROM streams s JOIN events e ON e.stream_id = s.stream_id AND e.stream_version = s.version
			WHERE $1::uuid IS NULL OR s.tenant_id = $1
			ORDER BY s.stream_id COLLATE "C"`, only)
		if err != nil {
			return err
		}
		a.Heads, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Head, error) {
			var h Head
			var hash []byte
			err := row.Scan(&h.Stream, &h.TenantID, &h.Version, &hash)
			h.Hash = hex.EncodeToString(hash)
			return h, err
		})
		return err
	})
	if err != nil {
		return Anchor{}, fmt.Errorf("anchor: %w", err)
	}
	a.TakenAt = a.TakenAt.UTC()
	a.Streams = len(a.Heads)
	for _, h := range a.Heads {
		a.Events += h.Version
	}
	a.Digest = headsDigest(a.Heads)
	return a, nil
}

// AnchorMismatchReason says how the log departs from an anchored head.
type AnchorMismatchReason string

const (
	// AnchorRewritten: the event at the anchored version has another hash,
	// so it or an event before it was rewritten since the anchor was taken
	// (with the chain recomputed, or VerifyChains would say so too).
	AnchorRewritten AnchorMismatchReason = "rewritten"
	// AnchorMissing: the stream no longer has the anchored version.
	AnchorMissing AnchorMismatchReason = "missing"
)

// AnchorMismatch is one anchored head the log no longer matches.
type AnchorMismatch struct {
	Head   Head
	Reason AnchorMismatchReason
	Stored []byte // the hash at that version now; nil when missing
}

// CheckAnchor compares the log with a validated anchor: each anchored head's
// event must still exist with the anchored hash. Under the cross-tenant
// scope, or the anchor's tenant scope for a one-tenant anchor.
func (s *Store) CheckAnchor(ctx context.Context, a Anchor) ([]AnchorMismatch, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var tenant uuid.UUID
	if a.TenantID != nil {
		tenant = *a.TenantID
	}
	ids := make([]string, len(a.Heads))
	versions := make([]int64, len(a.Heads))
	for i, h := range a.Heads {
		ids[i], versions[i] = h.Stream, h.Version
	}
	stored := make([][]byte, len(a.Heads))
	err := s.auditRead(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT h.i, e.hash
			FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS h(stream_id, version, i)
			LEFT JOIN events e ON e.stream_id = h.stream_id AND e.stream_version = h.version`, ids, versions)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var i int64
			var hash []byte
			if err := rows.Scan(&i, &hash); err != nil {
				return err
			}
			stored[i-1] = hash
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("check anchor: %w", err)
	}
	var out []AnchorMismatch
	for i, h := range a.Heads {
		want, _ := hex.DecodeString(h.Hash) // Validate checked it
		switch {
		case stored[i] == nil:
			out = append(out, AnchorMismatch{Head: h, Reason: AnchorMissing})
		case !bytes.Equal(stored[i], want):
			out = append(out, AnchorMismatch{Head: h, Reason: AnchorRewritten, Stored: stored[i]})
		}
	}
	return out, nil
}
