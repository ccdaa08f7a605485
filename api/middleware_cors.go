package api

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// CORS headers. Authentication is by bearer token, not cookies, so
// credentials are never allowed and no origin is ever reflected unless it is
// on the allow-list exactly.
const (
	corsAllowMethods  = "GET, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, If-Match, Last-Event-ID, X-Consistency-Token, X-Request-Id"
	corsExposeHeaders = "Location, Retry-After, X-Consistency, X-Consistency-Token, X-Request-Id"
	corsMaxAge        = "600"
)

// corsOrigins keeps the configured origins that are a bare scheme://host[:port]
// (no path, query, wildcard or "null"); the rest are logged and dropped.
func corsOrigins(log *slog.Logger, origins []string) map[string]bool {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		o = strings.TrimSuffix(strings.TrimSpace(o), "/")
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Contains(o, "*") {
			log.Warn("ignoring invalid CORS origin", "origin", o)
			continue
		}
		allowed[strings.ToLower(u.Scheme)+"://"+strings.ToLower(u.Host)] = true
	}
	return allowed
}

// cors answers preflights itself and decorates the actual responses of
// allowed origins. The browser enforces the rest: a response without
// Access-Control-Allow-Origin is unreadable to the page.
func cors(allowed map[string]bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			ok := allowed[origin]
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				if !ok {
					WriteProblem(w, r, Forbidden("the origin is not allowed"))
					return
				}
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", corsAllowMethods)
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", corsMaxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if ok {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			}
			next.ServeHTTP(w, r)
		})
	}
}
