package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// env is what the global middleware hands to handlers and helpers through
// the request context: the logger, the error table and the cursor codec.
type env struct {
	log     *slog.Logger
	errors  []ErrorMapping
	cursors *CursorCodec
	// fingerprints keys the request fingerprints of Idempotency-Keys
	// (commandOptions).
	fingerprints []byte
}

type ctxKey int

const (
	envKey ctxKey = iota
	requestIDKey
	clientIPKey
)

func envFrom(ctx context.Context) *env {
	e, _ := ctx.Value(envKey).(*env)
	return e
}

func withEnv(e *env) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), envKey, e)))
		})
	}
}

// RequestIDHeader carries the request id both ways.
const RequestIDHeader = "X-Request-Id"

// RequestID is the request's id ("" outside the router).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// requestID keeps a well-formed incoming X-Request-Id (so that ids chain
// through proxies) and otherwise makes one; either way it is echoed. The id
// is also stored under chi's key so that middleware.GetReqID agrees.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = context.WithValue(ctx, middleware.RequestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// routePattern is the matched chi pattern, or "" when nothing matched.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}
