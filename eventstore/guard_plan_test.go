package eventstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestStreamGuardUsesThePrimaryKey: the guard of an append to an existing
// stream finds its row by stream id, whatever the statistics say. Written
// with equalities on tenant and type it matched streams_tenant_type too, and
// on a table never analyzed the planner took that index and read every
// stream of the tenant to update one (issue 16). Custom and generic plans
// alike, for both forms of expected version that update.
func TestStreamGuardUsesThePrimaryKey(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenant := uuid.New()
	admin := db.AdminConn(t)
	if _, err := admin.Exec(ctx, `INSERT INTO streams (stream_id, stream_type, tenant_id, version)
		SELECT 'vm-' || gen_random_uuid(), 'vm', $1, 5 FROM generate_series(1, 3000)`, tenant); err != nil {
		t.Fatal(err)
	}
	st := stream(t)
	if _, err := admin.Exec(ctx, `INSERT INTO streams (stream_id, stream_type, tenant_id, version) VALUES ($1, 'vm', $2, 5)`, st.String(), tenant); err != nil {
		t.Fatal(err)
	}
	for name, expected := range map[string]eventstore.ExpectedVersion{"exact": eventstore.Exactly(5), "exists": eventstore.StreamExists()} {
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true), set_config('plan_cache_mode', $2, true)`, tenant.String(), mode); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `PREPARE guard_plan (text, text, uuid, bigint, bigint, uuid, uuid, jsonb, uuid[], text[], int[], text[], uuid[], uuid, bytea) AS `+
					eventstore.AppendSQL(expected)); err != nil {
					return err
				}
				// EXPLAIN EXECUTE takes no parameters: the values are literals
				// (a stream id and a uuid, nothing to quote).
				rows, err := tx.Query(ctx, `EXPLAIN EXECUTE guard_plan('`+st.String()+`', 'vm', '`+tenant.String()+`', 1, 5, NULL,
					gen_random_uuid(), '{}', ARRAY[gen_random_uuid()], ARRAY['vm_started'], ARRAY[1], ARRAY['{}'], ARRAY[NULL::uuid], NULL, NULL)`)
				if err != nil {
					return err
				}
				lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					return err
				}
				plan := strings.Join(lines, "\n")
				if !strings.Contains(plan, "streams_pkey") || strings.Contains(plan, "streams_tenant_type") {
					t.Errorf("%s, %s: the guard does not find its row by primary key:\n%s", name, mode, plan)
				}
				_, err = tx.Exec(ctx, `DEALLOCATE guard_plan`)
				return err
			})
			if err != nil {
				t.Fatal(name, mode, err)
			}
		}
	}
}
