package acceptance_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/stacktest"
)

// get answers GET url: status and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestOperationsListener: with an operations address, /metrics and the
// detailed /readyz are served there only; the public listener's /readyz
// says whether the process is ready, never which dependency fails or why.
func TestOperationsListener(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{OpsAddr: "127.0.0.1:0"})
	public, ops := s.URL, s.Sys.OpsURL()
	if public == ops {
		t.Fatal("the operations endpoints share the public listener")
	}
	type ready struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"checks"`
	}
	readyz := func(base string) (int, ready, string) {
		code, body := get(t, base+"/readyz")
		var r ready
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s/readyz: %s", base, body)
		}
		return code, r, string(body)
	}

	stacktest.Eventually(t, 15*time.Second, "ready", func() bool { code, _, _ := readyz(ops); return code == http.StatusOK })
	if code, r, body := readyz(public); code != http.StatusOK || r.Status != "ready" || r.Checks != nil {
		t.Errorf("public /readyz: %d %s, want 200 with the status only", code, body)
	}
	if _, r, body := readyz(ops); r.Checks["postgres"].Status != "ok" {
		t.Errorf("operations /readyz: %s, want each check", body)
	}
	if code, _ := get(t, public+"/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", code)
	}
	if code, body := get(t, ops+"/metrics"); code != http.StatusOK || !strings.Contains(string(body), "accountdb_") {
		t.Errorf("operations /metrics: %d", code)
	}
	for _, base := range []string{public, ops} {
		if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
			t.Errorf("%s/healthz: %d", base, code)
		}
	}

	// A dependency fails: the public answer says not ready, nothing more.
	s.NATS.Stop()
	defer s.NATS.Restart()
	stacktest.Eventually(t, 10*time.Second, "operations /readyz to name nats failing", func() bool {
		code, r, _ := readyz(ops)
		return code == http.StatusServiceUnavailable && r.Checks["nats"].Status == "failing" && r.Checks["nats"].Error != ""
	})
	code, r, body := readyz(public)
	if code != http.StatusServiceUnavailable || r.Status != "not_ready" || r.Checks != nil || strings.Contains(body, "nats") {
		t.Errorf("public /readyz with NATS down: %d %s, want 503 with the status only", code, body)
	}
}
