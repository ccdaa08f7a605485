package pveschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

type apiNode struct {
	Path     string                     `json:"path"`
	Info     map[string]json.RawMessage `json:"info"`
	Children []apiNode                  `json:"children"`
}

type apiMethod struct {
	Parameters struct {
		AdditionalProperties json.RawMessage            `json:"additionalProperties"`
		Properties           map[string]json.RawMessage `json:"properties"`
	} `json:"parameters"`
}

// Extract reads pve-apidata.json and returns schema.json for the served
// routes: every parameter with what validation needs, descriptions dropped.
func Extract(apidata []byte) ([]byte, error) {
	var src struct {
		Source     string    `json:"source"`
		License    string    `json:"license"`
		PVEVersion string    `json:"pve_version"`
		Schema     []apiNode `json:"schema"`
	}
	if err := json.Unmarshal(apidata, &src); err != nil {
		return nil, fmt.Errorf("parse apidata: %w", err)
	}
	paths := map[string]apiNode{}
	var walk func([]apiNode)
	walk = func(ns []apiNode) {
		for _, n := range ns {
			paths[n.Path] = n
			walk(n.Children)
		}
	}
	walk(src.Schema)
	out := File{
		Source:      src.Source,
		License:     src.License,
		PVEVersion:  src.PVEVersion,
		GeneratedBy: "go generate ./pvesim/... (pvesim/internal/pveschemagen) from pve-apidata.json; do not edit",
	}
	for _, key := range Served() {
		method, path, _ := strings.Cut(key, " ")
		n, ok := paths[path]
		if !ok {
			return nil, fmt.Errorf("%s: path not in the Proxmox schema", key)
		}
		raw, ok := n.Info[method]
		if !ok {
			return nil, fmt.Errorf("%s: method not in the Proxmox schema", key)
		}
		var m apiMethod
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if ap := string(m.Parameters.AdditionalProperties); ap != "0" && ap != "false" {
			return nil, fmt.Errorf("%s: additionalProperties %q; the validator assumes every route refuses unknown parameters", key, ap)
		}
		r := &Route{Method: method, Path: path, Params: map[string]*Param{}}
		kind := ""
		if strings.HasPrefix(path, "/nodes/{node}/qemu") {
			kind = "qemu"
		} else if strings.HasPrefix(path, "/nodes/{node}/lxc") {
			kind = "lxc"
		}
		for name, raw := range m.Parameters.Properties {
			p, err := convert(raw)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", key, name, err)
			}
			if base, ok := strings.CutSuffix(name, "[n]"); ok {
				p.Count = indexCounts[kind][base]
				if p.Count == 0 {
					return nil, fmt.Errorf("%s %s: no index count known", key, name)
				}
				if err := checkCountAgainstDescription(raw, base, p.Count); err != nil {
					return nil, fmt.Errorf("%s %s: %w", key, name, err)
				}
			}
			r.Params[name] = p
		}
		out.Routes = append(out.Routes, r)
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		return nil, err
	}
	return append(compactParams(b), '\n'), nil
}

// compactParams keeps the output reviewable: indentation down to the
// parameter, each parameter's schema on one line.
func compactParams(b []byte) []byte {
	var out bytes.Buffer
	lines := bytes.Split(b, []byte("\n"))
	const paramIndent = "   " // routes[] > route > params > name
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := bytes.TrimLeft(l, " ")
		depth := len(l) - len(trimmed)
		if depth == len(paramIndent)+1 && bytes.HasSuffix(trimmed, []byte("{")) {
			// a parameter object: gather until its closing brace
			var buf bytes.Buffer
			buf.Write(l)
			for i++; i < len(lines); i++ {
				t := bytes.TrimLeft(lines[i], " ")
				if len(lines[i])-len(t) == depth && bytes.HasPrefix(t, []byte("}")) {
					buf.Write(t)
					break
				}
				buf.Write(t)
			}
			var c bytes.Buffer
			head, body, _ := bytes.Cut(buf.Bytes(), []byte(": "))
			body, comma := bytes.CutSuffix(body, []byte(","))
			if err := json.Compact(&c, body); err != nil {
				c.Reset()
				c.Write(body)
			}
			out.Write(head)
			out.WriteString(": ")
			out.Write(c.Bytes())
			if comma {
				out.WriteByte(',')
			}
			out.WriteByte('\n')
			continue
		}
		out.Write(l)
		if i < len(lines)-1 {
			out.WriteByte('\n')
		}
	}
	return bytes.TrimRight(out.Bytes(), "\n")
}

var indexRangeRe = regexp.MustCompile(`\(n is 0 to (\d+)[,)]`)

// checkCountAgainstDescription cross-checks indexCounts with the "(n is 0
// to N)" some descriptions carry. usb's text gives the pre-7.1 machine
// limit first (0 to 4) and then "up to 14", the MAX_USB_DEVICES count.
func checkCountAgainstDescription(raw json.RawMessage, base string, count int) error {
	var d struct {
		Description string `json:"description"`
	}
	if err := json.Unmarshal(raw, &d); err != nil || base == "usb" {
		return err
	}
	m := indexRangeRe.FindStringSubmatch(d.Description)
	if m == nil {
		return nil
	}
	if n, _ := strconv.Atoi(m[1]); n+1 != count {
		return fmt.Errorf("description says n is 0 to %d, indexCounts has %d members", n, count)
	}
	return nil
}

func convert(raw json.RawMessage) (*Param, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	p := &Param{}
	str := func(k string) string {
		var s string
		if v, ok := m[k]; ok {
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
		}
		return s
	}
	num := func(k string) (*float64, error) {
		s := strings.Trim(str(k), `"`)
		if s == "" {
			return nil, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		return &f, nil
	}
	truthy := func(k string) bool { v := str(k); return v != "" && v != "0" && v != "false" }
	var err error
	p.Type = str("type")
	p.Optional = truthy("optional")
	p.Pattern = str("pattern")
	p.Requires = str("requires")
	p.DefaultKey = truthy("default_key")
	p.Alias = str("alias")
	p.KeyAlias = str("keyAlias")
	if v, ok := m["enum"]; ok {
		if err := json.Unmarshal(v, &p.Enum); err != nil {
			return nil, fmt.Errorf("enum: %w", err)
		}
	}
	if p.Minimum, err = num("minimum"); err != nil {
		return nil, err
	}
	if p.Maximum, err = num("maximum"); err != nil {
		return nil, err
	}
	for k, dst := range map[string]**int{"minLength": &p.MinLength, "maxLength": &p.MaxLength} {
		f, err := num(k)
		if err != nil {
			return nil, err
		}
		if f != nil {
			n := int(*f)
			*dst = &n
		}
	}
	if v, ok := m["format"]; ok {
		if len(v) > 0 && v[0] == '{' {
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(v, &keys); err != nil {
				return nil, fmt.Errorf("format: %w", err)
			}
			p.Keys = map[string]*Param{}
			for k, kr := range keys {
				kp, err := convert(kr)
				if err != nil {
					return nil, fmt.Errorf("format.%s: %w", k, err)
				}
				p.Keys[k] = kp
			}
		} else {
			p.Format = str("format")
		}
	}
	return p, nil
}
