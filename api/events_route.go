package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/accountdb/accountdb/api/feed"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// streamEvents serves GET /v1/events: the route has authenticated the
// caller and checked vm:read; the feed (package feed) does the rest. What
// the caller may see is decided here, from its principal. Each user and
// each tenant has a bounded number of streams open at once (Limits).
func (srv *server) streamEvents(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	release, ok := srv.streams.acquire(w, r, p)
	if !ok {
		return
	}
	defer release()
	// A token's stream is re-checked by the token's id and its roles
	// (streamAccess), so its audit:read is judged by those roles from the start.
	session, auditRead := p.SessionID, p.Can(auth.PermAuditRead)
	if p.TokenID != uuid.Nil {
		session, auditRead = p.TokenID, auth.HasPermission(p.Roles, auth.PermAuditRead)
	}
	err := srv.events.Serve(w, r, feed.Subscriber{Tenant: p.TenantID, User: p.UserID, Session: session,
		AuditRead: auditRead, Log: loggerFrom(r), RequestID: RequestID(r.Context())})
	if err != nil {
		WriteError(w, r, err)
	}
}

// streamAccess is the feed's re-check of a stream's session, or of its API
// token (commands.Handler.StreamRoles).
type streamAccess struct{ h *commands.Handler }

func (s streamAccess) SessionRoles(ctx context.Context, tenant, user, id uuid.UUID) ([]string, bool, error) {
	return s.h.StreamRoles(ctx, tenant, user, id)
}

// eventPositions looks up a resuming subscriber's Last-Event-ID in the
// event store, as the subscriber's tenant (feed.Positions).
type eventPositions struct{ pool *pgxpool.Pool }

func (e eventPositions) EventPosition(ctx context.Context, tenant uuid.UUID, gp int64) (eventlog.Position, bool, error) {
	// Row-level security scopes the look-up to the caller's tenant:
	// another tenant's event reads exactly like one that does not exist.
	var txid string
	err := tenantdb.ReadTx(ctx, e.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT transaction_id::text FROM events WHERE global_position = $1`, gp).Scan(&txid)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return eventlog.Position{}, false, nil
	}
	if err != nil {
		return eventlog.Position{}, false, err
	}
	t, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return eventlog.Position{}, false, err
	}
	return eventlog.Position{TransactionID: t, GlobalPosition: gp}, true, nil
}
