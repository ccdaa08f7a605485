package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// accessLog writes one line per request. It logs the route pattern (not the
// raw path, whose ids would explode cardinality), never headers, cookies,
// query strings or bodies. Operations endpoints log at debug level.
func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				pattern := routePattern(r)
				level := slog.LevelInfo
				switch pattern {
				case "/healthz", "/readyz", "/metrics":
					level = slog.LevelDebug
				}
				log.Log(r.Context(), level, "http request",
					"method", r.Method, "route", pattern, "status", status,
					"duration_ms", float64(time.Since(start).Microseconds())/1000,
					"bytes", ww.BytesWritten(), "request_id", RequestID(r.Context()),
					"client_ip", ClientIP(r).String())
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// recoverer turns a panic into a 500 problem without leaking the panic value
// or a stack trace to the client; the log gets the value.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("panic serving request", "request_id", RequestID(r.Context()),
						"method", r.Method, "route", routePattern(r), "panic", v)
					WriteProblem(w, r, Internal())
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// securityHeaders applies to every answer. The CSP suits the embedded web
// console (same-origin assets only) and is inert on JSON. HSTS is sent only
// over TLS served by this process.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}
