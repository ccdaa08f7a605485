// Package pveschema holds the part of Proxmox VE's own API schema that the
// simulator serves, and validates request parameters against it the way
// PVE's JSONSchema.pm does.
//
// schema.json is generated (see Extract and ../pveschemagen) from
// pve-apidata.json, the data behind Proxmox's API viewer; it is committed so
// that building and testing never need the source file.
package pveschema

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

//go:embed schema.json
var schemaJSON []byte

// File is the committed schema: provenance plus one Route per served
// method and path.
type File struct {
	Source      string   `json:"source"`
	License     string   `json:"license"`
	PVEVersion  string   `json:"pve_version"`
	GeneratedBy string   `json:"generated_by"`
	Routes      []*Route `json:"routes"`
}

// Route is one API method. Every route PVE serves refuses parameters it
// does not define (additionalProperties 0), so the simulator does too.
type Route struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Params map[string]*Param `json:"params"`
}

// Param is a parameter's schema, reduced to what validation reads.
// Names ending in "[n]" are indexed families (net[n] = net0..net{Count-1}).
type Param struct {
	Type       string            `json:"type,omitempty"`
	Optional   bool              `json:"optional,omitempty"`
	Enum       []string          `json:"enum,omitempty"`
	Format     string            `json:"format,omitempty"`
	Keys       map[string]*Param `json:"keys,omitempty"` // property-string sub-keys (an inline hash format)
	Minimum    *float64          `json:"minimum,omitempty"`
	Maximum    *float64          `json:"maximum,omitempty"`
	MinLength  *int              `json:"minLength,omitempty"`
	MaxLength  *int              `json:"maxLength,omitempty"`
	Pattern    string            `json:"pattern,omitempty"`
	Requires   string            `json:"requires,omitempty"`
	DefaultKey bool              `json:"default_key,omitempty"`
	Alias      string            `json:"alias,omitempty"`
	KeyAlias   string            `json:"keyAlias,omitempty"`
	Count      int               `json:"count,omitempty"` // for "[n]" names: how many indices exist
}

// Load parses the embedded schema.
func Load() (*File, error) { return parse(schemaJSON) }

func parse(b []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("pveschema: %w", err)
	}
	return &f, nil
}

// MustLoad is Load for package initialisation; the embedded file is
// checked by tests, so failing here is a build defect.
func MustLoad() *File {
	f, err := Load()
	if err != nil {
		panic(err)
	}
	return f
}

// Key is "METHOD /path/{template}".
func (r *Route) Key() string { return r.Method + " " + r.Path }

// Lookup finds the schema of a concrete parameter name: "net3" resolves to
// "net[n]" when 3 < Count.
func (r *Route) Lookup(name string) (*Param, bool) {
	if p, ok := r.Params[name]; ok && !strings.HasSuffix(name, "[n]") {
		return p, true
	}
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	if i == len(name) || i == 0 || (name[i] == '0' && i < len(name)-1) {
		return nil, false
	}
	p, ok := r.Params[name[:i]+"[n]"]
	if !ok {
		return nil, false
	}
	n := 0
	for _, c := range name[i:] {
		n = n*10 + int(c-'0')
		if n >= p.Count {
			return nil, false
		}
	}
	return p, true
}

// Routes indexes a file's routes by Key.
func (f *File) Index() map[string]*Route {
	m := make(map[string]*Route, len(f.Routes))
	for _, r := range f.Routes {
		m[r.Key()] = r
	}
	return m
}

// ParamNames lists a route's parameter names, sorted.
func (r *Route) ParamNames() []string {
	names := make([]string, 0, len(r.Params))
	for k := range r.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
