package vm_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// eventMetadata is the request metadata of an event as the API answers it.
type eventMetadata struct {
	Position int64             `json:"position"`
	Type     string            `json:"type"`
	Metadata map[string]string `json:"metadata"`
}

const probeUA = "metadata-probe/1.0"

// wantMetadata checks whether ev carries its request metadata.
func wantMetadata(t *testing.T, who string, ev eventMetadata, visible bool) {
	t.Helper()
	shown := ev.Metadata["user_agent"] == probeUA && ev.Metadata["client_ip"] != "" && ev.Metadata["session_id"] != ""
	if visible && !shown {
		t.Fatalf("%s: %s at %d has metadata %v, want the creator's", who, ev.Type, ev.Position, ev.Metadata)
	}
	if !visible && len(ev.Metadata) != 0 {
		t.Fatalf("%s: %s at %d shows another user's request metadata %v", who, ev.Type, ev.Position, ev.Metadata)
	}
}

// TestEventMetadataVisibility: the client IP, user agent and session of an
// event are shown to holders of audit:read and to the user who caused it,
// in VM history and in the live feed (live and resumed), and to nobody else.
func TestEventMetadataVisibility(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	viewer := e.s.Login(t, e.s.User(t, e.tenID, auth.RoleViewer)).AccessToken
	admin := e.s.Login(t, e.s.User(t, e.tenID, auth.RoleTenantAdmin)).AccessToken
	readers := []struct {
		name, token string
		visible     bool
	}{{"viewer", viewer, false}, {"tenant_admin (audit:read)", admin, true}, {"the creator (vm_admin)", e.token, true}}
	streams := make([]*sseStream, len(readers))
	for i, rd := range readers {
		streams[i] = subscribe(t, e.s.URL, rd.token, "", "")
	}

	var a accepted
	r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms", map[string]any{"name": "meta-1", "kind": "qemu", "cores": 1,
		"memory_mb": 512, "disk_gb": 1, "template": "debian-12"}, &a, "User-Agent", probeUA)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}

	sseEventAt := func(t *testing.T, s *sseStream, pos int64) eventMetadata {
		t.Helper()
		for {
			b := s.next(t, sseWait)
			var ev eventMetadata
			if err := json.Unmarshal([]byte(b.Data), &ev); err != nil {
				t.Fatalf("data %q: %v", b.Data, err)
			}
			if ev.Position == pos {
				return ev
			}
		}
	}
	for i, rd := range readers {
		wantMetadata(t, rd.name+" (live feed)", sseEventAt(t, streams[i], a.Position), rd.visible)
		// Resumed from just before: the catch-up path, same rule.
		resumed := subscribe(t, e.s.URL, rd.token, "", strconv.FormatInt(a.Position-1, 10))
		wantMetadata(t, rd.name+" (resumed feed)", sseEventAt(t, resumed, a.Position), rd.visible)

		var h struct{ Items []eventMetadata }
		if r := e.s.Do(t, rd.token, http.MethodGet, "/v1/vms/"+a.ID+"/history", nil, &h); r.StatusCode != http.StatusOK {
			t.Fatalf("%s: history %d %s", rd.name, r.StatusCode, r.Body)
		}
		if len(h.Items) == 0 || h.Items[0].Position != a.Position {
			t.Fatalf("%s: history %v does not start with the create request", rd.name, h.Items)
		}
		wantMetadata(t, rd.name+" (history)", h.Items[0], rd.visible)
	}
}
