package webhooks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// verify checks a delivery by the Standard Webhooks specification, written
// here from the specification and sharing no code with the sender: the
// secret is the base64 after "whsec_"; the signed content is
// id + "." + timestamp + "." + body; webhook-signature holds
// space-separated "v1,<base64 HMAC-SHA256>" entries, any of which may
// match; the timestamp must be within five minutes of now.
func verify(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("secret: %v", err)
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	if id == "" || ts == "" {
		return fmt.Errorf("missing webhook-id or webhook-timestamp")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q", ts)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s is %s away", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no signature matches (%q)", h.Get("webhook-signature"))
}

// received is one delivery the receiver accepted.
type received struct {
	ID         string
	Signatures string
	Type       string
	Position   int64
	TenantID   string
	EventID    string
	Header     http.Header
	Body       []byte
}

// receiver is a real HTTP endpoint that verifies every request and
// answers with what the test sets.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	secrets []string
	status  int // answer; 0 answers 204
	hold    chan struct{}
	// abandoned counts held requests whose sender went away first.
	abandoned int
	got       []received
	tries     map[string]int
	bad       []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, tries: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook?token=abc" }

func (r *receiver) setSecrets(s ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = s
}

func (r *receiver) answer(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secrets, status, hold := r.secrets, r.status, r.hold
	id := req.Header.Get("webhook-id")
	r.tries[id]++
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			r.mu.Lock()
			r.abandoned++
			r.mu.Unlock()
			return
		}
	}
	var errs []string
	for _, s := range secrets {
		err := verify(s, req.Header, body)
		if err == nil {
			errs = nil
			break
		}
		errs = append(errs, err.Error())
	}
	var p struct {
		Type string `json:"type"`
		Data struct {
			Position int64  `json:"position"`
			TenantID string `json:"tenant_id"`
			EventID  string `json:"event_id"`
			Type     string `json:"type"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Type != p.Data.Type || len(secrets) == 0 {
		errs = append(errs, fmt.Sprintf("body %q: %v", body, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(errs) > 0 {
		r.bad = append(r.bad, strings.Join(errs, "; "))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if status != 0 && status != http.StatusNoContent {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "answered "+strconv.Itoa(status)+"\x00\n")
		return
	}
	r.got = append(r.got, received{ID: id, Signatures: req.Header.Get("webhook-signature"), Type: p.Type,
		Position: p.Data.Position, TenantID: p.Data.TenantID, EventID: p.Data.EventID, Header: req.Header.Clone(), Body: body})
	w.WriteHeader(http.StatusNoContent)
}

// accepted is what the receiver accepted, in arrival order; it fails the
// test on any request that did not verify.
func (r *receiver) accepted() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Fatalf("the receiver refused deliveries: %v", r.bad)
	}
	return append([]received(nil), r.got...)
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
