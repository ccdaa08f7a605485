package e2e_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/accountdb/accountdb/assistant"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/openaitest"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
	"github.com/oauth2-proxy/mockoidc"
)

// The tenant's quota is small enough that a scenario can ask for more than
// it allows (cores) while the others' VMs still fit.
var quota = domain.Quota{MaxVMs: 6, MaxCores: 8, MaxMemoryMB: 16384, MaxDiskGB: 200}

var sentPosition = regexp.MustCompile(`"position":(\d+)`)

// fixtureVM is created before the scenarios run and is running when they
// start: what every role looks at.
const fixtureVM = "fixture-1"

// poolName is the address pool the New VM form offers.
const poolName = "public-v4"

// world is the running system the scenarios drive, with one account per
// built-in role plus spares that scenarios may sign out or disable.
type world struct {
	url      string
	accounts map[string]account
	// sso is the configured OpenID Connect provider's name ("Sign in
	// with …"): a real provider in this process (mockoidc) whose default
	// person, jane.doe@example.com in group engineering, signs in as a
	// viewer of the tenant.
	sso string
}

type account struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func startWorld(t *testing.T) world {
	t.Helper()
	// The assistant's model (assistant.test.mjs): a fake that answers
	// citing the first event it was sent, and a position it was not.
	model := openaitest.Start(t, "e2e-model-key", func(r openaitest.Request) openaitest.Reply {
		first := "0"
		if m := sentPosition.FindStringSubmatch(r.Messages[len(r.Messages)-1].Content); m != nil {
			first = m[1]
		}
		return openaitest.Reply{Text: "According to the log, the VM was requested [#" + first + "], then placed on a node. " +
			"(Not [#999999999999].)", ChunkSize: 9, StreamDelay: 20 * time.Millisecond, PromptTokens: 100, Completion: 30}
	})
	s := stacktest.Start(t, stacktest.Options{DevLoopbackHTTP: true,
		Assistant: assistant.Config{URL: model.BaseURL(), Model: "e2e", APIKey: "e2e-model-key"}})
	// Tasks take a few hundred milliseconds, as on a fast Proxmox host, so
	// the console has transitions to show.
	px := s.StartProxmox(t, pvesim.Options{TimeScale: 100 * time.Millisecond})
	// A pool the New VM form offers (not the cluster's default: VMs created
	// without choosing it get no address).
	platform := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	if r := s.Do(t, platform, http.MethodPost, "/v1/ip-pools", map[string]any{"name": poolName, "cluster_id": px.ClusterID,
		"bridge": "vmbr0", "cidr": "10.80.0.0/24", "gateway": "10.80.0.1", "range_start": "10.80.0.10", "range_end": "10.80.0.250",
		"nameservers": []string{"10.80.0.1"}}, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("create the pool: %d %s", r.StatusCode, r.Body)
	}
	tenant := s.TenantWithQuota(t, "acme", quota)
	w := world{url: s.URL, accounts: map[string]account{}}
	add := func(name string, a stacktest.Account) stacktest.Account {
		w.accounts[name] = account{Email: a.Email, Password: a.Password}
		return a
	}
	for _, role := range []string{auth.RoleViewer, auth.RoleOperator, auth.RoleTenantAdmin, auth.RoleAuditor} {
		add(role, s.User(t, tenant, role))
	}
	vmAdmin := add(auth.RoleVMAdmin, s.User(t, tenant, auth.RoleVMAdmin))
	add(auth.RolePlatformAdmin, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin))
	// Signed in twice by the sessions scenario, one session revoked.
	add("sessions", s.User(t, tenant, auth.RoleViewer))
	// Enrols in two-factor; creates and revokes API tokens.
	add("mfa", s.User(t, tenant, auth.RoleViewer))
	add("tokens", s.User(t, tenant, auth.RoleOperator))
	// A user of a tenant that requires two-factor, who has none yet.
	add("enrol", strictUser(t, s))
	w.sso = startSSO(t, s, tenant)

	token := s.Login(t, vmAdmin).AccessToken
	stacktest.Eventually(t, 20*time.Second, "templates from the agent's inventory", func() bool {
		var l struct{ Items []any }
		r := s.Do(t, token, http.MethodGet, "/v1/templates", nil, &l)
		return r.StatusCode == http.StatusOK && len(l.Items) > 0
	})
	var created struct{ ID string }
	r := s.Do(t, token, http.MethodPost, "/v1/vms", map[string]any{"name": fixtureVM, "kind": "qemu", "template": "debian-12",
		"cores": 1, "memory_mb": 1024, "disk_gb": 10}, &created)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create %s: %d %s", fixtureVM, r.StatusCode, r.Body)
	}
	stacktest.Eventually(t, 20*time.Second, fixtureVM+" running", func() bool {
		var v struct{ Status string }
		r := s.Do(t, token, http.MethodGet, "/v1/vms/"+created.ID, nil, &v)
		return r.StatusCode == http.StatusOK && v.Status == "running"
	})
	return w
}

// strictUser is a viewer of a tenant that requires two-factor.
func strictUser(t *testing.T, s *stacktest.Stack) stacktest.Account {
	t.Helper()
	strict := s.TenantWithQuota(t, "strict", quota)
	admin := s.Login(t, s.User(t, strict, auth.RoleTenantAdmin)).AccessToken
	if r := s.Do(t, admin, http.MethodPut, "/v1/mfa-requirement", map[string]bool{"required": true}, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("require two-factor: %d %s", r.StatusCode, r.Body)
	}
	return s.User(t, strict, auth.RoleViewer)
}

// startSSO runs an OpenID Connect provider (mockoidc) and configures it,
// mapping its default person's group to tenant; answers its name.
func startSSO(t *testing.T, s *stacktest.Stack, tenant uuid.UUID) string {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	pa := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	const name = "Corp SSO"
	r := s.Do(t, pa, http.MethodPost, "/v1/identity-providers", map[string]any{"name": name, "issuer": m.Issuer(),
		"client_id": m.ClientID, "client_secret": m.ClientSecret, "scopes": []string{"email", "profile", "groups"}, "create_users": true,
		"mappings": []map[string]any{{"group": "engineering", "tenant_id": tenant, "roles": []string{auth.RoleViewer}}}}, nil)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("configure the identity provider: %d %s", r.StatusCode, r.Body)
	}
	return name
}

// env is what the scenarios read (harness.mjs): where the console is, who
// may sign in, where screenshots go and which browser to drive.
func (w world) env(chromium, out string) []string {
	accounts, err := json.Marshal(w.accounts)
	if err != nil {
		panic(err)
	}
	return []string{
		"E2E_BASE_URL=" + w.url,
		"E2E_ACCOUNTS=" + string(accounts),
		"E2E_FIXTURE_VM=" + fixtureVM,
		"E2E_POOL=" + poolName,
		"E2E_QUOTA_CORES=" + strconv.Itoa(quota.MaxCores),
		"E2E_OUT=" + out,
		"E2E_CHROMIUM=" + chromium,
		"E2E_SSO_PROVIDER=" + w.sso,
	}
}
