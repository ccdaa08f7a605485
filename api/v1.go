package api

import (
	"net/http"
	"time"

	"github.com/accountdb/accountdb/api/feed"
	"github.com/accountdb/accountdb/assistant"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/vault"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// V1 is what the authenticated /v1 API needs: the command handler, the
// service role's pool for queries, the event store, the token verifier and
// the bus the event feed reads.
type V1 struct {
	Commands *commands.Handler
	Pool     *pgxpool.Pool
	Store    *eventstore.Store
	Verifier *auth.Verifier
	// Rate limits; zero values take DefaultPublicRate and the like.
	PublicRate RateLimit // per client IP on unauthenticated routes
	UserRate   RateLimit // per user on authenticated routes
	TenantRate RateLimit // per tenant on authenticated routes
	// JS is the JetStream that GET /v1/events reads (nil: that route is a 503).
	JS     jetstream.JetStream
	Events feed.Options
	// Limits caps concurrent exports and event streams (zero fields: the
	// defaults, DefaultLimits).
	Limits Limits
	// Metrics registers the event feed's metrics (nil: not registered).
	Metrics prometheus.Registerer
	// Vault seals the Proxmox console tickets kept between a console's
	// ticket and its WebSocket (nil: consoles answer 503).
	Vault *vault.Vault
	// RateCounter and Slots keep the rate limits and the caps on streams
	// and exports in a store every replica shares (api/pglimits); nil
	// counts in this process, which N replicas would each allow in full.
	RateCounter RateCounter
	Slots       SlotStore
	// ConsoleDrain ends the open consoles when the process stops (nil:
	// they are never drained).
	ConsoleDrain *ConsoleDrain
	// Checkpoints wakes read-your-writes waits when a projector moves,
	// whichever replica runs it (nil: they poll).
	Checkpoints *projections.Notifier
	// Revealer opens the sealed personal values of the events GET
	// /v1/events serves from the bus (nil: served as carried). The Store's
	// reads reveal through its own (eventstore.WithRevealer).
	Revealer feed.Revealer
	// Assistant answers POST /v1/vms/{id}/explain and /v1/assistant/ask
	// (nil: the feature is off, assistant_routes.go); AssistantLimits
	// bound it.
	Assistant       *assistant.Service
	AssistantLimits AssistantLimits
}

// server is the /v1 API: what its handlers share. Every /v1 route is one
// of its methods, installed by mountV1.
type server struct {
	commands *commands.Handler
	pool     *pgxpool.Pool
	store    *eventstore.Store
	tokens   *verifiedTokens // the token verifier's answers, remembered (token_cache.go)
	events   *feed.Feed

	exports, streams   *slots
	exportWriteTimeout time.Duration
	consoles           *consoles
	checkpoints        *projections.Notifier
	assistant          *assistant.Service
	assistantSlots     *slots
}

// revokingTypes are the events that may take a subscriber's access to its
// event stream away: the feed then checks the session at once.
func revokingTypes() []string {
	var out []string
	for _, e := range []domain.Event{&domain.TenantSuspendedEvent{}, &domain.UserDisabledEvent{}, &domain.UserRolesChanged{},
		&domain.UserSessionsEnded{}, &domain.SessionEnded{}, &domain.APITokenRevoked{}, &domain.UserErased{}} {
		out = append(out, e.EventType())
	}
	return out
}

// mountV1 installs the authenticated API. Every route names its permission
// in the route table itself, so the check runs before any handler work.
func mountV1(r chi.Router, d *V1) {
	lim := d.Limits.WithDefaults()
	srv := &server{commands: d.Commands, pool: d.Pool, store: d.Store, tokens: newVerifiedTokens(d.Verifier), checkpoints: d.Checkpoints,
		events: feed.New(feed.Config{Bus: d.JS, Positions: eventPositions{d.Pool}, Sessions: streamAccess{d.Commands},
			Body: func(e eventlog.Event) any { return toEventResponse(e) }, RevokingTypes: revokingTypes(),
			Revealer: d.Revealer, Options: d.Events, Metrics: d.Metrics}),
		exports:            newSlots("exports", "exports", lim.ExportsPerUser, lim.ExportsPerTenant, d.Slots),
		streams:            newSlots("streams", "event streams", lim.StreamsPerUser, lim.StreamsPerTenant, d.Slots),
		exportWriteTimeout: lim.ExportWriteTimeout,
		consoles:           newConsoles(d, lim),
		assistant:          d.Assistant}
	public := d.PublicRate.or(DefaultPublicRate)
	perUser := d.UserRate.or(DefaultUserRate)
	perTenant := d.TenantRate.or(DefaultTenantRate)

	r.Group(func(r chi.Router) {
		r.Use(SharedRateLimitByIP(d.RateCounter, public.N, public.Window), requireText)
		r.Post("/v1/auth/login", srv.login)
		r.Post("/v1/auth/refresh", srv.refresh)
		r.Post("/v1/auth/mfa", srv.completeMFA)
		// Single sign-on (idp_routes.go): public, the browser's legs.
		r.Get("/v1/auth/providers", srv.authProviders)
		r.Get("/v1/auth/oidc/{provider}/start", srv.oidcStart)
		r.Get("/v1/auth/oidc/{provider}/callback", srv.oidcCallback)
	})
	r.Group(func(r chi.Router) {
		// A console's WebSocket: browsers cannot send a bearer token on
		// one, so its single-use ticket authenticates it (console_routes.go).
		// Its own per-IP budget: consoles do not use up sign-ins'
		// (a key of its own in the shared counters).
		r.Use(SharedRateLimitByKey(d.RateCounter, public.N, public.Window, func(r *http.Request) (string, error) {
			return "console:" + addressRateKey(r), nil
		}), requireText)
		r.Get("/v1/consoles/{ticket}", srv.consoleSocket)
	})
	r.Group(func(r chi.Router) {
		limits := NewRateChain(d.RateCounter,
			KeyedRate{Limit: perUser, Key: func(r *http.Request) (string, error) {
				return "user:" + PrincipalFrom(r.Context()).UserID.String(), nil
			}},
			KeyedRate{Limit: perTenant, Key: func(r *http.Request) (string, error) {
				return "tenant:" + PrincipalFrom(r.Context()).TenantID.String(), nil
			}})
		// The limits are counted while the session is checked
		// (ratelimit_early.go), and decided after it.
		r.Use(srv.authenticate(limits.Start), limits.Limit, requireText)
		r.With(srv.sessionOnly).Post("/v1/auth/logout", srv.logout)
		r.Get("/v1/users/me", srv.me)
		// Every user manages their own SSH keys (user_sshkey_routes.go).
		r.Post("/v1/users/me/ssh-keys", srv.addSSHKey)
		r.Get("/v1/users/me/ssh-keys", srv.listSSHKeys)
		r.Delete("/v1/users/me/ssh-keys/{id}", srv.removeSSHKey)
		r.Get("/v1/sessions", srv.listSessions)
		r.With(srv.sessionOnly).Delete("/v1/sessions/{id}", srv.revokeSession)
		// Two-factor (mfa_routes.go): one's own, with a session only.
		r.With(srv.sessionOnly).Get("/v1/users/me/totp", srv.totpStatus)
		r.With(srv.sessionOnly).Post("/v1/users/me/totp", srv.startTOTP)
		r.With(srv.sessionOnly).Post("/v1/users/me/totp/confirm", srv.confirmTOTP)
		r.With(srv.sessionOnly).Delete("/v1/users/me/totp", srv.disableTOTP)
		r.With(srv.require(auth.PermUserRead)).Get("/v1/mfa-requirement", srv.getMFARequirement)
		r.With(srv.sessionOnly, srv.require(auth.PermUserManage)).Put("/v1/mfa-requirement", srv.setMFARequirement)
		// API tokens (apitoken_routes.go): a user's own, with a session only.
		r.With(srv.sessionOnly).Post("/v1/users/me/tokens", srv.createToken)
		r.With(srv.sessionOnly).Get("/v1/users/me/tokens", srv.listOwnTokens)
		r.With(srv.sessionOnly).Delete("/v1/users/me/tokens/{id}", srv.revokeOwnToken)
		r.With(srv.sessionOnly, srv.require(auth.PermUserManage)).Get("/v1/users/{id}/tokens", srv.listUserTokens)
		r.With(srv.sessionOnly, srv.require(auth.PermUserManage)).Delete("/v1/users/{id}/tokens/{token_id}", srv.revokeUserToken)

		r.With(srv.require(auth.PermTenantManage)).Post("/v1/tenants", srv.createTenant)
		r.With(srv.require(auth.PermTenantManage)).Get("/v1/tenants", srv.listTenants)
		r.With(srv.require(auth.PermTenantManage)).Get("/v1/tenants/{id}", srv.getTenant)
		r.With(srv.require(auth.PermTenantManage)).Patch("/v1/tenants/{id}", srv.updateTenant)
		r.With(srv.require(auth.PermTenantManage)).Post("/v1/tenants/{id}/suspend", srv.suspendTenant)
		r.With(srv.require(auth.PermTenantManage)).Post("/v1/tenants/{id}/resume", srv.resumeTenant)
		r.With(srv.require(auth.PermTenantManage)).Get("/v1/tenants/{id}/privacy", srv.getTenantPrivacy)
		r.With(srv.require(auth.PermTenantManage)).Put("/v1/tenants/{id}/privacy", srv.setTenantPrivacy)

		r.With(srv.require(auth.PermUserManage)).Post("/v1/users", srv.createUser)
		r.With(srv.require(auth.PermUserRead)).Get("/v1/users", srv.listUsers)
		r.With(srv.require(auth.PermUserRead)).Get("/v1/users/{id}", srv.getUser)
		r.With(srv.require(auth.PermRoleAssign)).Put("/v1/users/{id}/roles", srv.changeRoles)
		r.With(srv.require(auth.PermUserManage)).Post("/v1/users/{id}/disable", srv.disableUser)
		r.With(srv.require(auth.PermUserManage)).Post("/v1/users/{id}/enable", srv.enableUser)
		r.With(srv.require(auth.PermUserManage)).Post("/v1/users/{id}/erase", srv.eraseUser)
		// The person themself, or user:manage: checked in the handler.
		r.Get("/v1/users/{id}/export", srv.exportUser)
		// Changing one's own password needs no permission; another's needs
		// user:manage, checked in the handler once the target is known.
		r.With(srv.sessionOnly).Put("/v1/users/{id}/password", srv.changePassword)

		r.With(srv.require(auth.PermVMCreate)).Post("/v1/vms", srv.createVM)
		r.With(srv.require(auth.PermVMRead)).Get("/v1/vms", srv.listVMs)
		r.With(srv.require(auth.PermVMRead)).Get("/v1/vms/{id}", srv.getVM)
		r.With(srv.require(auth.PermVMConfig)).Patch("/v1/vms/{id}", srv.resizeVM)
		r.With(srv.require(auth.PermVMDelete)).Delete("/v1/vms/{id}", srv.deleteVM)
		r.With(srv.require(auth.PermVMPower)).Post("/v1/vms/{id}/actions/{action}", srv.vmAction)
		r.With(srv.require(auth.PermVMDelete)).Post("/v1/vms/{id}/actions/rebuild", srv.rebuildVM)
		r.With(srv.require(auth.PermVMSnapshot)).Post("/v1/vms/{id}/snapshots", srv.snapshotVM)
		srv.mountBackupRoutes(r) // backup_routes.go: snapshots, backups, restores, schedules
		r.With(srv.require(auth.PermVMRead)).Get("/v1/vms/{id}/history", srv.vmHistory)
		r.With(srv.require(auth.PermVMConsole)).Post("/v1/vms/{id}/console", srv.openConsole)
		r.With(srv.require(auth.PermVMRead)).Get("/v1/vm-actions", srv.listVMActions)
		r.With(srv.require(auth.PermAuditRead)).Get("/v1/audit", srv.audit)
		r.With(srv.require(auth.PermAuditRead)).Get("/v1/audit/verify", srv.verifyAudit)
		// Live events (SSE): vm:read sees VM events, audit:read adds the rest (events_route.go, package feed).
		r.With(srv.require(auth.PermVMRead)).Get("/v1/events", srv.streamEvents)

		// OpenID Connect providers: platform configuration (idp_routes.go).
		r.With(srv.require(auth.PermTenantManage)).Post("/v1/identity-providers", srv.createProvider)
		r.With(srv.require(auth.PermTenantManage)).Get("/v1/identity-providers", srv.listProviders)
		r.With(srv.require(auth.PermTenantManage)).Get("/v1/identity-providers/{id}", srv.getProvider)
		r.With(srv.require(auth.PermTenantManage)).Patch("/v1/identity-providers/{id}", srv.updateProvider)
		r.With(srv.require(auth.PermTenantManage)).Delete("/v1/identity-providers/{id}", srv.deleteProvider)

		srv.mountWebhooks(r)
		srv.mountUsage(r)
		srv.mountAssistant(r, d) // assistant_routes.go

		r.With(srv.require(auth.PermClusterManage)).Post("/v1/clusters", srv.createCluster)
		r.With(srv.require(auth.PermClusterManage)).Get("/v1/clusters", srv.listClusters)
		r.With(srv.require(auth.PermClusterManage)).Get("/v1/clusters/{id}/nodes", srv.clusterNodes)
		// Address pools are the platform's too (ippool_routes.go).
		r.With(srv.require(auth.PermClusterManage)).Post("/v1/ip-pools", srv.createIPPool)
		// Offered to whoever may create a VM (the New VM form picks one);
		// the addresses and who holds them stay with platform admins.
		r.With(srv.require(auth.PermVMCreate)).Get("/v1/ip-pools", srv.listIPPools)
		r.With(srv.require(auth.PermVMCreate)).Get("/v1/ip-pools/{id}", srv.getIPPool)
		r.With(srv.require(auth.PermClusterManage)).Get("/v1/ip-pools/{id}/addresses", srv.listPoolAddresses)
		// Templates are offered to every tenant: any signed-in user may list them.
		r.Get("/v1/templates", srv.listTemplates)
	})
}
