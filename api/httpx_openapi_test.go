package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
)

// v1Router is NewHandler with the authenticated /v1 API mounted. mountV1 only
// keeps its (here nil) dependencies in closures, so the routes can be walked
// without a database, a signer or a command handler.
func v1Router(t *testing.T) chi.Routes {
	t.Helper()
	h, _ := newRouter(t, api.Deps{V1: &api.V1{}}, nil)
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("NewHandler returned %T", h)
	}
	return routes
}

// servedRoutes lists "METHOD /path" for every route of r.
func servedRoutes(t *testing.T, r chi.Routes) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOpenAPIMatchesRouter keeps openapi.json honest: every route NewHandler
// serves, the /v1 API included, is documented and every documented route is
// served.
func TestOpenAPIMatchesRouter(t *testing.T) {
	routes := v1Router(t)
	// The comparison is only worth something if the /v1 API is mounted.
	served := servedRoutes(t, routes)
	for _, want := range []string{"POST /v1/auth/login", "GET /v1/users/me", "PATCH /v1/tenants/{id}", "PUT /v1/users/{id}/roles"} {
		if !served[want] {
			t.Fatalf("%s is not served; routes: %v", want, served)
		}
	}
	if err := api.CheckOpenAPI(routes, api.OpenAPIDocument()); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAPIMissingRouteFails removes each documented operation in turn
// and expects CheckOpenAPI to name it as served but undocumented.
func TestOpenAPIMissingRouteFails(t *testing.T) {
	routes := v1Router(t)
	var doc map[string]any
	if err := json.Unmarshal(api.OpenAPIDocument(), &doc); err != nil {
		t.Fatal(err)
	}
	paths := doc["paths"].(map[string]any)
	n := 0
	for path, item := range paths {
		for method := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			n++
			op := item.(map[string]any)[method]
			delete(item.(map[string]any), method)
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			item.(map[string]any)[method] = op
			name := strings.ToUpper(method) + " " + path
			err = api.CheckOpenAPI(routes, b)
			if err == nil || !strings.Contains(err.Error(), "served but not in openapi.json: "+name) {
				t.Errorf("without %s: %v", name, err)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d operations documented", n)
	}
}

func TestOpenAPIServed(t *testing.T) {
	srv, _ := newServer(t, api.Deps{V1: &api.V1{}}, nil)
	req := newRequest(t, http.MethodGet, srv.URL+"/v1/openapi.json", "", nil)
	res, body := do(t, req) // no Authorization header
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, api.OpenAPIDocument()) {
		t.Fatal("the served document is not the embedded one")
	}
}

// oaDoc is the part of an OpenAPI document the shape test reads.
type oaDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
		Parameters map[string]oaParam         `json:"parameters"`
		Responses  map[string]oaResponse      `json:"responses"`
		Headers    map[string]json.RawMessage `json:"headers"`
	} `json:"components"`
}

type oaParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type oaResponse struct {
	Ref     string                     `json:"$ref"`
	Headers map[string]json.RawMessage `json:"headers"`
	Content map[string]json.RawMessage `json:"content"`
}

type oaOperation struct {
	OperationID string                 `json:"operationId"`
	Summary     string                 `json:"summary"`
	Description string                 `json:"description"`
	Permission  json.RawMessage        `json:"x-permission"`
	Security    *[]map[string][]string `json:"security"`
	Parameters  []oaParam              `json:"parameters"`
	RequestBody *struct {
		Content map[string]json.RawMessage `json:"content"`
	} `json:"requestBody"`
	Responses map[string]oaResponse `json:"responses"`
}

// publicOperations need no token (API.md).
var publicOperations = map[string]bool{
	"POST /v1/auth/login": true, "POST /v1/auth/refresh": true, "GET /v1/openapi.json": true,
	// Authenticated by the single-use ticket in its path (console_routes.go).
	"GET /v1/consoles/{ticket}": true,
	"POST /v1/auth/mfa":         true, "GET /v1/auth/providers": true,
	"GET /v1/auth/oidc/{provider}/start": true, "GET /v1/auth/oidc/{provider}/callback": true,
}

// TestOpenAPIDocumentWellFormed checks the document itself: JSON, OpenAPI
// 3.1.x, resolvable references, and for every operation a unique
// operationId, a summary, at least one 2xx answer, its permission, its
// security, and the headers and problem answers of the conventions.
func TestOpenAPIDocumentWellFormed(t *testing.T) {
	raw := api.OpenAPIDocument()
	if !json.Valid(raw) {
		t.Fatal("openapi.json is not valid JSON")
	}
	var doc oaDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^3\.1\.[0-9]+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if doc.Info.Title == "" || doc.Info.Version == "" {
		t.Error("info.title and info.version are required")
	}
	if doc.Components.SecuritySchemes["bearerAuth"].Scheme != "bearer" ||
		len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Error("the document must default to bearerAuth (http bearer)")
	}
	checkRefs(t, raw)

	param := func(p oaParam) oaParam {
		if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
			return doc.Components.Parameters[name]
		}
		return p
	}
	response := func(r oaResponse) oaResponse {
		if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
			return doc.Components.Responses[name]
		}
		return r
	}
	ids := map[string]string{}
	n := 0
	for path, item := range doc.Paths {
		var pathParams []oaParam
		if p, ok := item["parameters"]; ok {
			if err := json.Unmarshal(p, &pathParams); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
		}
		for method, rawOp := range item {
			if method == "parameters" {
				continue
			}
			name := strings.ToUpper(method) + " " + path
			var op oaOperation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			n++
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q is also %s", name, op.OperationID, other)
			}
			ids[op.OperationID] = name
			if op.Summary == "" {
				t.Errorf("%s: no summary", name)
			}

			var codes []string
			for code := range op.Responses {
				if code != "default" && !regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(code) {
					t.Errorf("%s: response key %q", name, code)
				}
				codes = append(codes, code)
			}
			has := func(code string) bool { return slices.Contains(codes, code) }
			// A WebSocket's success is its 101; a browser leg of single
			// sign-on answers a redirect instead.
			if !slices.ContainsFunc(codes, func(c string) bool { return strings.HasPrefix(c, "2") || c == "101" || c == "302" }) {
				t.Errorf("%s: no 2xx response", name)
			}

			// x-permission: present, null or a known permission, and named in the description.
			switch perm := string(op.Permission); {
			case perm == "":
				t.Errorf("%s: no x-permission", name)
			case perm == "null":
				if !strings.Contains(op.Description, "Permission: none") && !strings.Contains(op.Description, "Public") {
					t.Errorf("%s: the description does not say that no permission is needed", name)
				}
			default:
				var p auth.Permission
				if err := json.Unmarshal(op.Permission, &p); err != nil || !auth.ValidPermission(p) {
					t.Errorf("%s: x-permission %s is not a permission", name, perm)
				} else if !strings.Contains(op.Description, "`"+string(p)+"`") {
					t.Errorf("%s: the description does not name %s", name, p)
				}
				if !has("403") {
					t.Errorf("%s: needs a permission but documents no 403", name)
				}
			}

			// Security: none on the public routes, the bearer default elsewhere.
			if publicOperations[name] {
				if op.Security == nil || len(*op.Security) != 0 {
					t.Errorf("%s: must declare security: []", name)
				}
			} else {
				if op.Security != nil {
					t.Errorf("%s: must use the default bearer security", name)
				}
				for _, c := range []string{"401", "429"} {
					if !has(c) {
						t.Errorf("%s: no %s response", name, c)
					}
				}
			}
			if strings.Contains(path, "{") && !publicOperations[name] && !has("404") {
				t.Errorf("%s: no 404 response", name)
			}

			params := map[string]bool{}
			for _, p := range append(slices.Clone(pathParams), op.Parameters...) {
				p = param(p)
				params[p.In+":"+p.Name] = true
			}
			if op.RequestBody != nil {
				if _, ok := op.RequestBody.Content["application/json"]; !ok || len(op.RequestBody.Content) != 1 {
					t.Errorf("%s: the request body must be application/json only", name)
				}
				for _, c := range []string{"400", "413", "415"} {
					if !has(c) {
						t.Errorf("%s: takes a body but documents no %s", name, c)
					}
				}
			}
			if has("429") && response(op.Responses["429"]).Headers["Retry-After"] == nil {
				t.Errorf("%s: 429 without Retry-After", name)
			}
			for code, r := range op.Responses {
				if r := response(r); code >= "400" && r.Content["application/problem+json"] == nil {
					t.Errorf("%s: %s is not a problem+json answer", name, code)
				}
			}

			// Commands: 202 Accepted with the consistency token; creations give Location.
			if has("202") {
				r := response(op.Responses["202"])
				if r.Headers["X-Consistency-Token"] == nil || !strings.Contains(string(r.Content["application/json"]), "#/components/schemas/Accepted") {
					t.Errorf("%s: 202 must be the Accepted schema with X-Consistency-Token", name)
				}
				if method == "post" && !strings.Contains(path, "{") && r.Headers["Location"] == nil {
					t.Errorf("%s: a creation must answer Location", name)
				}
				if !params["header:Idempotency-Key"] {
					t.Errorf("%s: a command without Idempotency-Key", name)
				}
				if strings.Contains(path, "{id}") && !params["header:If-Match"] {
					t.Errorf("%s: a command on an existing resource without If-Match", name)
				}
			}
			if method == "get" && has("200") {
				schema := string(response(op.Responses["200"]).Content["application/json"])
				// Follow a $ref to a named schema (VMList: allOf ListMeta, ...).
				if m := schemaRef.FindStringSubmatch(schema); m != nil {
					schema += string(doc.Components.Schemas[m[1]])
				}
				// A list pages with limit and cursor unless it says it answers
				// everything in one page (then it must not take them).
				onePage := strings.Contains(op.Description, "all in one page")
				if strings.Contains(schema, "ListMeta") && strings.Contains(path, "/v1/") && !onePage &&
					(!params["query:limit"] || !params["query:cursor"]) {
					t.Errorf("%s: a list without limit and cursor", name)
				}
				if onePage && (params["query:limit"] || params["query:cursor"]) {
					t.Errorf("%s: answers all in one page but takes limit or cursor", name)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d operations", n)
	}

	// The filters of the filtered lists, and the parameters of the VM routes.
	for _, tc := range []struct {
		path, method string
		want         []string
	}{
		{"/v1/users", "get", []string{"query:limit", "query:cursor", "query:tenant_id", "query:status", "query:email", "header:X-Consistency-Token"}},
		{"/v1/vms", "get", []string{"query:limit", "query:cursor", "query:status", "query:name", "header:X-Consistency-Token"}},
		{"/v1/vms/{id}/history", "get", []string{"path:id", "query:limit", "query:cursor"}},
		{"/v1/audit", "get", []string{"query:tenant_id", "query:stream_id", "query:type", "query:actor_id", "query:since", "query:until", "query:limit", "query:cursor"}},
		{"/v1/vms/{id}", "get", []string{"path:id", "query:as_of"}},
		{"/v1/users/{id}", "get", []string{"path:id", "query:as_of", "query:tenant_id"}},
		{"/v1/tenants/{id}", "get", []string{"path:id", "query:as_of"}},
		{"/v1/vms/{id}/actions/{action}", "post", []string{"path:id", "path:action", "header:Idempotency-Key", "header:If-Match"}},
	} {
		var op oaOperation
		if err := json.Unmarshal(doc.Paths[tc.path][tc.method], &op); err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		var ps []oaParam
		if raw, ok := doc.Paths[tc.path]["parameters"]; ok {
			if err := json.Unmarshal(raw, &ps); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]bool{}
		for _, p := range append(ps, op.Parameters...) {
			p = param(p)
			got[p.In+":"+p.Name] = true
		}
		for _, want := range tc.want {
			if !got[want] {
				t.Errorf("%s %s: no %s parameter", strings.ToUpper(tc.method), tc.path, want)
			}
		}
	}
}

var schemaRef = regexp.MustCompile(`"#/components/schemas/([A-Za-z0-9_]+)"`)

// checkRefs resolves every local "$ref" of the document.
func checkRefs(t *testing.T, raw []byte) {
	t.Helper()
	var root any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k != "$ref" {
					walk(x)
					continue
				}
				ref, _ := x.(string)
				target, ok := strings.CutPrefix(ref, "#/")
				if !ok {
					t.Errorf("$ref %q is not local", ref)
					continue
				}
				var cur any = root
				for _, part := range strings.Split(target, "/") {
					m, _ := cur.(map[string]any)
					if cur, ok = m[part]; !ok {
						t.Errorf("$ref %q does not resolve", ref)
						break
					}
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(root)
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
