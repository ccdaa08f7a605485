package acceptance_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

type verifyAnswer struct {
	OK             bool  `json:"ok"`
	StreamsChecked int64 `json:"streams_checked"`
	EventsChecked  int64 `json:"events_checked"`
	Broken         []struct {
		StreamID      string `json:"stream_id"`
		StreamVersion int64  `json:"stream_version"`
		Position      int64  `json:"position"`
		Reason        string `json:"reason"`
	} `json:"broken"`
}

// GET /v1/audit/verify checks the caller's tenant's chains only, and names
// the event an attacker with database rights edited.
func TestAuditVerifyReportsTheEditedEvent(t *testing.T) {
	ctx := context.Background()
	s := stacktest.Start(t, stacktest.Options{})
	tenantA, tenantB := s.Tenant(t, "Verify A"), s.Tenant(t, "Verify B")
	admin := s.Login(t, s.User(t, tenantA, auth.RoleTenantAdmin)).AccessToken
	auditor := s.Login(t, s.User(t, tenantA, auth.RoleAuditor)).AccessToken
	operator := s.Login(t, s.User(t, tenantA, auth.RoleOperator)).AccessToken
	s.User(t, tenantB, auth.RoleTenantAdmin)

	var rep verifyAnswer
	wantStatus(t, s.Do(t, auditor, http.MethodGet, "/v1/audit/verify", nil, &rep), http.StatusOK)
	if !rep.OK || rep.StreamsChecked < 4 || rep.EventsChecked < rep.StreamsChecked || len(rep.Broken) != 0 {
		t.Fatalf("clean log: %+v", rep)
	}
	wantProblem(t, s.Do(t, operator, http.MethodGet, "/v1/audit/verify", nil, nil), http.StatusForbidden, "forbidden")
	wantProblem(t, s.Do(t, admin, http.MethodGet, "/v1/audit/verify?stream_id=nope", nil, nil), http.StatusBadRequest, "validation_failed")

	db := s.DB.AdminConn(t)
	var mine, theirs string
	var pos int64
	if err := db.QueryRow(ctx, `SELECT stream_id, global_position FROM events WHERE tenant_id = $1
		ORDER BY global_position LIMIT 1`, tenantA).Scan(&mine, &pos); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT stream_id FROM events WHERE tenant_id = $1 LIMIT 1`, tenantB).Scan(&theirs); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, s.Do(t, admin, http.MethodGet, "/v1/audit/verify?stream_id="+theirs, nil, nil), http.StatusNotFound, "not_found")

	if _, err := db.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_no_update_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE events SET metadata = '{"client_ip":"203.0.113.66"}' WHERE global_position = $1`, pos); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `ALTER TABLE events ENABLE TRIGGER events_no_update_delete`); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/audit/verify", "/v1/audit/verify?stream_id=" + mine} {
		rep = verifyAnswer{}
		wantStatus(t, s.Do(t, admin, http.MethodGet, path, nil, &rep), http.StatusOK)
		if rep.OK || len(rep.Broken) != 1 || rep.Broken[0].StreamID != mine || rep.Broken[0].Position != pos ||
			rep.Broken[0].Reason != "content_changed" {
			t.Fatalf("%s after tampering: %+v", path, rep)
		}
	}
	// Tenant B's log is untouched, and tenant A's break is not B's business.
	adminB := s.Login(t, s.User(t, tenantB, auth.RoleTenantAdmin)).AccessToken
	rep = verifyAnswer{}
	wantStatus(t, s.Do(t, adminB, http.MethodGet, "/v1/audit/verify", nil, &rep), http.StatusOK)
	if !rep.OK {
		t.Fatalf("tenant B: %+v", rep)
	}
}
