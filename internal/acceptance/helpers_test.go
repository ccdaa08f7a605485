// Package acceptance_test checks issue 4 (identity and access) over real HTTP
// against the real stack: PostgreSQL, embedded NATS, relay, projectors and the
// API, booted by internal/stacktest. Each test function starts its own stack.
package acceptance_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// strongPassword satisfies auth.ValidatePassword.
const strongPassword = "correct horse battery staple 42"

// wantProblem asserts an application/problem+json answer with status and
// code, and returns the decoded document.
func wantProblem(t *testing.T, r stacktest.Response, status int, code string) map[string]any {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%s %s: Content-Type %q, want application/problem+json", r.Request.Method, r.Request.URL.Path, ct)
	}
	p := r.Problem(t)
	if p["code"] != code {
		t.Fatalf("%s %s: code %v, want %q: %s", r.Request.Method, r.Request.URL.Path, p["code"], code, r.Body)
	}
	if int(p["status"].(float64)) != status {
		t.Fatalf("problem status %v, want %d", p["status"], status)
	}
	return p
}

// wantStatus asserts a status code.
func wantStatus(t *testing.T, r stacktest.Response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.Body)
	}
}

// fieldErrors returns the problem's errors member.
func fieldErrors(t *testing.T, p map[string]any) map[string]any {
	t.Helper()
	e, ok := p["errors"].(map[string]any)
	if !ok {
		t.Fatalf("problem has no errors member: %v", p)
	}
	return e
}

// db is a superuser connection to the stack's database: it reads events of
// every tenant, unlike the service role.
type db struct {
	conn *pgx.Conn
}

func openDB(t *testing.T, s *stacktest.Stack) db { return db{conn: s.DB.AdminConn(t)} }

// count runs a SELECT count(*) … query.
func (d db) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := d.conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (d db) events(t *testing.T) int {
	t.Helper()
	return d.count(t, `SELECT count(*) FROM events`)
}

func (d db) tenantEvents(t *testing.T, tenant uuid.UUID) int {
	t.Helper()
	return d.count(t, `SELECT count(*) FROM events WHERE tenant_id = $1`, tenant)
}

// claimsOf reads a token's claims without verifying it (the test issued it).
func claimsOf(t *testing.T, token string) *auth.Claims {
	t.Helper()
	c := &auth.Claims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, c); err != nil {
		t.Fatalf("parse token: %v", err)
	}
	return c
}

func sessionOf(t *testing.T, token string) uuid.UUID {
	t.Helper()
	return claimsOf(t, token).Session()
}

func b64(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// accepted is a command's 202 answer.
type accepted struct {
	ID            uuid.UUID `json:"id"`
	StreamVersion int64     `json:"stream_version"`
	Position      int64     `json:"position"`
}

// user is a users read-model answer.
type user struct {
	ID       uuid.UUID `json:"id"`
	TenantID uuid.UUID `json:"tenant_id"`
	Email    string    `json:"email"`
	Roles    []string  `json:"roles"`
	Status   string    `json:"status"`
	Version  int64     `json:"version"`
}

type userList struct {
	Items      []user  `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// waitUser waits until the users read model shows id in tenant (through a
// platform administrator's token) with the given status.
func waitUser(t *testing.T, s *stacktest.Stack, token string, tenant, id uuid.UUID, status string) user {
	t.Helper()
	var u user
	stacktest.Eventually(t, e2eWait, "user "+id.String()+" "+status, func() bool {
		u = user{}
		r := s.Do(t, token, http.MethodGet, "/v1/users/"+id.String()+"?tenant_id="+tenant.String(), nil, &u)
		return r.StatusCode == http.StatusOK && u.Status == status
	})
	return u
}

func newEmail() string { return "a" + uuid.NewString()[:13] + "@example.com" }

// e2eWait bounds waits for the projectors to catch up.
const e2eWait = 10 * time.Second

func decodeJSON(resp *http.Response, out any) error {
	return json.NewDecoder(resp.Body).Decode(out)
}

// revealedWhere returns the events cond (SQL over columns that hold nothing
// personal) selects, as the system's readers see them: personal values are
// sealed in the table (docs/PRIVACY.md), so what they say is read back
// through the store's revealer, one event at a time.
func revealedWhere(t *testing.T, s *stacktest.Stack, d db, cond string, args ...any) []eventlog.Event {
	t.Helper()
	ctx := context.Background()
	rows, err := d.conn.Query(ctx, `SELECT tenant_id, global_position FROM events WHERE `+cond+` ORDER BY global_position`, args...)
	if err != nil {
		t.Fatalf("%s: %v", cond, err)
	}
	type at struct {
		tenant uuid.UUID
		pos    int64
	}
	var ats []at
	for rows.Next() {
		var a at
		if err := rows.Scan(&a.tenant, &a.pos); err != nil {
			t.Fatal(err)
		}
		ats = append(ats, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := make([]eventlog.Event, 0, len(ats))
	for _, a := range ats {
		// The store reads only below the cluster-wide transaction watermark:
		// an event just committed becomes readable once every transaction
		// older than it (another package's too) has ended.
		var evs []eventlog.Event
		var err error
		stacktest.Eventually(t, 30*time.Second, fmt.Sprintf("event at %d readable", a.pos), func() bool {
			evs, err = s.Store.AuditPage(ctx, tenantdb.Tenant(a.tenant), eventstore.AuditFilter{TenantID: a.tenant, After: a.pos - 1}, 1)
			return err != nil || len(evs) > 0
		})
		if err != nil || len(evs) != 1 || evs[0].Position.GlobalPosition != a.pos {
			t.Fatalf("event at %d: %v %v", a.pos, evs, err)
		}
		out = append(out, evs[0])
	}
	return out
}
