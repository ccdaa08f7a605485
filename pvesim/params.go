package pvesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// params holds request parameters flattened to strings, because PVE's
// schema validation works on the string form regardless of whether the
// client sent a form body (pvesh, curl) or JSON (go-proxmox).
type params map[string]string

const maxBody = 1 << 20

func parseParams(r *http.Request) (params, error) {
	p := params{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			p[k] = v[len(v)-1]
		}
	}
	if r.Body == nil {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return p, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" || (ct == "" && body[0] == '{') {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, paramErr1("body", "unable to parse JSON body - "+err.Error())
		}
		for k, v := range m {
			if s, ok := jsonScalar(v); ok {
				p[k] = s
			}
		}
		return p, nil
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, paramErr1("body", "unable to parse form body - "+err.Error())
	}
	for k, v := range vals {
		if len(v) > 0 {
			p[k] = v[len(v)-1]
		}
	}
	return p, nil
}

// jsonScalar renders JSON values the way PVE's JSON-to-param bridge sees
// them: booleans become 1/0 and null means "not given".
func jsonScalar(v any) (string, bool) {
	switch t := v.(type) {
	case nil:
		return "", false
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		if t {
			return "1", true
		}
		return "0", true
	default:
		b, _ := json.Marshal(t)
		return string(b), true
	}
}

// validator accumulates per-parameter errors so one 400 lists them all,
// as PVE does.
type validator struct {
	p    params
	errs map[string]string
}

func newValidator(p params) *validator { return &validator{p: p, errs: map[string]string{}} }

func (v *validator) fail(key, msg string) { v.errs[key] = msg }

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return paramErr(v.errs)
}

func (v *validator) has(key string) bool { _, ok := v.p[key]; return ok }

func (v *validator) required(key string) bool {
	if !v.has(key) {
		v.fail(key, "property is missing and it is not optional")
		return false
	}
	return true
}

func (v *validator) integer(key string, min, max int64) (int64, bool) {
	s, ok := v.p[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		v.fail(key, fmt.Sprintf("type check ('integer') failed - got '%s'", s))
		return 0, false
	}
	if n < min {
		v.fail(key, fmt.Sprintf("value must have a minimum value of %d", min))
		return 0, false
	}
	if max > 0 && n > max {
		v.fail(key, fmt.Sprintf("value must have a maximum value of %d", max))
		return 0, false
	}
	return n, true
}

func (v *validator) boolean(key string) (bool, bool) {
	s, ok := v.p[key]
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true, true
	case "0", "false", "no", "off":
		return false, true
	}
	v.fail(key, fmt.Sprintf("type check ('boolean') failed - got '%s'", s))
	return false, false
}

var (
	dnsNameRe  = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9\-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]*[a-z0-9])?)*$`)
	configIDRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_\-]{1,39}$`)
	poolIDRe   = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)
	tagRe      = regexp.MustCompile(`^(?i)[a-z0-9_][a-z0-9_\-+.]*$`)
)

func (v *validator) dnsName(key string) {
	if s, ok := v.p[key]; ok && !dnsNameRe.MatchString(s) {
		v.fail(key, "invalid format - value does not look like a valid DNS name")
	}
}

// tags normalises a tag list the way PVE stores it: split on ; , or space,
// de-duplicated and sorted (PVE's default tag ordering).
func (v *validator) tags(key string) (string, bool) {
	s, ok := v.p[key]
	if !ok {
		return "", false
	}
	return normalizeTags(s, func(bad string) {
		v.fail(key, fmt.Sprintf("invalid format - invalid characters in tag '%s'", bad))
	})
}

func normalizeTags(s string, bad func(string)) (string, bool) {
	seen := map[string]bool{}
	var out []string
	for _, t := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		if !tagRe.MatchString(t) {
			bad(t)
			return "", false
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sortStrings(out)
	return strings.Join(out, ";"), true
}
