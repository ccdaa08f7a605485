package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
)

// openAPIIgnored are served by the router but deliberately undocumented.
func openAPIIgnored(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/", "/index.html": // operations; the web console
		return true
	}
	// Catch-all mounts (static assets of the web console) are not API routes.
	return strings.Contains(path, "*")
}

var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// chiParam matches a chi parameter, with an optional regexp: {id:[0-9]+}.
var chiParam = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

// CheckOpenAPI compares the routes of router (chi.Walk) with the paths of
// the OpenAPI document doc in both directions: every METHOD path served
// must be documented and every documented operation must be served, with
// the same parameter names ({id} in both). It also checks that every path
// parameter is declared and that the document has the shared pieces
// (components.schemas.Problem, the bearerAuth scheme). The operations
// endpoints and catch-all routes are ignored. All differences are reported
// in one error.
func CheckOpenAPI(router chi.Routes, doc []byte) error {
	var d openAPIDocShape
	if err := json.Unmarshal(doc, &d); err != nil {
		return fmt.Errorf("openapi: parse: %w", err)
	}
	var problems []string
	if !strings.HasPrefix(d.OpenAPI, "3.1") {
		problems = append(problems, fmt.Sprintf("openapi version %q, want 3.1.x", d.OpenAPI))
	}
	if _, ok := d.Components.Schemas["Problem"]; !ok {
		problems = append(problems, "components.schemas.Problem is missing")
	}
	if _, ok := d.Components.SecuritySchemes["bearerAuth"]; !ok {
		problems = append(problems, "components.securitySchemes.bearerAuth is missing")
	}

	documented := map[string]bool{}
	for path, item := range d.Paths {
		for _, m := range openAPIMethods {
			op, ok := item[m]
			if !ok {
				continue
			}
			documented[strings.ToUpper(m)+" "+path] = true
			problems = append(problems, d.checkParams(strings.ToUpper(m)+" "+path, path, item, op)...)
		}
	}
	served := map[string]bool{}
	err := chi.Walk(router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		path := chiParam.ReplaceAllString(route, "{$1}")
		if len(path) > 1 {
			path = strings.TrimSuffix(path, "/")
		}
		if !openAPIIgnored(path) {
			served[method+" "+path] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("openapi: walk routes: %w", err)
	}
	for k := range served {
		if !documented[k] {
			problems = append(problems, "served but not in openapi.json: "+k)
		}
	}
	for k := range documented {
		if !served[k] && !openAPIIgnored(strings.SplitN(k, " ", 2)[1]) {
			problems = append(problems, "in openapi.json but not served: "+k)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return errors.New("openapi: " + strings.Join(problems, "; "))
}

type openAPIDocShape struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		Parameters      map[string]openAPIParam    `json:"parameters"`
	} `json:"components"`
}

type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

// checkParams reports path template parameters that neither the path item
// nor the operation declares (directly or by #/components/parameters/ ref).
func (d openAPIDocShape) checkParams(opName, path string, item map[string]json.RawMessage, op json.RawMessage) []string {
	declared := map[string]bool{}
	var problems []string
	collect := func(raw json.RawMessage) {
		var holder struct {
			Parameters []openAPIParam `json:"parameters"`
		}
		if json.Unmarshal(raw, &holder) != nil {
			return
		}
		for _, p := range holder.Parameters {
			if p.Ref != "" {
				ref, ok := d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
				if !ok || !strings.HasPrefix(p.Ref, "#/components/parameters/") {
					problems = append(problems, fmt.Sprintf("%s: unresolvable parameter $ref %q", opName, p.Ref))
					continue
				}
				p = ref
			}
			if p.In == "path" {
				declared[p.Name] = true
			}
		}
	}
	if raw, ok := item["parameters"]; ok {
		collect(json.RawMessage(`{"parameters":` + string(raw) + `}`))
	}
	collect(op)
	for _, m := range templateParam.FindAllStringSubmatch(path, -1) {
		if !declared[m[1]] {
			problems = append(problems, fmt.Sprintf("%s: path parameter {%s} is not declared", opName, m[1]))
		}
	}
	return problems
}
