package eventstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RecordedCommand is the result the append of command id had, if one was
// recorded: Replayed is set, and LastVersion and LastPosition are those of
// the first time. A request hash that differs from the recorded one is
// ErrIdempotencyMismatch (either being nil matches anything).
//
// It reads across tenants: command ids derived from an idempotency key
// already include the tenant and user that chose the key.
func (s *Store) RecordedCommand(ctx context.Context, id uuid.UUID, requestHash []byte) (AppendResult, bool, error) {
	return s.lookupCommand(ctx, crossTenantRead, id, requestHash)
}

func (s *Store) lookupCommand(ctx context.Context, sc tenantdb.Scope, id uuid.UUID, requestHash []byte) (AppendResult, bool, error) {
	var (
		res    AppendResult
		stream string
		hash   []byte
	)
	err := s.inScope(ctx, sc, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT stream_id, first_version, last_version, last_position, request_hash
			FROM commands WHERE command_id = $1`, id).
			Scan(&stream, &res.FirstVersion, &res.LastVersion, &res.LastPosition, &hash)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return AppendResult{}, false, nil
	}
	if err != nil {
		return AppendResult{}, false, fmt.Errorf("look up command %s: %w", id, err)
	}
	if err := CheckRequestHash(id, hash, requestHash); err != nil {
		return AppendResult{}, false, err
	}
	if res.Stream, err = eventlog.ParseStreamID(stream); err != nil {
		return AppendResult{}, false, err
	}
	res.Replayed = true
	return res, true, nil
}

// CheckRequestHash is ErrIdempotencyMismatch when command id was recorded
// with a request hash other than the one given; a nil hash on either side
// matches anything.
func CheckRequestHash(id uuid.UUID, recorded, given []byte) error {
	if recorded != nil && given != nil && !bytes.Equal(recorded, given) {
		return fmt.Errorf("command %s: %w", id, ErrIdempotencyMismatch)
	}
	return nil
}
