package pveschema

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Messages PVE's JSONSchema.pm answers with; clients match on them.
const (
	MsgNotDefined = "property is not defined in schema and the schema does not allow additional properties"
	MsgMissing    = "property is missing and it is not optional"
	MsgPattern    = "value does not match the regex pattern"
)

// Validate checks params (flattened to strings, as PVE sees them) against
// the route, the way PVE's check_object/check_prop do, and returns the
// per-parameter errors of a 400 "Parameter verification failed.", or nil.
func (r *Route) Validate(params map[string]string) map[string]string {
	errs := map[string]string{}
	for _, name := range r.ParamNames() {
		p := r.Params[name]
		if strings.HasSuffix(name, "[n]") || p.Optional || p.Alias != "" {
			continue
		}
		if _, ok := params[name]; !ok {
			addError(errs, name, MsgMissing)
		}
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		p, ok := r.Lookup(name)
		if !ok {
			addError(errs, name, MsgNotDefined)
			continue
		}
		if p.Requires != "" {
			if _, ok := params[p.Requires]; !ok {
				addError(errs, p.Requires, fmt.Sprintf("missing property - '%s' requires this property", name))
			}
		}
		r.checkProp(params[name], p, name, errs)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// addError joins repeated errors on one path as PVE does (with a literal
// backslash-n, Perl's single-quoted '\n').
func addError(errs map[string]string, path, msg string) {
	if path == "" {
		path = "_root"
	}
	if old, ok := errs[path]; ok {
		errs[path] = old + `\n` + msg
		return
	}
	errs[path] = msg
}

var (
	integerRe   = regexp.MustCompile(`^[+-]?\d+$`)
	numberRe    = regexp.MustCompile(`^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$`)
	perlGroupRe = regexp.MustCompile(`\(\?\^([a-z]*):`)
	patterns    sync.Map // pattern string -> *regexp.Regexp
)

func compiled(pattern string) (*regexp.Regexp, error) {
	if re, ok := patterns.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	// Perl stringifies qr// as (?^flags:…); RE2 spells it (?flags:…).
	goPattern := perlGroupRe.ReplaceAllString(pattern, "(?$1:")
	re, err := regexp.Compile(`^(?:` + goPattern + `)$`)
	if err != nil {
		return nil, err
	}
	patterns.Store(pattern, re)
	return re, nil
}

// checkProp follows JSONSchema.pm's check_prop order: type, format,
// pattern, maxLength, minLength, maximum, minimum, enum.
func (r *Route) checkProp(value string, p *Param, path string, errs map[string]string) {
	switch p.Type {
	case "boolean":
		if value != "1" && value != "0" {
			addError(errs, path, fmt.Sprintf("type check ('boolean') failed - got '%s'", value))
			return
		}
	case "integer":
		if !integerRe.MatchString(value) {
			addError(errs, path, fmt.Sprintf("type check ('integer') failed - got '%s'", value))
			return
		}
	case "number":
		if !numberRe.MatchString(value) {
			addError(errs, path, fmt.Sprintf("type check ('number') failed - got '%s'", value))
			return
		}
	}
	if p.Keys != nil || p.Format != "" {
		if msg := r.checkFormat(p, value, path); msg != "" {
			addError(errs, path, "invalid format - "+msg)
			return
		}
	}
	if p.Pattern != "" {
		re, err := compiled(p.Pattern)
		if err != nil || !re.MatchString(value) {
			addError(errs, path, MsgPattern)
			return
		}
	}
	if p.MaxLength != nil && len(value) > *p.MaxLength {
		addError(errs, path, fmt.Sprintf("value may only be %d characters long", *p.MaxLength))
		return
	}
	if p.MinLength != nil && len(value) < *p.MinLength {
		addError(errs, path, fmt.Sprintf("value must be at least %d characters long", *p.MinLength))
		return
	}
	if numberRe.MatchString(value) {
		f, _ := strconv.ParseFloat(value, 64)
		if p.Maximum != nil && f > *p.Maximum {
			addError(errs, path, "value must have a maximum value of "+perlNum(*p.Maximum))
			return
		}
		if p.Minimum != nil && f < *p.Minimum {
			addError(errs, path, "value must have a minimum value of "+perlNum(*p.Minimum))
			return
		}
	}
	if len(p.Enum) > 0 {
		for _, e := range p.Enum {
			if e == value {
				return
			}
		}
		addError(errs, path, fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", value, strings.Join(p.Enum, ", ")))
	}
}

func perlNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// checkFormat returns the text PVE's format check dies with ("" if fine);
// Perl's die messages end in a newline and PVE passes them on verbatim.
func (r *Route) checkFormat(p *Param, value, path string) string {
	if p.Keys != nil {
		return parsePropertyString(r, p.Keys, value, path)
	}
	name, kind := p.Format, ""
	if base, ok := strings.CutSuffix(name, "-list"); ok && formats[name] == nil {
		name, kind = base, "list"
	} else if base, ok := strings.CutSuffix(name, "-opt"); ok && formats[name] == nil {
		name, kind = base, "opt"
	}
	if keys := r.namedKeys(name); keys != nil {
		return parsePropertyString(r, keys, value, path)
	}
	check := formats[name]
	if check == nil {
		return fmt.Sprintf("undefined format '%s'\n", p.Format)
	}
	switch kind {
	case "list":
		for _, v := range SplitList(value) {
			if err := check(v); err != "" {
				return err + "\n"
			}
		}
		return ""
	case "opt":
		if value == "" {
			return ""
		}
	}
	if err := check(value); err != "" {
		return err + "\n"
	}
	return ""
}

// SplitList splits like PVE::Tools::split_list: on NULs if present,
// else on commas, semicolons and whitespace.
func SplitList(s string) []string {
	if strings.Contains(s, "\x00") {
		return strings.Split(s, "\x00")
	}
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

var propKVRe = regexp.MustCompile(`^([^=]+)=(.+)$`)

// parsePropertyString is PVE's parse_property_string followed by
// check_object on the parsed keys.
func parsePropertyString(r *Route, keys map[string]*Param, data, path string) string {
	res := map[string]string{}
	defaultKey := ""
	for _, part := range strings.Split(data, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if m := propKVRe.FindStringSubmatch(part); m != nil {
			k, v := m[1], m[2]
			if _, dup := res[k]; dup {
				return fmt.Sprintf("duplicate key in comma-separated list property: %s\n", k)
			}
			schema := keys[k]
			if schema != nil && schema.Alias != "" {
				if schema.KeyAlias != "" {
					if _, dup := res[schema.KeyAlias]; dup {
						return fmt.Sprintf("key alias '%s' is already defined\n", schema.KeyAlias)
					}
					res[schema.KeyAlias] = k
				}
				k = schema.Alias
				schema = keys[k]
			}
			if schema == nil {
				return fmt.Sprintf("invalid key in comma-separated list property: %s\n", k)
			}
			if schema.Type == "boolean" {
				v = parseBoolean(v)
			}
			res[k] = v
			continue
		}
		if strings.Contains(part, "=") {
			return "missing key in comma-separated list property\n"
		}
		if defaultKey != "" {
			return fmt.Sprintf("duplicate key in comma-separated list property: %s\n", defaultKey)
		}
		for k, s := range keys {
			if s.DefaultKey {
				defaultKey = k
				if _, dup := res[k]; dup {
					return fmt.Sprintf("duplicate key in comma-separated list property: %s\n", k)
				}
				res[k] = part
				break
			}
		}
		if defaultKey == "" {
			return "value without key, but schema does not define a default key\n"
		}
	}
	errs := map[string]string{}
	for _, k := range sortedKeys(keys) {
		s := keys[k]
		v, ok := res[k]
		if !ok {
			if !s.Optional && s.Alias == "" {
				addError(errs, path+"."+k, MsgMissing)
			}
			continue
		}
		if s.Alias != "" {
			continue
		}
		r.checkProp(v, s, path+"."+k, errs)
	}
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("format error\n")
	for _, k := range sortedKeys(errs) {
		fmt.Fprintf(&b, "%s: %s\n", k, errs[k])
	}
	return b.String()
}

func parseBoolean(v string) string {
	switch strings.ToLower(v) {
	case "1", "on", "yes", "true":
		return "1"
	case "0", "off", "no", "false":
		return "0"
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
