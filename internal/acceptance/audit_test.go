package acceptance_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// auditEvent is one event of GET /v1/audit.
type auditEvent struct {
	Position      int64           `json:"position"`
	EventID       uuid.UUID       `json:"event_id"`
	StreamID      string          `json:"stream_id"`
	StreamVersion int64           `json:"stream_version"`
	Type          string          `json:"type"`
	TenantID      uuid.UUID       `json:"tenant_id"`
	ActorID       *uuid.UUID      `json:"actor_id"`
	CorrelationID uuid.UUID       `json:"correlation_id"`
	CausationID   *uuid.UUID      `json:"causation_id"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Data          json.RawMessage `json:"data"`
	Metadata      map[string]any  `json:"metadata"`
}

// auditAll follows next_cursor from the first page of query to the last.
func auditAll(t *testing.T, s *stacktest.Stack, token, query string) []auditEvent {
	t.Helper()
	var all []auditEvent
	path := "/v1/audit?" + query
	for {
		var page struct {
			Items      []auditEvent `json:"items"`
			NextCursor *string      `json:"next_cursor"`
		}
		wantStatus(t, s.Do(t, token, http.MethodGet, path, nil, &page), http.StatusOK)
		all = append(all, page.Items...)
		if page.NextCursor == nil {
			return all
		}
		path = "/v1/audit?" + query + "&cursor=" + url.QueryEscape(*page.NextCursor)
	}
}

// auditExport reads the NDJSON export of query.
func auditExport(t *testing.T, s *stacktest.Stack, token, query string) []auditEvent {
	t.Helper()
	r := s.Do(t, token, http.MethodGet, "/v1/audit?"+query, nil, nil, "Accept", "application/x-ndjson")
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("export Content-Type %q", ct)
	}
	var out []auditEvent
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func positions(es []auditEvent) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Position
	}
	return out
}

// TestAudit: GET /v1/audit answers the caller's tenant's events only, in
// position order, filtered and paginated, and streams them as NDJSON; only a
// platform administrator may name another tenant.
func TestAudit(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	a, b := s.Tenant(t, "audited-a"), s.Tenant(t, "audited-b")
	adminA, adminB := s.User(t, a, auth.RoleTenantAdmin), s.User(t, b, auth.RoleTenantAdmin)
	viewerA := s.User(t, a, auth.RoleViewer)
	pa := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)
	tokA, tokB, tokV, tokP := s.Login(t, adminA).AccessToken, s.Login(t, adminB).AccessToken, s.Login(t, viewerA).AccessToken, s.Login(t, pa).AccessToken
	start := time.Now()
	wantStatus(t, s.Do(t, tokA, http.MethodPut, "/v1/users/"+viewerA.ID.String()+"/roles", map[string]any{"roles": []string{auth.RoleOperator}}, nil), http.StatusAccepted)
	_ = tokB

	// Pages may trail an append still committing elsewhere: wait for all.
	total := d.tenantEvents(t, a)
	var all []auditEvent
	stacktest.Eventually(t, e2eWait, "every event of A listed", func() bool {
		all = auditAll(t, s, tokA, "limit=3")
		return len(all) == total
	})
	for i, e := range all {
		if e.TenantID != a {
			t.Fatalf("event of tenant %s in A's audit: %+v", e.TenantID, e)
		}
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("not in position order: %v", positions(all))
		}
	}
	one := auditAll(t, s, tokA, "limit=200")
	if len(one) != total || positions(one)[total-1] != positions(all)[total-1] {
		t.Fatalf("one page %v, three at a time %v", positions(one), positions(all))
	}
	export := auditExport(t, s, tokA, "")
	if len(export) != total || !bytes.Equal(must(json.Marshal(export)), must(json.Marshal(all))) {
		t.Fatalf("export differs from the pages: %d events, want %d", len(export), total)
	}

	// Filters.
	count := func(query string) int { t.Helper(); return len(auditAll(t, s, tokA, query)) }
	if n := count("type=user_roles_changed"); n != 1 {
		t.Fatalf("type=user_roles_changed: %d", n)
	}
	if n, want := count("type=user_created&type=tenant_created"), d.count(t, `SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type IN ('user_created', 'tenant_created')`, a); n != want || n < 3 {
		t.Fatalf("two types: %d, want %d", n, want)
	}
	if n := count("type=user_created,tenant_created"); n != d.count(t, `SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type IN ('user_created', 'tenant_created')`, a) {
		t.Fatalf("comma-separated types: %d", n)
	}
	stream := "user-" + viewerA.ID.String()
	if n, want := count("stream_id="+stream), d.count(t, `SELECT count(*) FROM events WHERE stream_id = $1`, stream); n != want || n != 2 {
		t.Fatalf("stream_id: %d, want %d", n, want)
	}
	if n, want := count("actor_id="+adminA.ID.String()), d.count(t, `SELECT count(*) FROM events WHERE tenant_id = $1 AND actor_id = $2`, a, adminA.ID); n != want || n == 0 {
		t.Fatalf("actor_id: %d, want %d", n, want)
	}
	since := url.QueryEscape(start.Format(time.RFC3339Nano))
	if n := count("since=" + since + "&type=user_roles_changed"); n != 1 {
		t.Fatalf("since: %d", n)
	}
	if n := count("until=" + since + "&type=user_roles_changed"); n != 0 {
		t.Fatalf("until before the change: %d", n)
	}
	// The earliest instant RFC 3339 can write is a bound before every
	// event, not "no bound".
	if n := count("until=0001-01-01T00:00:00Z"); n != 0 {
		t.Fatalf("until the year 1: %d events", n)
	}
	if n := len(auditExport(t, s, tokA, "type=user_roles_changed&since="+since)); n != 1 {
		t.Fatalf("filtered export: %d", n)
	}

	// Tenants: A's administrator cannot name B; a platform administrator can.
	wantProblem(t, s.Do(t, tokA, http.MethodGet, "/v1/audit?tenant_id="+b.String(), nil, nil), http.StatusNotFound, "not_found")
	wantProblem(t, s.Do(t, tokA, http.MethodGet, "/v1/audit?tenant_id="+b.String(), nil, nil, "Accept", "application/x-ndjson"), http.StatusNotFound, "not_found")
	var ofB []auditEvent
	stacktest.Eventually(t, e2eWait, "every event of B listed", func() bool {
		ofB = auditAll(t, s, tokP, "tenant_id="+b.String())
		return len(ofB) == d.tenantEvents(t, b)
	})
	for _, e := range append(ofB, auditExport(t, s, tokP, "tenant_id="+b.String())...) {
		if e.TenantID != b {
			t.Fatalf("event of %s in B's audit", e.TenantID)
		}
	}
	for _, e := range auditAll(t, s, tokP, "") {
		if e.TenantID != domain.PlatformTenant {
			t.Fatalf("the platform administrator's own audit holds %s's event", e.TenantID)
		}
	}

	// Permission and bad filters.
	wantProblem(t, s.Do(t, tokV, http.MethodGet, "/v1/audit", nil, nil), http.StatusForbidden, "forbidden")
	for query, field := range map[string]string{
		"stream_id=nope":   "stream_id",
		"type=Not+A+Type":  "type",
		"type=":            "type",
		"actor_id=42":      "actor_id",
		"since=yesterday":  "since",
		"until=2024-01-01": "until",
		"limit=0":          "limit",
		"cursor=forged":    "cursor",
		"tenant_id=x":      "tenant_id",
		"since=2024-02-01T00:00:00Z&until=2024-01-01T00:00:00Z": "until",
	} {
		p := wantProblem(t, s.Do(t, tokA, http.MethodGet, "/v1/audit?"+query, nil, nil), http.StatusBadRequest, "validation_failed")
		if fieldErrors(t, p)[field] == nil {
			t.Errorf("%s: the problem does not name %s: %v", query, field, p)
		}
		if !strings.Contains(query, "limit") && !strings.Contains(query, "cursor") {
			wantProblem(t, s.Do(t, tokA, http.MethodGet, "/v1/audit?"+query, nil, nil, "Accept", "application/x-ndjson"), http.StatusBadRequest, "validation_failed")
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
