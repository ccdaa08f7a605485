package acceptance_test

import (
	"crypto/sha256"
	"net/http"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestHostileText: strings PostgreSQL cannot store (invalid UTF-8, NUL) in a
// query parameter, a header or a body are a 400 naming the field, never a
// 500, and write nothing; a login with such an email is still a failed
// sign-in, counted by the throttle and recorded.
func TestHostileText(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "hostile")
	admin := s.User(t, tenant, auth.RoleTenantAdmin)
	tok := s.Login(t, admin).AccessToken

	t.Run("query parameters", func(t *testing.T) {
		for _, c := range []struct{ path, field string }{
			{"/v1/vms?name=%ff", "name"},
			{"/v1/vms?name=a%00b", "name"},
			{"/v1/vms?name=%c3%28", "name"},
			{"/v1/vms?status=%00", "status"},
			{"/v1/users?email=a%00@x", "email"},
			{"/v1/users?email=%ff@x", "email"},
			{"/v1/events?type=a%00", "type"},
			{"/v1/audit?actor_id=%ff", "actor_id"},
			{"/v1/vms?%ff=1", "\uFFFD"},
		} {
			p := wantProblem(t, s.Do(t, tok, http.MethodGet, c.path, nil, nil), http.StatusBadRequest, "validation_failed")
			if fieldErrors(t, p)[c.field] == nil {
				t.Fatalf("GET %s: errors %v do not name %q", c.path, p["errors"], c.field)
			}
		}
	})

	// time.Parse takes these; RFC 3339 does not (found by FuzzParseInstant).
	t.Run("instants that are not RFC 3339", func(t *testing.T) {
		for _, c := range []struct{ path, field string }{
			{"/v1/audit?since=0000-01-01T0:00:00%2B24:60", "since"},
			{"/v1/audit?until=2024-05-01T12:00:00%2B24:00", "until"},
			{"/v1/users/" + admin.ID.String() + "?as_of=2024-05-01T1:00:00Z", "as_of"},
		} {
			p := wantProblem(t, s.Do(t, tok, http.MethodGet, c.path, nil, nil), http.StatusBadRequest, "validation_failed")
			if fieldErrors(t, p)[c.field] == nil {
				t.Fatalf("GET %s: errors %v do not name %q", c.path, p["errors"], c.field)
			}
		}
	})

	t.Run("headers", func(t *testing.T) {
		for _, h := range []string{"Idempotency-Key", "X-Consistency-Token", "If-Match", "User-Agent", "X-Correlation-Id"} {
			body := map[string]any{"name": "hostile-hdr", "kind": "qemu", "cores": 1, "memory_mb": 512, "disk_gb": 1, "template": "debian-12"}
			before := d.events(t)
			p := wantProblem(t, s.Do(t, tok, http.MethodPost, "/v1/vms", body, nil, h, "a\xffb"), http.StatusBadRequest, "validation_failed")
			if fieldErrors(t, p)[h] == nil {
				t.Fatalf("%s: errors %v do not name it", h, p["errors"])
			}
			if after := d.events(t); after != before {
				t.Fatalf("%s: %d events written by a refused request", h, after-before)
			}
		}
		p := wantProblem(t, s.Do(t, tok, http.MethodGet, "/v1/events", nil, nil, "Last-Event-ID", "1\xff"), http.StatusBadRequest, "validation_failed")
		if fieldErrors(t, p)["Last-Event-ID"] == nil {
			t.Fatalf("Last-Event-ID: errors %v do not name it", p["errors"])
		}
	})

	t.Run("body strings", func(t *testing.T) {
		for _, c := range []struct{ path, body, field string }{
			{"/v1/vms", `{"name":"hostile","kind":"qemu","cores":1,"memory_mb":512,"disk_gb":1,"template":"\u0000"}`, "template"},
			{"/v1/vms", `{"name":"host\u0000ile","kind":"qemu","cores":1,"memory_mb":512,"disk_gb":1,"template":"debian-12"}`, "name"},
			{"/v1/users", `{"email":"a\u0000@example.com","display_name":"x","password":"` + strongPassword + `","roles":["viewer"]}`, "email"},
			{"/v1/users", `{"email":"b@example.com","display_name":"x","password":"` + strongPassword + `","roles":["view\u0000er"]}`, "roles[0]"},
			{"/v1/users", "{\"email\":\"c@example.com\",\"display_name\":\"\xc3\x28\",\"password\":\"" + strongPassword + "\",\"roles\":[\"viewer\"]}", "display_name"},
		} {
			before := d.events(t)
			p := wantProblem(t, s.Do(t, tok, http.MethodPost, c.path, []byte(c.body), nil), http.StatusBadRequest, "validation_failed")
			if fieldErrors(t, p)[c.field] == nil {
				t.Fatalf("POST %s %s: errors %v do not name %q", c.path, c.body, p["errors"], c.field)
			}
			if after := d.events(t); after != before {
				t.Fatalf("POST %s: %d events written by a refused request", c.path, after-before)
			}
		}
	})

	t.Run("a login with a malformed email is counted and recorded", func(t *testing.T) {
		const email = "nul\x00@example.com"
		r := s.Do(t, "", http.MethodPost, "/v1/auth/login", []byte(`{"email":"nul\u0000@example.com","password":"whatever"}`), nil)
		if p := wantProblem(t, r, http.StatusBadRequest, "validation_failed"); fieldErrors(t, p)["email"] == nil {
			t.Fatalf("errors %v do not name email", p["errors"])
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'login_failed' AND tenant_id = $1
			AND data->>'email_hash' = $2`, domain.PlatformTenant, emailHash(email)); n != 1 {
			t.Fatalf("%d login_failed events for the malformed email, want 1", n)
		}
		key := sha256.Sum256([]byte("acct:" + email))
		if n := d.count(t, `SELECT coalesce(sum(failures), 0) FROM login_throttle WHERE key_hash = $1`, key[:]); n != 1 {
			t.Fatalf("the throttle counted %d failures for the malformed email, want 1", n)
		}
	})

	t.Run("a long user agent is cut on a character boundary", func(t *testing.T) {
		ua := "x" // then 2-byte runes: the 512-byte limit falls inside one
		for len(ua) < 600 {
			ua += "é"
		}
		acct := s.User(t, tenant, auth.RoleViewer)
		wantStatus(t, login(t, s, acct.Email, acct.Password, "User-Agent", ua), http.StatusOK)
	})
}
