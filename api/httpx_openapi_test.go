package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/api"
)

// TestOpenAPIMatchesRouter keeps openapi.json honest: every route NewRouter
// serves is documented and every documented route is served.
func TestOpenAPIMatchesRouter(t *testing.T) {
	h, _ := newRouter(t, api.Deps{}, nil)
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("NewRouter returned %T", h)
	}
	if err := api.CheckOpenAPI(routes, api.OpenAPIDocument()); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAPIServed(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, nil)
	req := newRequest(t, http.MethodGet, srv.URL+"/v1/openapi.json", "", nil)
	res, body := do(t, req) // no Authorization header
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Security   []map[string][]string
		Components struct {
			Schemas         map[string]json.RawMessage
			SecuritySchemes map[string]struct{ Type, Scheme string }
		}
		Paths map[string]map[string]struct {
			Security *[]map[string][]string `json:"security"`
		}
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Components.Schemas["Problem"] == nil ||
		doc.Components.SecuritySchemes["bearerAuth"].Scheme != "bearer" || len(doc.Security) != 1 {
		t.Fatalf("document shape: %+v", doc)
	}
	if s := doc.Paths["/v1/openapi.json"]["get"].Security; s == nil || len(*s) != 0 {
		t.Fatal("GET /v1/openapi.json must declare security: [] (no auth)")
	}
}

func TestCheckOpenAPIFindsDifferences(t *testing.T) {
	doc := []byte(`{
	  "openapi": "3.1.0",
	  "paths": {
	    "/v1/vms/{id}": {"parameters": [{"$ref": "#/components/parameters/id"}], "get": {}, "delete": {}},
	    "/v1/vms/{vm_id}/snapshots": {"post": {}},
	    "/v1/tenants": {"get": {}},
	    "/v1/ghost": {"get": {}},
	    "/healthz": {"get": {}}
	  },
	  "components": {
	    "schemas": {"Problem": {}},
	    "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
	    "parameters": {"id": {"name": "id", "in": "path", "required": true}}
	  }
	}`)
	r := chi.NewRouter()
	noop := func(http.ResponseWriter, *http.Request) {}
	r.Get("/healthz", noop)
	r.Get("/metrics", noop)
	r.Route("/v1", func(r chi.Router) {
		r.Get("/vms/{id:[0-9a-f-]+}", noop)
		r.Delete("/vms/{id}", noop)
		r.Post("/vms/{id}/snapshots", noop)
		r.Get("/tenants/", noop)
		r.Post("/tenants", noop)
		r.Mount("/static", http.FileServer(http.Dir(".")))
	})
	err := api.CheckOpenAPI(r, doc)
	if err == nil {
		t.Fatal("differences not found")
	}
	msg := err.Error()
	for _, want := range []string{
		"served but not in openapi.json: POST /v1/tenants",
		"served but not in openapi.json: POST /v1/vms/{id}/snapshots",
		"in openapi.json but not served: POST /v1/vms/{vm_id}/snapshots",
		"in openapi.json but not served: GET /v1/ghost",
		"POST /v1/vms/{vm_id}/snapshots: path parameter {vm_id} is not declared",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
	for _, unwanted := range []string{"GET /v1/vms/{id}", "DELETE /v1/vms/{id}", "GET /v1/tenants", "healthz", "metrics", "static"} {
		for _, part := range strings.Split(msg, "; ") {
			if strings.HasSuffix(part, unwanted) {
				t.Errorf("unexpected %q", part)
			}
		}
	}

	if err := api.CheckOpenAPI(r, []byte(`{"openapi":"3.0.3","paths":{}}`)); err == nil ||
		!strings.Contains(err.Error(), "3.1") || !strings.Contains(err.Error(), "Problem") || !strings.Contains(err.Error(), "bearerAuth") {
		t.Fatalf("bad document accepted: %v", err)
	}
}
