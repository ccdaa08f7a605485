package domain

import (
	"bytes"
	"encoding/json"
)

// Redacted stands, in an event served back to people, for a value the event
// store keeps but no reader is given.
const Redacted = "[redacted]"

// servedRedactions are the JSON keys, anywhere in an event's data, whose
// values are kept in the event store and on the bus (the agent needs them)
// but never served through history, audit or the live feed: a cloud-init
// password's SHA-512 crypt hash (vm_create_requested,
// vm_cloud_init_update_requested, vm_action_succeeded of a configure,
// vm_rebuild_requested) is what a guest's /etc/shadow holds, and whoever
// had it could try guesses offline.
var servedRedactions = []string{"password_hash"}

// RedactServed is data, an event's JSON, as it may be served: every value
// under one of servedRedactions replaced with Redacted. Data without such a
// key is returned as it is, without being parsed; data that is not JSON
// (never in the store) is returned as it is too.
func RedactServed(data json.RawMessage) json.RawMessage {
	found := false
	for _, k := range servedRedactions {
		found = found || bytes.Contains(data, []byte(`"`+k+`"`))
	}
	if !found {
		return data
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // numbers served as they were stored
	if err := d.Decode(&v); err != nil {
		return data
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(redact(v)); err != nil {
		return data
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

func redact(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if isRedacted(k) {
				v[k] = Redacted
			} else {
				v[k] = redact(x)
			}
		}
	case []any:
		for i, x := range v {
			v[i] = redact(x)
		}
	}
	return v
}

func isRedacted(key string) bool {
	for _, k := range servedRedactions {
		if key == k {
			return true
		}
	}
	return false
}
