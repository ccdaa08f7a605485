package api

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
)

// openAPIBodies pairs operations with the Go types of their request and
// response bodies; nil is no body.
var openAPIBodies = []struct {
	op        string
	req, resp any
}{
	{"login", loginRequest{}, tokenResponse{}},
	{"getUsage", nil, usageResponse{}},
	{"createWebhook", webhookRequest{}, createdWebhookResponse{}},
	{"listWebhooks", nil, List[webhookResponse]{}},
	{"getWebhook", nil, webhookResponse{}},
	{"updateWebhook", webhookRequest{}, accepted{}},
	{"deleteWebhook", nil, accepted{}},
	{"rotateWebhookSecret", rotateSecretRequest{}, rotatedSecretResponse{}},
	{"replayWebhook", replayRequest{}, accepted{}},
	{"listWebhookDeliveries", nil, List[deliveryResponse]{}},
	{"redeliverWebhook", nil, accepted{}},
	{"refreshTokens", refreshRequest{}, tokenResponse{}},
	{"logout", nil, nil},
	{"getMe", nil, meResponse{}},
	{"listSessions", nil, List[sessionResponse]{}},
	{"revokeSession", nil, nil},
	{"createTenant", createTenantRequest{}, accepted{}},
	{"listTenants", nil, List[tenantResponse]{}},
	{"getTenant", nil, tenantResponse{}},
	{"updateTenant", updateTenantRequest{}, accepted{}},
	{"suspendTenant", struct{}{}, accepted{}},
	{"resumeTenant", struct{}{}, accepted{}},
	{"createUser", createUserRequest{}, accepted{}},
	{"listUsers", nil, List[userResponse]{}},
	{"getUser", nil, userResponse{}},
	{"changeUserRoles", rolesRequest{}, accepted{}},
	{"disableUser", struct{}{}, accepted{}},
	{"enableUser", struct{}{}, accepted{}},
	{"changeUserPassword", passwordRequest{}, accepted{}},
	{"listVMs", nil, List[vmResponse]{}},
	{"createVM", createVMRequest{}, accepted{}},
	{"getVM", nil, vmResponse{}},
	{"resizeVM", resizeVMRequest{}, accepted{}},
	{"deleteVM", struct{}{}, accepted{}},
	{"actOnVM", struct{}{}, accepted{}},
	{"snapshotVM", snapshotRequest{}, accepted{}},
	{"listSnapshots", nil, List[snapshotResponse]{}},
	{"rollbackSnapshot", struct{}{}, accepted{}},
	{"deleteSnapshot", struct{}{}, accepted{}},
	{"backupVM", backupRequest{}, accepted{}},
	{"listVMBackups", nil, List[backupResponse]{}},
	{"listBackups", nil, List[backupResponse]{}},
	{"getBackup", nil, backupResponse{}},
	{"deleteBackup", struct{}{}, accepted{}},
	{"restoreBackup", restoreRequest{}, accepted{}},
	{"setClusterBackupStorage", backupStorageRequest{}, accepted{}},
	{"createBackupSchedule", scheduleRequest{}, accepted{}},
	{"listBackupSchedules", nil, List[scheduleResponse]{}},
	{"getBackupSchedule", nil, scheduleResponse{}},
	{"updateBackupSchedule", schedulePatch{}, accepted{}},
	{"deleteBackupSchedule", struct{}{}, accepted{}},
	{"getVMHistory", nil, List[eventResponse]{}},
	{"listVMActions", nil, List[vmActionResponse]{}},
	{"listAudit", nil, List[eventResponse]{}},
	{"verifyAudit", nil, verifyResponse{}},
	{"createCluster", createClusterRequest{}, accepted{}},
	{"listClusters", nil, List[clusterResponse]{}},
	{"listClusterNodes", nil, List[nodeDTO]{}},
	{"listTemplates", nil, List[templateResponse]{}},
	{"createIPPool", createIPPoolRequest{}, accepted{}},
	{"listIPPools", nil, List[ipPoolResponse]{}},
	{"getIPPool", nil, ipPoolResponse{}},
	{"listPoolAddresses", nil, List[poolAddressResponse]{}},
	{"createToken", createTokenRequest{}, createdTokenResponse{}},
	{"listOwnTokens", nil, List[tokenItem]{}},
	{"listUserTokens", nil, List[tokenItem]{}},
	{"login", loginRequest{}, mfaChallengeResponse{}},
	{"completeMFA", mfaRequest{}, tokenResponse{}},
	{"getTOTPStatus", nil, totpStatusResponse{}},
	{"startTOTP", nil, totpEnrolmentResponse{}},
	{"confirmTOTP", codeRequest{}, recoveryCodesResponse{}},
	{"disableTOTP", codeRequest{}, accepted{}},
	{"getMFARequirement", nil, mfaRequirement{}},
	{"setMFARequirement", mfaRequirement{}, accepted{}},
	{"listAuthProviders", nil, List[publicProvider]{}},
	{"createIdentityProvider", providerRequest{}, accepted{}},
	{"listIdentityProviders", nil, List[providerResponse]{}},
	{"getIdentityProvider", nil, providerResponse{}},
	{"updateIdentityProvider", providerRequest{}, accepted{}},
}

// TestOpenAPISchemasMatchGoTypes compares the request and response schemas
// of the document with the structs the handlers decode and encode: the same
// JSON names at every level, request objects closed (additionalProperties:
// false, as DecodeJSON refuses unknown fields), every response member
// required (the handlers always send it), and compatible JSON types.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	c := schemaChecker{t: t, root: doc}
	ops := map[string]map[string]any{}
	for _, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if method != "parameters" {
				ops[op.(map[string]any)["operationId"].(string)] = op.(map[string]any)
			}
		}
	}
	for _, tc := range openAPIBodies {
		op, ok := ops[tc.op]
		if !ok {
			t.Errorf("operation %s is not documented", tc.op)
			continue
		}
		body, hasBody := op["requestBody"].(map[string]any)
		switch {
		case tc.req == nil && hasBody:
			t.Errorf("%s: documents a request body the handler does not read", tc.op)
		case tc.req != nil && !hasBody:
			t.Errorf("%s: documents no request body", tc.op)
		case tc.req != nil:
			schema := c.dig(body, "content", "application/json", "schema")
			c.compare(tc.op+" request", schema, reflect.TypeOf(tc.req), true)
		}

		var code string
		var ok2xx map[string]any
		for k, v := range op["responses"].(map[string]any) {
			if strings.HasPrefix(k, "2") {
				code, ok2xx = k, c.resolve(v.(map[string]any))
			}
		}
		content, hasContent := ok2xx["content"].(map[string]any)
		switch {
		case ok2xx == nil:
			t.Errorf("%s: no 2xx response", tc.op)
		case tc.resp == nil && (hasContent || code != "204"):
			t.Errorf("%s: must answer 204 without content, documents %s %v", tc.op, code, content)
		case tc.resp != nil && !hasContent:
			t.Errorf("%s: %s documents no content", tc.op, code)
		case tc.resp != nil:
			c.compare(tc.op+" response", c.dig(content, "application/json", "schema"), reflect.TypeOf(tc.resp), false)
		}
	}
}

type schemaChecker struct {
	t    *testing.T
	root map[string]any
}

func (c schemaChecker) dig(v map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := v[k].(map[string]any)
		if !ok {
			c.t.Errorf("no %q in %v", k, v)
			return map[string]any{}
		}
		v = next
	}
	return v
}

// resolve follows a local $ref and merges allOf (properties, required and
// additionalProperties; later members win).
func (c schemaChecker) resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			break
		}
		var cur any = c.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, _ := cur.(map[string]any)
			cur = m[part]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			c.t.Errorf("$ref %q does not resolve", ref)
			return map[string]any{}
		}
		s = next
	}
	all, ok := s["allOf"].([]any)
	if !ok {
		return s
	}
	out := map[string]any{}
	props := map[string]any{}
	var required []any
	for k, v := range s {
		if k != "allOf" {
			out[k] = v
		}
	}
	for _, part := range all {
		p := c.resolve(part.(map[string]any))
		for k, v := range p {
			switch k {
			case "properties":
				for name, prop := range v.(map[string]any) {
					props[name] = prop
				}
			case "required":
				required = append(required, v.([]any)...)
			default:
				out[k] = v
			}
		}
	}
	out["properties"], out["required"] = props, required
	return out
}

// variantOf is the one of a oneOf's object variants that has the Go type's
// first JSON member (a login answers a token pair or an MFA challenge).
func (c schemaChecker) variantOf(where string, variants []any, t reflect.Type) map[string]any {
	first, _, _ := strings.Cut(t.Field(0).Tag.Get("json"), ",")
	for _, v := range variants {
		r := c.resolve(v.(map[string]any))
		if props, ok := r["properties"].(map[string]any); ok && props[first] != nil {
			return r
		}
	}
	c.t.Errorf("%s: no oneOf variant has %q", where, first)
	return map[string]any{}
}

func schemaTypes(s map[string]any) []string {
	switch v := s["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	rawJSONType = reflect.TypeFor[json.RawMessage]()
)

func (c schemaChecker) compare(where string, s map[string]any, t reflect.Type, request bool) {
	s = c.resolve(s)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if variants, ok := s["oneOf"].([]any); ok && t.Kind() == reflect.Struct {
		s = c.variantOf(where, variants, t)
	}
	want := ""
	switch {
	case t == rawJSONType:
		// Any JSON value; the schema only has to say which.
		if len(schemaTypes(s)) == 0 {
			c.t.Errorf("%s: raw JSON without a schema type", where)
		}
		return
	case t == timeType:
		want = "string"
		if s["format"] != "date-time" {
			c.t.Errorf("%s: a time must be format date-time", where)
		}
	case t.Kind() == reflect.Struct:
		want = "object"
		c.compareObject(where, s, t, request)
	case t.Kind() == reflect.Slice:
		want = "array"
		items, ok := s["items"].(map[string]any)
		if !ok {
			c.t.Errorf("%s: an array without items", where)
		} else {
			c.compare(where+"[]", items, t.Elem(), request)
		}
	case t.Kind() == reflect.String:
		want = "string"
	case t.Kind() == reflect.Bool:
		want = "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		want = "integer"
	default:
		c.t.Errorf("%s: unhandled Go type %s", where, t)
		return
	}
	if types := schemaTypes(s); !slices.Contains(types, want) {
		c.t.Errorf("%s: schema type %v, Go %s wants %s", where, types, t, want)
	}
}

func (c schemaChecker) compareObject(where string, s map[string]any, t reflect.Type, request bool) {
	props, _ := s["properties"].(map[string]any)
	required := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, name := range r {
			required[name.(string)] = true
		}
	}
	if request && s["additionalProperties"] != false {
		c.t.Errorf("%s: a request object must have additionalProperties: false", where)
	}
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names[name] = true
		prop, ok := props[name].(map[string]any)
		if !ok {
			c.t.Errorf("%s: Go field %s (%q) is not in the schema", where, f.Name, name)
			continue
		}
		if !request && !strings.Contains(opts, "omitempty") && !required[name] {
			c.t.Errorf("%s: %q is always sent but not required", where, name)
		}
		c.compare(where+"."+name, prop, f.Type, request)
	}
	for name := range props {
		if !names[name] {
			c.t.Errorf("%s: schema property %q is not in Go %s", where, name, t)
		}
	}
	for name := range required {
		if !names[name] {
			c.t.Errorf("%s: required %q is not in Go %s", where, name, t)
		}
	}
}

// TestOpenAPIPermissionsMatchRouteTable reads the route tables of this
// package's source (r.With(srv.require(auth.PermX)).Method("/v1/...", h))
// and compares each route's permission with the x-permission of its
// operation (null: no srv.require).
func TestOpenAPIPermissionsMatchRouteTable(t *testing.T) {
	perms := permissionConstants(t, filepath.Join("..", "auth"))
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]string{"Get": http.MethodGet, "Post": http.MethodPost, "Put": http.MethodPut,
		"Patch": http.MethodPatch, "Delete": http.MethodDelete}
	routes := map[string]string{} // "METHOD /path" -> permission ("" none)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || methods[sel.Sel.Name] == "" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			path, err := strconv.Unquote(lit.Value)
			if err != nil || !strings.HasPrefix(path, "/v1/") {
				return true
			}
			key := methods[sel.Sel.Name] + " " + chiParam.ReplaceAllString(path, "{$1}")
			routes[key] = requiredPermission(t, sel.X, perms)
			return true
		})
	}

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			perm, ok := routes[key]
			if !ok {
				continue // served from a route table this test does not read
			}
			var op struct {
				Permission *string `json:"x-permission"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			got := ""
			if op.Permission != nil {
				got = *op.Permission
			}
			if got != perm {
				t.Errorf("%s: x-permission %q, the route table requires %q", key, got, perm)
			}
			checked++
		}
	}
	if checked < 19 {
		t.Fatalf("only %d routes found in the source (%v)", checked, routes)
	}
}

// requiredPermission is the permission of srv.require(auth.PermX) in
// r.With(...) on the route's receiver, or "".
func requiredPermission(t *testing.T, recv ast.Expr, perms map[string]string) string {
	with, ok := recv.(*ast.CallExpr)
	if !ok {
		return ""
	}
	if sel, ok := with.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "With" {
		return ""
	}
	for _, arg := range with.Args {
		call, ok := arg.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			continue
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "require" {
			continue
		}
		c, ok := call.Args[0].(*ast.SelectorExpr)
		if !ok || perms[c.Sel.Name] == "" {
			t.Fatalf("cannot read the permission of srv.require(%v)", call.Args[0])
		}
		return perms[c.Sel.Name]
	}
	return ""
}

// permissionConstants maps the Perm* constant names of package auth to
// their values.
func permissionConstants(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				v := spec.(*ast.ValueSpec)
				for i, n := range v.Names {
					if !strings.HasPrefix(n.Name, "Perm") || i >= len(v.Values) {
						continue
					}
					if lit, ok := v.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						out[n.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Perm* constants in package auth")
	}
	return out
}

// TestOpenAPIVMEnums compares the VM enums of the document with the values
// the handlers accept (TestVMActionRoutes compares the actions).
func TestOpenAPIVMEnums(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas    map[string]struct{ Enum []string } `json:"schemas"`
			Parameters map[string]struct {
				Schema struct{ Enum []string } `json:"schema"`
			} `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for s := range vmStatuses {
		if s != "" {
			statuses = append(statuses, s)
		}
	}
	sameSet := func(what string, got, want []string) {
		got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("%s: the document says %v, the handlers accept %v", what, got, want)
		}
	}
	sameSet("VMStatus", doc.Components.Schemas["VMStatus"].Enum, statuses)
	sameSet("VMKind", doc.Components.Schemas["VMKind"].Enum, []string{string(domain.KindQEMU), string(domain.KindLXC)})
}

// secretNames never appear in an answer.
var secretNames = map[string]bool{"token_secret": true, "sealed_secret": true, "password": true, "current_password": true, "recovery_code": true, "client_secret": true}

// answeredOnce are the secrets the contract answers exactly once, by schema:
// a console's VNC password (API.md, "Console").
var answeredOnce = map[string]string{"#/components/schemas/ConsoleTicket": "password"}

// TestOpenAPISecretsNeverAnswered checks that secrets a request may carry
// are writeOnly, and that neither a documented response schema nor the Go
// type of an answer has a member of that name.
func TestOpenAPISecretsNeverAnswered(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	c := schemaChecker{t: t, root: doc}
	secret := c.dig(doc, "components", "schemas", "CreateClusterRequest", "properties", "token_secret")
	if secret["writeOnly"] != true {
		t.Error("CreateClusterRequest.token_secret must be writeOnly")
	}

	// Every response schema, following $ref, allOf, properties and items.
	seen := map[string]bool{}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if seen[ref] {
					return
				}
				seen[ref] = true
				walk(ref, c.resolve(map[string]any{"$ref": ref}))
				return
			}
			if props, ok := v["properties"].(map[string]any); ok {
				for name := range props {
					if secretNames[name] && answeredOnce[where] != name {
						t.Errorf("%s: an answer has the secret %q", where, name)
					}
				}
			}
			for _, x := range v {
				walk(where, x)
			}
		case []any:
			for _, x := range v {
				walk(where, x)
			}
		}
	}
	n := 0
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			for code, r := range op.(map[string]any)["responses"].(map[string]any) {
				walk(strings.ToUpper(method)+" "+path+" "+code, r)
				n++
			}
		}
	}
	if n == 0 || !seen["#/components/schemas/Cluster"] {
		t.Fatalf("the walk did not reach the responses (%d, %v)", n, seen)
	}

	// The Go answers.
	var goWalk func(where string, t2 reflect.Type, depth int)
	goWalk = func(where string, t2 reflect.Type, depth int) {
		for t2.Kind() == reflect.Pointer || t2.Kind() == reflect.Slice {
			t2 = t2.Elem()
		}
		if t2.Kind() != reflect.Struct || t2 == timeType || depth > 8 {
			return
		}
		for i := range t2.NumField() {
			f := t2.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if secretNames[name] {
				t.Errorf("%s: Go answer %s has the secret %q", where, t2, name)
			}
			goWalk(where, f.Type, depth+1)
		}
	}
	for _, tc := range openAPIBodies {
		if tc.resp != nil {
			goWalk(tc.op, reflect.TypeOf(tc.resp), 0)
		}
	}
}
