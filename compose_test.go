package accountdb_test

// docker-compose.yml cannot be run by the test suite (no container engine), so
// it is parsed with the same library Docker Compose uses, compose-go, and its
// rules are checked on the loaded model: the services and their commands,
// healthchecks, start order, loopback-only ports, the agent's lack of database
// credentials, NATS in operator mode with per-component credentials, and
// secrets that come from required variables, with no default.

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/internal/composetest"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "docker-compose.yml"

// pvesimDevToken is pvesim's documented development token
// (pvesim.DefaultToken): a public constant of the simulator, not a secret.
const pvesimDevToken = "root@pam!accountdb=5e1f3c2a-acc0-4db0-9e57-000000000001"

var (
	appServices = []string{"migrate", "nats-init", "api", "agent", "pvesim"}
	allServices = []string{"postgres", "nats-init", "nats", "migrate", "api", "agent", "pvesim"}
	// oneShot services run to completion; the others run on.
	oneShot = []string{"migrate", "nats-init"}
	// Variables and settings whose names say they hold a secret.
	secretName = regexp.MustCompile(`(?i)(password|secret|token|key)`)
	variableRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)
	// secretUse is one interpolation: name, operator, default or message.
	secretUse   = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?=+])?([^}]*)\}`)
	sqlPassword = regexp.MustCompile(`(?i)password\s+'([^']*)'`)
)

func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range composeProblems(t, string(raw)) {
		t.Error(problem)
	}
}

// TestComposeChecksCatchMistakes proves the checks above have teeth: each
// plausible mistake, applied to a copy of the real file, must be reported.
func TestComposeChecksCatchMistakes(t *testing.T) {
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"port on all interfaces", `"127.0.0.1:8080:8080"`, `"8080:8080"`, "not bound to 127.0.0.1"},
		{"database credentials in the agent", "    environment:\n      NATS_URL: nats://nats:4222\n      ACCOUNTDB_NATS_CREDS: /nats/agent/agent.creds\n",
			"    environment:\n      DATABASE_URL: postgres://accountdb_app@postgres/accountdb\n      NATS_URL: nats://nats:4222\n      ACCOUNTDB_NATS_CREDS: /nats/agent/agent.creds\n",
			"agent must not get database credentials"},
		{"migrate restarted", "command: [\"migrate\"]\n    restart: \"no\"\n", "command: [\"migrate\"]\n    restart: on-failure\n", `migrate: restart is "on-failure"`},
		{"api not waiting for migrate", "      migrate:\n        condition: service_completed_successfully", "      migrate:\n        condition: service_started",
			"api must wait for migrate with condition service_completed_successfully"},
		{"healthcheck removed", "      test: [\"CMD\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8222/healthz?js-enabled-only=true\"]\n",
			"      disable: true\n", "nats: long-running service without a healthcheck"},
		{"literal secret", "${ACCOUNTDB_SECRETS_KEY:?set ACCOUNTDB_SECRETS_KEY to base64 of 32 random bytes, e.g. openssl rand -base64 32}", "c0rrect-h0rse-battery-staple",
			"api: ACCOUNTDB_SECRETS_KEY is not taken from a variable"},
		{"default secret", "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD, see docs/SECURITY.md}", "${POSTGRES_PASSWORD:-dev-insecure-postgres-password}",
			"POSTGRES_PASSWORD has a default"},
		{"NATS without auth", `, "-c", "/nats/server/nats-server.conf"]`, `]`, "nats: command must load the configuration nats-init writes"},
		{"agent with the core's credentials", "      ACCOUNTDB_NATS_CREDS: /nats/agent/agent.creds", "      ACCOUNTDB_NATS_CREDS: /nats/core/core.creds",
			"agent: ACCOUNTDB_NATS_CREDS must"},
		{"api mounts the NATS keys", "      - natscore:/nats/core:ro\n", "      - natscore:/nats/core:ro\n      - natskeys:/nats/keys:ro\n",
			"api mounts natskeys"},
		{"JetStream off", `"nats-server", "-js", `, `"nats-server", `, "nats: command must enable JetStream"},
		{"service missing", "\n  agent:\n", "\n  worker:\n", "agent: service missing"},
		{"broken YAML", "services:\n  postgres:\n", "services:\n  postgres:\n   - [\n", "load"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(string(raw), c.old) {
				t.Fatalf("the mutation no longer applies: %q not found in %s", c.old, composeFile)
			}
			broken := strings.Replace(string(raw), c.old, c.new, 1)
			problems := composeProblems(t, broken)
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Fatalf("want a problem containing %q, got %q", c.want, problems)
		})
	}
}

// composeProblems loads text as docker-compose.yml and lists every rule it breaks.
func composeProblems(t *testing.T, text string) []string {
	t.Helper()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Load with every secret variable set to a marker, then without each in
	// turn: a required one (${VAR:?message}) must stop the load and be named;
	// the rest are optional, and "plain" leaves them unset, so that a default
	// value of theirs shows.
	vars := secretVariables(text)
	markers := func(except ...string) []string {
		out := make([]string, 0, len(vars))
		for _, v := range vars {
			if !slices.Contains(except, v) {
				out = append(out, v+"=marker-"+v)
			}
		}
		return out
	}
	marked, err := composetest.Load(t, composeFile, text, markers())
	if err != nil {
		add("load %s with secret variables set: %v", composeFile, err)
		return problems
	}
	// Every use of a secret variable: required, or empty when unset.
	for _, m := range secretUse.FindAllStringSubmatch(text, -1) {
		if secretName.MatchString(m[1]) && (m[2] == "-" || m[2] == ":-" || m[2] == "=" || m[2] == ":=") && m[3] != "" {
			add("%s has a default (%q): make it required, ${%s:?message}", m[1], m[3], m[1])
		}
	}
	var optional []string
	for _, v := range vars {
		if _, err := composetest.Load(t, composeFile, text, markers(v)); err == nil {
			optional = append(optional, v)
		} else if !strings.Contains(err.Error(), v) {
			add("loading without %s fails without naming it: %v", v, err)
		}
	}
	plain, err := composetest.Load(t, composeFile, text, markers(optional...))
	if err != nil {
		add("load %s with the required variables set: %v", composeFile, err)
		return problems
	}

	for _, name := range allServices {
		if _, ok := plain.Services[name]; !ok {
			add("%s: service missing", name)
		}
	}
	if len(problems) > 0 {
		return problems
	}
	checkImages(plain, add)
	checkLifecycle(plain, add)
	checkPorts(plain, add)
	checkEnvironment(plain, add)
	checkNATSAuth(plain, add)
	checkSecrets(plain, marked, vars, add)
	sort.Strings(problems)
	return problems
}

func checkImages(p *types.Project, add func(string, ...any)) {
	if img := p.Services["postgres"].Image; img != "postgres:15" {
		add("postgres: image is %q, want postgres:15", img)
	}
	if img := p.Services["nats"].Image; !strings.HasPrefix(img, "nats:2") {
		add("nats: image is %q, want nats:2 or a variant of it", img)
	}
	for _, name := range appServices {
		s := p.Services[name]
		if s.Build == nil || s.Build.Dockerfile != "Dockerfile" {
			add("%s: must be built from the repository's Dockerfile", name)
		}
	}
	nats := p.Services["nats"]
	cmd := strings.Join(nats.Command, " ")
	if !slices.Contains(nats.Command, "-js") && !slices.Contains(nats.Command, "--jetstream") {
		add("nats: command must enable JetStream (-js), got %q", cmd)
	}
	if !strings.Contains(cmd, "-m 8222") && !strings.Contains(cmd, "--http_port 8222") {
		add("nats: command must open the monitoring port (-m 8222), got %q", cmd)
	}
	if i := slices.Index(nats.Command, "-sd"); i < 0 || i+1 >= len(nats.Command) || !mountsVolumeAt(nats, nats.Command[i+1]) {
		add("nats: the JetStream store (-sd) must be on a named volume, got %q", cmd)
	}
	wantCmd := map[string]string{
		"nats-init": "nats init --dir /nats/keys --server-config /nats/server/nats-server.conf --core-creds /nats/core/core.creds --agent-creds /nats/agent/agent.creds",
		"migrate":   "migrate",
		"api":       "serve",
		"agent":     "agent",
		"pvesim":    "pvesim --listen 0.0.0.0:8006 --nodes 3",
	}
	for name, want := range wantCmd {
		if got := strings.Join(p.Services[name].Command, " "); got != want {
			add("%s: command is %q, want %q", name, got, want)
		}
	}
}

func mountsVolumeAt(s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return true
		}
	}
	return false
}

func checkLifecycle(p *types.Project, add func(string, ...any)) {
	for _, name := range oneShot {
		if r := p.Services[name].Restart; r != "no" {
			add("%s: restart is %q, a one-shot job needs \"no\"", name, r)
		}
	}
	if d, ok := p.Services["migrate"].DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy {
		add("migrate must wait for postgres with condition %s", types.ServiceConditionHealthy)
	}
	if d, ok := p.Services["api"].DependsOn["migrate"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		add("api must wait for migrate with condition %s", types.ServiceConditionCompletedSuccessfully)
	}
	if d, ok := p.Services["nats"].DependsOn["nats-init"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		add("nats must wait for nats-init with condition %s", types.ServiceConditionCompletedSuccessfully)
	}
	for name, s := range p.Services {
		if slices.Contains(oneShot, name) {
			continue
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 ||
			!slices.Contains([]string{"CMD", "CMD-SHELL"}, s.HealthCheck.Test[0]) {
			add("%s: long-running service without a healthcheck", name)
		}
		if s.Restart == "" || s.Restart == "no" {
			add("%s: long-running service with restart %q", name, s.Restart)
		}
		for dep, d := range s.DependsOn {
			if !slices.Contains(oneShot, dep) && d.Condition != types.ServiceConditionHealthy {
				add("%s: depends on %s with condition %q, want %s", name, dep, d.Condition, types.ServiceConditionHealthy)
			}
		}
		if slices.Contains(appServices, name) && name != "pvesim" && !dependsOn(p, name, "migrate", map[string]bool{}) {
			add("%s: must start after migrate (directly or through another service)", name)
		}
	}
}

func dependsOn(p *types.Project, from, to string, seen map[string]bool) bool {
	if seen[from] {
		return false
	}
	seen[from] = true
	for dep := range p.Services[from].DependsOn {
		if dep == to || dependsOn(p, dep, to, seen) {
			return true
		}
	}
	return false
}

func checkPorts(p *types.Project, add func(string, ...any)) {
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				add("%s: port %s:%d is not bound to 127.0.0.1 (host ip %q)", name, port.Published, port.Target, port.HostIP)
			}
		}
	}
	for _, name := range []string{"postgres", "nats", "api", "pvesim"} {
		if len(p.Services[name].Ports) == 0 {
			add("%s: publishes no port", name)
		}
	}
}

func checkEnvironment(p *types.Project, add func(string, ...any)) {
	env := func(service, key string) string {
		if v := p.Services[service].Environment[key]; v != nil {
			return *v
		}
		return ""
	}
	for _, key := range []string{"DATABASE_URL", "ACCOUNTDB_APP_DATABASE_URL", "NATS_URL", "ACCOUNTDB_HTTP_ADDR", "ACCOUNTDB_DATA_DIR"} {
		if env("api", key) == "" {
			add("api: %s missing", key)
		}
	}
	if u, err := url.Parse(env("migrate", "DATABASE_URL")); err != nil || u.User == nil {
		add("migrate: DATABASE_URL must name the administrator that runs the migrations")
	}
	// The API (with the relay and projectors) connects as the service role;
	// no administrator credential reaches a long-running service.
	for _, key := range []string{"DATABASE_URL", "ACCOUNTDB_APP_DATABASE_URL"} {
		if u, err := url.Parse(env("api", key)); err != nil || u.User.Username() != "accountdb_app" {
			add("api: %s must log in as the service role accountdb_app, not an administrator", key)
		}
	}
	for key, v := range p.Services["agent"].Environment {
		if key == "DATABASE_URL" || strings.HasPrefix(key, "PG") || (v != nil && strings.Contains(*v, "postgres://")) {
			add("agent must not get database credentials (%s)", key)
		}
	}
	for _, key := range []string{"NATS_URL", "ACCOUNTDB_SECRETS_KEY"} {
		if env("agent", key) == "" {
			add("agent: %s missing", key)
		}
	}
	// The agent opens what the api sealed: they must share the key.
	if env("agent", "ACCOUNTDB_SECRETS_KEY") != env("api", "ACCOUNTDB_SECRETS_KEY") {
		add("api and agent must share ACCOUNTDB_SECRETS_KEY")
	}
}

// secretVariables lists the variables the file interpolates whose names say
// they hold a secret.
func secretVariables(text string) []string {
	var out []string
	for _, m := range variableRe.FindAllStringSubmatch(text, -1) {
		if secretName.MatchString(m[1]) && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// checkSecrets finds every secret-bearing value (settings named like a secret,
// passwords inside URLs and SQL, API tokens in healthchecks) and requires that
// it comes from a variable and has no default: the variable is required, or
// unset leaves the value empty (the service then generates its own).
func checkSecrets(plain, marked *types.Project, vars []string, add func(string, ...any)) {
	isMarker := func(v string) bool {
		for _, name := range vars {
			if strings.Contains(v, "marker-"+name) {
				return true
			}
		}
		return false
	}
	check := func(where, plainValue, markedValue string) {
		if !isMarker(markedValue) {
			add("%s is not taken from a variable", where)
		} else if plainValue != "" && !isMarker(plainValue) {
			add("%s has a default (%q): make its variable required, ${VAR:?message}", where, plainValue)
		}
	}
	for name, s := range plain.Services {
		for key, v := range s.Environment {
			if v == nil {
				continue
			}
			mv := deref(marked.Services[name].Environment[key])
			if secretName.MatchString(key) {
				check(name+": "+key, *v, mv)
			}
			if u, err := url.Parse(*v); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok {
					mu, _ := url.Parse(mv)
					mpw := ""
					if mu != nil && mu.User != nil {
						mpw, _ = mu.User.Password()
					}
					check(name+": password in "+key, pw, mpw)
				}
			}
		}
		// A healthcheck may carry only the simulator's public dev token.
		if s.HealthCheck == nil {
			continue
		}
		for _, arg := range s.HealthCheck.Test {
			if strings.Contains(arg, "PVEAPIToken=") && !strings.HasSuffix(arg, "PVEAPIToken="+pvesimDevToken) {
				add("%s: healthcheck carries a Proxmox token other than pvesim's dev token", name)
			}
		}
	}
	for name, c := range plain.Configs {
		for i, m := range sqlPassword.FindAllStringSubmatch(c.Content, -1) {
			ms := sqlPassword.FindAllStringSubmatch(marked.Configs[name].Content, -1)
			mv := ""
			if i < len(ms) {
				mv = ms[i][1]
			}
			check("config "+name+": SQL password", m[1], mv)
		}
	}
}

func deref(v *string) string {
	if v == nil {
		return ""
	}
	return *v
}

// checkNATSAuth: the server loads the configuration nats-init writes
// (operator mode, no anonymous client), and each component gets its own
// credentials file on a volume only it mounts; only nats-init mounts the keys.
func checkNATSAuth(p *types.Project, add func(string, ...any)) {
	nats := p.Services["nats"]
	init := p.Services["nats-init"]
	i := slices.Index(nats.Command, "-c")
	if i < 0 || i+1 >= len(nats.Command) || !strings.Contains(strings.Join(init.Command, " "), "--server-config "+nats.Command[i+1]) {
		add("nats: command must load the configuration nats-init writes (-c), got %q", strings.Join(nats.Command, " "))
	}
	volumeAt := func(s types.ServiceConfig, path string) string {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && strings.HasPrefix(path, v.Target+"/") {
				return v.Source
			}
		}
		return ""
	}
	for _, name := range []string{"api", "agent"} {
		creds := deref(p.Services[name].Environment["ACCOUNTDB_NATS_CREDS"])
		vol := volumeAt(p.Services[name], creds)
		if creds == "" || vol == "" || volumeAt(init, creds) != "" && volumeAt(init, creds) != vol {
			add("%s: ACCOUNTDB_NATS_CREDS must name a file on a named volume nats-init writes, got %q", name, creds)
			continue
		}
		for other, s := range p.Services {
			if other == name || other == "nats-init" {
				continue
			}
			for _, v := range s.Volumes {
				if v.Source == vol {
					add("%s: ACCOUNTDB_NATS_CREDS must be on a volume only it mounts; %s mounts %s too", name, other, vol)
				}
			}
		}
	}
	keys := volumeAt(init, "/nats/keys/operator.nk")
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if keys != "" && v.Source == keys && name != "nats-init" {
				add("%s mounts %s, the NATS keys: only nats-init may", name, keys)
			}
		}
	}
}
