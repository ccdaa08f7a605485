package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/api"
)

type position struct {
	After int `json:"after"`
}

// listRoutes serve 0..total-1 in pages; /test/other-list is a second list
// whose cursors must not be accepted by the first.
func listRoutes(total int) func(chi.Router) {
	list := func(w http.ResponseWriter, r *http.Request) {
		limit, err := api.ParseLimit(r)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		pos := position{After: -1}
		if _, err := api.CursorParam(r, &pos); err != nil {
			api.WriteError(w, r, err)
			return
		}
		var items []int
		for i := pos.After + 1; i < total && len(items) < limit; i++ {
			items = append(items, i)
		}
		next := ""
		if len(items) == limit && items[len(items)-1] < total-1 {
			if next, err = api.EncodeCursor(r, position{After: items[len(items)-1]}); err != nil {
				api.WriteError(w, r, err)
				return
			}
		}
		api.WriteList(w, items, next)
	}
	return func(r chi.Router) {
		r.Get("/test/list", list)
		r.Get("/test/other-list", list)
	}
}

func getList(t *testing.T, u string) (*http.Response, []byte, api.List[int]) {
	t.Helper()
	res, body := do(t, newRequest(t, http.MethodGet, u, "", nil))
	var l api.List[int]
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatalf("list %s: %v", body, err)
		}
	}
	return res, body, l
}

func TestListPagination(t *testing.T) {
	srv, _ := newServer(t, api.Deps{CursorKey: []byte("0123456789abcdef0123456789abcdef")}, listRoutes(120))
	res, body, l := getList(t, srv.URL+"/test/list")
	if res.StatusCode != http.StatusOK || len(l.Items) != api.DefaultLimit || l.NextCursor == nil {
		t.Fatalf("first page: %d %s", res.StatusCode, body)
	}
	var seen []int
	next := ""
	for page := 0; page < 10; page++ {
		u := srv.URL + "/test/list?limit=45"
		if next != "" {
			u += "&cursor=" + url.QueryEscape(next)
		}
		_, body, l := getList(t, u)
		seen = append(seen, l.Items...)
		if l.NextCursor == nil {
			if !strings.Contains(string(body), `"next_cursor":null`) {
				t.Fatalf("last page body %s", body)
			}
			break
		}
		next = *l.NextCursor
	}
	if len(seen) != 120 || seen[0] != 0 || seen[119] != 119 {
		t.Fatalf("walked %d items", len(seen))
	}

	// An empty list is [] with a null cursor, never null items.
	empty, _ := newServer(t, api.Deps{}, listRoutes(0))
	_, body, _ = getList(t, empty.URL+"/test/list")
	if strings.TrimSpace(string(body)) != `{"items":[],"next_cursor":null}` {
		t.Fatalf("empty list %s", body)
	}
}

func TestParseLimit(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, listRoutes(300))
	for q, want := range map[string]int{"": 50, "?limit=1": 1, "?limit=200": 200, "?limit=17": 17} {
		if _, body, l := getList(t, srv.URL+"/test/list"+q); len(l.Items) != want {
			t.Errorf("%q: %d items, want %d (%.100s)", q, len(l.Items), want, body)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?limit=-1", "?limit=abc", "?limit=", "?limit=1.5", "?limit=5&limit=6", "?limit=99999999999999999999"} {
		res, body, _ := getList(t, srv.URL+"/test/list"+q)
		if p := readProblem(t, res, body, http.StatusBadRequest, "validation_failed"); p.Errors["limit"] == "" {
			t.Errorf("%q: errors %v", q, p.Errors)
		}
	}
}

func TestCursorTampering(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	srv, _ := newServer(t, api.Deps{CursorKey: key}, listRoutes(120))
	_, _, l := getList(t, srv.URL+"/test/list?limit=10")
	good := *l.NextCursor
	payload, sig, _ := strings.Cut(good, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"after":100}`))
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	other, _ := newServer(t, api.Deps{CursorKey: []byte("another key, another deployment!")}, listRoutes(120))
	_, _, ol := getList(t, other.URL+"/test/list?limit=10")
	_, _, otherList := getList(t, srv.URL+"/test/other-list?limit=10")

	bad := map[string]string{
		"forged payload":      forged + "." + sig,
		"flipped payload":     flip(payload) + "." + sig,
		"flipped signature":   payload + "." + flip(sig),
		"no signature":        payload,
		"empty signature":     payload + ".",
		"garbage":             "not a cursor!",
		"other key":           *ol.NextCursor,
		"other list":          *otherList.NextCursor,
		"oversized":           strings.Repeat("A", 5000) + "." + sig,
		"signature only":      "." + sig,
		"unknown cursor json": "",
	}
	// A validly signed cursor of another shape is rejected too.
	codec := api.NewCursorCodec(key)
	if s, err := codec.Encode("/test/list", map[string]any{"after": 1, "tenant_id": "x"}); err == nil {
		bad["unknown cursor json"] = s
	} else {
		t.Fatal(err)
	}
	for name, c := range bad {
		res, body, _ := getList(t, srv.URL+"/test/list?cursor="+url.QueryEscape(c))
		p := readProblem(t, res, body, http.StatusBadRequest, "validation_failed")
		if p.Errors["cursor"] == "" {
			t.Errorf("%s: errors %v", name, p.Errors)
		}
	}
	res, body, _ := getList(t, srv.URL+"/test/list?cursor="+url.QueryEscape(good)+"&cursor="+url.QueryEscape(good))
	readProblem(t, res, body, http.StatusBadRequest, "validation_failed")

	// The same key in another process accepts the cursor (replicas, restarts).
	again, _ := newServer(t, api.Deps{CursorKey: key}, listRoutes(120))
	if _, body, l := getList(t, again.URL+"/test/list?limit=10&cursor="+url.QueryEscape(good)); len(l.Items) != 10 || l.Items[0] != 10 {
		t.Fatalf("same key rejected: %s", body)
	}
	if s, err := codec.Encode("/test/list", position{After: 3}); err != nil || strings.ContainsAny(s, "+/=") {
		t.Fatalf("cursor %q is not base64url: %v", s, err)
	}
}

func TestCursorNeedsRouter(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	if _, err := api.EncodeCursor(req, position{}); err == nil {
		t.Fatal("EncodeCursor outside the router succeeded")
	}
}
