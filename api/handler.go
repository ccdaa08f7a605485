package api

import (
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Deps is what the HTTP handler needs from the rest of the system;
// internal/app wires it.
type Deps struct {
	Logger   *slog.Logger
	Gatherer prometheus.Gatherer
	// Readiness lists the conditions of GET /readyz.
	Readiness []Check
	// CORSOrigins are the browser origins (scheme://host[:port]) allowed to
	// call the API cross-origin, matched exactly. Empty: none.
	CORSOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// CursorKey signs list cursors (32+ bytes), and a key derived from it
	// the request fingerprints of Idempotency-Keys. Empty: a random key
	// per process, so cursors and idempotent replays do not survive
	// restarts or cross replicas.
	CursorKey []byte
	// Errors are extra error mappings consulted before ErrorTable().
	Errors []ErrorMapping
	// V1, when set, mounts the authenticated /v1 API.
	V1 *V1
	// Console, when set, serves the web console at GET /, /index.html and
	// /static/* (package web).
	Console http.Handler
	// SeparateOps: the operations endpoints are served on their own
	// listener (NewOpsHandler), so this handler, the public one, has no
	// /metrics and its /readyz says only whether the process is ready,
	// never which dependency failed or why.
	SeparateOps bool
}

// NewHandler builds the process's HTTP handler: the operations endpoints
// (/healthz, /readyz, /metrics, unless Deps.SeparateOps), the OpenAPI document, the /v1 API when
// Deps.V1 is set and the console when Deps.Console is. Global middleware,
// outermost first (README.md): request id, client IP, access log, panic
// recovery, security headers, CORS, request environment (logger, error
// table, cursor codec).
func NewHandler(d Deps) http.Handler {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cursors := NewCursorCodec(d.CursorKey)
	e := &env{
		log:          log,
		errors:       append(append([]ErrorMapping(nil), d.Errors...), ErrorTable()...),
		cursors:      cursors,
		fingerprints: cursors.mac("request-fingerprint", nil),
	}
	r := chi.NewRouter()
	r.Use(requestID, clientIP(d.TrustedProxies), accessLog(log), recoverer(log), securityHeaders,
		cors(corsOrigins(log, d.CORSOrigins)), withEnv(e))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { WriteProblem(w, r, NotFound()) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		setAllow(w, r)
		WriteProblem(w, r, Problem{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Detail: "the method is not allowed on this resource"})
	})
	r.Get("/healthz", healthz)
	if d.SeparateOps {
		r.Method(http.MethodGet, "/readyz", readiness{checks: d.Readiness, timeout: readinessTimeout})
	} else {
		mountOps(r, d.Readiness, d.Gatherer)
	}
	r.Get("/v1/openapi.json", serveOpenAPI)
	if d.V1 != nil {
		mountV1(r, d.V1)
	}
	if d.Console != nil {
		for _, p := range []string{"/", "/index.html", "/static/*"} {
			r.Method(http.MethodGet, p, d.Console)
			r.Method(http.MethodHead, p, d.Console)
		}
	}
	return r
}

// NewOpsHandler is the operations listener's handler: /healthz, /readyz
// with each check's status and error, and /metrics. It is meant for a
// private address (ACCOUNTDB_OPS_ADDR), apart from the public API.
func NewOpsHandler(log *slog.Logger, gatherer prometheus.Gatherer, checks []Check) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := chi.NewRouter()
	r.Use(recoverer(log), securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { WriteProblem(w, r, NotFound()) })
	r.Get("/healthz", healthz)
	mountOps(r, checks, gatherer)
	return r
}

// mountOps installs the detailed /readyz and /metrics.
func mountOps(r chi.Router, checks []Check, gatherer prometheus.Gatherer) {
	r.Method(http.MethodGet, "/readyz", readiness{checks: checks, timeout: readinessTimeout, detail: true})
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
}
