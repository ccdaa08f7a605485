// Package web is the web console: static HTML, CSS and JavaScript modules
// embedded in the binary and served from the API's own origin, so the
// router's Content-Security-Policy (default-src 'self') covers it. There is
// no build step: the files under static/ are what the browser runs.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// Paths the console answers, for the router and the OpenAPI check.
const (
	IndexPath  = "/"
	IndexFile  = "/index.html"
	AssetsPath = "/static/"
)

// asset is one embedded file with what its answers carry.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the console: GET / and /index.html answer index.html, and
// /static/<file> answers the file. Every answer carries Cache-Control:
// no-cache and a strong ETag, so a browser revalidates (a cheap 304) and
// never runs a stale app.js after an upgrade. Unknown files are 404.
func Handler() http.Handler {
	assets := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		assets["/"+p] = asset{body: b, contentType: contentType(p), etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in: a walk error is a broken build.
		panic("web: embedded assets: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == IndexPath || p == IndexFile {
			p = AssetsPath + "index.html"
		}
		a, ok := assets[path.Clean(p)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if etagMatches(r.Header.Get("If-None-Match"), a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(a.body)
	})
}

// contentType is fixed for the console's own file types rather than taken
// from the host's MIME database, which differs between systems (and a
// module script must be served as JavaScript).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func etagMatches(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimSpace(v)
		if v == etag || v == "*" || strings.TrimPrefix(v, "W/") == etag {
			return true
		}
	}
	return false
}
