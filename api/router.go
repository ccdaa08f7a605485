package api

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Deps is what the router needs from the rest of the system; cmd wires it.
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
	// CursorKey signs list cursors (32+ bytes). Empty: a random key per
	// process, so cursors do not survive restarts or cross replicas.
	CursorKey []byte
	// Errors are extra error mappings consulted before ErrorTable().
	Errors []ErrorMapping
	// Identity, when set, mounts the authenticated /v1 API.
	Identity *Identity
	// Console, when set, serves the web console at GET /, /index.html and
	// /static/* (package web).
	Console http.Handler
}

// NewRouter builds the HTTP handler. Global middleware, outermost first
// (README.md): request id, client IP, access log, panic recovery, security
// headers, CORS, request environment (logger, error table, cursor codec).
func NewRouter(d Deps) http.Handler {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &env{
		log:     log,
		errors:  append(append(append([]ErrorMapping(nil), d.Errors...), domainErrors()...), ErrorTable()...),
		cursors: NewCursorCodec(d.CursorKey),
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
	r.Method(http.MethodGet, "/readyz", readiness{checks: d.Readiness, timeout: 3 * time.Second})
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	r.Get("/v1/openapi.json", serveOpenAPI)
	if d.Identity != nil {
		mountV1(r, d.Identity)
	}
	if d.Console != nil {
		for _, p := range []string{"/", "/index.html", "/static/*"} {
			r.Method(http.MethodGet, p, d.Console)
			r.Method(http.MethodHead, p, d.Console)
		}
	}
	return r
}
