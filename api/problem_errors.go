package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// ErrorMapping translates one kind of error into a Problem. Match is
// errors.Is(err, Target) when Target is set, else the Match function (use
// MatchAs for typed errors). Problem builds the answer; it may inspect err
// (errors.As) but must not copy its text into the answer unless that text is
// written for clients.
type ErrorMapping struct {
	Target  error
	Match   func(err error) bool
	Problem func(err error) Problem
}

func (m ErrorMapping) matches(err error) bool {
	if m.Target != nil {
		return errors.Is(err, m.Target)
	}
	return m.Match != nil && m.Match(err)
}

// MatchAs matches any error in the chain that is a T (errors.As).
func MatchAs[T error]() func(error) bool {
	return func(err error) bool {
		var t T
		return errors.As(err, &t)
	}
}

// Static returns a Problem function that ignores the error.
func Static(p Problem) func(error) Problem {
	return func(error) Problem { return p }
}

// WriteError answers err as a problem. A Problem anywhere in the chain is
// answered as is; otherwise the first matching entry of the error table
// (Deps.Errors, then ErrorTable()) decides; anything else is a 500 with no
// detail. Server errors are logged with the request id; the client sees the
// request id only. A request its client abandoned is not a server error.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(r, err)
	log := loggerFrom(r)
	attrs := []any{"request_id", RequestID(r.Context()), "method", r.Method, "path", routePattern(r),
		"status", p.Status, "code", p.Code, "error", err}
	switch {
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		// The client went away (closed the connection, gave up waiting):
		// nobody reads the answer and nothing failed on this side.
		log.Debug("request abandoned by the client", attrs...)
	case p.Status >= 500:
		log.Error("request failed", attrs...)
	default:
		log.Debug("request rejected", attrs...)
	}
	WriteProblem(w, r, p)
}

func problemFor(r *http.Request, err error) Problem {
	var p Problem
	if errors.As(err, &p) {
		return p
	}
	for _, m := range errorTableFrom(r) {
		if m.matches(err) {
			return m.Problem(err)
		}
	}
	return Internal()
}

func loggerFrom(r *http.Request) *slog.Logger {
	if e := envFrom(r.Context()); e != nil && e.log != nil {
		return e.log
	}
	return slog.Default()
}

func errorTableFrom(r *http.Request) []ErrorMapping {
	if e := envFrom(r.Context()); e != nil {
		return e.errors
	}
	return ErrorTable()
}

// setAllow lists the methods the matched path does serve (RFC 9110 requires
// Allow on a 405); chi only adds it for its own default handler.
func setAllow(w http.ResponseWriter, r *http.Request) {
	rc := chi.RouteContext(r.Context())
	if rc == nil || rc.Routes == nil {
		return
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if rc.Routes.Match(chi.NewRouteContext(), m, path) {
			w.Header().Add("Allow", m)
		}
	}
}
