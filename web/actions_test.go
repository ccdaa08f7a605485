package web_test

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/web"
)

var (
	// wordingKey is an action the console words: `  start: { label: "Start" },`.
	wordingKey = regexp.MustCompile(`(?m)^  (\w+): \{ label: `)
	// allowsCall is a gate on the table: allows(vm, "resize").
	allowsCall = regexp.MustCompile(`allows\(vm, "(\w+)"\)`)
	// disabledBy is what a VM control's disabled state is computed from.
	disabledBy = regexp.MustCompile(`disabled(?:: | = )([^,;}]+)`)
)

// TestConsoleActionsComeFromTheTable: the console's VM buttons and forms are
// built from and gated by the action table the API serves (GET
// /v1/vm-actions), not by lists of its own. Every VM control's disabled
// state asks the table, no script spells a route or a status list of an
// action, and every action of domain.VMActions a VM can be asked for is
// one the console words or gates.
func TestConsoleActionsComeFromTheTable(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	_, actions := get(t, srv, "/static/vmactions.js")
	_, vmsOnly := get(t, srv, "/static/vms.js")
	_, access := get(t, srv, "/static/vm_access.js")
	_, backups := get(t, srv, "/static/vm_backups.js")
	vms := vmsOnly + "\n" + access + "\n" + backups // the VM page's forms live in all three
	if !strings.Contains(actions, `api("GET", "/v1/vm-actions")`) || !strings.Contains(vmsOnly, "loadVMActions()") {
		t.Fatal("the console does not load GET /v1/vm-actions before it shows VMs")
	}
	for name, src := range map[string]string{"vmactions.js": actions, "vms.js": vmsOnly, "vm_access.js": access, "vm_backups.js": backups} {
		for _, m := range disabledBy.FindAllStringSubmatch(src, -1) {
			if !strings.Contains(m[1], "allows(") {
				t.Errorf("%s: a VM control disabled by %q, not by the table", name, m[1])
			}
		}
		for _, own := range []string{"/actions/", "when:", `"vm:power"`, `"vm:delete"`} {
			if strings.Contains(src, own) {
				t.Errorf("%s spells %s itself instead of reading the table", name, own)
			}
		}
	}
	handled := map[string]bool{}
	for _, m := range wordingKey.FindAllStringSubmatch(actions, -1) {
		handled[m[1]] = true
	}
	for _, m := range allowsCall.FindAllStringSubmatch(vms, -1) {
		handled[m[1]] = true
	}
	if len(handled) == 0 {
		t.Fatal("found no action the console words or gates; has vmactions.js changed shape?")
	}
	for name := range handled {
		if _, ok := domain.LookupVMAction(name); !ok {
			t.Errorf("the console handles %q, which domain.VMActions lacks", name)
		}
	}
	for _, a := range domain.VMActions {
		if len(a.AllowedFrom) > 0 && !handled[a.Name] {
			t.Errorf("the console has no button or form for %s", a.Name)
		}
	}
}
