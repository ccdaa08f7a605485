package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/accountdb/accountdb/domain"
)

// forbiddenKey reports the keys never accepted from a body unless the target
// struct declares the field itself: the server, not the client, decides them.
func forbiddenKey(key string) bool {
	switch strings.ToLower(key) {
	case "tenant_id", "id", "status", "version", "roles":
		return true
	}
	return false
}

// checkShape is the first pass of DecodeJSON: it walks the tokens of body
// alongside the type t. encoding/json matches keys case-insensitively and
// keeps the last of duplicate keys, so "TENANT_ID" or a second "name" would
// slip through it; here every key must equal a JSON field name exactly and
// appear once. It also bounds nesting and rejects trailing data.
//
// Strings (keys and values) that are not domain.ValidText are not a shape
// error: they are collected, by JSON path, in the returned FieldErrors, so
// that DecodeJSON can still decode the body (the login route counts a failed
// sign-in with a malformed email before refusing it).
func checkShape(body []byte, t reflect.Type) (FieldErrors, error) {
	s := shapeChecker{dec: json.NewDecoder(bytes.NewReader(body)), body: body}
	s.dec.UseNumber()
	tok, err := s.token("")
	if err != nil {
		return nil, BadRequest("the request body is not valid JSON", nil)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if derefType(t).Kind() == reflect.Struct {
			return nil, BadRequest("the request body must be a JSON object", nil)
		}
	}
	if err := s.value(tok, t, "", 1); err != nil {
		return nil, err
	}
	if _, err := s.dec.Token(); err != io.EOF {
		return nil, BadRequest("the request body has data after the JSON value", nil)
	}
	return s.text, nil
}

type shapeChecker struct {
	dec  *json.Decoder
	body []byte
	text FieldErrors // strings that are not domain.ValidText, by path
}

// token reads the next token. A string value that is not valid text is
// noted in s.text under path ("body" for the whole body); its raw bytes are
// looked at, since the decoder turns invalid UTF-8 into U+FFFD.
func (s *shapeChecker) token(path string) (json.Token, error) {
	tok, valid, err := s.rawToken()
	if !valid {
		if path == "" {
			path = "body"
		}
		s.text.Add(path, domain.InvalidTextMessage)
	}
	return tok, err
}

// rawToken reads the next token and whether it is valid text (every token
// but a string is).
func (s *shapeChecker) rawToken() (tok json.Token, valid bool, err error) {
	start := s.dec.InputOffset()
	tok, err = s.dec.Token()
	if str, ok := tok.(string); ok && err == nil {
		return tok, utf8.Valid(s.body[start:s.dec.InputOffset()]) && strings.IndexByte(str, 0) < 0, nil
	}
	return tok, true, err
}

func derefType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// opaque types decode themselves (or are interface{}): keys below them are
// still checked for duplicates but not against a schema.
func opaque(t reflect.Type) bool {
	if t == nil || t.Kind() == reflect.Interface {
		return true
	}
	pt := reflect.PointerTo(t)
	u, tu := reflect.TypeFor[json.Unmarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()
	return t.Implements(u) || pt.Implements(u) || t.Implements(tu) || pt.Implements(tu)
}

// value consumes the rest of the value that starts with tok.
func (s *shapeChecker) value(tok json.Token, t reflect.Type, path string, depth int) error {
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth > MaxJSONDepth {
		return BadRequest("the request body is nested too deeply", nil)
	}
	t = derefType(t)
	if opaque(t) {
		t = nil
	}
	switch d {
	case '{':
		return s.object(t, path, depth)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; ; i++ {
			elemPath := path + "[" + strconv.Itoa(i) + "]"
			tok, err := s.token(elemPath)
			if err != nil {
				return syntaxProblem(err)
			}
			if tok == json.Delim(']') {
				return nil
			}
			if err := s.value(tok, elem, elemPath, depth+1); err != nil {
				return err
			}
		}
	}
	return BadRequest("the request body is not valid JSON", nil)
}

func (s *shapeChecker) object(t reflect.Type, path string, depth int) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	var mapElem reflect.Type
	if t != nil && t.Kind() == reflect.Map {
		mapElem = t.Elem()
	}
	seen := map[string]bool{}
	for {
		tok, validKey, err := s.rawToken()
		if err != nil {
			return syntaxProblem(err)
		}
		if tok == json.Delim('}') {
			return nil
		}
		key, _ := tok.(string)
		name := joinPath(path, domain.PrintableName(key))
		if !validKey {
			s.text.Add(name, "the field name "+domain.InvalidTextMessage)
		}
		// Struct keys are compared in any case: encoding/json would merge them.
		dupKey := key
		if fields != nil {
			dupKey = strings.ToLower(key)
		}
		if seen[dupKey] {
			return BadRequest("the request body repeats a field", map[string]string{name: "duplicate field"})
		}
		seen[dupKey] = true
		var elem reflect.Type
		switch {
		case fields != nil:
			ft, ok := fields[key]
			if !ok {
				if forbiddenKey(key) {
					return BadRequest("the request body sets a field the server decides",
						map[string]string{name: "this field cannot be set"})
				}
				return BadRequest("the request body has an unknown field", map[string]string{name: "unknown field"})
			}
			elem = ft
		case mapElem != nil:
			elem = mapElem
		}
		tok, err = s.token(name)
		if err != nil {
			return syntaxProblem(err)
		}
		if err := s.value(tok, elem, name, depth+1); err != nil {
			return err
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func syntaxProblem(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return BadRequest("the request body ends early", nil)
	}
	return BadRequest("the request body is not valid JSON", nil)
}

// jsonFields lists the JSON names encoding/json would decode into for t,
// including promoted fields of embedded structs, with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	var walk func(t reflect.Type, visited map[reflect.Type]bool)
	walk = func(t reflect.Type, visited map[reflect.Type]bool) {
		if visited[t] {
			return
		}
		visited[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				if et := derefType(f.Type); et.Kind() == reflect.Struct {
					walk(et, visited)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := fields[name]; !dup {
				fields[name] = f.Type
			}
		}
	}
	walk(t, map[reflect.Type]bool{})
	return fields
}
