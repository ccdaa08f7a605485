package acceptance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// person is someone whose data the privacy tests follow: every string here
// is unique to the test, so a full-text search for it finds only them.
type person struct {
	email, name, ip, agent, keyComment string
	id                                 uuid.UUID
	token                              string
}

func newPerson() person {
	tag := uuid.NewString()[:8]
	return person{
		email:      "zelda." + tag + "@example.com",
		name:       "Zelda Quartermaine " + tag,
		ip:         fmt.Sprintf("203.0.113.%d", 1+rand.IntN(250)),
		agent:      "PrivacyProbe/" + tag,
		keyComment: "zelda-laptop-" + tag,
	}
}

// as sends a request from the person's address and agent, through the
// trusted proxy the stack believes.
func (p person) as(extra ...string) []string {
	return append([]string{"X-Forwarded-For", p.ip, "User-Agent", p.agent}, extra...)
}

const testSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "

// TestPrivacyEncryptExportErase follows one person through issue 17: their
// personal data is encrypted in the log and on the bus, readable through
// every reader while their key exists (export, audit, live feed), and after
// their erasure found nowhere, in no table and no stream, while every hash
// chain stays intact.
func TestPrivacyEncryptExportErase(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}})
	d := openDB(t, s)
	ctx := context.Background()
	tenant := s.Tenant(t, "privacy")
	admin := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	other := s.Login(t, s.User(t, s.Tenant(t, "elsewhere"), auth.RoleTenantAdmin)).AccessToken
	operator := s.Login(t, s.User(t, tenant, auth.RoleOperator)).AccessToken
	p := newPerson()

	var created accepted
	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/users", map[string]any{"email": p.email, "display_name": p.name,
		"password": strongPassword, "roles": []string{"viewer"}}, &created), http.StatusAccepted)
	p.id = created.ID
	var tok stacktest.Tokens
	wantStatus(t, s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": p.email, "password": strongPassword},
		&tok, p.as()...), http.StatusOK)
	p.token = tok.AccessToken
	wantStatus(t, s.Do(t, p.token, http.MethodPost, "/v1/users/me/ssh-keys",
		map[string]string{"name": "laptop", "public_key": testSSHKey + p.keyComment}, nil, p.as()...), http.StatusAccepted)
	needles := []string{p.email, p.name, p.ip, p.agent, p.keyComment}

	t.Run("the log and the bus hold ciphertext only", func(t *testing.T) {
		for _, n := range needles {
			if c := d.count(t, `SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%' OR metadata::text LIKE '%' || $1 || '%'`, n); c != 0 {
				t.Fatalf("%d events hold %q in clear", c, n)
			}
		}
		waitBusHolds(t, s, p.id.String())
		assertBusClean(t, s, needles)
	})

	var userWait = func(t *testing.T) {
		t.Helper()
		stacktest.Eventually(t, e2eWait, "the person in the users read model", func() bool {
			return s.Do(t, admin, http.MethodGet, "/v1/users/"+p.id.String(), nil, nil).StatusCode == http.StatusOK
		})
	}
	userWait(t)

	t.Run("export: the person's own document, revealed", func(t *testing.T) {
		var doc exportDoc
		stacktest.Eventually(t, e2eWait, "the export to list the SSH key", func() bool {
			doc = exportDoc{}
			r := s.Do(t, p.token, http.MethodGet, "/v1/users/me/export", nil, &doc)
			return r.StatusCode == http.StatusOK && len(doc.SSHKeys) == 1
		})
		if doc.User.Email != p.email || doc.User.DisplayName != p.name {
			t.Fatalf("user %+v, want %s / %s", doc.User, p.email, p.name)
		}
		if !strings.HasSuffix(doc.SSHKeys[0].PublicKey, p.keyComment) {
			t.Fatalf("ssh key %q lacks its comment", doc.SSHKeys[0].PublicKey)
		}
		if len(doc.Sessions) == 0 || doc.Sessions[0].IP != p.ip || doc.Sessions[0].UserAgent != p.agent {
			t.Fatalf("sessions %+v, want one from %s / %s", doc.Sessions, p.ip, p.agent)
		}
		byType := map[string]json.RawMessage{}
		var sessionMeta map[string]string
		for _, e := range doc.Events {
			byType[e.Type] = e.Data
			if e.Type == "session_started" {
				sessionMeta = e.Metadata
			}
		}
		if !strings.Contains(string(byType["user_created"]), p.email) || !strings.Contains(string(byType["user_ssh_key_added"]), p.keyComment) {
			t.Fatalf("events not revealed: %s / %s", byType["user_created"], byType["user_ssh_key_added"])
		}
		if sessionMeta["client_ip"] != p.ip || sessionMeta["user_agent"] != p.agent {
			t.Fatalf("session_started metadata %v, want %s / %s", sessionMeta, p.ip, p.agent)
		}
		// An administrator of the tenant gets the same document.
		wantStatus(t, s.Do(t, admin, http.MethodGet, "/v1/users/"+p.id.String()+"/export", nil, nil), http.StatusOK)
	})

	t.Run("export: others", func(t *testing.T) {
		wantProblem(t, s.Do(t, other, http.MethodGet, "/v1/users/"+p.id.String()+"/export", nil, nil), http.StatusNotFound, "not_found")
		wantProblem(t, s.Do(t, operator, http.MethodGet, "/v1/users/"+p.id.String()+"/export", nil, nil), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, admin, http.MethodGet, "/v1/users/"+uuid.NewString()+"/export", nil, nil), http.StatusNotFound, "not_found")
	})

	t.Run("the audit log and the live feed show plaintext while the key exists", func(t *testing.T) {
		if body := auditOf(t, s, admin, p.id); !strings.Contains(body, p.email) {
			t.Fatalf("audit of the user's stream lacks the email: %s", body)
		}
		if frame := feedFrame(t, s, admin, p.id); !strings.Contains(frame, p.email) {
			t.Fatalf("live feed frame lacks the email: %s", frame)
		}
	})

	t.Run("erasure refuses what it must", func(t *testing.T) {
		path := "/v1/users/" + p.id.String() + "/erase"
		pr := wantProblem(t, s.Do(t, admin, http.MethodPost, path, map[string]string{}, nil), http.StatusUnprocessableEntity, "confirmation_required")
		if fieldErrors(t, pr)["confirm_email"] == nil {
			t.Fatalf("problem %v does not name confirm_email", pr)
		}
		wantProblem(t, s.Do(t, admin, http.MethodPost, path, map[string]string{"confirm_email": "someone@example.com"}, nil),
			http.StatusUnprocessableEntity, "confirmation_required")
		wantProblem(t, s.Do(t, admin, http.MethodPost, path, map[string]string{"confirm_email": p.email, "force": "yes"}, nil),
			http.StatusBadRequest, "validation_failed")
		wantProblem(t, s.Do(t, operator, http.MethodPost, path, map[string]string{"confirm_email": p.email}, nil), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, other, http.MethodPost, path, map[string]string{"confirm_email": p.email}, nil), http.StatusNotFound, "not_found")
	})

	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/users/"+p.id.String()+"/erase",
		map[string]string{"confirm_email": strings.ToUpper(p.email)}, nil), http.StatusAccepted)
	stacktest.Eventually(t, e2eWait, "the person gone from the users read model", func() bool {
		return s.Do(t, admin, http.MethodGet, "/v1/users/"+p.id.String(), nil, nil).StatusCode == http.StatusNotFound
	})

	t.Run("after erasure every reader shows [erased]", func(t *testing.T) {
		body := auditOf(t, s, admin, p.id)
		if strings.Contains(body, p.email) || !strings.Contains(body, `"email":"[erased]"`) {
			t.Fatalf("audit after erasure: %s", body)
		}
		if frame := feedFrame(t, s, admin, p.id); strings.Contains(frame, p.email) || !strings.Contains(frame, "[erased]") {
			t.Fatalf("live feed after erasure: %s", frame)
		}
		wantProblem(t, s.Do(t, admin, http.MethodGet, "/v1/users/"+p.id.String()+"/export", nil, nil), http.StatusNotFound, "not_found")
		wantStatus(t, s.Do(t, p.token, http.MethodGet, "/v1/users/me", nil, nil), http.StatusUnauthorized)
		wantStatus(t, s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": p.email, "password": strongPassword}, nil),
			http.StatusUnauthorized)
		wantProblem(t, s.Do(t, admin, http.MethodPost, "/v1/users/"+p.id.String()+"/erase", map[string]string{"confirm_email": p.email}, nil),
			http.StatusNotFound, "not_found")
	})

	t.Run("a full-text scan finds the person nowhere", func(t *testing.T) {
		// The read models that held the person (users, above; SSH keys)
		// have applied user_erased; then every table and stream is scanned.
		stacktest.Eventually(t, e2eWait, "the person's SSH keys gone", func() bool {
			return d.count(t, `SELECT count(*) FROM user_ssh_keys WHERE user_id = $1`, p.id) == 0
		})
		assertDatabaseClean(t, d, needles)
		waitBusHolds(t, s, "user_erased")
		assertBusClean(t, s, needles)
	})

	t.Run("every hash chain is intact", func(t *testing.T) {
		rep, err := s.Store.VerifyChains(ctx, eventstore.VerifyFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.EventsChecked == 0 {
			t.Fatalf("verify: %+v", rep)
		}
	})
}

type exportDoc struct {
	User struct {
		Email       string `json:"email"`
		DisplayName string `json:"display_name"`
	} `json:"user"`
	SSHKeys []struct {
		PublicKey string `json:"public_key"`
	} `json:"ssh_keys"`
	Sessions []struct {
		IP        string `json:"ip"`
		UserAgent string `json:"user_agent"`
	} `json:"sessions"`
	Events []struct {
		Type     string            `json:"type"`
		Data     json.RawMessage   `json:"data"`
		Metadata map[string]string `json:"metadata"`
	} `json:"events"`
}

// auditOf is the audit log of the user's stream as an administrator reads it.
func auditOf(t *testing.T, s *stacktest.Stack, token string, id uuid.UUID) string {
	t.Helper()
	r := s.Do(t, token, http.MethodGet, "/v1/audit?stream_id=user-"+id.String(), nil, nil)
	wantStatus(t, r, http.StatusOK)
	return string(r.Body)
}

// feedFrame reads GET /v1/events from the start until the frame of the
// user's user_created, and returns it.
func feedFrame(t *testing.T, s *stacktest.Stack, token string, id uuid.UUID) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v1/events?type=user_created", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"stream_id":"user-`+id.String()+`"`) {
			return line
		}
	}
	t.Fatalf("the feed ended without the user's user_created: %v", sc.Err())
	return ""
}

// assertDatabaseClean searches the text form of every row of every table of
// the database (every schema but PostgreSQL's own) for each needle.
func assertDatabaseClean(t *testing.T, d db, needles []string) {
	t.Helper()
	ctx := context.Background()
	rows, err := d.conn.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if rows.Err() != nil || len(tables) < 30 {
		t.Fatalf("found %d tables (%v)", len(tables), rows.Err())
	}
	for _, table := range tables {
		for _, n := range needles {
			if c := d.count(t, `SELECT count(*) FROM `+table+` t WHERE strpos(t::text, $1) > 0`, n); c != 0 {
				t.Errorf("table %s: %d rows hold %q", table, c, n)
			}
		}
	}
}

// waitBusHolds waits until some message of ACCOUNTDB_EVENTS holds marker.
func waitBusHolds(t *testing.T, s *stacktest.Stack, marker string) {
	t.Helper()
	stacktest.Eventually(t, e2eWait, "the bus to carry "+marker, func() bool {
		found := false
		eachBusMessage(t, s, func(_ string, data []byte) {
			found = found || strings.Contains(string(data), marker)
		})
		return found
	})
}

// assertBusClean reads every message of every JetStream stream and
// searches its headers and payload for each needle.
func assertBusClean(t *testing.T, s *stacktest.Stack, needles []string) {
	t.Helper()
	n := 0
	eachBusMessage(t, s, func(stream string, data []byte) {
		n++
		for _, needle := range needles {
			if strings.Contains(string(data), needle) {
				t.Errorf("stream %s: a message holds %q", stream, needle)
			}
		}
	})
	if n == 0 {
		t.Fatal("no message on the bus")
	}
}

func eachBusMessage(t *testing.T, s *stacktest.Stack, fn func(stream string, data []byte)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := s.JetStream(t)
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted, or a gap
			}
			var hdr strings.Builder
			for k, vs := range m.Header {
				hdr.WriteString(k + ":" + strings.Join(vs, ",") + "\n")
			}
			fn(name, append([]byte(hdr.String()+m.Subject+"\n"), m.Data...))
		}
	}
	if err := names.Err(); err != nil && err != jetstream.ErrEndOfData {
		t.Fatal(err)
	}
}
