package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tableDef is what rebuild must carry over from a live read-model table to
// its fresh copy besides what CREATE TABLE ... (LIKE ... INCLUDING ALL) copies
// (columns, defaults, constraints, indexes, identity, comments on columns):
// row-level security, policies, grants and the table comment.
type tableDef struct {
	name          string
	rowSecurity   bool
	forceSecurity bool
	comment       *string
	policies      []policyDef
	grants        []grantDef
}

type policyDef struct {
	name, permissive, cmd string
	roles                 []string
	qual, withCheck       *string
}

type grantDef struct {
	grantee, privilege string
	column             *string // nil: a table privilege
	grantable          bool
}

// describeTable reads t's definition in public. The caller must be t's owner:
// the fresh copy is created by, and owned by, the same role. Triggers and
// foreign keys are refused rather than silently dropped: LIKE does not copy
// them, and read models do not need them.
func describeTable(ctx context.Context, tx pgx.Tx, t string) (tableDef, error) {
	d := tableDef{name: t}
	var owner, current string
	var triggers, foreignKeys int
	err := tx.QueryRow(ctx, `SELECT pg_get_userbyid(c.relowner), current_user, c.relrowsecurity, c.relforcerowsecurity,
			obj_description(c.oid, 'pg_class'),
			(SELECT count(*) FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal),
			(SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND (conrelid = c.oid OR confrelid = c.oid))
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relname = $1 AND c.relkind IN ('r', 'p')`, t).
		Scan(&owner, &current, &d.rowSecurity, &d.forceSecurity, &d.comment, &triggers, &foreignKeys)
	if err == pgx.ErrNoRows {
		return d, fmt.Errorf("%w: public.%s does not exist", ErrUnsupportedTable, t)
	}
	if err != nil {
		return d, fmt.Errorf("describe %s: %w", t, err)
	}
	switch {
	case owner != current:
		return d, fmt.Errorf("%w: public.%s is owned by %s, rebuild runs as %s", ErrNotOwner, t, owner, current)
	case triggers > 0:
		return d, fmt.Errorf("%w: public.%s has triggers", ErrUnsupportedTable, t)
	case foreignKeys > 0:
		return d, fmt.Errorf("%w: public.%s has foreign keys", ErrUnsupportedTable, t)
	}

	rows, err := tx.Query(ctx, `SELECT policyname, permissive, cmd, roles::text[], qual, with_check
		FROM pg_policies WHERE schemaname = 'public' AND tablename = $1 ORDER BY policyname`, t)
	if err != nil {
		return d, fmt.Errorf("describe %s policies: %w", t, err)
	}
	d.policies, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (policyDef, error) {
		var p policyDef
		return p, r.Scan(&p.name, &p.permissive, &p.cmd, &p.roles, &p.qual, &p.withCheck)
	})
	if err != nil {
		return d, fmt.Errorf("describe %s policies: %w", t, err)
	}

	// aclexplode lists what relacl and attacl grant; grantee 0 is PUBLIC. The
	// owner's own privileges are implicit and not copied.
	rows, err = tx.Query(ctx, `SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type, NULL::text, a.is_grantable
		FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
		WHERE c.oid = format('public.%I', $1::text)::regclass AND a.grantee <> c.relowner
		UNION ALL
		SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type, att.attname::text, a.is_grantable
		FROM pg_attribute att CROSS JOIN LATERAL aclexplode(att.attacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
		JOIN pg_class c ON c.oid = att.attrelid
		WHERE att.attrelid = format('public.%I', $1::text)::regclass AND att.attnum > 0 AND NOT att.attisdropped
		  AND a.grantee <> c.relowner
		ORDER BY 1, 2, 3`, t)
	if err != nil {
		return d, fmt.Errorf("describe %s grants: %w", t, err)
	}
	d.grants, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (grantDef, error) {
		var g grantDef
		return g, r.Scan(&g.grantee, &g.privilege, &g.column, &g.grantable)
	})
	if err != nil {
		return d, fmt.Errorf("describe %s grants: %w", t, err)
	}
	return d, nil
}

// copyStatements are the statements that create d's fresh copy in schema,
// with the same row-level security, policies and grants as the original.
func (d tableDef) copyStatements(schema string) []string {
	src := pgx.Identifier{"public", d.name}.Sanitize()
	dst := pgx.Identifier{schema, d.name}.Sanitize()
	out := []string{fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)", dst, src)}
	if d.comment != nil {
		out = append(out, fmt.Sprintf("COMMENT ON TABLE %s IS %s", dst, quoteLiteral(*d.comment)))
	}
	if d.rowSecurity {
		out = append(out, fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", dst))
	}
	if d.forceSecurity {
		out = append(out, fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", dst))
	}
	for _, p := range d.policies {
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE POLICY %s ON %s AS %s FOR %s TO %s", pgx.Identifier{p.name}.Sanitize(), dst,
			p.permissive, p.cmd, roleList(p.roles))
		if p.qual != nil {
			fmt.Fprintf(&b, " USING (%s)", *p.qual)
		}
		if p.withCheck != nil {
			fmt.Fprintf(&b, " WITH CHECK (%s)", *p.withCheck)
		}
		out = append(out, b.String())
	}
	for _, g := range d.grants {
		col := ""
		if g.column != nil {
			col = " (" + pgx.Identifier{*g.column}.Sanitize() + ")"
		}
		stmt := fmt.Sprintf("GRANT %s%s ON %s TO %s", g.privilege, col, dst, roleName(g.grantee))
		if g.grantable {
			stmt += " WITH GRANT OPTION"
		}
		out = append(out, stmt)
	}
	return out
}

func roleList(roles []string) string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = roleName(r)
	}
	return strings.Join(out, ", ")
}

// roleName quotes a role for DDL; PUBLIC is a keyword, not a role.
func roleName(r string) string {
	if strings.EqualFold(r, "public") {
		return "PUBLIC"
	}
	return pgx.Identifier{r}.Sanitize()
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
