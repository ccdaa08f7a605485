package pvesim

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// apiError is an error the simulator answers the way pveproxy does: the
// message travels in the HTTP reason phrase (go-proxmox surfaces res.Status
// for 500s) and is repeated in the JSON body.
type apiError struct {
	status  int
	message string
	errors  map[string]string
}

func (e *apiError) Error() string {
	if len(e.errors) == 0 {
		return e.message
	}
	keys := make([]string, 0, len(e.errors))
	for k := range e.errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.errors[k])
	}
	return e.message + " " + strings.Join(parts, "; ")
}

// errf builds a 500, which is how PVE reports every failure raised with
// die() inside an API handler.
func errf(format string, args ...any) *apiError {
	return &apiError{status: http.StatusInternalServerError, message: fmt.Sprintf(format, args...)}
}

// paramErr builds PVE's 400 "Parameter verification failed." answer.
func paramErr(errs map[string]string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: "Parameter verification failed.", errors: errs}
}

func paramErr1(key, msg string) *apiError {
	return paramErr(map[string]string{key: msg})
}

func unauthorized(msg string) *apiError {
	return &apiError{status: http.StatusUnauthorized, message: msg}
}

// unknownMethod is the 501 pveproxy answers for paths it has no handler
// for; clients treat it as a hard error, never as "not found".
func unknownMethod(method, path string) *apiError {
	return &apiError{status: http.StatusNotImplemented, message: fmt.Sprintf("Method '%s %s' is not part of the simulated API", method, path)}
}

// The helpers below reproduce PVE's wording for the conditions AccountDB
// has to recognise; clients match on these strings, so keep them verbatim.

func errConfigMissing(node string, kind guestKind, vmid int) *apiError {
	return errf("Configuration file 'nodes/%s/%s/%d.conf' does not exist", node, kind.confDir(), vmid)
}

func errAlreadyExists(vmid int, node string, kind guestKind) string {
	return fmt.Sprintf("%s %d already exists on node '%s'", kind.label(), vmid, node)
}

// errLocked is PVE::AbstractConfig::check_lock's message: the guest type
// ("VM" for QEMU, "CT" for a container) is locked (lock).
func errLocked(kind guestKind, lock string) string {
	if kind == kindLXC {
		return fmt.Sprintf("CT is locked (%s)", lock)
	}
	return fmt.Sprintf("VM is locked (%s)", lock)
}

func errLockTimeout(kind guestKind, vmid int) string {
	if kind == kindLXC {
		return fmt.Sprintf("can't lock file '/run/lock/lxc/pve-config-%d.lock' - got timeout", vmid)
	}
	return fmt.Sprintf("can't lock file '/var/lock/qemu-server/lock-%d.conf' - got timeout", vmid)
}

func errNoNode(node string) *apiError {
	return errf("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", node, node)
}
