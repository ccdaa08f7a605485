package pvesim

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

type env struct {
	srv    *Server
	sim    *Simulator
	client *proxmox.Client
	ctx    context.Context
}

func insecureHTTP() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // self-signed test server
	}
}

// newEnv starts a simulator and a token-authenticated go-proxmox client.
func newEnv(t *testing.T, opts Options, useTLS bool) *env {
	t.Helper()
	srv, err := StartServer(opts, "127.0.0.1:0", useTLS)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	t.Cleanup(func() { checkTallies(t, srv.Simulator()) })
	id, secret := splitToken(srv.Simulator().Options().Token)
	c := proxmox.NewClient(srv.URL(), proxmox.WithHTTPClient(insecureHTTP()), proxmox.WithAPIToken(id, secret))
	// A guard against a hung test, not a timing assertion: generous, for a
	// loaded machine running the race detector (100 concurrent clients).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &env{srv: srv, sim: srv.Simulator(), client: c, ctx: ctx}
}

func (e *env) node(t *testing.T, name string) *proxmox.Node {
	t.Helper()
	n, err := e.client.Node(e.ctx, name)
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	return n
}

func (e *env) vm(t *testing.T, node string, vmid int) *proxmox.VirtualMachine {
	t.Helper()
	vm, err := e.node(t, node).VirtualMachine(e.ctx, vmid)
	if err != nil {
		t.Fatalf("vm %d: %v", vmid, err)
	}
	return vm
}

// wait polls a task to completion quickly and returns it.
func (e *env) wait(t *testing.T, task *proxmox.Task, err error) *proxmox.Task {
	t.Helper()
	if err != nil {
		t.Fatalf("task request: %v", err)
	}
	if task == nil {
		t.Fatal("no task returned")
	}
	if err := task.Wait(e.ctx, 5*time.Millisecond, 10*time.Second); err != nil {
		t.Fatalf("wait %s: %v", task.UPID, err)
	}
	return task
}

// ok returns a sink for a (task, err) pair that requires the task to
// succeed: e.ok(t)(vm.Start(ctx)).
func (e *env) ok(t *testing.T) func(*proxmox.Task, error) *proxmox.Task {
	return func(task *proxmox.Task, err error) *proxmox.Task {
		t.Helper()
		task = e.wait(t, task, err)
		if !task.IsSuccessful {
			t.Fatalf("task %s failed: %q", task.UPID, task.ExitStatus)
		}
		return task
	}
}

// fails requires the task to be accepted and then fail with want.
func (e *env) fails(t *testing.T, want string) func(*proxmox.Task, error) *proxmox.Task {
	return func(task *proxmox.Task, err error) *proxmox.Task {
		t.Helper()
		task = e.wait(t, task, err)
		if !task.IsFailed {
			t.Fatalf("task %s succeeded, want failure %q", task.UPID, want)
		}
		if !strings.Contains(task.ExitStatus, want) {
			t.Fatalf("task exit %q, want it to contain %q", task.ExitStatus, want)
		}
		return task
	}
}

// checkTallies fails the test if a node's reported usage (kept as guests
// change, nodeguests.go) differs from its usage counted afresh: a change
// of a guest that nothing retallied. Every test on newEnv ends with it.
func checkTallies(t *testing.T, s *Simulator) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		if got, want := s.reportedUsage(n), s.countedUsage(n); got != want {
			t.Errorf("node %s reports usage %+v, counts %+v", n.name, got, want)
		}
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err.Error(), want)
	}
}

func (e *env) resource(t *testing.T, vmid int) *proxmox.ClusterResource {
	t.Helper()
	cl, err := e.client.Cluster(e.ctx)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	rs, err := cl.Resources(e.ctx, "vm")
	if err != nil {
		t.Fatalf("resources: %v", err)
	}
	for _, r := range rs {
		if r.VMID == uint64(vmid) {
			return r
		}
	}
	return nil
}
