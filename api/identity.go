package api

import (
	"net/http"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Identity is what the /v1 routes need: the command handler, the service
// role's pool for queries, the event store and the token verifier.
type Identity struct {
	Commands *commands.Handler
	Pool     *pgxpool.Pool
	Store    *eventstore.Store
	Verifier *auth.Verifier
	// Rate limits; zero values take the defaults below.
	PublicRate RateLimit // per client IP on unauthenticated routes
	UserRate   RateLimit // per user on authenticated routes
	TenantRate RateLimit // per tenant on authenticated routes
	// JS is the JetStream that GET /v1/events reads (nil: that route is a 503).
	JS     jetstream.JetStream
	Events EventsOptions
	// Metrics registers the event feed's metrics (nil: not registered).
	Metrics prometheus.Registerer
}

// RateLimit is N requests per Window.
type RateLimit struct {
	N      int
	Window time.Duration
}

func (l RateLimit) or(def RateLimit) RateLimit {
	if l.N <= 0 || l.Window <= 0 {
		return def
	}
	return l
}

type identity struct {
	commands *commands.Handler
	pool     *pgxpool.Pool
	store    *eventstore.Store
	verifier *auth.Verifier
	events   *eventFeed
}

// mountV1 installs the authenticated API. Every route names its permission
// in the route table itself, so the check runs before any handler work.
func mountV1(r chi.Router, d *Identity) {
	id := &identity{commands: d.Commands, pool: d.Pool, store: d.Store, verifier: d.Verifier, events: newEventFeed(d.JS, d.Events, d.Metrics)}
	public := d.PublicRate.or(RateLimit{N: 30, Window: time.Minute})
	perUser := d.UserRate.or(RateLimit{N: 600, Window: time.Minute})
	perTenant := d.TenantRate.or(RateLimit{N: 3000, Window: time.Minute})

	r.Group(func(r chi.Router) {
		r.Use(RateLimitByIP(public.N, public.Window))
		r.Post("/v1/auth/login", id.login)
		r.Post("/v1/auth/refresh", id.refresh)
	})
	r.Group(func(r chi.Router) {
		r.Use(id.authenticate,
			RateLimitByKey(perUser.N, perUser.Window, func(r *http.Request) (string, error) {
				return "user:" + PrincipalFrom(r.Context()).UserID.String(), nil
			}),
			RateLimitByKey(perTenant.N, perTenant.Window, func(r *http.Request) (string, error) {
				return "tenant:" + PrincipalFrom(r.Context()).TenantID.String(), nil
			}))
		r.Post("/v1/auth/logout", id.logout)
		r.Get("/v1/users/me", id.me)
		r.Get("/v1/sessions", id.listSessions)
		r.Delete("/v1/sessions/{id}", id.revokeSession)

		r.With(id.require(auth.PermTenantManage)).Post("/v1/tenants", id.createTenant)
		r.With(id.require(auth.PermTenantManage)).Get("/v1/tenants", id.listTenants)
		r.With(id.require(auth.PermTenantManage)).Get("/v1/tenants/{id}", id.getTenant)
		r.With(id.require(auth.PermTenantManage)).Patch("/v1/tenants/{id}", id.updateTenant)
		r.With(id.require(auth.PermTenantManage)).Post("/v1/tenants/{id}/suspend", id.suspendTenant)
		r.With(id.require(auth.PermTenantManage)).Post("/v1/tenants/{id}/resume", id.resumeTenant)

		r.With(id.require(auth.PermUserManage)).Post("/v1/users", id.createUser)
		r.With(id.require(auth.PermUserRead)).Get("/v1/users", id.listUsers)
		r.With(id.require(auth.PermUserRead)).Get("/v1/users/{id}", id.getUser)
		r.With(id.require(auth.PermRoleAssign)).Put("/v1/users/{id}/roles", id.changeRoles)
		r.With(id.require(auth.PermUserManage)).Post("/v1/users/{id}/disable", id.disableUser)
		r.With(id.require(auth.PermUserManage)).Post("/v1/users/{id}/enable", id.enableUser)
		// Changing one's own password needs no permission; another's needs
		// user:manage, checked in the handler once the target is known.
		r.Put("/v1/users/{id}/password", id.changePassword)

		r.With(id.require(auth.PermVMCreate)).Post("/v1/vms", id.createVM)
		r.With(id.require(auth.PermVMRead)).Get("/v1/vms", id.listVMs)
		r.With(id.require(auth.PermVMRead)).Get("/v1/vms/{id}", id.getVM)
		r.With(id.require(auth.PermVMConfig)).Patch("/v1/vms/{id}", id.resizeVM)
		r.With(id.require(auth.PermVMDelete)).Delete("/v1/vms/{id}", id.deleteVM)
		r.With(id.require(auth.PermVMPower)).Post("/v1/vms/{id}/actions/{action}", id.vmAction)
		r.With(id.require(auth.PermVMSnapshot)).Post("/v1/vms/{id}/snapshots", id.snapshotVM)
		r.With(id.require(auth.PermVMRead)).Get("/v1/vms/{id}/history", id.vmHistory)
		r.With(id.require(auth.PermAuditRead)).Get("/v1/audit", id.audit)
		r.With(id.require(auth.PermAuditRead)).Get("/v1/audit/verify", id.verifyAudit)
		// Live events (SSE): vm:read sees VM events, audit:read adds the rest (events.go).
		r.With(id.require(auth.PermVMRead)).Get("/v1/events", id.streamEvents)

		r.With(id.require(auth.PermClusterManage)).Post("/v1/clusters", id.createCluster)
		r.With(id.require(auth.PermClusterManage)).Get("/v1/clusters", id.listClusters)
		r.With(id.require(auth.PermClusterManage)).Get("/v1/clusters/{id}/nodes", id.clusterNodes)
		// Templates are offered to every tenant: any signed-in user may list them.
		r.Get("/v1/templates", id.listTemplates)
	})
}
