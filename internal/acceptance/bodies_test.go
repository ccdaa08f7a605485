package acceptance_test

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestRequestBodies: oversized, too deeply nested, non-UTF-8 and non-JSON
// bodies are refused with the right problem on every route that takes a
// body, and nothing is written.
func TestRequestBodies(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "bodies")
	admin := s.User(t, tenant, auth.RoleTenantAdmin)
	victim := s.User(t, tenant, auth.RoleViewer)
	pa := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)
	adminTok, paTok := s.Login(t, admin).AccessToken, s.Login(t, pa).AccessToken

	// Each route, with the name of a string field and of an array field (or
	// "" when it has none) to carry the payloads.
	routes := []struct {
		token, method, path, str, arr string
	}{
		{"", http.MethodPost, "/v1/auth/login", "email", ""},
		{"", http.MethodPost, "/v1/auth/refresh", "refresh_token", ""},
		{adminTok, http.MethodPost, "/v1/users", "email", "roles"},
		{adminTok, http.MethodPut, "/v1/users/" + victim.ID.String() + "/roles", "", "roles"},
		{adminTok, http.MethodPut, "/v1/users/" + victim.ID.String() + "/password", "password", ""},
		{adminTok, http.MethodPost, "/v1/users/" + victim.ID.String() + "/disable", "", ""},
		{paTok, http.MethodPost, "/v1/tenants", "name", ""},
		{paTok, http.MethodPatch, "/v1/tenants/" + tenant.String(), "name", ""},
		{paTok, http.MethodPost, "/v1/tenants/" + tenant.String() + "/suspend", "", ""},
	}
	// field returns a one-field JSON object, using a field the route knows
	// when it has one so that only the payload itself is at fault.
	field := func(name, value string) string {
		if name == "" {
			name = "x"
		}
		return `{"` + name + `":` + value + `}`
	}

	before := d.events(t)
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			// Over 1 MiB, with a Content-Length…
			big := field(rt.str, `"`+strings.Repeat("a", 1<<20)+`"`)
			wantProblem(t, s.Do(t, rt.token, rt.method, rt.path, big, nil), http.StatusRequestEntityTooLarge, "payload_too_large")
			// …and streamed without one.
			wantProblem(t, chunked(t, s, rt.token, rt.method, rt.path, big), http.StatusRequestEntityTooLarge, "payload_too_large")

			// 100 levels deep, inside a field the route accepts: refused for
			// its depth, not for its type.
			if f := cmp.Or(rt.arr, rt.str); f != "" {
				deep := field(f, strings.Repeat("[", 100)+strings.Repeat("]", 100))
				p := wantProblem(t, s.Do(t, rt.token, rt.method, rt.path, deep, nil), http.StatusBadRequest, "validation_failed")
				if !strings.Contains(fmt.Sprint(p["detail"]), "deep") {
					t.Fatalf("deep nesting refused for another reason: %v", p["detail"])
				}
			}
			deepObj := field("", strings.Repeat(`{"a":`, 100)+"1"+strings.Repeat("}", 100))
			wantProblem(t, s.Do(t, rt.token, rt.method, rt.path, deepObj, nil), http.StatusBadRequest, "validation_failed")
			wantProblem(t, s.Do(t, rt.token, rt.method, rt.path, strings.Repeat("[", 100)+strings.Repeat("]", 100), nil), http.StatusBadRequest, "validation_failed")

			// Invalid UTF-8 inside a string value.
			wantProblem(t, s.Do(t, rt.token, rt.method, rt.path, []byte(field(rt.str, "\"a\xff\xfeb\"")), nil), http.StatusBadRequest, "validation_failed")

			// Not JSON at all, or JSON with trailing data.
			for _, b := range []string{`{"a":`, `{} {}`, `{}x`, `null`, `"text"`} {
				r := s.Do(t, rt.token, rt.method, rt.path, b, nil)
				if r.StatusCode != http.StatusBadRequest {
					t.Fatalf("body %q: status %d, want 400: %s", b, r.StatusCode, r.Body)
				}
				wantProblem(t, r, http.StatusBadRequest, "validation_failed")
			}

			// Other media types.
			for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "application/jsonx"} {
				r := s.Do(t, rt.token, rt.method, rt.path, `{}`, nil, "Content-Type", ct)
				wantProblem(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
			}
		})
	}
	// A login whose email is not valid text is refused like any other body,
	// but it is still a failed sign-in and recorded (issue 21): exactly the
	// one above with invalid UTF-8.
	if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'login_failed'`); n != 1 {
		t.Fatalf("%d login_failed events, want 1 (the login with invalid UTF-8 in its email)", n)
	}
	if after := d.events(t); after != before+1 {
		t.Fatalf("%d events written by refused requests, want only that login_failed", after-before)
	}
}

// chunked sends body with Transfer-Encoding: chunked (no Content-Length), so
// the server must count while it reads.
func chunked(t *testing.T, s *stacktest.Stack, token, method, path, body string) stacktest.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, io.NopCloser(bytes.NewReader([]byte(body))))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}
