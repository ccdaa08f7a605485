package privacy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Plaintext personal data in the log: events recorded before encryption
// existed (an upgraded deployment) hold emails, names, addresses and agents
// as they were typed, and the insert-only, hashed log is never rewritten.
// The report says where they are, so an operator can say what an erasure
// could not reach (docs/PRIVACY.md, "Upgrading").

// PlaintextGroup counts one tenant's events of one type holding plaintext
// personal values.
type PlaintextGroup struct {
	TenantID    uuid.UUID
	EventType   string
	Events      int64
	First, Last time.Time
}

// PlaintextOfErased is one event of an erased person (on their stream, or
// acted by them) that still holds plaintext personal values.
type PlaintextOfErased struct {
	GlobalPosition int64
	TenantID       uuid.UUID
	Subject        uuid.UUID
	StreamID       string
	EventType      string
	RecordedAt     time.Time
}

// Report is the privacy report.
type Report struct {
	Groups []PlaintextGroup
	Erased []PlaintextOfErased
}

// plaintextCondition is SQL true for an events row (alias e) holding a
// personal value that is not sealed: request metadata, or a field of
// domain's table.
func plaintextCondition() string {
	clear := func(expr string) string {
		return fmt.Sprintf("(coalesce(%s, '') NOT IN ('', '%s') AND %s NOT LIKE '%s%%')", expr, domain.Erased, expr, cipherPrefix)
	}
	conds := []string{clear("e.metadata->>'client_ip'"), clear("e.metadata->>'user_agent'")}
	types := domain.PersonalEventTypes()
	slices.Sort(types)
	for _, t := range types {
		p, _ := domain.PersonalFieldsOf(t)
		var fs []string
		for _, f := range p.Fields {
			fs = append(fs, clear("e.data->>'"+f+"'"))
		}
		conds = append(conds, fmt.Sprintf("(e.event_type = '%s' AND (%s))", t, strings.Join(fs, " OR ")))
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// maxErasedRows bounds the detailed list; the groups count everything.
const maxErasedRows = 10_000

// PlaintextReport reads the report across tenants (tenant uuid.Nil) or for
// one, as the service role with the cross-tenant read policy.
func PlaintextReport(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID) (Report, error) {
	var r Report
	cond := plaintextCondition()
	err := tenantdb.ReadTx(ctx, pool, tenantdb.System(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT e.tenant_id, e.event_type, count(*), min(e.recorded_at), max(e.recorded_at)
			FROM events e WHERE ($1::uuid IS NULL OR e.tenant_id = $1) AND `+cond+`
			GROUP BY e.tenant_id, e.event_type ORDER BY e.tenant_id, e.event_type`, nullUUID(tenant))
		if err != nil {
			return err
		}
		if r.Groups, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (PlaintextGroup, error) {
			var g PlaintextGroup
			err := row.Scan(&g.TenantID, &g.EventType, &g.Events, &g.First, &g.Last)
			return g, err
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT e.global_position, e.tenant_id, s.subject_id, e.stream_id, e.event_type, e.recorded_at
			FROM erased_subjects s
			JOIN events e ON e.tenant_id = s.tenant_id AND (e.stream_id = 'user-' || s.subject_id::text OR e.actor_id = s.subject_id)
			WHERE ($1::uuid IS NULL OR s.tenant_id = $1) AND `+cond+`
			ORDER BY e.global_position LIMIT $2`, nullUUID(tenant), maxErasedRows)
		if err != nil {
			return err
		}
		r.Erased, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (PlaintextOfErased, error) {
			var p PlaintextOfErased
			err := row.Scan(&p.GlobalPosition, &p.TenantID, &p.Subject, &p.StreamID, &p.EventType, &p.RecordedAt)
			return p, err
		})
		return err
	})
	if err != nil {
		return Report{}, fmt.Errorf("privacy report: %w", err)
	}
	return r, nil
}

func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}
