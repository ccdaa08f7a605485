package web_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/web"
)

func get(t *testing.T, srv *httptest.Server, p string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestServesAssets(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/", "text/html; charset=utf-8", "<title>AccountDB console</title>"},
		{"/index.html", "text/html; charset=utf-8", "<title>AccountDB console</title>"},
		{"/static/index.html", "text/html; charset=utf-8", "<title>AccountDB console</title>"},
		{"/static/app.js", "text/javascript; charset=utf-8", "/v1/users/me"},
		{"/static/api.js", "text/javascript; charset=utf-8", "/v1/auth/refresh"},
		{"/static/app.css", "text/css; charset=utf-8", ".topbar"},
		{"/static/favicon.svg", "image/svg+xml", "<svg"},
	} {
		res, body := get(t, srv, tc.path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, got)
		}
		if !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", tc.path)
			continue
		}
		again, _ := get(t, srv, tc.path, "If-None-Match", etag)
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d, want 304", tc.path, again.StatusCode)
		}
	}
	for _, p := range []string{"/static/", "/static/nope.js", "/static/../web.go", "/web.go"} {
		if res, _ := get(t, srv, p); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	res, err := srv.Client().Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", res.StatusCode)
	}
}

var (
	scriptTag  = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	urlAttr    = regexp.MustCompile(`(?i)\s(?:src|href|action)\s*=\s*"([^"]*)"`)
	inlineJS   = regexp.MustCompile(`(?i)\son[a-z]+\s*=|javascript:`)
	inlineCSS  = regexp.MustCompile(`(?i)<style\b|\sstyle\s*=`)
	jsImport   = regexp.MustCompile(`(?m)^import [^;]*? from "([^"]+)";`)
	htmlSinks  = regexp.MustCompile(`\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(`)
	remoteURLs = regexp.MustCompile(`(?i)https?://|@import|url\(`)
	// Example URLs shown in empty inputs are not fetched, nor is the SVG
	// namespace (a name that qr.js passes to createElementNS).
	placeholder = regexp.MustCompile(`placeholder: "[^"]*"|"http://www\.w3\.org/2000/svg"`)
)

// TestIndexIsCSPClean checks what Content-Security-Policy default-src 'self'
// demands: every script is an external same-origin file (no inline code),
// there are no inline styles or event handlers, and every referenced asset
// is same-origin and actually served.
func TestIndexIsCSPClean(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	_, html := get(t, srv, "/")

	scripts := scriptTag.FindAllStringSubmatch(html, -1)
	if len(scripts) == 0 {
		t.Fatal("index.html loads no script")
	}
	for _, s := range scripts {
		if strings.TrimSpace(s[2]) != "" {
			t.Errorf("inline script code: %q", s[2])
		}
		if !strings.Contains(s[1], "src=") {
			t.Errorf("script without src: %q", s[0])
		}
	}
	if m := inlineJS.FindString(html); m != "" {
		t.Errorf("inline event handler or javascript: URL in index.html: %q", m)
	}
	if m := inlineCSS.FindString(html); m != "" {
		t.Errorf("inline style in index.html: %q", m)
	}
	refs := urlAttr.FindAllStringSubmatch(html, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references %d URLs, want the stylesheet, the script and the icon", len(refs))
	}
	for _, r := range refs {
		u := r[1]
		if strings.HasPrefix(u, "#") {
			continue // a route inside the console
		}
		if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
			t.Errorf("index.html references %q: not a same-origin absolute path", u)
			continue
		}
		if strings.HasPrefix(u, "/v1/") {
			continue // the API, linked from the <noscript> text
		}
		if res, _ := get(t, srv, u); res.StatusCode != http.StatusOK {
			t.Errorf("index.html references %s, which answers %d", u, res.StatusCode)
		}
	}
}

// TestScriptsAreSelfContained checks the modules: every import resolves to a
// served file, none writes HTML from strings (data goes in as text), and
// nothing is fetched from another origin.
func TestScriptsAreSelfContained(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	files, err := fs.Glob(os.DirFS("static"), "*.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		res, src := get(t, srv, "/static/"+f)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("%s: %d %s", f, res.StatusCode, res.Header.Get("Content-Type"))
		}
		for _, m := range jsImport.FindAllStringSubmatch(src, -1) {
			if !strings.HasPrefix(m[1], "./") {
				t.Errorf("%s imports %q: not a relative module", f, m[1])
				continue
			}
			if res, _ := get(t, srv, path.Join("/static", m[1])); res.StatusCode != http.StatusOK {
				t.Errorf("%s imports %s, which answers %d", f, m[1], res.StatusCode)
			}
		}
		if m := htmlSinks.FindString(src); m != "" {
			t.Errorf("%s uses %s", f, m)
		}
		if m := remoteURLs.FindString(placeholder.ReplaceAllString(src, "")); m != "" {
			t.Errorf("%s references %q", f, m)
		}
	}
	_, css := get(t, srv, "/static/app.css")
	if m := remoteURLs.FindString(css); m != "" {
		t.Errorf("app.css references %q", m)
	}
}

// TestMountedInRouter serves the console through api.NewHandler: the
// security headers apply to it, the API keeps its routes, and the OpenAPI
// comparison ignores the console's paths.
func TestMountedInRouter(t *testing.T) {
	h := api.NewHandler(api.Deps{V1: &api.V1{}, Console: web.Handler()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, body := get(t, srv, "/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `src="/static/app.js"`) {
		t.Fatalf("GET /: %d", res.StatusCode)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	if res, _ := get(t, srv, "/static/app.js"); res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET /static/app.js through the router: %s", res.Header.Get("Content-Type"))
	}
	if res, _ := get(t, srv, "/v1/openapi.json"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/openapi.json: %d", res.StatusCode)
	}
	if res, body := get(t, srv, "/nope"); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "not_found") {
		t.Errorf("GET /nope: %d %s", res.StatusCode, body)
	}
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("NewHandler returned %T", h)
	}
	if err := api.CheckOpenAPI(routes, api.OpenAPIDocument()); err != nil {
		t.Fatal(err)
	}
}
