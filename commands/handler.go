// Package commands executes AccountDB's commands: load the aggregate from its
// stream, let it decide, append the resulting events with the version it was
// loaded at. Cross-aggregate rules (unique emails, grantable roles, the last
// tenant admin, quotas) are checked here, inside the append's transaction
// where they need one.
package commands

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"golang.org/x/sync/singleflight"
	"log/slog"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/vault"
	"github.com/google/uuid"
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
	Metadata      eventlog.Metadata
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
	store     EventStore
	tables    Tables
	passwords auth.PasswordHasher
	sessions  SessionConfig
	vault     *vault.Vault
	devHTTP   bool         // clusters may be registered at http:// loopback URLs (dev)
	creates   createGroups // creates queued per tenant or pool, committed in groups (create_group.go)
	poolCache poolCache    // each pool as its committer last knew it (linked.go)
	tenants   tenantCache  // tenants as last read for a create (tenant_cache.go)
	known     knownTenants // tenants' usage as the last create group left them (create_known.go)
	offers    offerGuesses // the cluster each template was last offered on (create_pool_ahead.go)
	// clusterReads shares one read of a cluster among the creates that
	// need its default pool at once (vm_network.go).
	clusterReads singleflight.Group
	log          *slog.Logger
	now          func() time.Time
	usage        *tokenUsage // API token uses not yet written
	oidc         *oidcClients
	sealer       Sealer       // see WithSealer
	forgetter    KeyForgetter // see WithKeyForgetter
}

// New returns a handler on the event log store and the side tables beside
// it (commands/pgstore.New(store) for PostgreSQL's). tables may be nil for
// a handler that only loads aggregates and appends events: the commands
// that need side tables then fail with ErrNoTables.
func New(store EventStore, tables Tables, passwords auth.PasswordHasher, sessions SessionConfig) *Handler {
	return &Handler{store: store, tables: tables, passwords: passwords, sessions: sessions.withDefaults(), log: slog.Default(), now: time.Now,
		usage: &tokenUsage{}, oidc: &oidcClients{http: &http.Client{Timeout: 10 * time.Second}}}
}

// ErrNoTables: the command needs side tables and the handler has none.
var ErrNoTables = errors.New("commands: no side tables configured")

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
	stream  eventlog.StreamID
	version int64 // the version the decision was made at
	// anyVersion appends whatever the stream's version: for streams that only
	// accumulate facts (a session's refreshes), where no decision reads state.
	anyVersion bool
	events     []domain.Event
	// side, when set, writes rows outside the event store in the same
	// transaction, after the events (see Tables.AppendWith).
	side func(ctx context.Context, tx TxTables) error
	// delta is the change's effect on the tenant's usage, which quota must
	// hold (side applies it; a create group applies many at once).
	delta Usage
	quota domain.Quota
	// lockTenant serialises this change with other changes of the tenant that
	// also set it (the last-admin rule reads across users).
	lockTenant bool
	// causation, when set, is the event that caused this change (a result's
	// request); commandID, when set, makes it idempotent without a client key.
	causation, commandID uuid.UUID
	// linked are changes to other streams committed in the same
	// transaction, after side (a pool's allocation, see linked.go).
	linked []change
	// retries, when set, replaces maxConflictRetries: changes that contend
	// on a shared stream (a pool) expect more conflicts.
	retries int
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
			if attempt < cmp.Or(c.retries, maxConflictRetries) {
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
	ar, found, err := h.store.RecordedCommand(ctx, commandID(a, o.IdempotencyKey), o.RequestHash)
	if err != nil || !found {
		return Result{}, false, err
	}
	return Result{ID: ar.Stream.ID, StreamVersion: ar.LastVersion, Position: ar.LastPosition, Replayed: true}, true, nil
}

func (h *Handler) commit(ctx context.Context, a Actor, o Options, c change) (Result, error) {
	res := Result{ID: c.stream.ID, StreamVersion: c.version}
	if len(c.events) == 0 {
		return res, nil // nothing changed: answer with the current version
	}
	app, err := h.newAppend(ctx, a, o, c)
	if err != nil {
		return Result{}, err
	}
	var ar eventstore.AppendResult
	switch {
	case len(c.linked) > 0:
		ar, err = h.appendLinked(ctx, a, o, app, c)
	case c.side == nil && !c.lockTenant:
		ar, err = h.store.Append(ctx, app)
	default:
		ar, err = h.appendWithSide(ctx, app, c)
	}
	if err != nil {
		return Result{}, err
	}
	return Result{ID: c.stream.ID, StreamVersion: ar.LastVersion, Position: ar.LastPosition, Replayed: ar.Replayed}, nil
}

func (h *Handler) appendWithSide(ctx context.Context, app eventstore.Append, c change) (eventstore.AppendResult, error) {
	if h.tables == nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", app.Stream, ErrNoTables)
	}
	write := c.side
	if write == nil {
		write = func(context.Context, TxTables) error { return nil }
	}
	return h.tables.AppendWith(ctx, app, c.lockTenant, write)
}

func (h *Handler) newAppend(ctx context.Context, a Actor, o Options, c change) (eventstore.Append, error) {
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
	app := eventstore.Append{
		Stream: c.stream, TenantID: c.tenant, Expected: expected,
		CommandID: cmd, RequestHash: o.RequestHash, CausationID: c.causation,
		ActorID: a.UserID, CorrelationID: a.CorrelationID, Metadata: a.Metadata, Events: evs,
	}
	return app, h.seal(ctx, &app)
}

// record appends one audit event to a fresh stream (a failed sign-in, a
// denied request): facts with no aggregate to belong to.
func (h *Handler) record(ctx context.Context, a Actor, tenant uuid.UUID, e domain.Event) error {
	st, err := eventlog.NewStreamID(domain.StreamAuth, uuid.Must(uuid.NewV7()))
	if err != nil {
		return err
	}
	app := eventstore.Append{
		Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
		ActorID: a.UserID, CorrelationID: a.CorrelationID, Metadata: a.Metadata,
		Events: []eventstore.NewEvent{{Type: e.EventType(), Data: e}},
	}
	if err := h.seal(ctx, &app); err != nil {
		return fmt.Errorf("record %s: %w", e.EventType(), err)
	}
	_, err = h.store.Append(ctx, app)
	if err != nil {
		return fmt.Errorf("record %s: %w", e.EventType(), err)
	}
	return nil
}
