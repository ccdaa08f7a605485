package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/accountdb/accountdb/domain"
)

// fuzzBody has a field of every kind the request structs use, so that the
// strict decoder's shape checks meet each of them.
type fuzzBody struct {
	Name   string            `json:"name"`
	Count  *int              `json:"count"`
	Ratio  float64           `json:"ratio"`
	On     bool              `json:"on"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
	Nested struct {
		Email string         `json:"email"`
		Quota map[string]int `json:"quota"`
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	} `json:"nested"`
	Raw   json.RawMessage `json:"raw"`
	Any   any             `json:"any"`
	Roles []string        `json:"roles"`
}

// FuzzDecodeJSON: the strict decoder never panics, refuses only with a 400,
// accepts nothing encoding/json would refuse or read differently, and lets
// no string that is not valid text through, at any depth.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","count":1,"tags":["x"],"labels":{"k":"v"},"nested":{"email":"a@b.c","quota":{"n":1},"items":[{"id":"1"}]}}`,
		`{"raw":{"a":[1,"\u0000"]},"any":[null,true,{"b":"c"}]}`,
		`{"name":"\u0000"}`, "{\"name\":\"\xff\"}", `{"NAME":"a"}`, `{"name":"a","name":"b"}`, `{"tenant_id":"x"}`,
		`{"count":"1"}`, `{"roles":["viewer",1]}`, `[]`, `"s"`, `{} {}`, `{"a":`, `{"nested":{"items":[{"id":1}]}}`,
		`{"labels":{"\u0000":"v"}}`, `{"on":true,"ratio":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var dst fuzzBody
		err := decodeBody(body, &dst)
		var text *InvalidTextError
		switch {
		case err == nil:
			var loose fuzzBody
			if err := json.Unmarshal(body, &loose); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
			if !reflect.DeepEqual(dst, loose) {
				t.Fatalf("%q decoded as %+v, encoding/json reads %+v", body, dst, loose)
			}
			if !utf8.Valid(body) {
				t.Fatalf("accepted %q, which is not UTF-8", body)
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			if s, ok := invalidString(v); ok {
				t.Fatalf("accepted %q, with the string %q", body, s)
			}
		case errors.As(err, &text):
			if len(text.Fields) == 0 {
				t.Fatalf("%q: an InvalidTextError naming no field", body)
			}
			wantBadRequest(t, body, err)
		default:
			wantBadRequest(t, body, err)
		}
	})
}

func wantBadRequest(t *testing.T, body []byte, err error) {
	t.Helper()
	var p Problem
	if !errors.As(err, &p) || p.Status != 400 || p.Code != CodeValidationFailed {
		t.Fatalf("%q refused with %v, want a 400 validation_failed", body, err)
	}
}

// invalidString finds a key or string in v that is not domain.ValidText.
func invalidString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, !domain.ValidText(v)
	case []any:
		for _, e := range v {
			if s, ok := invalidString(e); ok {
				return s, true
			}
		}
	case map[string]any:
		for k, e := range v {
			if !domain.ValidText(k) {
				return k, true
			}
			if s, ok := invalidString(e); ok {
				return s, true
			}
		}
	}
	return "", false
}
