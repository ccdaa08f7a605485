package assistant

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
)

// What leaves for the model, one line of JSON per event. Everything not
// named here stays: no request, session or token ids, no correlation.

// Withheld replaces a personal value (domain.PersonalFieldsOf): the model
// is never sent what a person could be erased from, even while readable.
const Withheld = "[personal]"

type sentEvent struct {
	Position   int64           `json:"position"`
	RecordedAt time.Time       `json:"recorded_at"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Type       string          `json:"type"`
	ActorID    string          `json:"actor_id,omitempty"`
	Data       json.RawMessage `json:"data"`
	ClientIP   string          `json:"client_ip,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
}

// secretKeys are parts of data keys whose string values are secrets or
// stand-ins for them (sealed secrets, hashes): never sent.
var secretKeys = []string{"secret", "password", "passphrase", "private", "api_key", "apikey", "hash", "totp", "verifier", "recovery", "credential"}

// secretPrefixes start string values that are secrets or sealed values
// wherever they appear: API tokens, webhook secrets, the vault's and the
// privacy package's ciphertext, crypt and argon2 hashes.
var secretPrefixes = []string{"adb_", "whsec_", "v1:", "pii1:", "$6$", "$5$", "$argon2", "$2a$", "$2b$", "-----BEGIN"}

// redactEvent is e as sent: personal fields withheld, secrets redacted,
// request metadata only with shareIPs. An event whose data cannot be
// parsed is sent without data.
func redactEvent(e eventlog.Event, shareIPs bool) []byte {
	s := sentEvent{Position: e.Position.GlobalPosition, RecordedAt: e.RecordedAt.UTC(), Stream: e.Stream.String(),
		Version: e.StreamVersion, Type: e.Type, Data: json.RawMessage(`{}`)}
	if e.ActorID.String() != "00000000-0000-0000-0000-000000000000" {
		s.ActorID = e.ActorID.String()
	}
	if shareIPs {
		s.ClientIP, s.UserAgent = safeString(e.Metadata.ClientIP), safeString(e.Metadata.UserAgent)
	}
	var data map[string]any
	d := json.NewDecoder(bytes.NewReader(e.Data))
	d.UseNumber()
	if d.Decode(&data) == nil {
		if p, ok := domain.PersonalFieldsOf(e.Type); ok {
			for _, f := range p.Fields {
				if _, has := data[f]; has {
					data[f] = Withheld
				}
			}
		}
		if b, err := json.Marshal(redactValue(data)); err == nil {
			s.Data = b
		}
	}
	out, _ := json.Marshal(s)
	return out
}

// safeString is v unless it is ciphertext or erased (a revealer that could
// not open it): then nothing.
func safeString(v string) string {
	if v == domain.Erased || isSecretValue(v) {
		return ""
	}
	return v
}

func redactValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && isSecretKey(k) && s != "" {
				v[k] = domain.Redacted
				continue
			}
			v[k] = redactValue(x)
		}
	case []any:
		for i, x := range v {
			v[i] = redactValue(x)
		}
	case string:
		if isSecretValue(v) {
			return domain.Redacted
		}
	}
	return v
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	if k == "token" || strings.HasSuffix(k, "_token") || strings.HasPrefix(k, "token_secret") {
		return true
	}
	for _, s := range secretKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func isSecretValue(s string) bool {
	for _, p := range secretPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
