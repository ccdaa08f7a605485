package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
)

// FuzzCursor: a cursor that was not signed for the listing is refused with
// a 400 and never panics; one that was signed reads back as it was written,
// and only on its own listing.
func FuzzCursor(f *testing.F) {
	c := NewCursorCodec([]byte("fuzz-cursor-key-fuzz-cursor-key-"))
	good, _ := c.Encode("/v1/audit", auditCursor{Position: 42})
	for _, s := range []string{good, "", ".", "e30.", good + "x", "eyJwIjoxfQ.AAAA", good[:len(good)-2]} {
		f.Add("/v1/audit", s, int64(42))
	}
	f.Fuzz(func(t *testing.T, scope, s string, pos int64) {
		var v auditCursor
		if err := c.Decode(scope, s, &v); err != nil {
			wantBadRequest(t, []byte(s), err)
		}
		tok, err := c.Encode(scope, auditCursor{Position: pos})
		if err != nil {
			t.Fatal(err)
		}
		var back auditCursor
		if err := c.Decode(scope, tok, &back); err != nil || back.Position != pos {
			t.Fatalf("cursor %q for %d read back as %d, %v", tok, pos, back.Position, err)
		}
		if err := c.Decode(scope+"/other", tok, &back); err == nil {
			t.Fatalf("cursor %q of %q accepted by another listing", tok, scope)
		}
	})
}

// FuzzParseInstant: as_of, since and until. An accepted instant is never
// the zero time (which means "no bound") and reads back as itself.
func FuzzParseInstant(f *testing.F) {
	for _, s := range []string{"2024-05-01T12:00:00Z", "0001-01-01T00:00:00Z", "2024-05-01T12:00:00.123456789+02:00",
		"9999-12-31T23:59:59Z", "2024-05-01", "", "2024-13-01T00:00:00Z", "2024-05-01T12:00:00+24:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, err := parseInstant(s)
		if err != nil {
			return
		}
		if at.IsZero() {
			t.Fatalf("%q parsed to the zero time, which means no bound", s)
		}
		back, err := time.Parse(time.RFC3339Nano, at.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(at) {
			t.Fatalf("%q parsed to %v, which reads back as %v, %v", s, at, back, err)
		}
	})
}

// FuzzCommandHeaders: Idempotency-Key, If-Match and X-Consistency-Token.
// What is accepted is within the documented shapes; nothing panics.
func FuzzCommandHeaders(f *testing.F) {
	f.Add("key-1", `"3"`, "17")
	f.Add("", `W/"1"`, "0")
	f.Add("a b", "0", "-1")
	f.Add("\x7f", `"9223372036854775808"`, "+5")
	f.Fuzz(func(t *testing.T, key, ifMatch, token string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/vms", nil)
		r.Header["Idempotency-Key"] = []string{key}
		r.Header["If-Match"] = []string{ifMatch}
		o, err := commandOptions(r, map[string]string{"name": "x"})
		if err != nil {
			wantBadRequest(t, []byte(key+"|"+ifMatch), err)
		} else {
			if key != "" && (o.IdempotencyKey != key || len(key) > MaxIdempotencyKeyLength || len(o.RequestHash) != 32) {
				t.Fatalf("Idempotency-Key %q accepted as %q", key, o.IdempotencyKey)
			}
			for _, c := range []byte(o.IdempotencyKey) {
				if c < 0x21 || c > 0x7e {
					t.Fatalf("Idempotency-Key %q accepted with byte %#x", key, c)
				}
			}
			if ifMatch != "" && o.IfMatch < 1 {
				t.Fatalf("If-Match %q accepted as %d", ifMatch, o.IfMatch)
			}
		}
		if p, ok := parseConsistencyToken(token); ok {
			if p < 0 {
				t.Fatalf("X-Consistency-Token %q accepted as %d", token, p)
			}
			if back, _ := strconv.ParseInt(strconv.FormatInt(p, 10), 10, 64); back != p {
				t.Fatalf("X-Consistency-Token %q: %d", token, p)
			}
		}
	})
}

// FuzzRequireText: the query and header check in front of every /v1 route
// lets through only valid text, and refuses with a problem that is JSON.
func FuzzRequireText(f *testing.F) {
	for _, q := range []string{"name=%ff", "name=a%00b", "name=%c3%28", "email=a%00@x", "%ff=1", "a=1&a=%00", "name=web-1&limit=5", "x=%zz"} {
		f.Add(q, "curl/8")
	}
	f.Add("", "ua\xff")
	f.Fuzz(func(t *testing.T, rawQuery, ua string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/vms", nil)
		r.URL.RawQuery = rawQuery
		r.Header["User-Agent"] = []string{ua}
		passed := false
		w := httptest.NewRecorder()
		requireText(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed = true })).ServeHTTP(w, r)
		q, _ := url.ParseQuery(rawQuery)
		if passed {
			for k, vs := range q {
				for _, v := range append(vs, k) {
					if !domain.ValidText(v) {
						t.Fatalf("query %q passed with %q", rawQuery, v)
					}
				}
			}
			if !domain.ValidText(ua) {
				t.Fatalf("User-Agent %q passed", ua)
			}
			return
		}
		var p Problem
		if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &p) != nil || len(p.Errors) == 0 {
			t.Fatalf("query %q refused with %d %s", rawQuery, w.Code, w.Body)
		}
	})
}
