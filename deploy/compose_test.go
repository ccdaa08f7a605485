package deploy_test

// compose.cluster.yml cannot be run by the test suite (no container engine),
// so it is parsed with compose-go, the library Docker Compose uses, and the
// clustered topology's rules are checked on the loaded model: three NATS
// nodes routed to each other, two api replicas and two agents on all three
// with three replicas per stream, one signing key and one secrets key
// shared, a load balancer that health-checks /readyz of both replicas and
// is the only trusted proxy, no database credentials in the agents, no
// default secrets and loopback-only ports.

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/internal/composetest"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "compose.cluster.yml"

var (
	natsNodes  = []string{"nats-1", "nats-2", "nats-3"}
	apis       = []string{"api-1", "api-2"}
	agents     = []string{"agent-1", "agent-2"}
	variableRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):\?`)
)

func TestClusterComposeFile(t *testing.T) {
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems(t, string(raw)) {
		t.Error(p)
	}
}

// Each plausible mistake, applied to a copy of the file, must be reported.
func TestClusterComposeChecksCatchMistakes(t *testing.T) {
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, old, new, want string }{
		{"one replica per stream", `ACCOUNTDB_NATS_REPLICAS: &nats-replicas "3"`, `ACCOUNTDB_NATS_REPLICAS: &nats-replicas "1"`, "ACCOUNTDB_NATS_REPLICAS"},
		{"one NATS URL", "NATS_URL: &nats-urls nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222", "NATS_URL: &nats-urls nats://nats-1:4222", "NATS_URL"},
		{"a node not routed", `"--routes", "nats://nats-1:6222,nats://nats-3:6222"`, `"--routes", "nats://nats-1:6222"`, "nats-2: routes"},
		{"signing key generated per replica", "${ACCOUNTDB_JWT_PRIVATE_KEY:?set ACCOUNTDB_JWT_PRIVATE_KEY, the same Ed25519 PEM for every api replica}", "", "ACCOUNTDB_JWT_PRIVATE_KEY"},
		{"health check on /healthz", "option httpchk GET /readyz", "option httpchk GET /healthz", "/readyz"},
		{"one backend", "          server api-2 api-2:8080 check\n", "", "api-2"},
		{"port on all interfaces", `"127.0.0.1:8080:8080"`, `"8080:8080"`, "127.0.0.1"},
		{"database credentials in an agent", "    ACCOUNTDB_NATS_CREDS: /nats/agent/agent.creds\n", "    ACCOUNTDB_NATS_CREDS: /nats/agent/agent.creds\n    DATABASE_URL: postgres://accountdb_app@postgres/accountdb\n", "database credentials"},
		{"no trusted proxy", "ACCOUNTDB_TRUSTED_PROXIES: 10.89.0.10/32", "ACCOUNTDB_TRUSTED_PROXIES: 10.89.0.0/24", "ACCOUNTDB_TRUSTED_PROXIES"},
		{"old NATS", "image: nats:2.10-alpine", "image: nats:2.9-alpine", "2.10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(string(raw), c.old) {
				t.Fatalf("the mutation no longer applies: %q not found", c.old)
			}
			got := problems(t, strings.Replace(string(raw), c.old, c.new, 1))
			for _, p := range got {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Fatalf("want a problem containing %q, got %q", c.want, got)
		})
	}
}

func problems(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	var env []string
	for _, m := range variableRe.FindAllStringSubmatch(text, -1) {
		env = append(env, m[1]+"=marker-"+m[1])
	}
	p, err := composetest.Load(t, composeFile, text, env)
	if err != nil {
		return []string{"load: " + err.Error()}
	}
	for _, v := range []string{"POSTGRES_PASSWORD", "ACCOUNTDB_APP_DB_PASSWORD", "ACCOUNTDB_SECRETS_KEY", "ACCOUNTDB_JWT_PRIVATE_KEY"} {
		var without []string
		for _, e := range env {
			if !strings.HasPrefix(e, v+"=") {
				without = append(without, e)
			}
		}
		if _, err := composetest.Load(t, composeFile, text, without); err == nil || !strings.Contains(err.Error(), v) {
			add("%s is not required (loading without it: %v)", v, err)
		}
	}
	for _, name := range slices.Concat([]string{"postgres", "nats-init", "migrate", "lb", "pvesim"}, natsNodes, apis, agents) {
		if _, ok := p.Services[name]; !ok {
			add("%s: service missing", name)
		}
	}
	if len(out) > 0 {
		return out
	}
	env1 := func(service, key string) string {
		if v := p.Services[service].Environment[key]; v != nil {
			return *v
		}
		return ""
	}
	checkNATS(p, add)
	wantURLs := "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"
	for _, name := range slices.Concat(apis, agents) {
		if got := env1(name, "NATS_URL"); got != wantURLs {
			add("%s: NATS_URL %q, want every node (%s)", name, got, wantURLs)
		}
		if got := env1(name, "ACCOUNTDB_NATS_REPLICAS"); got != "3" {
			add("%s: ACCOUNTDB_NATS_REPLICAS %q, want 3 on three nodes", name, got)
		}
		if env1(name, "ACCOUNTDB_SECRETS_KEY") != env1("api-1", "ACCOUNTDB_SECRETS_KEY") {
			add("%s: ACCOUNTDB_SECRETS_KEY differs from api-1's", name)
		}
	}
	for _, name := range apis {
		if k := env1(name, "ACCOUNTDB_JWT_PRIVATE_KEY"); k == "" || k != env1("api-1", "ACCOUNTDB_JWT_PRIVATE_KEY") {
			add("%s: ACCOUNTDB_JWT_PRIVATE_KEY must be set and the same on every api replica", name)
		}
		if u, err := url.Parse(env1(name, "ACCOUNTDB_APP_DATABASE_URL")); err != nil || u.User.Username() != "accountdb_app" {
			add("%s: must connect as accountdb_app", name)
		}
		if env1(name, "ACCOUNTDB_TRUSTED_PROXIES") != lbAddress(p)+"/32" {
			add("%s: ACCOUNTDB_TRUSTED_PROXIES must be the load balancer's address alone (%s/32)", name, lbAddress(p))
		}
	}
	for _, name := range agents {
		for key, v := range p.Services[name].Environment {
			if key == "DATABASE_URL" || strings.HasPrefix(key, "PG") || (v != nil && strings.Contains(*v, "postgres://")) {
				add("%s: an agent must not get database credentials (%s)", name, key)
			}
		}
	}
	checkLB(p, add)
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				add("%s: port %d is not bound to 127.0.0.1", name, port.Target)
			}
		}
		if name == "migrate" || name == "nats-init" {
			continue
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 || (s.Restart == "" || s.Restart == "no") {
			add("%s: a long-running service needs a healthcheck and a restart policy", name)
		}
	}
	return out
}

func checkNATS(p *types.Project, add func(string, ...any)) {
	for _, name := range natsNodes {
		s := p.Services[name]
		m := regexp.MustCompile(`^nats:2\.(\d+)`).FindStringSubmatch(s.Image)
		if minor, _ := strconv.Atoi(append(m, "", "")[1]); m == nil || minor < 10 {
			add("%s: image %q, AccountDB needs nats-server 2.10 or later", name, s.Image)
		}
		cmd := strings.Join(s.Command, " ")
		for _, want := range []string{"-js", "-c /nats/server/nats-server.conf", "--name " + name, "--cluster_name accountdb", "--cluster nats://0.0.0.0:6222"} {
			if !strings.Contains(cmd, want) {
				add("%s: command lacks %q: %q", name, want, cmd)
			}
		}
		i := slices.Index(s.Command, "--routes")
		var routes []string
		if i >= 0 && i+1 < len(s.Command) {
			routes = strings.Split(s.Command[i+1], ",")
		}
		for _, other := range natsNodes {
			if other != name && !slices.Contains(routes, "nats://"+other+":6222") {
				add("%s: routes %v lack %s", name, routes, other)
			}
		}
		if j := slices.Index(s.Command, "-sd"); j < 0 || j+1 >= len(s.Command) || !mountsVolumeAt(s, s.Command[j+1]) {
			add("%s: the JetStream store must be on a named volume of its own", name)
		}
	}
}

func checkLB(p *types.Project, add func(string, ...any)) {
	lb := p.Services["lb"]
	if len(lb.Configs) != 1 {
		add("lb: want its configuration as one config")
		return
	}
	cfg := p.Configs[lb.Configs[0].Source].Content
	if !strings.Contains(cfg, "option httpchk GET /readyz") || !strings.Contains(cfg, "http-check expect status 200") {
		add("lb: must health-check GET /readyz and want 200 (a /healthz check keeps a replica that cannot serve)")
	}
	if !strings.Contains(cfg, "option forwardfor") {
		add("lb: must send X-Forwarded-For, or every client shares the balancer's address limit")
	}
	for _, name := range apis {
		if !regexp.MustCompile(`(?m)^\s*server ` + name + ` ` + name + `:8080 check\b`).MatchString(cfg) {
			add("lb: backend %s missing or not checked", name)
		}
	}
	if len(lb.Ports) == 0 {
		add("lb: publishes no port")
	}
}

func lbAddress(p *types.Project) string {
	for _, n := range p.Services["lb"].Networks {
		if n != nil && n.Ipv4Address != "" {
			return n.Ipv4Address
		}
	}
	return "(none)"
}

func mountsVolumeAt(s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return true
		}
	}
	return false
}
