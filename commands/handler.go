// Package commands executes AccountDB's commands: load the aggregate from its
// stream, let it decide, append the resulting events with the version it was
// loaded at. Cross-aggregate rules (unique emails, grantable roles, the last
// tenant admin, quotas) are checked here, inside the append's transaction
// where they need one.
package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/accountdb/accountdb/vault"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of the command layer (domain errors pass through unchanged).
var (
	// ErrPreconditionFailed: If-Match named another version. HTTP 412.
	ErrPreconditionFailed = errors.New("precondition failed: the resource has changed")
	// ErrUnauthenticated: bad credentials, or a token or session no longer valid. HTTP 401.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrThrottled: too many failed sign-ins. HTTP 429; see ThrottledError.
	ErrThrottled = errors.New("too many attempts")
	// ErrThrottleUnavailable: the sign-in throttle could not answer or
	// record an attempt (its store is down), so the attempt gets no verdict.
	// HTTP 503.
	ErrThrottleUnavailable = errors.New("sign-in is temporarily unavailable")
)

// ThrottledError says when to try again.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string        { return "too many attempts" }
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Actor is who issues a command and from where; it comes from a verified
// access token and the request, never from a request body.
type Actor struct {
	UserID        uuid.UUID
	TenantID      uuid.UUID
	SessionID     uuid.UUID
	Roles         []string
	CorrelationID uuid.UUID
	Metadata      eventstore.Metadata
}

// IsPlatformAdmin reports whether the actor holds the platform_admin role.
func (a Actor) IsPlatformAdmin() bool {
	for _, r := range a.Roles {
		if r == string(auth.RolePlatformAdmin) {
			return true
		}
	}
	return false
}

// Options are the HTTP-level controls of a command.
type Options struct {
	// IdempotencyKey: a repeat with the same key returns the first result.
	IdempotencyKey string
	// RequestHash identifies the request body, so a reused key with another
	// body is refused (eventstore.ErrIdempotencyMismatch).
	RequestHash []byte
	// IfMatch, when non-zero, is the stream version the client last saw.
	IfMatch int64
}

// Result is what a command answers: the aggregate, its new version and the
// global position of its last event (the consistency token).
type Result struct {
	ID            uuid.UUID
	StreamVersion int64
	Position      int64
	Replayed      bool
}

// Handler executes commands against the event store.
type Handler struct {
	store     *eventstore.Store
	pool      *pgxpool.Pool
	passwords auth.PasswordHasher
	sessions  SessionConfig
	vault     *vault.Vault
	log       *slog.Logger
	now       func() time.Time
}

// New returns a handler. The pool is the service role's (the store's).
func New(store *eventstore.Store, passwords auth.PasswordHasher, sessions SessionConfig) *Handler {
	return &Handler{store: store, pool: store.Pool(), passwords: passwords, sessions: sessions.withDefaults(), log: slog.Default(), now: time.Now}
}

// idempotencyNamespace scopes command ids derived from Idempotency-Keys.
var idempotencyNamespace = uuid.MustParse("6f1c1e36-5d0e-4a53-9d4b-2b1f1f0e6a10")

// commandID derives a command id from the client's key, per tenant and user,
// so two clients can never collide on the same key.
func commandID(a Actor, key string) uuid.UUID {
	if key == "" {
		return uuid.Nil
	}
	return uuid.NewSHA1(idempotencyNamespace, []byte(a.TenantID.String()+"|"+a.UserID.String()+"|"+key))
}

// change is one decided change to one stream.
type change struct {
	tenant  uuid.UUID
	stream  eventstore.StreamID
	version int64 // the version the decision was made at
	// anyVersion appends whatever the stream's version: for streams that only
	// accumulate facts (a session's refreshes), where no decision reads state.
	anyVersion bool
	events     []domain.Event
	// side, when set, writes rows outside the event store in the same
	// transaction, after the events (see eventstore.AppendTx).
	side func(ctx context.Context, tx pgx.Tx) error
	// lockTenant serialises this change with other changes of the tenant that
	// also set it (the last-admin rule reads across users).
	lockTenant bool
	// causation, when set, is the event that caused this change (a result's
	// request); commandID, when set, makes it idempotent without a client key.
	causation, commandID uuid.UUID
}

// maxConflictRetries bounds load-decide-append retries after a concurrent
// writer got there first (only when the client did not pin a version).
const maxConflictRetries = 3

// execute runs decide until its append succeeds: decide loads what it needs
// and returns the change; a version conflict without If-Match decides again.
func (h *Handler) execute(ctx context.Context, a Actor, o Options, decide func(ctx context.Context) (change, error)) (Result, error) {
	// A repeat gets the first answer before anything is decided: the state
	// the first request changed may no longer allow the command (a second
	// disable), nor match its If-Match.
	if res, found, err := h.replayed(ctx, a, o); err != nil || found {
		return res, err
	}
	for attempt := 0; ; attempt++ {
		c, err := decide(ctx)
		if err != nil {
			return Result{}, err
		}
		if o.IfMatch != 0 && o.IfMatch != c.version {
			return Result{}, ErrPreconditionFailed
		}
		res, err := h.commit(ctx, a, o, c)
		var conflict *eventstore.ConflictError
		if errors.As(err, &conflict) {
			if o.IfMatch != 0 {
				return Result{}, ErrPreconditionFailed
			}
			if attempt < maxConflictRetries {
				continue
			}
		}
		return res, err
	}
}

// replayed returns the recorded result of the command the client's
// Idempotency-Key names, if it ran already. Its id is derived from the
// actor's tenant and user, so reading it across tenants shows no one else's.
func (h *Handler) replayed(ctx context.Context, a Actor, o Options) (Result, bool, error) {
	if o.IdempotencyKey == "" {
		return Result{}, false, nil
	}
	var (
		res    Result
		stream string
		hash   []byte
	)
	err := tenantdb.ReadTx(ctx, h.pool, tenantdb.System(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT stream_id, last_version, last_position, request_hash FROM commands WHERE command_id = $1`,
			commandID(a, o.IdempotencyKey)).Scan(&stream, &res.StreamVersion, &res.Position, &hash)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("look up command: %w", err)
	}
	if hash != nil && o.RequestHash != nil && !bytes.Equal(hash, o.RequestHash) {
		return Result{}, false, eventstore.ErrIdempotencyMismatch
	}
	sid, err := eventstore.ParseStreamID(stream)
	if err != nil {
		return Result{}, false, err
	}
	res.ID, res.Replayed = sid.ID, true
	return res, true, nil
}

func (h *Handler) commit(ctx context.Context, a Actor, o Options, c change) (Result, error) {
	res := Result{ID: c.stream.ID, StreamVersion: c.version}
	if len(c.events) == 0 {
		return res, nil // nothing changed: answer with the current version
	}
	app, err := h.newAppend(a, o, c)
	if err != nil {
		return Result{}, err
	}
	var ar eventstore.AppendResult
	if c.side == nil && !c.lockTenant {
		ar, err = h.store.Append(ctx, app)
	} else {
		ar, err = h.appendWithSide(ctx, app, c)
	}
	if err != nil {
		return Result{}, err
	}
	return Result{ID: c.stream.ID, StreamVersion: ar.LastVersion, Position: ar.LastPosition, Replayed: ar.Replayed}, nil
}

var errRollbackReplay = errors.New("replayed command: roll back side writes")

func (h *Handler) appendWithSide(ctx context.Context, app eventstore.Append, c change) (eventstore.AppendResult, error) {
	var ar eventstore.AppendResult
	err := pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error {
		if c.lockTenant {
			// An advisory lock assigns no transaction id, so AppendTx is
			// still the first write after it.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(84, hashtext($1))`, c.tenant.String()); err != nil {
				return err
			}
		}
		var err error
		if ar, err = h.store.AppendTx(ctx, tx, app); err != nil {
			return err
		}
		if ar.Replayed {
			return errRollbackReplay
		}
		if c.side != nil {
			return c.side(ctx, tx)
		}
		return nil
	})
	if errors.Is(err, errRollbackReplay) {
		return ar, nil
	}
	return ar, err
}

func (h *Handler) newAppend(a Actor, o Options, c change) (eventstore.Append, error) {
	expected := eventstore.NoStream()
	switch {
	case c.anyVersion:
		expected = eventstore.Any()
	case c.version > 0:
		expected = eventstore.Exactly(c.version)
	}
	evs := make([]eventstore.NewEvent, len(c.events))
	for i, e := range c.events {
		evs[i] = eventstore.NewEvent{Type: e.EventType(), Data: e}
	}
	if a.CorrelationID == uuid.Nil {
		a.CorrelationID = uuid.Must(uuid.NewV7())
	}
	cmd := commandID(a, o.IdempotencyKey)
	if c.commandID != uuid.Nil {
		cmd = c.commandID
	}
	return eventstore.Append{
		Stream: c.stream, TenantID: c.tenant, Expected: expected,
		CommandID: cmd, RequestHash: o.RequestHash, CausationID: c.causation,
		ActorID: a.UserID, CorrelationID: a.CorrelationID, Metadata: a.Metadata, Events: evs,
	}, nil
}

// record appends one audit event to a fresh stream (a failed sign-in, a
// denied request): facts with no aggregate to belong to.
func (h *Handler) record(ctx context.Context, a Actor, tenant uuid.UUID, e domain.Event) error {
	st, err := eventstore.NewStreamID(domain.StreamAuth, uuid.Must(uuid.NewV7()))
	if err != nil {
		return err
	}
	_, err = h.store.Append(ctx, eventstore.Append{
		Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
		ActorID: a.UserID, CorrelationID: a.CorrelationID, Metadata: a.Metadata,
		Events: []eventstore.NewEvent{{Type: e.EventType(), Data: e}},
	})
	if err != nil {
		return fmt.Errorf("record %s: %w", e.EventType(), err)
	}
	return nil
}
