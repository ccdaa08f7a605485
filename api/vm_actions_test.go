package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/domain"
)

// TestVMActionRoutes: every action of the domain's table has a route, the
// OpenAPI document has that route with the same permission and body, and
// the document's action names are the table's.
func TestVMActionRoutes(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas    map[string]json.RawMessage `json:"schemas"`
			Parameters map[string]struct {
				Schema struct{ Enum []string } `json:"schema"`
			} `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var names, power []string
	for _, a := range domain.VMActions {
		names = append(names, a.Name)
		route, ok := routeOf(a)
		if !ok {
			t.Errorf("%s: no route", a.Name)
			continue
		}
		if a.Power {
			power = append(power, a.Name)
			if _, ok := vmActionRoutes[a.Name]; ok {
				t.Errorf("%s: a power action with a route of its own", a.Name)
			}
		}
		path := route.Path
		if a.Power {
			path = strings.TrimSuffix(path, a.Name) + "{action}"
		}
		var op struct {
			Permission  *string `json:"x-permission"`
			RequestBody *struct {
				Required bool `json:"required"`
			} `json:"requestBody"`
		}
		raw, ok := doc.Paths[path][strings.ToLower(route.Method)]
		if !ok {
			t.Errorf("%s: %s %s is not in the OpenAPI document", a.Name, route.Method, path)
			continue
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		if op.Permission == nil || *op.Permission != string(route.Permission) {
			t.Errorf("%s: the document's %s %s needs %v, the table says %s", a.Name, route.Method, path, op.Permission, route.Permission)
		}
		if body := op.RequestBody != nil && op.RequestBody.Required; body != route.Body {
			t.Errorf("%s: the document's %s %s requires a body: %v, the table says %v", a.Name, route.Method, path, body, route.Body)
		}
	}
	for name := range vmActionRoutes {
		if _, ok := domain.LookupVMAction(name); !ok {
			t.Errorf("a route for %s, which domain.VMActions lacks", name)
		}
	}
	if got := doc.Components.Parameters["action"].Schema.Enum; !slices.Equal(got, power) {
		t.Errorf("the document's power actions %v, the table's %v", got, power)
	}
	var vmSchema struct {
		Properties map[string]struct{ Enum []string } `json:"properties"`
	}
	for schema, want := range map[string][]string{"VM": append([]string{""}, names...), "VMAction": names} {
		field := map[string]string{"VM": "pending_action", "VMAction": "name"}[schema]
		if err := json.Unmarshal(doc.Components.Schemas[schema], &vmSchema); err != nil {
			t.Fatal(err)
		}
		if got := vmSchema.Properties[field].Enum; !slices.Equal(got, want) {
			t.Errorf("%s.%s: the document says %v, the table %v", schema, field, got, want)
		}
	}
}

// TestVMActionRouteRefusesOtherNames: /actions/{action} takes the power
// actions only; another action of the table, or no action at all, is a 404
// before any command runs.
func TestVMActionRouteRefusesOtherNames(t *testing.T) {
	names := []string{"explode", "Start", ""}
	for _, a := range domain.VMActions {
		if !a.Power {
			names = append(names, a.Name)
		}
	}
	for _, name := range names {
		rc := chi.NewRouteContext()
		rc.URLParams.Add("action", name)
		r := httptest.NewRequest(http.MethodPost, "/v1/vms/"+domain.ActionStart+"/actions/"+name, nil)
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rc))
		w := httptest.NewRecorder()
		(&server{}).vmAction(w, r)
		if w.Code != http.StatusNotFound {
			t.Errorf("%q: %d %s", name, w.Code, w.Body)
		}
	}
}

// TestListVMActionsServesTheTable: GET /v1/vm-actions is the table, in its
// order, with each action's route.
func TestListVMActionsServesTheTable(t *testing.T) {
	w := httptest.NewRecorder()
	(&server{}).listVMActions(w, httptest.NewRequest(http.MethodGet, "/v1/vm-actions", nil))
	var got List[vmActionResponse]
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK || got.NextCursor != nil {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	if len(got.Items) != len(domain.VMActions) {
		t.Fatalf("%d actions, want %d", len(got.Items), len(domain.VMActions))
	}
	for i, a := range domain.VMActions {
		g := got.Items[i]
		if g.Name != a.Name || g.Disruptive != a.Disruptive || len(g.AllowedFrom) != len(a.AllowedFrom) ||
			(g.Transient == nil) != (a.Transient == "") || (g.Settles == nil) != (a.Settles == "") {
			t.Errorf("%d: %+v, want %+v", i, g, a)
		}
	}
	stop := got.Items[slices.IndexFunc(got.Items, func(a vmActionResponse) bool { return a.Name == domain.ActionStop })]
	if stop.Method != http.MethodPost || stop.Path != "/v1/vms/{id}/actions/stop" || stop.Permission != "vm:power" ||
		stop.Body || !slices.Equal(stop.AllowedFrom, []string{"running"}) || *stop.Transient != "stopping" || *stop.Settles != "stopped" || !stop.Disruptive {
		t.Errorf("stop: %+v", stop)
	}
}
