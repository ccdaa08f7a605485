package api_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/api"
)

type quotaBody struct {
	MaxVMs   int `json:"max_vms"`
	MaxCores int `json:"max_cores"`
}

type createBody struct {
	Name  string            `json:"name"`
	Quota *quotaBody        `json:"quota,omitempty"`
	Tags  map[string]string `json:"tags"`
	Disks []quotaBody       `json:"disks"`
	Extra json.RawMessage   `json:"extra"`
}

type rolesBody struct {
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

func decodeRoutes(r chi.Router) {
	r.Post("/test/decode", func(w http.ResponseWriter, r *http.Request) {
		var b createBody
		if err := api.DecodeJSON(w, r, &b); err != nil {
			api.WriteError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(b)
	})
	r.Post("/test/roles", func(w http.ResponseWriter, r *http.Request) {
		var b rolesBody
		if err := api.DecodeJSON(w, r, &b); err != nil {
			api.WriteError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func TestDecodeAcceptsValidBody(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, decodeRoutes)
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"} {
		req := newRequest(t, http.MethodPost, srv.URL+"/test/decode", ct,
			strings.NewReader(`{"name":"a","quota":{"max_vms":2},"tags":{"a":"1","A":"2"},"disks":[{"max_cores":1}],"extra":{"Any":[1,{"x":null}]}}`+"\n\t "))
		res, body := do(t, req)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%q: status %d: %s", ct, res.StatusCode, body)
		}
		var got createBody
		if err := json.Unmarshal(body, &got); err != nil || got.Name != "a" || got.Quota.MaxVMs != 2 || got.Tags["A"] != "2" {
			t.Fatalf("decoded %s (%v)", body, err)
		}
	}
}

func TestDecodeContentType(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, decodeRoutes)
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1",
		"application/jsonx", "application/json; foo=bar", "multipart/form-data; boundary=x", "application/json;;"} {
		res, body := do(t, newRequest(t, http.MethodPost, srv.URL+"/test/decode", ct, strings.NewReader(`{"name":"a"}`)))
		readProblem(t, res, body, http.StatusUnsupportedMediaType, "unsupported_media_type")
	}
}

// onlyReader hides the length so the request is sent chunked.
type onlyReader struct{ io.Reader }

func TestDecodeBodyTooLarge(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, decodeRoutes)
	big := `{"name":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	res, body := postJSON(t, srv.URL+"/test/decode", big)
	readProblem(t, res, body, http.StatusRequestEntityTooLarge, "payload_too_large")

	req := newRequest(t, http.MethodPost, srv.URL+"/test/decode", "application/json", onlyReader{strings.NewReader(big)})
	res, body = do(t, req)
	if req.ContentLength != 0 && req.ContentLength != -1 {
		t.Fatalf("request was not sent without a length: %d", req.ContentLength)
	}
	readProblem(t, res, body, http.StatusRequestEntityTooLarge, "payload_too_large")

	// Just under the limit is fine.
	ok := `{"name":"` + strings.Repeat("a", api.MaxBodyBytes-20) + `"}`
	if res, body := postJSON(t, srv.URL+"/test/decode", ok); res.StatusCode != http.StatusOK {
		t.Fatalf("body under the limit: %d %.200s", res.StatusCode, body)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, decodeRoutes)
	deep := `{"extra":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`
	deepObj := `{"extra":` + strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40) + `}`
	atLimit := `{"extra":` + strings.Repeat("[", api.MaxJSONDepth-1) + strings.Repeat("]", api.MaxJSONDepth-1) + `}`
	if res, body := postJSON(t, srv.URL+"/test/decode", atLimit); res.StatusCode != http.StatusOK {
		t.Fatalf("depth %d: %d %s", api.MaxJSONDepth, res.StatusCode, body)
	}
	cases := map[string]string{
		"empty":              ``,
		"whitespace":         " \n",
		"null":               `null`,
		"array":              `[{"name":"a"}]`,
		"string":             `"a"`,
		"deep array":         deep,
		"deep object":        deepObj,
		"non-utf8 value":     "{\"name\":\"\xff\xfe\"}",
		"non-utf8 key":       "{\"na\xc3me\":\"a\"}",
		"trailing garbage":   `{"name":"a"} x`,
		"second value":       `{"name":"a"}{"name":"b"}`,
		"trailing bracket":   `{"name":"a"}]`,
		"truncated":          `{"name":"a"`,
		"syntax":             `{"name":'a'}`,
		"trailing comma":     `{"name":"a",}`,
		"wrong type":         `{"name":5}`,
		"wrong nested type":  `{"quota":{"max_vms":"many"}}`,
		"float for int":      `{"quota":{"max_vms":1.5}}`,
		"map value type":     `{"tags":{"a":1}}`,
		"array for object":   `{"quota":[]}`,
		"object for array":   `{"disks":{}}`,
		"unknown in element": `{"disks":[{"max_cores":1},{"MAX_CORES":2}]}`,
	}
	for name, in := range cases {
		res, body := postJSON(t, srv.URL+"/test/decode", in)
		p := readProblem(t, res, body, http.StatusBadRequest, "validation_failed")
		if strings.Contains(p.Detail, "api_test") || strings.Contains(p.Detail, "createBody") {
			t.Errorf("%s: detail leaks Go names: %s", name, body)
		}
	}
	res, body := postJSON(t, srv.URL+"/test/decode", `{"quota":{"max_vms":"many"}}`)
	if p := readProblem(t, res, body, 400, "validation_failed"); p.Errors["quota.max_vms"] != "must be an integer" {
		t.Fatalf("type error names %v", p.Errors)
	}
}

func TestDecodeUnknownFields(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, decodeRoutes)
	cases := map[string]string{
		`{"name":"a","nmae":"b"}`:             "nmae",
		`{"Name":"a"}`:                        "Name",
		`{"NAME":"a"}`:                        "NAME",
		`{"quota":{"MAX_VMS":3}}`:             "quota.MAX_VMS",
		`{"quota":{"max_vms":3,"owner":"x"}}`: "quota.owner",
		`{"disks":[{},{"Max_Cores":2}]}`:      "disks[1].Max_Cores",
	}
	for in, field := range cases {
		res, body := postJSON(t, srv.URL+"/test/decode", in)
		p := readProblem(t, res, body, http.StatusBadRequest, "validation_failed")
		if _, ok := p.Errors[field]; !ok || len(p.Errors) != 1 {
			t.Errorf("%s: errors %v, want %q named", in, p.Errors, field)
		}
	}
}

func TestDecodeMassAssignment(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, decodeRoutes)
	for _, key := range []string{"tenant_id", "id", "status", "version", "roles"} {
		for _, k := range []string{key, strings.ToUpper(key), strings.ToUpper(key[:1]) + key[1:], mixedCase(key)} {
			for _, in := range []string{
				`{"name":"a","` + k + `":"x"}`,
				`{"` + k + `":["x"],"name":"a"}`,
				`{"quota":{"` + k + `":1}}`,
			} {
				res, body := postJSON(t, srv.URL+"/test/decode", in)
				p := readProblem(t, res, body, http.StatusBadRequest, "validation_failed")
				if len(p.Errors) != 1 {
					t.Errorf("%s: errors %v", in, p.Errors)
				}
				for f := range p.Errors {
					if !strings.HasSuffix(f, k) {
						t.Errorf("%s: errors %v do not name %q", in, p.Errors, k)
					}
				}
			}
		}
	}
	// roles is accepted where the body declares it, in its exact spelling only.
	if res, body := postJSON(t, srv.URL+"/test/roles", `{"email":"a@example.com","roles":["viewer"]}`); res.StatusCode != http.StatusNoContent {
		t.Fatalf("legit roles: %d %s", res.StatusCode, body)
	}
	for _, in := range []string{
		`{"email":"a@example.com","Roles":["platform_admin"]}`,
		`{"email":"a@example.com","roles":["viewer"],"ROLES":["platform_admin"]}`,
		`{"email":"a@example.com","roles":["viewer"],"tenant_id":"00000000-0000-0000-0000-000000000001"}`,
	} {
		res, body := postJSON(t, srv.URL+"/test/roles", in)
		readProblem(t, res, body, http.StatusBadRequest, "validation_failed")
	}
}

func mixedCase(s string) string {
	b := []byte(s)
	for i := range b {
		if i%2 == 1 && b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

func TestDecodeDuplicateKeys(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, decodeRoutes)
	cases := map[string]string{
		`{"name":"a","name":"b"}`:               "name",
		`{"name":"a","NAME":"b"}`:               "NAME",
		`{"quota":{"max_vms":1,"max_vms":100}}`: "quota.max_vms",
		`{"tags":{"a":"1","a":"2"}}`:            "tags.a",
		`{"extra":{"k":1,"k":2}}`:               "extra.k",
	}
	for in, field := range cases {
		res, body := postJSON(t, srv.URL+"/test/decode", in)
		p := readProblem(t, res, body, http.StatusBadRequest, "validation_failed")
		if _, ok := p.Errors[field]; !ok {
			t.Errorf("%s: errors %v, want %q named", in, p.Errors, field)
		}
	}
	res, body := postJSON(t, srv.URL+"/test/roles", `{"email":"a@example.com","roles":[],"roles":["platform_admin"]}`)
	readProblem(t, res, body, http.StatusBadRequest, "validation_failed")
}

func TestFieldErrors(t *testing.T) {
	var fe api.FieldErrors
	if fe.Err() != nil {
		t.Fatal("empty FieldErrors is an error")
	}
	fe.Add("name", "is required")
	fe.Add("name", "second message is ignored")
	fe.Add("quota.max_vms", "must be positive")
	var p api.Problem
	err := fe.Err()
	if !errors.As(err, &p) || p.Status != 400 || p.Code != api.CodeValidationFailed ||
		p.Errors["name"] != "is required" || len(p.Errors) != 2 {
		t.Fatalf("FieldErrors.Err() = %#v", err)
	}
}
