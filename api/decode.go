package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Request body limits (API.md).
const (
	MaxBodyBytes = 1 << 20
	MaxJSONDepth = 32
)

// DecodeJSON strictly decodes the request body into dst, a pointer. It
// returns a Problem (answer it with WriteError) when:
//   - Content-Type is not application/json (charset utf-8 allowed): 415;
//   - the body exceeds MaxBodyBytes: 413;
//   - a string (key or value) is not valid UTF-8 or contains NUL: 400 naming
//     the field (an *InvalidTextError, dst decoded nonetheless);
//   - the body is empty, not UTF-8, not one JSON value, nested deeper than
//     MaxJSONDepth, or followed by anything but whitespace: 400;
//   - an object key is not exactly (case-sensitively) one of the target
//     struct's JSON names, appears twice (even in another letter case), or is
//     one of the never-accepted keys tenant_id, id, status, version, roles
//     without the struct declaring it: 400 naming the field;
//   - a value has the wrong type: 400 naming the field.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.Body == nil {
		return BadRequest("the request body is empty", nil)
	}
	if r.ContentLength > MaxBodyBytes {
		return PayloadTooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return PayloadTooLarge()
		}
		return BadRequest("the request body could not be read", nil)
	}
	return decodeBody(body, dst)
}

func checkJSONContentType(ct string) error {
	if ct == "" {
		return UnsupportedMediaType()
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return UnsupportedMediaType()
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return UnsupportedMediaType()
		}
	}
	return nil
}

func decodeBody(body []byte, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("api.DecodeJSON: dst must be a non-nil pointer")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return BadRequest("the request body is empty", nil)
	}
	text, err := checkShape(body, rv.Type().Elem())
	if err != nil {
		return err
	}
	if !utf8.Valid(body) && len(text) == 0 {
		return BadRequest("the request body is not valid UTF-8", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	if len(text) > 0 {
		return &InvalidTextError{Fields: text}
	}
	return nil
}

// InvalidTextError is DecodeJSON's answer for a well-formed body some of
// whose strings (by JSON path in Fields) are not valid UTF-8 or contain NUL,
// which PostgreSQL would refuse. It is a 400 validation_failed naming them;
// dst has been decoded regardless, for a route that must still act on the
// refusal (the login counts it as a failed sign-in).
type InvalidTextError struct {
	Fields FieldErrors
}

func (e *InvalidTextError) Error() string { return "request body: strings are not valid text" }

// Unwrap is the Problem the client is answered.
func (e *InvalidTextError) Unwrap() error {
	return BadRequest("the request body has strings that are not valid text", e.Fields)
}

// decodeProblem turns encoding/json's errors into 400s without echoing Go
// type names or input.
func decodeProblem(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return BadRequest("a field has the wrong type", map[string]string{field: "must be " + jsonKind(te.Type)})
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return BadRequest(fmt.Sprintf("the request body is not valid JSON (at byte %d)", se.Offset), nil)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return BadRequest("the request body has an unknown field", map[string]string{name: "unknown field"})
	}
	return BadRequest("the request body is not valid JSON", nil)
}

func jsonKind(t reflect.Type) string {
	switch derefType(t).Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}
