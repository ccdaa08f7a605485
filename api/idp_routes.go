package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// OpenID Connect: providers configured by platform administrators
// (tenant:manage), the public list the sign-in page shows, and the two
// browser legs of the authorization code flow (commands/oidc.go).

type providerRequest struct {
	Name         *string                `json:"name"`
	Issuer       *string                `json:"issuer"`
	ClientID     *string                `json:"client_id"`
	ClientSecret *string                `json:"client_secret"`
	Scopes       *[]string              `json:"scopes"`
	GroupsClaim  *string                `json:"groups_claim"`
	Mappings     *[]groupMappingRequest `json:"mappings"`
	CreateUsers  *bool                  `json:"create_users"`
}

type groupMappingRequest struct {
	Group    string   `json:"group"`
	TenantID string   `json:"tenant_id"`
	Roles    []string `json:"roles"`
}

func (req providerRequest) toChange() commands.ProviderChange {
	c := commands.ProviderChange{Name: req.Name, Issuer: req.Issuer, ClientID: req.ClientID, ClientSecret: req.ClientSecret,
		Scopes: req.Scopes, GroupsClaim: req.GroupsClaim, CreateUsers: req.CreateUsers}
	if req.Mappings != nil {
		ms := make([]domain.GroupMapping, len(*req.Mappings))
		for i, m := range *req.Mappings {
			// A tenant_id that is no UUID is the nil one, which the
			// domain refuses naming mappings.
			tid, _ := uuid.Parse(m.TenantID)
			ms[i] = domain.GroupMapping{Group: m.Group, TenantID: tid, Roles: m.Roles}
		}
		c.Mappings = &ms
	}
	return c
}

type providerResponse struct {
	ID          string                `json:"id"`
	Name        string                `json:"name"`
	Issuer      string                `json:"issuer"`
	ClientID    string                `json:"client_id"`
	Scopes      []string              `json:"scopes"`
	GroupsClaim string                `json:"groups_claim"`
	Mappings    []groupMappingRequest `json:"mappings"`
	CreateUsers bool                  `json:"create_users"`
	CreatedAt   time.Time             `json:"created_at"`
}

func toProviderResponse(p commands.IdentityProviderRow) providerResponse {
	ms := make([]groupMappingRequest, len(p.Config.Mappings))
	for i, m := range p.Config.Mappings {
		ms[i] = groupMappingRequest{Group: m.Group, TenantID: m.TenantID.String(), Roles: m.Roles}
	}
	return providerResponse{ID: p.ID.String(), Name: p.Config.Name, Issuer: p.Config.Issuer, ClientID: p.Config.ClientID,
		Scopes: p.Config.Scopes, GroupsClaim: p.Config.GroupsClaim, Mappings: ms, CreateUsers: p.Config.CreateUsers, CreatedAt: p.CreatedAt.UTC()}
}

func (srv *server) createProvider(w http.ResponseWriter, r *http.Request) {
	var req providerRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, req, func(res commands.Result) string { return "/v1/identity-providers/" + res.ID.String() },
		func(o commands.Options) (commands.Result, error) {
			return srv.commands.CreateIdentityProvider(r.Context(), actorOf(r), o, req.toChange())
		})
}

func (srv *server) updateProvider(w http.ResponseWriter, r *http.Request) {
	runIDBodyCommand(w, r, func(o commands.Options, id uuid.UUID, req providerRequest) (commands.Result, error) {
		return srv.commands.UpdateIdentityProvider(r.Context(), actorOf(r), o, id, req.toChange())
	})
}

func (srv *server) deleteProvider(w http.ResponseWriter, r *http.Request) {
	runIDCommand(w, r, func(o commands.Options, id uuid.UUID) (commands.Result, error) {
		return srv.commands.DeleteIdentityProvider(r.Context(), actorOf(r), o, id)
	})
}

func (srv *server) listProviders(w http.ResponseWriter, r *http.Request) {
	ps, err := srv.commands.IdentityProviders(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]providerResponse, len(ps))
	for i, p := range ps {
		out[i] = toProviderResponse(p)
	}
	WriteList(w, out, "")
}

func (srv *server) getProvider(w http.ResponseWriter, r *http.Request) {
	id, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	p, found, err := srv.commands.IdentityProvider(r.Context(), id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if !found {
		WriteProblem(w, r, NotFound())
		return
	}
	writeJSON(w, http.StatusOK, toProviderResponse(p))
}

type publicProvider struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// authProviders is GET /v1/auth/providers: what a sign-in page offers.
func (srv *server) authProviders(w http.ResponseWriter, r *http.Request) {
	ps, err := srv.commands.PublicProviders(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]publicProvider, len(ps))
	for i, p := range ps {
		out[i] = publicProvider{ID: p.ID.String(), Name: p.Config.Name}
	}
	WriteList(w, out, "")
}

// callbackURL is this server's callback for provider, as the browser
// reaches it (the provider checks it against the registered one).
func callbackURL(r *http.Request, provider uuid.UUID) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/v1/auth/oidc/" + provider.String() + "/callback"
}

func (srv *server) oidcStart(w http.ResponseWriter, r *http.Request) {
	id, ok := pathUUID(w, r, "provider")
	if !ok {
		return
	}
	to, err := srv.commands.StartOIDC(r.Context(), id, callbackURL(r, id))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

// oidcCallback ends a sign-in in the console, signed in: the tokens travel
// in the URL's fragment, which browsers never send to a server, and the
// console takes them out of the address bar at once (web/static/app.js).
func (srv *server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	id, ok := pathUUID(w, r, "provider")
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("error") != "" {
		// The provider refused (the person cancelled, or is not allowed).
		WriteProblem(w, r, Unauthenticated("the identity provider did not sign you in"))
		return
	}
	t, err := srv.commands.FinishOIDC(r.Context(), requestMetadata(r), id, q.Get("state"), q.Get("code"), callbackURL(r, id))
	if err != nil {
		authError(w, r, err)
		return
	}
	frag := url.Values{"access_token": {t.AccessToken}, "refresh_token": {t.RefreshToken}, "token_type": {"Bearer"},
		"expires_in": {strconv.FormatInt(int64(t.ExpiresIn/time.Second), 10)}}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, "/#"+frag.Encode(), http.StatusFound)
}
